//! Signed bundles through the publish pipeline into the local registry, and execute
//! resolving through it. Every refusal leaves nothing behind.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::config::RuntimeConfig;
use runtime_core::engine::Target;
use runtime_core::execute::{ExecuteRequest, InstallSource, RegistryResolver, RoutingHeaders};
use runtime_core::host::HostServices;
use runtime_core::publish::{Publisher, bundle_key, ui_key};
use runtime_core::store::{InstallRequest, Registered};
use runtime_core::{Executor, Outcome};
use serde_json::json;
use stores_local::{MemoryKvStore, MemorySecretStore};
use test_support::guests;

const MANIFEST: &str = r#"{
  "name": "com.example.test",
  "version": "1.0.0",
  "runtime": "wasm-js@1",
  "capabilities": ["cap:storage.kv"],
  "ui": {"type": "iframe", "entry": "ui/index.html"},
  "api": {"endpoints": [{"method": "GET", "path": "/", "handler": "dist/main.wasm"}]}
}"#;

struct Env {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    local: Backends,
    key: SigningKey,
    config: RuntimeConfig,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let local = stores_local::backends(&data).unwrap();
        Env {
            data,
            local,
            key: SigningKey::generate("test-key").unwrap(),
            config: test_support::test_config(),
            _dir: dir,
        }
    }

    fn trust(&self) -> TrustBundle {
        TrustBundle::default().with_key(self.key.public())
    }

    fn publisher(&self, trust: TrustBundle) -> Publisher {
        Publisher::new(
            self.local.blobs.clone(),
            self.local.registry.clone(),
            trust,
            self.config.engine.clone(),
        )
        .with_targets(vec![Target::host()])
    }

    fn executor(&self, trust: TrustBundle) -> Executor {
        Executor::new(
            &self.config,
            self.local.blobs.clone(),
            Arc::new(RegistryResolver::new(self.local.registry.clone(), trust)),
            HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
        )
        .unwrap()
    }

    fn signed(&self, bundle: &[u8]) -> Vec<u8> {
        Signature::sign(&ContentHash::of(bundle), &self.key)
            .to_json()
            .into_bytes()
    }

    /// Files under the blob store (none after a refused publish).
    fn blob_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(p: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out)
                } else {
                    out.push(e.path().display().to_string())
                }
            }
        }
        walk(&self.data.join("blobs"), &mut out);
        out
    }
}

/// A packed extension directory with `manifest` and `wasm`.
fn pack(manifest: &str, wasm: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), manifest).unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/main.wasm"), wasm).unwrap();
    std::fs::create_dir_all(dir.path().join("ui/assets")).unwrap();
    std::fs::write(dir.path().join("ui/index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(dir.path().join("ui/assets/app.js"), "console.log(1)").unwrap();
    archive::pack_dir(dir.path(), &ArchiveLimits::default()).unwrap()
}

/// A tar.zst with raw entries (names written as-is, so hostile ones get through).
fn raw_bundle(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.finish().unwrap();
    }
    zstd::encode_all(&tar_bytes[..], 3).unwrap()
}

fn valid_entries(
    wasm: &[u8],
) -> Vec<(&'static str, tar::EntryType, Vec<u8>, Option<&'static str>)> {
    vec![
        (
            "manifest.json",
            tar::EntryType::Regular,
            MANIFEST.as_bytes().to_vec(),
            None,
        ),
        (
            "dist/main.wasm",
            tar::EntryType::Regular,
            wasm.to_vec(),
            None,
        ),
        (
            "ui/index.html",
            tar::EntryType::Regular,
            b"<h1>hi</h1>".to_vec(),
            None,
        ),
    ]
}

fn with_extra(extra: (&'static str, tar::EntryType, Vec<u8>, Option<&'static str>)) -> Vec<u8> {
    let mut e = valid_entries(&guests::hello());
    e.push(extra);
    let refs: Vec<_> = e.iter().map(|(n, k, d, l)| (*n, *k, &d[..], *l)).collect();
    raw_bundle(&refs)
}

