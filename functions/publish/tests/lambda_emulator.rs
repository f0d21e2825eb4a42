//! The publish Lambda binary on the real Lambda runtime protocol: cargo-lambda's
//! emulator feeds it the S3 `ObjectCreated` sample event (the signed pair waiting
//! in the local upload area) and the `POST /v1/publish` sample (HTTP API v2).

#[allow(dead_code)]
#[path = "../../../tests/support/lambda_emulator.rs"]
mod emulator;

#[allow(dead_code)]
#[path = "../../../runtime-core/tests/support/guests.rs"]
mod guests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use runtime_core::artifact::ContentHash;
use runtime_core::store::Registry as _;
use runtime_core::store::local::SqliteRegistry;

use base64::Engine as _;
use emulator::{Emulator, body_bytes, event};

const PUBLISH_TOKEN: &str = "sample-publish-token";

/// A small extension (a WAT component) at `version`, packed and signed. Its
/// manifest carries Alga's top-level `entry`, which publish ignores with a warning.
fn small_extension(
    work: &Path,
    version: &str,
    key: &runtime_core::bundle::signature::SigningKey,
) -> (Vec<u8>, String) {
    let dir = work.join(version);
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::create_dir_all(dir.join("ui")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        format!(
            r#"{{"name":"com.example.hello","version":"{version}","runtime":"wasm-js@1","entry":"dist/main.wasm","ui":{{"type":"iframe","entry":"ui/index.html"}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("dist/main.wasm"), guests::hello()).unwrap();
    std::fs::write(dir.join("ui/index.html"), "<p>hi</p>").unwrap();
    emulator::signed_bundle(&dir, key)
}

/// Every file under `dir` (paths relative to it) with the SHA-256 of its bytes,
/// but the SQLite databases, which the test reads through the registry.
fn files(dir: &Path) -> BTreeMap<PathBuf, [u8; 32]> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                pending.push(path);
            } else if !name.contains(".db") {
                let hash = runtime_core::artifact::sha256(&std::fs::read(&path).unwrap());
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), hash);
            }
        }
    }
    out
}

fn json_body(response: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response))
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {response}"))
}

#[test]
fn fn_publish_answers_the_sample_events_under_cargo_lambdas_emulator() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let key = emulator::trusted_data_dir(&data);

    // The upload area of the local backend is <data>/uploads, a stand-in for the
    // upload bucket: the S3 event's key `uploads/hello-0.1.0.tar.zst.sig.json` is
    // an object key inside it.
    let (bundle, signature) = small_extension(work.path(), "0.1.0", &key);
    let area = data.join("uploads/uploads");
    std::fs::create_dir_all(&area).unwrap();
    std::fs::write(area.join("hello-0.1.0.tar.zst"), &bundle).unwrap();
    std::fs::write(area.join("hello-0.1.0.tar.zst.sig.json"), &signature).unwrap();
    let hash = ContentHash::of(&bundle).to_string();

    let mut lambda = Emulator::start();
    lambda.attach(
        "fn-publish",
        env!("CARGO_BIN_EXE_fn-publish"),
        &[
            ("ALGA_DATA", data.to_str().unwrap()),
            ("ALGA_PUBLISH_TOKEN", PUBLISH_TOKEN),
        ],
    );

    // S3 ObjectCreated for the signature (the second half of the pair): published.
    let s3 = event("s3-put.json", "");
    let r = lambda.invoke("fn-publish", &s3);
    let result = &r["results"][0];
    assert_eq!(result["status"], "published", "{r}");
    assert_eq!(result["content_hash"], hash.as_str(), "{r}");
    assert_eq!(result["extension"], "com.example.hello", "{r}");
    assert_eq!(result["version"], "0.1.0", "{r}");
    assert_eq!(result["outcome"], "created", "{r}");
    // ...and the record beside the bundle says so.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(area.join("hello-0.1.0.tar.zst.result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["result"]["status"], "published", "{record}");
    assert_eq!(
        record["result"]["warnings"][0]["field"], "entry",
        "{record}"
    );
    // The same event again (S3 delivers at least once): unchanged.
    let r = lambda.invoke("fn-publish", &s3);
    assert_eq!(r["results"][0]["outcome"], "unchanged", "{r}");

    // A signature that does not match the bundle: refused, with a record and
    // nothing else (no blob, artifact or registry version for it).
    let (other, _) = small_extension(work.path(), "0.3.0", &key);
    std::fs::write(area.join("hello-0.1.0.tar.zst"), &other).unwrap();
    let before = files(&data);
    let r = lambda.invoke("fn-publish", &s3);
    let result = &r["results"][0];
    assert_eq!(result["status"], "refused", "{r}");
    assert_eq!(result["code"], "hash_mismatch", "{r}");
    let record_path = area.join("hello-0.1.0.tar.zst.result.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["bundle"], "uploads/hello-0.1.0.tar.zst", "{record}");
    assert_eq!(record["result"]["status"], "refused", "{record}");
    assert_eq!(record["result"]["code"], "hash_mismatch", "{record}");
    assert!(record["result"]["message"].is_string(), "{record}");
    let after = files(&data);
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        changed,
        vec![&record_path.strip_prefix(&data).unwrap().to_path_buf()],
        "a refused upload rewrites its record and nothing else"
    );
    let registry = SqliteRegistry::open(&data.join("registry.db")).unwrap();
    let (versions, by_hash) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let versions = registry.list_versions("com.example.hello").await.unwrap();
        let by_hash = registry.version_by_hash(&ContentHash::of(&other)).await;
        (versions, by_hash.unwrap())
    });
    let versions: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(
        versions,
        vec!["0.1.0"],
        "no version registered for the refused bundle"
    );
    assert!(by_hash.is_none(), "{by_hash:?}");

    // POST /v1/publish as in the sample: the right token, an empty bundle → 422.
    let sample = event("publish-v2.json", "");
    let r = lambda.invoke("fn-publish", &sample);
    assert_eq!(r["statusCode"], 422, "{r}");
    assert!(json_body(&r)["error"].is_string(), "{r}");

    // Without the operator token, or with a wrong one: 401.
    let mut wrong = sample.clone();
    wrong["headers"]["authorization"] = "Bearer not-the-token".into();
    assert_eq!(lambda.invoke("fn-publish", &wrong)["statusCode"], 401);
    let mut none = sample.clone();
    none["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let r = lambda.invoke("fn-publish", &none);
    assert_eq!(r["statusCode"], 401, "{r}");

    // With a real signed bundle: 201 created.
    let (bundle, signature) = small_extension(work.path(), "0.2.0", &key);
    let mut real = sample.clone();
    real["body"] = serde_json::json!({
        "bundle_b64": base64::engine::general_purpose::STANDARD.encode(&bundle),
        "signature": serde_json::from_str::<serde_json::Value>(&signature).unwrap(),
    })
    .to_string()
    .into();
    let r = lambda.invoke("fn-publish", &real);
    assert_eq!(r["statusCode"], 201, "{r}");
    let body = json_body(&r);
    assert_eq!(body["version"], "0.2.0", "{body}");
    assert_eq!(body["outcome"], "created", "{body}");
    assert_eq!(body["warnings"][0]["field"], "entry", "{body}");
    assert_eq!(body["warnings"].as_array().map(Vec::len), Some(1), "{body}");
}
