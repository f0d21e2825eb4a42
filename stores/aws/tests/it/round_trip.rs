//! Publish → install → execute entirely on S3 + DynamoDB + Secrets Manager (moto),
//! through `Backends::aws`, `Publisher` and `Executor`, with a guest reading a secret
//! and another using storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use runtime_core::Executor;
use runtime_core::artifact::ContentHash;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::execute::{ExecuteRequest, RoutingHeaders};
use runtime_core::publish::bundle_key;
use runtime_core::store::{KvScope, Registered, SecretBundle};
use serde_json::json;
use stores_aws::SecretsManagerStore;
use test_support::guests;
use test_support::moto::AwsEnv;
use test_support::signer::{Signer, install};

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

/// What the operator does: stores an install's secret `k` in Secrets Manager.
async fn store_secret(
    env: &AwsEnv,
    tenant: &str,
    install_id: &str,
    value: &str,
    expires_at: Option<std::time::SystemTime>,
) {
    SecretsManagerStore::new(
        env.clients.secrets.clone(),
        &env.settings.secrets_prefix,
        env.settings.secrets_cache_ttl,
    )
    .store(
        tenant,
        install_id,
        &SecretBundle {
            values: BTreeMap::from([("k".to_string(), value.to_string())]),
            expires_at,
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_install_execute_on_s3_dynamodb_and_secrets_manager() {
    let env = AwsEnv::new().await;
    let b = &env.backends;
    let signer = Signer::new("aws-test");
    let publisher = signer.publisher(b);

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
    let published = signer.publish(&publisher, &bundle).await;
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
            .exists(&published.artifacts[0].object_key())
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
        signer.publish(&publisher, &bundle).await.outcome,
        Registered::Unchanged
    );

    let acme = install(
        b,
        "acme",
        "com.example.secret",
        &["cap:secrets.get"],
        BTreeMap::new(),
    )
    .await;
    // The operator stores the install's secret in Secrets Manager.
    store_secret(&env, "acme", &acme.install_id, "from-secrets-manager", None).await;

    let executor = signer.executor(b);
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

    // An install whose secrets have expired: the guest gets `expired` (400 + 2).
    let expired = install(
        b,
        "beta",
        "com.example.secret",
        &["cap:secrets.get"],
        BTreeMap::new(),
    )
    .await;
    store_secret(
        &env,
        "beta",
        &expired.install_id,
        "stale",
        Some(std::time::SystemTime::now() - std::time::Duration::from_secs(1)),
    )
    .await;
    let out = run(
        &executor,
        "beta",
        "com.example.secret",
        &published.content_hash,
    )
    .await;
    assert_eq!(out.envelope.status, 402, "{:?}", out.envelope);
    assert!(
        out.envelope.body().unwrap_or_default().is_empty(),
        "the stale value never reaches the guest"
    );

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
    let published = signer.publish(&publisher, &bundle).await;
    let kv_install = install(
        b,
        "acme",
        "com.example.kv",
        &["cap:storage.kv"],
        BTreeMap::new(),
    )
    .await;
    let scope = KvScope {
        tenant: "acme".into(),
        install_id: kv_install.install_id.clone(),
    };
    // storage.get("ns","k"): missing → 400 (+0), present → 200.
    let out = run(&executor, "acme", "com.example.kv", &published.content_hash).await;
    assert_eq!(out.envelope.status, 400, "{:?}", out.envelope);
    b.kv.put(&scope, "ns", "k", b"v", None).await.unwrap();
    let out = run(&executor, "acme", "com.example.kv", &published.content_hash).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
}

/// `/v1/execute` through the gateway on DynamoDB: a per-install per-minute quota
/// of 5 admits exactly 5 of 20 parallel requests (the rest 429 `quota_exceeded`
/// with a retry-after), another tenant keeps its own count, and idempotency keys
/// replay, refuse reuse, report a running claim and stay within their tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn execute_quotas_and_idempotency_on_dynamodb() {
    use runtime_core::execute::{QuotaLimits, QuotaPolicy};
    use runtime_core::gateway::{ExecuteAuth, Gateway, GatewaySettings, idempotency_store_key};
    use runtime_core::store::Claim;

    let env = AwsEnv::new().await;
    let b = &env.backends;
    let signer = Signer::new("aws-quota");
    let bundle = pack("com.example.q", &[], &guests::hello());
    let published = signer.publish(&signer.publisher(b), &bundle).await;
    for (tenant, config) in [
        (
            "acme",
            BTreeMap::from([("quota.per_minute".to_string(), "5".to_string())]),
        ),
        ("other", BTreeMap::new()),
    ] {
        install(b, tenant, "com.example.q", &[], config).await;
    }
    let settings = GatewaySettings {
        execute_auth: ExecuteAuth::Token(Some("svc".into())),
        quotas: QuotaLimits {
            per_minute: 600,
            per_day: 0,
        },
        ..GatewaySettings::default()
    };
    let executor = signer
        .executor(b)
        .with_quotas(QuotaPolicy::new(b.quotas.clone(), settings.quotas));
    let gateway = Arc::new(Gateway::new(Arc::new(executor), b.clone(), settings));
    let call = |tenant: &'static str, body: serde_json::Value, idem: Option<&'static str>| {
        let gateway = gateway.clone();
        async move {
            let mut headers = http::HeaderMap::new();
            headers.insert("x-runner-service-token", "svc".parse().unwrap());
            headers.insert("x-alga-tenant", tenant.parse().unwrap());
            headers.insert("x-alga-extension", "com.example.q".parse().unwrap());
            if let Some(k) = idem {
                headers.insert("x-idempotency-key", k.parse().unwrap());
            }
            gateway
                .execute_api(&headers, &serde_json::to_vec(&body).unwrap())
                .await
        }
    };
    let body = |tenant: &str, path: &str| {
        json!({
            "context": {"tenant_id": tenant, "extension_id": "com.example.q",
                        "content_hash": published.content_hash.to_string()},
            "http": {"method": "GET", "path": path}
        })
    };

    // All 20 must land in one minute window: never start in a minute's last 15 s.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute >= 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - into_minute)).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        tasks.spawn(call("acme", body("acme", "/"), None));
    }
    let replies = tasks.join_all().await;
    let mut admitted = 0;
    for r in &replies {
        assert_eq!(r.status, 200, "the envelope always travels as HTTP 200");
        let envelope: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        match envelope["status"].as_u64() {
            Some(200) => admitted += 1,
            Some(429) => {
                assert!(
                    envelope["error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("quota_exceeded")),
                    "{envelope}"
                );
                let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&secs), "{secs}");
            }
            _ => panic!("unexpected {envelope}"),
        }
    }
    assert_eq!(admitted, 5, "exactly the per-install limit");

    // Another tenant counts on its own (the default of 600 a minute).
    let r = call("other", body("other", "/"), Some("key-1")).await;
    let first: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(first["status"], 200, "{first}");
    assert!(r.header("x-idempotent-replay").is_none());
    // The same key and body: the stored answer, replayed.
    let r = call("other", body("other", "/"), Some("key-1")).await;
    assert_eq!(r.header("x-idempotent-replay"), Some("true"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
        first
    );
    // The same key with another body: refused.
    let r = call("other", body("other", "/other"), Some("key-1")).await;
    let reused: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(reused["status"], 422, "{reused}");
    assert!(
        reused["error"]
            .as_str()
            .unwrap()
            .starts_with("idempotency_key_reused")
    );
    // A key someone holds right now: 409, nothing run.
    assert_eq!(
        b.idempotency
            .claim(
                "other",
                &idempotency_store_key("com.example.q", "key-2"),
                std::time::Duration::from_secs(60)
            )
            .await
            .unwrap(),
        Claim::Claimed
    );
    let r = call("other", body("other", "/"), Some("key-2")).await;
    let busy: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(busy["status"], 409, "{busy}");
    assert!(
        busy["error"]
            .as_str()
            .unwrap()
            .starts_with("idempotency_in_progress")
    );
    // Keys are per tenant: acme's key-1 is not other's (and acme is throttled, so
    // its key is released for a retry rather than kept).
    let r = call("acme", body("acme", "/"), Some("key-1")).await;
    assert!(r.header("x-idempotent-replay").is_none());
    let throttled: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(throttled["status"], 429, "{throttled}");
    assert_eq!(
        b.idempotency
            .claim(
                "acme",
                &idempotency_store_key("com.example.q", "key-1"),
                std::time::Duration::from_secs(60)
            )
            .await
            .unwrap(),
        Claim::Claimed,
        "a throttled request frees its key"
    );
}