async fn execute(
    ex: &Executor,
    tenant: &str,
    content: &ContentHash,
    providers: Option<&[&str]>,
) -> Outcome {
    let mut req = json!({
        "context": {"tenant_id": tenant, "extension_id": "com.example.test", "content_hash": content.to_string()},
        "http": {"method": "GET", "path": "/"}
    });
    if let Some(p) = providers {
        req["providers"] = json!(p);
    }
    let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).unwrap()).unwrap();
    let routing = RoutingHeaders {
        tenant: Some(tenant.into()),
        extension: Some("com.example.test".into()),
        request_id: None,
    };
    ex.execute(&routing, &req).await
}

/// Installs `com.example.test` for tenant `t` with default grants.
async fn install_for_t(env: &Env) {
    env.local
        .registry
        .install(&InstallRequest {
            tenant: "t".into(),
            extension_id: "com.example.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

fn no_progress(_: runtime_core::publish::Stage) {}

#[tokio::test]
async fn publish_install_execute_round_trip_and_idempotence() {
    let env = Env::new();
    let bundle = pack(MANIFEST, &guests::hello());
    let publisher = env.publisher(env.trust());
    let p = publisher
        .publish(&bundle, Some(&env.signed(&bundle)), &no_progress)
        .await
        .unwrap();
    assert_eq!(p.outcome, Registered::Created);
    assert_eq!(p.content_hash, ContentHash::of(&bundle));
    assert_eq!(p.ui_files, 2);
    // Content-addressed storage: the bundle, its UI files and the artifact.
    let blobs = &env.local.blobs;
    assert_eq!(
        blobs
            .get(&bundle_key(&p.content_hash))
            .await
            .unwrap()
            .unwrap(),
        bundle
    );
    assert_eq!(
        blobs
            .get(&ui_key(&p.content_hash, "assets/app.js"))
            .await
            .unwrap()
            .unwrap(),
        b"console.log(1)"
    );
    assert!(blobs.exists(&p.artifacts[0].object_key()).await.unwrap());

    // The same bytes again: success, nothing changes.
    let files_before = env.blob_files();
    let again = publisher
        .publish(&bundle, Some(&env.signed(&bundle)), &no_progress)
        .await
        .unwrap();
    assert_eq!(again.outcome, Registered::Unchanged);
    assert_eq!(env.blob_files(), files_before);

    // Same name + version, other bytes: refused, nothing written.
    let other = pack(MANIFEST, &guests::echo());
    let err = publisher
        .publish(&other, Some(&env.signed(&other)), &no_progress)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "version_conflict");
    assert_eq!(env.blob_files(), files_before);

    // Not installed → 404; installed → runs from the artifact.
    let ex = env.executor(env.trust());
    let out = execute(&ex, "tenant-a", &p.content_hash, None).await;
    assert_eq!(out.metrics.outcome, "not_installed");
    assert_eq!(out.envelope.status, 404);
    let reg = &env.local.registry;
    let install = reg
        .install(&InstallRequest {
            tenant: "tenant-a".into(),
            extension_id: "com.example.test".into(),
            version: None,
            grants: vec!["cap:storage.kv".into(), "cap:http.fetch".into()],
            config: Default::default(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Effective grants: manifest ∩ operator (http.fetch was not requested).
    assert!(install.granted.has(runtime_core::Capability::StorageKv));
    assert!(!install.granted.has(runtime_core::Capability::HttpFetch));
    let out = execute(&ex, "tenant-a", &p.content_hash, None).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    // Another tenant has no install: the hash alone buys nothing.
    let out = execute(&ex, "tenant-b", &p.content_hash, None).await;
    assert_eq!(out.metrics.outcome, "not_installed");
    // Disabled → 403.
    reg.set_enabled("tenant-a", "com.example.test", false)
        .await
        .unwrap();
    let out = execute(&ex, "tenant-a", &p.content_hash, None).await;
    assert_eq!(
        (out.metrics.outcome, out.envelope.status),
        ("install_disabled", 403)
    );
    reg.set_enabled("tenant-a", "com.example.test", true)
        .await
        .unwrap();
    // A hash that is not the installed one → 404.
    let out = execute(&ex, "tenant-a", &ContentHash::of(b"x"), None).await;
    assert_eq!(out.metrics.outcome, "not_installed");
}

/// Publishes (signed, trusted) a guest reporting `storage.get`: 402 = denied,
/// 400 = missing (so granted).
async fn publish_storage_probe(env: &Env) -> runtime_core::publish::Published {
    let storage = guests::result_caller(
        "alga:extension/storage",
        "get",
        "i32 i32 i32 i32",
        "(i32.const 1024) (i32.const 2) (i32.const 1040) (i32.const 1)",
        8,
        false,
        r#"(data (i32.const 1024) "ns") (data (i32.const 1040) "k")"#,
    );
    let bundle = pack(MANIFEST, &storage);
    env.publisher(env.trust())
        .publish(&bundle, Some(&env.signed(&bundle)), &no_progress)
        .await
        .unwrap()
}

/// Runs a `/v1/execute` request shaped as Alga's server sends it: its registry
/// UUID as the extension, its install UUID, the install's grants as `providers`.
async fn execute_as_alga(
    ex: &Executor,
    source: InstallSource,
    content: &ContentHash,
    install_id: Option<&str>,
    providers: &[&str],
) -> Outcome {
    const TENANT: &str = "5f0e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
    const REGISTRY_UUID: &str = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a";
    let req = json!({
        "context": {"tenant_id": TENANT, "extension_id": REGISTRY_UUID,
                    "content_hash": content.to_string(), "install_id": install_id,
                    "request_id": "alga-req-1", "config": {"greeting": "hi"}},
        "http": {"method": "GET", "path": "/"},
        "providers": providers,
    });
    let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).unwrap()).unwrap();
    let routing = RoutingHeaders {
        tenant: Some(TENANT.into()),
        extension: Some(REGISTRY_UUID.into()),
        request_id: None,
    };
    ex.execute_from(&routing, &req, source).await
}

#[tokio::test]
async fn caller_mode_runs_a_published_trusted_bundle_as_the_request_names_it() {
    let env = Env::new();
    let p = publish_storage_probe(&env).await;
    let ex = env.executor(env.trust());
    let install = Some("3c2b1a09-8f7e-4d6c-a5b4-93827160f5e4");
    let kv = ["cap:storage.kv"];
    // Nothing is installed in our registry: the registry mode refuses...
    let out = execute_as_alga(&ex, InstallSource::Registry, &p.content_hash, install, &kv).await;
    assert_eq!(out.metrics.outcome, "not_installed", "{:?}", out.envelope);
    // ...the caller mode runs it with the caller's install id and grants.
    let out = execute_as_alga(&ex, InstallSource::Caller, &p.content_hash, install, &kv).await;
    assert_eq!(
        out.envelope.status, 400,
        "storage granted: {:?}",
        out.envelope
    );
    assert_eq!(out.metrics.install_id.as_deref(), install);
    // `providers` are the grants: without cap:storage.kv, storage is denied...
    let out = execute_as_alga(&ex, InstallSource::Caller, &p.content_hash, install, &[]).await;
    assert_eq!(
        out.envelope.status, 402,
        "storage denied: {:?}",
        out.envelope
    );
    // ...and so it is without an install id to scope the storage by.
    let out = execute_as_alga(&ex, InstallSource::Caller, &p.content_hash, None, &kv).await;
    assert_eq!(
        out.envelope.status, 402,
        "no install id: {:?}",
        out.envelope
    );
    // A hash we never published: artifact_missing (503), nothing run.
    let unknown = ContentHash::of(b"never published");
    let out = execute_as_alga(&ex, InstallSource::Caller, &unknown, install, &kv).await;
    assert_eq!(
        (out.metrics.outcome, out.envelope.status),
        ("artifact_missing", 503)
    );
    // A bundle whose key is no longer trusted: refused.
    let untrusting = env.executor(TrustBundle::default());
    let out = execute_as_alga(
        &untrusting,
        InstallSource::Caller,
        &p.content_hash,
        install,
        &kv,
    )
    .await;
    assert_eq!(
        (out.metrics.outcome, out.envelope.status),
        ("bundle_untrusted", 403)
    );
}

#[tokio::test]
async fn grants_come_from_the_install_and_providers_only_narrow() {
    let env = Env::new();
    let p = publish_storage_probe(&env).await;
    let reg = &env.local.registry;
    let mut req = InstallRequest {
        tenant: "t".into(),
        extension_id: "com.example.test".into(),
        version: Some("1.0.0".into()),
        grants: vec![],
        config: Default::default(),
        ..Default::default()
    };
    reg.install(&req).await.unwrap();
    let ex = env.executor(env.trust());
    assert_eq!(
        execute(&ex, "t", &p.content_hash, None)
            .await
            .envelope
            .status,
        402
    );
    // The request cannot widen what the install has.
    assert_eq!(
        execute(&ex, "t", &p.content_hash, Some(&["cap:storage.kv"]))
            .await
            .envelope
            .status,
        402
    );
    req.grants = vec!["cap:storage.kv".into()];
    reg.install(&req).await.unwrap();
    assert_eq!(
        execute(&ex, "t", &p.content_hash, None)
            .await
            .envelope
            .status,
        400
    );
    // ...but it can narrow it.
    assert_eq!(
        execute(&ex, "t", &p.content_hash, Some(&[]))
            .await
            .envelope
            .status,
        402
    );
    // An unknown capability in an operator grant is refused.
    req.grants = vec!["cap:root".into()];
    assert!(reg.install(&req).await.is_err());
}

#[tokio::test]
async fn each_hostile_bundle_is_refused_and_leaves_nothing_behind() {
    let env = Env::new();
    let hello = guests::hello();
    let good = pack(MANIFEST, &hello);
    let stranger = SigningKey::generate("stranger").unwrap();
    let revoked_key = SigningKey::generate("revoked").unwrap();
    let trust = env.trust().with_key(revoked_key.public()).revoke("revoked");
    let publisher = env.publisher(trust.clone()).with_limits(ArchiveLimits {
        max_entries: 2000,
        ..ArchiveLimits::default()
    });
    // Unknown keys are warnings by default (Alga's schema drops them); strict
    // mode refuses them.
    let strict = env
        .publisher(trust)
        .with_strictness(runtime_core::manifest::Strictness::Strict);

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let good_sig = env.signed(&good);

    let manifest_without = |key: &str| {
        let mut v: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        v.as_object_mut().unwrap().remove(key);
        pack(&v.to_string(), &hello)
    };
    let mut unknown_key: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
    unknown_key["permissions"] = json!(["all"]);
    let mut unknown_cap: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
    unknown_cap["capabilities"] = json!(["cap:storage.kv", "cap:root"]);

    let many: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("ui/f{i}.js"), b"x".to_vec()))
        .collect();
    let many_bundle = {
        let mut e: Vec<(&str, tar::EntryType, &[u8], Option<&str>)> = vec![
            (
                "manifest.json",
                tar::EntryType::Regular,
                MANIFEST.as_bytes(),
                None,
            ),
            ("dist/main.wasm", tar::EntryType::Regular, &hello, None),
        ];
        e.extend(
            many.iter()
                .map(|(n, d)| (n.as_str(), tar::EntryType::Regular, &d[..], None)),
        );
        raw_bundle(&e)
    };
    let bomb = {
        // 1 GiB of zeros in one entry, streamed: never held in memory.
        let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_path("ui/zeros.js").unwrap();
        h.set_size(1 << 30);
        h.set_mode(0o644);
        h.set_cksum();
        enc.write_all(h.as_bytes()).unwrap();
        std::io::copy(
            &mut std::io::Read::take(std::io::repeat(0), 1 << 30),
            &mut enc,
        )
        .unwrap();
        enc.finish().unwrap()
    };

    // (case, bundle, signature, expected code)
    type Case<'a> = (&'a str, Vec<u8>, Option<Vec<u8>>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "flipped byte",
            flipped,
            Some(good_sig.clone()),
            "hash_mismatch",
        ),
        (
            "untrusted key",
            good.clone(),
            Some(
                Signature::sign(&ContentHash::of(&good), &stranger)
                    .to_json()
                    .into_bytes(),
            ),
            "untrusted_key",
        ),
        ("no signature", good.clone(), None, "signature_missing"),
        (
            "revoked key",
            good.clone(),
            Some(
                Signature::sign(&ContentHash::of(&good), &revoked_key)
                    .to_json()
                    .into_bytes(),
            ),
            "revoked_key",
        ),
        (
            "../x",
            with_extra(("../x", tar::EntryType::Regular, b"x".to_vec(), None)),
            None,
            "parent_dir",
        ),
        (
            "absolute",
            with_extra(("/etc/passwd", tar::EntryType::Regular, b"x".to_vec(), None)),
            None,
            "absolute_path",
        ),
        (
            "symlink",
            with_extra((
                "ui/link",
                tar::EntryType::Symlink,
                vec![],
                Some("/etc/passwd"),
            )),
            None,
            "link",
        ),
        (
            "hardlink",
            with_extra((
                "ui/hard",
                tar::EntryType::Link,
                vec![],
                Some("manifest.json"),
            )),
            None,
            "link",
        ),
        ("10,000 files", many_bundle, None, "too_many_entries"),
        ("zstd bomb", bomb, None, "too_large"),
        (
            "no name",
            manifest_without("name"),
            None,
            "invalid_manifest",
        ),
        (
            "no version",
            manifest_without("version"),
            None,
            "invalid_manifest",
        ),
        (
            "no runtime",
            manifest_without("runtime"),
            None,
            "invalid_manifest",
        ),
        (
            "unknown key (strict)",
            pack(&unknown_key.to_string(), &hello),
            None,
            "invalid_manifest",
        ),
        (
            "unknown capability",
            pack(&unknown_cap.to_string(), &hello),
            None,
            "invalid_manifest",
        ),
    ];
    for (name, bundle, sig, code) in cases {
        // Unless the case is about the signature, sign properly with a trusted key.
        let sig = match (name, sig) {
            ("no signature", _) => None,
            (_, Some(s)) => Some(s),
            (_, None) => Some(env.signed(&bundle)),
        };
        let started = std::time::Instant::now();
        let publisher = if name.ends_with("(strict)") {
            &strict
        } else {
            &publisher
        };
        let err = publisher
            .publish(&bundle, sig.as_deref(), &no_progress)
            .await
            .expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        assert!(!err.to_string().is_empty());
        assert!(
            env.blob_files().is_empty(),
            "{name} left files: {:?}",
            env.blob_files()
        );
        assert!(
            env.local
                .registry
                .list_extensions()
                .await
                .unwrap()
                .is_empty(),
            "{name} left a row"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{name} was slow"
        );
    }
}

