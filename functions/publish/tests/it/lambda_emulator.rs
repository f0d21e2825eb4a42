//! The publish Lambda binary on the real Lambda runtime protocol: cargo-lambda's
//! emulator feeds it the S3 `ObjectCreated` sample event (the signed pair waiting
//! in the upload bucket, on moto) and the `POST /v1/publish` sample (HTTP API v2).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;
use runtime_core::artifact::ContentHash;
use test_support::guests;
use test_support::lambda_emulator::{Deployment, Emulator, body_bytes, event};
use test_support::signer::Signer;

const PUBLISH_TOKEN: &str = "sample-publish-token";

/// A small extension (a WAT component) at `version`, packed and signed. Its
/// manifest carries Alga's top-level `entry`, which publish ignores with a warning.
fn small_extension(work: &Path, version: &str, signer: &Signer) -> (Vec<u8>, String) {
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
    test_support::lambda_emulator::signed_bundle(&dir, signer)
}

/// Every object in the deployment's buckets, by bucket and key, with its ETag.
fn objects(d: &Deployment) -> BTreeMap<(String, String), String> {
    let settings = &d.aws.settings;
    let buckets: BTreeSet<&String> = [&settings.bucket, &settings.upload_bucket].into();
    d.block_on(async {
        let mut out = BTreeMap::new();
        for bucket in buckets {
            let mut pages = d
                .aws
                .clients
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for o in page.unwrap().contents() {
                    out.insert(
                        (bucket.clone(), o.key().unwrap().to_string()),
                        o.e_tag().unwrap_or_default().to_string(),
                    );
                }
            }
        }
        out
    })
}

/// Writes an object into the upload bucket.
fn upload(d: &Deployment, key: &str, bytes: &[u8]) {
    d.block_on(async {
        d.aws
            .clients
            .s3
            .put_object()
            .bucket(&d.aws.settings.upload_bucket)
            .key(key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .unwrap();
    });
}

/// An object of the upload bucket, as JSON.
fn uploaded_json(d: &Deployment, key: &str) -> serde_json::Value {
    d.block_on(async {
        let o = d
            .aws
            .clients
            .s3
            .get_object()
            .bucket(&d.aws.settings.upload_bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&o.body.collect().await.unwrap().into_bytes()).unwrap()
    })
}

fn json_body(response: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response))
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {response}"))
}

#[test]
fn fn_publish_answers_the_sample_events_under_cargo_lambdas_emulator() {
    let work = tempfile::tempdir().unwrap();
    let deployment = Deployment::new();
    let signer = &deployment.signer;

    // The S3 event's key `uploads/hello-0.1.0.tar.zst.sig.json` is an object key
    // in the upload bucket; the bundle sits beside it.
    let (bundle, signature) = small_extension(work.path(), "0.1.0", signer);
    upload(&deployment, "uploads/hello-0.1.0.tar.zst", &bundle);
    upload(
        &deployment,
        "uploads/hello-0.1.0.tar.zst.sig.json",
        signature.as_bytes(),
    );
    let hash = ContentHash::of(&bundle).to_string();

    let mut lambda = Emulator::start();
    let mut env = deployment.function_env();
    env.push(("ALGA_PUBLISH_TOKEN".into(), PUBLISH_TOKEN.into()));
    lambda.attach("fn-publish", env!("CARGO_BIN_EXE_fn-publish"), env);

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
    let record = uploaded_json(&deployment, "uploads/hello-0.1.0.tar.zst.result.json");
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
    let (other, _) = small_extension(work.path(), "0.3.0", signer);
    upload(&deployment, "uploads/hello-0.1.0.tar.zst", &other);
    let before = objects(&deployment);
    let r = lambda.invoke("fn-publish", &s3);
    let result = &r["results"][0];
    assert_eq!(result["status"], "refused", "{r}");
    assert_eq!(result["code"], "hash_mismatch", "{r}");
    let record_key = "uploads/hello-0.1.0.tar.zst.result.json";
    let record = uploaded_json(&deployment, record_key);
    assert_eq!(record["bundle"], "uploads/hello-0.1.0.tar.zst", "{record}");
    assert_eq!(record["result"]["status"], "refused", "{record}");
    assert_eq!(record["result"]["code"], "hash_mismatch", "{record}");
    assert!(record["result"]["message"].is_string(), "{record}");
    let after = objects(&deployment);
    let changed: Vec<&(String, String)> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        changed,
        vec![&(
            deployment.aws.settings.upload_bucket.clone(),
            record_key.to_string()
        )],
        "a refused upload rewrites its record and nothing else"
    );
    let registry = &deployment.aws.backends.registry;
    let (versions, by_hash) = deployment.block_on(async {
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
    let (bundle, signature) = small_extension(work.path(), "0.2.0", signer);
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

/// An unsigned bundle in Alga's bundle-store layout with its `bundle.sha256`
/// sidecar, announced by S3: refused under `ALGA_BUNDLE_TRUST=signature` (the
/// default), published under `host-pinned`.
#[test]
fn fn_publish_takes_algas_unsigned_store_layout_only_when_host_pinned() {
    for (policy, expected) in [("signature", "refused"), ("host-pinned", "published")] {
        let work = tempfile::tempdir().unwrap();
        let deployment = Deployment::new();
        let (bundle, _unused_signature) = small_extension(work.path(), "0.1.0", &deployment.signer);
        let hash = ContentHash::of(&bundle);
        let folder = format!("tenants/t1/extensions/ext-uuid/sha256/{}/", hash.hex());
        upload(&deployment, &format!("{folder}bundle.tar.zst"), &bundle);
        upload(
            &deployment,
            &format!("{folder}bundle.sha256"),
            format!("{}\n", hash.hex()).as_bytes(),
        );

        let mut lambda = Emulator::start();
        let mut env = deployment.function_env();
        env.push(("ALGA_PUBLISH_TOKEN".into(), PUBLISH_TOKEN.into()));
        env.push(("ALGA_BUNDLE_TRUST".into(), policy.into()));
        lambda.attach("fn-publish", env!("CARGO_BIN_EXE_fn-publish"), env);

        let mut s3 = event("s3-put.json", "");
        s3["Records"][0]["s3"]["object"]["key"] = format!("{folder}bundle.sha256").into();
        let r = lambda.invoke("fn-publish", &s3);
        let result = &r["results"][0];
        assert_eq!(result["status"], expected, "{policy}: {r}");
        let version = deployment
            .block_on(deployment.aws.backends.registry.version_by_hash(&hash))
            .unwrap();
        if expected == "published" {
            assert_eq!(result["content_hash"], hash.to_string(), "{r}");
            let version = version.expect("registered");
            assert_eq!(version.signer_key_id, "host-pinned");
        } else {
            assert_eq!(result["code"], "signature_missing", "{policy}: {r}");
            assert!(version.is_none(), "{policy}: {version:?}");
        }
        // The record sits beside the bundle, in the store's own folder.
        let record = uploaded_json(&deployment, &format!("{folder}bundle.tar.zst.result.json"));
        assert_eq!(record["result"]["status"], expected, "{record}");
    }
}
