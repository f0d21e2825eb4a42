//! Faults: moto stopped mid-run → every operation fails with a typed
//! `StoreError::Unavailable` within the SDK's bounded timeouts, and the process stays
//! up; moto restarted on the same port → the very same clients work again.
//!
//! moto keeps its state in memory, so a restarted moto is empty: "no acknowledged
//! write is lost" is checked as far as moto allows — every write acknowledged before
//! the stop is read back right before it — and after the restart the test
//! re-creates the bucket and table (as a real outage would leave them) and proves the
//! unchanged `Backends` recovers without being rebuilt.

mod support;

use std::time::{Duration, Instant};

use runtime_core::store::{
    Claim, KvError, KvScope, QuotaCharge, QuotaKey, QuotaWindow, RegistryError, StoreError,
};
use runtime_core::{ExecuteRequest, RoutingHeaders};
use support::moto::{AwsEnv, Moto};

/// Generous upper bound on one failing call (the settings allow 2 attempts of at
/// most 2 s, inside a 10 s operation timeout).
const FAIL_WITHIN: Duration = Duration::from_secs(30);

fn unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_down_is_unavailable_and_recovery_needs_no_rebuild() {
    let mut moto = Moto::start();
    let env = AwsEnv::on(&moto).await;
    let b = &env.backends;
    let scope = KvScope {
        tenant: "tenant-a".into(),
        install_id: "install-1".into(),
    };
    let quota = QuotaKey::at(
        "tenant-a",
        "ext",
        QuotaWindow::Minute,
        std::time::SystemTime::now(),
    );

    // Acknowledged writes...
    let mut acked = Vec::new();
    for i in 0..20 {
        let k = format!("k{i}");
        b.kv.put(&scope, "ns", &k, k.as_bytes(), None)
            .await
            .unwrap();
        acked.push(k);
    }
    b.blobs
        .put("bundles/aa/bundle.tar.zst", b"bundle")
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            b.quotas.charge(&quota, 10).await.unwrap(),
            QuotaCharge::Allowed { .. }
        ));
    }
    // ...are all readable right before the stop.
    for k in &acked {
        assert_eq!(
            b.kv.get(&scope, "ns", k).await.unwrap().unwrap().value,
            k.as_bytes()
        );
    }
    assert_eq!(
        b.blobs
            .get("bundles/aa/bundle.tar.zst")
            .await
            .unwrap()
            .unwrap(),
        b"bundle"
    );
    assert_eq!(b.quotas.used(&quota).await.unwrap(), 3);

    moto.stop();

    let t = Instant::now();
    match b.kv.get(&scope, "ns", "k0").await {
        Err(KvError::Store(e)) => assert!(unavailable(&e), "{e:?}"),
        other => panic!("kv get with moto down: {other:?}"),
    }
    match b.kv.put(&scope, "ns", "k0", b"x", None).await {
        Err(KvError::Store(e)) => assert!(unavailable(&e), "{e:?}"),
        other => panic!("kv put with moto down: {other:?}"),
    }
    let e = b.blobs.get("bundles/aa/bundle.tar.zst").await.unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b
        .blobs
        .put("bundles/bb/bundle.tar.zst", b"x")
        .await
        .unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b.quotas.charge(&quota, 10).await.unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b
        .idempotency
        .claim("tenant-a", "key", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b.secrets.load("tenant-a", "install-9").await.unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    match b.registry.get_install("tenant-a", "ext").await {
        Err(RegistryError::Store(e)) => assert!(unavailable(&e), "{e:?}"),
        other => panic!("registry with moto down: {other:?}"),
    }
    // The execute path answers 503 backend_unavailable (and keeps serving).
    let executor = b.executor(&support::test_config()).unwrap();
    let request = ExecuteRequest::from_json(
        serde_json::json!({
            "context": {"tenant_id": "tenant-a", "extension_id": "ext",
                        "content_hash": format!("sha256:{}", "ab".repeat(32))},
            "http": {"method": "GET", "path": "/"},
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let routing = RoutingHeaders {
        tenant: Some("tenant-a".into()),
        extension: Some("ext".into()),
        request_id: None,
    };
    let down = executor.execute(&routing, &request).await.envelope;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(
        down.error
            .as_deref()
            .is_some_and(|e| e.starts_with("backend_unavailable")),
        "{down:?}"
    );
    assert!(
        t.elapsed() < FAIL_WITHIN * 8,
        "eight failing calls took {:?}",
        t.elapsed()
    );

    // A fresh moto on the same port (empty: moto keeps state in memory).
    moto.restart();
    env.clients
        .s3
        .create_bucket()
        .bucket(&env.settings.bucket)
        .send()
        .await
        .unwrap();
    runtime_core::store::aws::create_table(&env.clients.dynamodb, &env.settings.table)
        .await
        .unwrap();
    // The same executor answers from the registry again: no install, not a 503.
    let back = executor.execute(&routing, &request).await.envelope;
    assert_eq!(back.status, 404, "{back:?}");
    // The same Backends, not rebuilt, works again.
    b.kv.put(&scope, "ns", "after", b"back", None)
        .await
        .unwrap();
    assert_eq!(
        b.kv.get(&scope, "ns", "after")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"back"
    );
    b.blobs
        .put("bundles/aa/bundle.tar.zst", b"bundle")
        .await
        .unwrap();
    assert_eq!(
        b.blobs
            .get("bundles/aa/bundle.tar.zst")
            .await
            .unwrap()
            .unwrap(),
        b"bundle"
    );
    assert_eq!(
        b.quotas.charge(&quota, 10).await.unwrap(),
        QuotaCharge::Allowed { used: 1 }
    );
    assert_eq!(
        b.idempotency
            .claim("tenant-a", "key", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        b.registry.get_install("tenant-a", "ext").await.unwrap(),
        None
    );
}