#[tokio::test]
async fn a_deleted_artifact_is_artifact_missing_until_recompiled() {
    let env = Env::new();
    let bundle = pack(MANIFEST, &guests::hello());
    let publisher = env.publisher(env.trust());
    let p = publisher
        .publish(&bundle, Some(&env.signed(&bundle)), &no_progress)
        .await
        .unwrap();
    install_for_t(&env).await;
    assert_eq!(
        execute(&env.executor(env.trust()), "t", &p.content_hash, None)
            .await
            .envelope
            .status,
        200
    );

    env.local
        .blobs
        .delete(&p.artifacts[0].object_key())
        .await
        .unwrap();
    let out = execute(&env.executor(env.trust()), "t", &p.content_hash, None).await;
    assert_eq!(
        (out.metrics.outcome, out.envelope.status),
        ("artifact_missing", 503)
    );

    publisher
        .recompile("com.example.test", "1.0.0")
        .await
        .unwrap();
    assert_eq!(
        execute(&env.executor(env.trust()), "t", &p.content_hash, None)
            .await
            .envelope
            .status,
        200
    );

    // Revoking the signer's key stops its bundles at once, without a republish.
    let revoked = env.trust().revoke("test-key");
    let out = execute(&env.executor(revoked), "t", &p.content_hash, None).await;
    assert_eq!(
        (out.metrics.outcome, out.envelope.status),
        ("bundle_untrusted", 403)
    );
}

