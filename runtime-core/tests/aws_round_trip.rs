//! Publish → install → execute entirely on S3 + DynamoDB + Secrets Manager (moto),
//! through `Backends::aws`, `Publisher` and `Executor`, with a guest reading a secret
//! and another using storage.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use runtime_core::Executor;
use runtime_core::artifact::ContentHash;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::engine::Target;
use runtime_core::execute::{ExecuteRequest, RegistryResolver, RoutingHeaders};
use runtime_core::publish::{Publisher, bundle_key};
use runtime_core::store::aws::SecretsManagerStore;
use runtime_core::store::{InstallRequest, KvScope, Registered, SecretBundle};
use serde_json::json;
use support::guests;
use support::moto::AwsEnv;

fn pack(name: &str, caps: &[&str], wasm: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let manifest = json!({
        "name": name,
        "version": "1.0.0",
        "runtime": "wasm-js@1",
        "capabilities": caps,
        "ui": {"type": "iframe", "entry": "ui/index.html"},
        "api": {"endpoints": [{"method": "GET", "path": "/", "handler": "dist/main.wasm"}]}
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/main.wasm"), wasm).unwrap();
    std::fs::create_dir_all(dir.path().join("ui")).unwrap();
    std::fs::write(dir.path().join("ui/index.html"), "<h1>hi</h1>").unwrap();
    archive::pack_dir(dir.path(), &ArchiveLimits::default()).unwrap()
}

async fn run(
    ex: &Executor,
    tenant: &str,
    ext: &str,
    content: &ContentHash,
) -> runtime_core::Outcome {
    let req = json!({
        "context": {"tenant_id": tenant, "extension_id": ext, "content_hash": content.to_string()},
        "http": {"method": "GET", "path": "/"}
    });
    let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).unwrap()).unwrap();
    let routing = RoutingHeaders {
        tenant: Some(tenant.into()),
        extension: Some(ext.into()),
        request_id: None,
    };
    ex.execute(&routing, &req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_install_execute_on_s3_dynamodb_and_secrets_manager() {
    let env = AwsEnv::new().await;
    let b = &env.backends;
    let key = SigningKey::generate("aws-test").unwrap();
    let trust = TrustBundle::default().with_key(key.public());
    let config = support::test_config();
    let publisher = Publisher::new(
        b.blobs.clone(),
        b.registry.clone(),
        trust.clone(),
        config.engine.clone(),
    )
    .with_targets(vec![Target::host()]);

    // secrets.get("k") → 200 + the value.
    let secret_reader = guests::result_caller(
        "alga:extension/secrets",
        "get",
        "i32 i32",
        "(i32.const 1024) (i32.const 1)",
        4,
        true,
        r#"(data (i32.const 1024) "k")"#,
    );
    let bundle = pack("com.example.secret", &["cap:secrets.get"], &secret_reader);
    let sig = Signature::sign(&ContentHash::of(&bundle), &key).to_json();
    let published = publisher
        .publish(&bundle, Some(sig.as_bytes()), &|_| {})
        .await
        .unwrap();
    assert_eq!(published.outcome, Registered::Created);
    // The bundle and its artifact are in S3, the version in DynamoDB.
    assert_eq!(
        b.blobs
            .get(&bundle_key(&published.content_hash))
            .await
            .unwrap()
            .unwrap(),
        bundle
    );
    assert!(
        b.blobs
            .exists(&published.artifacts[0].key.blob_key())
            .await
            .unwrap()
    );
    let v = b
        .registry
        .version_by_hash(&published.content_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.artifacts, published.artifacts);
    assert_eq!(
        publisher
            .publish(&bundle, Some(sig.as_bytes()), &|_| {})
            .await
            .unwrap()
            .outcome,
        Registered::Unchanged
    );

    let install = b
        .registry
        .install(&InstallRequest {
            tenant: "acme".into(),
            extension_id: "com.example.secret".into(),
            version: None,
            grants: vec!["cap:secrets.get".into()],
            config: BTreeMap::new(),
        })
        .await
        .unwrap();
    // The operator stores the install's secret in Secrets Manager.
    SecretsManagerStore::new(
        env.clients.secrets.clone(),
        &env.settings.secrets_prefix,
        env.settings.secrets_cache_ttl,
    )
    .store(
        "acme",
        &install.install_id,
        &SecretBundle {
            values: BTreeMap::from([("k".to_string(), "from-secrets-manager".to_string())]),
            expires_at: None,
        },
    )
    .await
    .unwrap();

    let executor = Executor::new(
        &config,
        b.blobs.clone(),
        Arc::new(RegistryResolver::new(b.registry.clone(), trust)),
        b.host_services(),
    )
    .unwrap();
    let out = run(
        &executor,
        "acme",
        "com.example.secret",
        &published.content_hash,
    )
    .await;
    assert!(out.envelope.error.is_none(), "{:?}", out.envelope);
    assert_eq!(out.envelope.status, 200);
    assert_eq!(out.envelope.body().unwrap(), b"from-secrets-manager");

    // Another tenant has no install of it.
    let out = run(
        &executor,
        "other",
        "com.example.secret",
        &published.content_hash,
    )
    .await;
    assert_eq!(out.envelope.status, 404);

    // Guest storage lands in DynamoDB under the install's scope.
    let storage_writer = guests::result_caller(
        "alga:extension/storage",
        "get",
        "i32 i32 i32 i32",
        "(i32.const 1024) (i32.const 2) (i32.const 1040) (i32.const 1)",
        8,
        false,
        r#"(data (i32.const 1024) "ns") (data (i32.const 1040) "k")"#,
    );
    let bundle = pack("com.example.kv", &["cap:storage.kv"], &storage_writer);
    let sig = Signature::sign(&ContentHash::of(&bundle), &key).to_json();
    let published = publisher
        .publish(&bundle, Some(sig.as_bytes()), &|_| {})
        .await
        .unwrap();
    let install = b
        .registry
        .install(&InstallRequest {
            tenant: "acme".into(),
            extension_id: "com.example.kv".into(),
            version: None,
            grants: vec!["cap:storage.kv".into()],
            config: BTreeMap::new(),
        })
        .await
        .unwrap();
    let scope = KvScope {
        tenant: "acme".into(),
        install_id: install.install_id.clone(),
    };
    // storage.get("ns","k"): missing → 400 (+0), present → 200.
    let out = run(&executor, "acme", "com.example.kv", &published.content_hash).await;
    assert_eq!(out.envelope.status, 400, "{:?}", out.envelope);
    b.kv.put(&scope, "ns", "k", b"v", None).await.unwrap();
    let out = run(&executor, "acme", "com.example.kv", &published.content_hash).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
}