#[tokio::test]
async fn an_upload_over_the_size_limit_is_refused_unread_and_leaves_only_its_record() {
    use runtime_core::publish::uploads::{UploadOutcome, publish_upload};
    let env = Env::new();
    let limits = ArchiveLimits {
        max_compressed_bytes: 64 << 10,
        ..ArchiveLimits::default()
    };
    let publisher = env.publisher(env.trust()).with_limits(limits);
    let uploads = env.local.uploads.clone();
    // A signed bundle one byte over the limit (its bytes are never unpacked).
    let big = vec![7u8; (64 << 10) + 1];
    uploads.put("in/big.tar.zst", &big).await.unwrap();
    uploads
        .put("in/big.tar.zst.sig.json", &env.signed(&big))
        .await
        .unwrap();
    let outcome = publish_upload(&publisher, uploads.as_ref(), "in/big.tar.zst.sig.json")
        .await
        .unwrap();
    match &outcome {
        UploadOutcome::Refused { code, message } => {
            assert_eq!(*code, "too_large");
            assert!(message.contains("65536"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let record = uploads
        .get("in/big.tar.zst.result.json")
        .await
        .unwrap()
        .expect("a result record beside the upload");
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["result"]["status"], "refused", "{record}");
    assert_eq!(record["result"]["code"], "too_large", "{record}");
    assert!(env.blob_files().is_empty(), "{:?}", env.blob_files());
    assert!(
        env.local
            .registry
            .list_extensions()
            .await
            .unwrap()
            .is_empty()
    );
}

/// A manifest with shapes of Alga's own (its component `entry`, `sbom`, a
/// `schedulable` flag, a capability without `cap:`, the auto-increment version);
/// src/manifest/tests.rs lists where in Alga each shape comes from.
const ALGA_MANIFEST: &str = r#"{
  "name": "com.example.test",
  "publisher": "Example Corp",
  "version": "0.3.*",
  "runtime": "wasm-js@1",
  "entry": "dist/main.wasm",
  "capabilities": ["cap:storage.kv", "http.fetch"],
  "ui": {"type": "iframe", "entry": "ui/index.html", "hooks": {"appMenu": {"label": "Test"}}},
  "api": {"endpoints": [{"method": "GET", "path": "/", "handler": "dist/main", "schedulable": true}]},
  "sbom": "sbom.spdx.json"
}"#;

#[tokio::test]
async fn alga_manifests_publish_with_their_warnings_in_the_result_record_and_strict_refuses_them() {
    use runtime_core::manifest::Strictness;
    use runtime_core::publish::uploads::publish_upload;
    let env = Env::new();
    let uploads = env.local.uploads.clone();
    let upload = |name: &'static str, bundle: Vec<u8>, publisher: Publisher| {
        let (uploads, sig) = (uploads.clone(), env.signed(&bundle));
        async move {
            uploads
                .put(&format!("in/{name}.tar.zst"), &bundle)
                .await
                .unwrap();
            let sig_key = format!("in/{name}.tar.zst.sig.json");
            uploads.put(&sig_key, &sig).await.unwrap();
            publish_upload(&publisher, uploads.as_ref(), &sig_key)
                .await
                .unwrap();
            let record = uploads
                .get(&format!("in/{name}.tar.zst.result.json"))
                .await
                .unwrap()
                .expect("a result record beside the upload");
            serde_json::from_slice::<serde_json::Value>(&record).unwrap()["result"].clone()
        }
    };
    let fields = |result: &serde_json::Value| -> Vec<String> {
        result["warnings"]
            .as_array()
            .unwrap_or_else(|| panic!("no warnings in {result}"))
            .iter()
            .map(|w| {
                assert!(w["message"].as_str().is_some_and(|m| !m.is_empty()), "{w}");
                w["field"].as_str().unwrap().to_string()
            })
            .collect()
    };

    let first = pack(ALGA_MANIFEST, &guests::hello());
    let result = upload("a", first.clone(), env.publisher(env.trust())).await;
    assert_eq!(result["status"], "published", "{result}");
    assert_eq!(result["version"], "0.3.0", "{result}");
    assert_eq!(result["outcome"], "created", "{result}");
    assert_eq!(
        fields(&result),
        [
            "entry",
            "sbom",
            "capabilities[1]",
            "api.endpoints[0].schedulable",
            "version"
        ],
        "{result}"
    );
    assert!(
        result["warnings"][4]["message"]
            .as_str()
            .unwrap()
            .contains("published as 0.3.0"),
        "{result}"
    );
    // The upload event retried: the same version, unchanged.
    let again = upload("a", first.clone(), env.publisher(env.trust())).await;
    assert_eq!(
        (&again["version"], &again["outcome"]),
        (&json!("0.3.0"), &json!("unchanged")),
        "{again}"
    );
    // Other bytes with the same wildcard: the next patch.
    let second = pack(ALGA_MANIFEST, &guests::echo());
    let result = upload("b", second, env.publisher(env.trust())).await;
    assert_eq!(
        (&result["version"], &result["outcome"]),
        (&json!("0.3.1"), &json!("created")),
        "{result}"
    );

    // The registry keeps what was validated, so installing and running it work
    // (the prefix-less capability is not requested, as on Alga).
    let stored = env
        .local
        .registry
        .get_version("com.example.test", "0.3.0")
        .await
        .unwrap()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&stored.manifest_json).unwrap();
    assert_eq!(manifest["version"], "0.3.0");
    assert_eq!(manifest["capabilities"], json!(["cap:storage.kv"]));
    assert!(manifest.get("entry").is_none() && manifest.get("sbom").is_none());
    let install = env
        .local
        .registry
        .install(&InstallRequest {
            tenant: "t".into(),
            extension_id: "com.example.test".into(),
            version: Some("0.3.0".into()),
            grants: vec!["cap:storage.kv".into(), "cap:http.fetch".into()],
            config: Default::default(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!install.granted.has(runtime_core::Capability::HttpFetch));
    let out = execute(
        &env.executor(env.trust()),
        "t",
        &ContentHash::of(&first),
        None,
    )
    .await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);

    // Strict: refused with the field path, nothing registered.
    let strict = || {
        env.publisher(env.trust())
            .with_strictness(Strictness::Strict)
    };
    let exact = ALGA_MANIFEST.replace("0.3.*", "0.4.0");
    let result = upload("c", pack(&exact, &guests::hello()), strict()).await;
    assert_eq!(result["status"], "refused", "{result}");
    assert_eq!(result["code"], "invalid_manifest", "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.starts_with("manifest.json: entry: unknown key \"entry\" (also unknown: \"sbom\")"),
        "{message}"
    );
    let result = upload("d", pack(ALGA_MANIFEST, &guests::echo()), strict()).await;
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .starts_with("manifest.json: version: expected a semantic version"),
        "{result}"
    );
    let versions = env
        .local
        .registry
        .list_versions("com.example.test")
        .await
        .unwrap();
    let versions: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["0.3.1", "0.3.0"]);
}

/// The local blob store as a second publisher sees it: its signature write waits
/// until `go` turns true, and every artifact write fails (a storage fault late in
/// its run).
struct LosingStore {
    inner: Arc<dyn runtime_core::store::BlobStore>,
    go: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl runtime_core::store::BlobStore for LosingStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, runtime_core::store::StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), runtime_core::store::StoreError> {
        if key.ends_with("bundle.sig.json") {
            let mut go = self.go.clone();
            go.wait_for(|go| *go).await.unwrap();
        }
        if key.starts_with("artifacts/") {
            return Err(runtime_core::store::StoreError::Unavailable(
                "injected fault".into(),
            ));
        }
        self.inner.put(key, bytes).await
    }
    async fn delete(&self, key: &str) -> Result<(), runtime_core::store::StoreError> {
        self.inner.delete(key).await
    }
}

/// Two publishes of the same bundle race; the one that fails
/// late (a storage fault) must not roll back blobs the other one registered:
/// neither the bundle it wrote first itself (another version references it now)
/// nor the signature the winner created while it waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_10_a_failed_concurrent_publish_keeps_the_winners_blobs() {
    let env = Env::new();
    let bundle = pack(MANIFEST, &guests::hello());
    let sig = env.signed(&bundle);
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let loser = Publisher::new(
        Arc::new(LosingStore {
            inner: env.local.blobs.clone(),
            go: go_rx,
        }),
        env.local.registry.clone(),
        env.trust(),
        env.config.engine.clone(),
    )
    .with_targets(vec![Target::host()]);
    let winner = env.publisher(env.trust());

    // The loser stores the bundle first, then waits; the winner publishes and
    // registers meanwhile; then the loser's artifact write fails.
    let losing = {
        let (bundle, sig) = (bundle.clone(), sig.clone());
        async move { loser.publish(&bundle, Some(&sig), &no_progress).await }
    };
    let winning = async {
        // Wait until the loser's bundle is in the store, then publish.
        let key = bundle_key(&ContentHash::of(&bundle));
        while !env.local.blobs.exists(&key).await.unwrap() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let won = winner.publish(&bundle, Some(&sig), &no_progress).await;
        go_tx.send(true).unwrap();
        won
    };
    let (lost, won) = tokio::join!(losing, winning);
    let won = won.unwrap();
    assert_eq!(won.outcome, Registered::Created);
    assert_eq!(lost.unwrap_err().code(), "backend_unavailable");

    // Everything the registered version needs is still there, and it runs.
    let blobs = &env.local.blobs;
    let content = won.content_hash;
    for key in [
        bundle_key(&content),
        runtime_core::publish::signature_key(&content),
        ui_key(&content, "index.html"),
        ui_key(&content, "assets/app.js"),
        won.artifacts[0].object_key(),
    ] {
        assert!(blobs.exists(&key).await.unwrap(), "{key} was rolled back");
    }
    install_for_t(&env).await;
    let out = execute(&env.executor(env.trust()), "t", &content, None).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
}

/// An unsigned bundle in Alga's store layout (`tenants/<t>/extensions/<id>/sha256/<hex>/`
/// with its `bundle.sha256` sidecar): published only under `host-pinned`, where the
/// key's, the sidecar's and the bytes' hashes must agree; it runs only where
/// the runner trusts host pins too, and is `bundle_untrusted` elsewhere.
#[tokio::test]
async fn an_unsigned_bundle_of_algas_store_publishes_only_when_host_pinned() {
    use runtime_core::bundle::BundleTrust;
    use runtime_core::publish::uploads::{UploadOutcome, publish_upload};
    let env = Env::new();
    let bundle = pack(MANIFEST, &guests::hello());
    let content = ContentHash::of(&bundle);
    let folder = format!("tenants/t1/extensions/ext-uuid/sha256/{}/", content.hex());
    let uploads = env.local.uploads.clone();
    uploads
        .put(&format!("{folder}bundle.tar.zst"), &bundle)
        .await
        .unwrap();

    // The bundle alone: waiting for the sidecar (there is no signature either).
    let signature_only = env.publisher(env.trust());
    let pinned = env
        .publisher(env.trust())
        .with_bundle_trust(BundleTrust::HostPinned);
    let bundle_key = format!("{folder}bundle.tar.zst");
    let outcome = publish_upload(&pinned, uploads.as_ref(), &bundle_key)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        UploadOutcome::Waiting {
            missing: format!("{folder}bundle.sha256")
        }
    );

    // A sidecar naming another hash: refused whatever the policy.
    let sidecar_key = format!("{folder}bundle.sha256");
    let other = ContentHash::of(b"other");
    uploads
        .put(&sidecar_key, format!("{}\n", other.hex()).as_bytes())
        .await
        .unwrap();
    match publish_upload(&pinned, uploads.as_ref(), &sidecar_key)
        .await
        .unwrap()
    {
        UploadOutcome::Refused { code, .. } => assert_eq!(code, "hash_mismatch"),
        other => panic!("{other:?}"),
    }

    // The right sidecar: refused under `signature`, nothing stored...
    uploads.delete(&sidecar_key).await.unwrap();
    uploads
        .put(&sidecar_key, format!("{}\n", content.hex()).as_bytes())
        .await
        .unwrap();
    match publish_upload(&signature_only, uploads.as_ref(), &sidecar_key)
        .await
        .unwrap()
    {
        UploadOutcome::Refused { code, .. } => assert_eq!(code, "signature_missing"),
        other => panic!("{other:?}"),
    }
    assert!(env.blob_files().is_empty(), "{:?}", env.blob_files());
    let record: serde_json::Value = serde_json::from_slice(
        &uploads
            .get(&format!("{folder}bundle.tar.zst.result.json"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["result"]["code"], "signature_missing", "{record}");

    // ...and published under `host-pinned`, recorded as pinned, not signed.
    match publish_upload(&pinned, uploads.as_ref(), &sidecar_key)
        .await
        .unwrap()
    {
        UploadOutcome::Published {
            content_hash,
            outcome,
            ..
        } => {
            assert_eq!(content_hash, content.to_string());
            assert_eq!(outcome, "created");
        }
        other => panic!("{other:?}"),
    }
    let version = env
        .local
        .registry
        .version_by_hash(&content)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(version.signer_key_id, "host-pinned");

    // It runs where host pins are trusted, and nowhere else.
    install_for_t(&env).await;
    let trusting = Executor::new(
        &env.config,
        env.local.blobs.clone(),
        Arc::new(
            RegistryResolver::new(env.local.registry.clone(), env.trust())
                .with_bundle_trust(BundleTrust::HostPinned),
        ),
        env.local.host_services(),
    )
    .unwrap();
    let out = execute(&trusting, "t", &content, None).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    let strict = env.executor(env.trust());
    let out = execute(&strict, "t", &content, None).await;
    assert_eq!(
        out.metrics.outcome, "bundle_untrusted",
        "{:?}",
        out.envelope
    );
}
