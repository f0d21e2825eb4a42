//! The store conformance suites against the local backends (the same assertions
//! as `store_aws.rs`).

use std::sync::Arc;

use runtime_core::store::{KvLimits, SecretBundle};
use stores_local::{
    FileSecretStore, MemoryBlobStore, MemoryExecutionLog, MemoryIdempotencyStore, MemoryKvStore,
    MemoryQuotaStore, MemorySecretStore, SqliteRegistry, SqliteStateStore,
};
use test_support::conformance as c;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_kv_conformance() {
    c::kv_conformance(Arc::new(MemoryKvStore::default())).await;
    c::kv_paging_conformance(Arc::new(MemoryKvStore::default())).await;
    c::kv_limits_conformance(Arc::new(MemoryKvStore::with_limits(KvLimits {
        namespaces_per_install: 2,
        keys_per_namespace: 5,
        ..KvLimits::default()
    })))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_and_file_blob_conformance() {
    c::blob_conformance(Arc::new(MemoryBlobStore::default())).await;
    let dir = tempfile::tempdir().unwrap();
    c::blob_conformance(Arc::new(stores_local::DirBlobStore::new(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_secret_conformance() {
    let store = Arc::new(MemorySecretStore::default());
    let writer = store.clone();
    let set = move |t: String, i: String, b: SecretBundle| -> c::BoxFut {
        writer.set(&t, &i, b);
        Box::pin(async {})
    };
    c::secret_conformance(store, &set).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_quota_idempotency_executions_conformance() {
    c::quota_conformance(Arc::new(MemoryQuotaStore::default())).await;
    c::idempotency_conformance(Arc::new(MemoryIdempotencyStore::default())).await;
    c::executions_conformance(Arc::new(MemoryExecutionLog::default())).await;
    c::quota_windows_conformance(Arc::new(MemoryQuotaStore::default())).await;
    let log = Arc::new(MemoryExecutionLog::default());
    c::batched_executions_conformance(log.clone(), log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_registry_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let reg = SqliteRegistry::open(&dir.path().join("registry.db")).unwrap();
    let reg = Arc::new(reg);
    c::registry_conformance(reg.clone()).await;
    c::subscription_conformance(reg.clone()).await;
    c::host_id_conformance(reg).await;
}

fn state(dir: &tempfile::TempDir) -> SqliteStateStore {
    SqliteStateStore::open(&dir.path().join("state.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kv_conformance() {
    let dir = tempfile::tempdir().unwrap();
    c::kv_conformance(Arc::new(state(&dir))).await;
    c::kv_paging_conformance(Arc::new(state(&dir))).await;
    let small = SqliteStateStore::open_with_limits(
        &dir.path().join("small.db"),
        KvLimits {
            namespaces_per_install: 2,
            keys_per_namespace: 5,
            ..KvLimits::default()
        },
    )
    .unwrap();
    c::kv_limits_conformance(Arc::new(small)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_quota_idempotency_executions_conformance() {
    let dir = tempfile::tempdir().unwrap();
    c::quota_conformance(Arc::new(state(&dir))).await;
    c::idempotency_conformance(Arc::new(state(&dir))).await;
    c::executions_conformance(Arc::new(state(&dir))).await;
    c::quota_windows_conformance(Arc::new(state(&dir))).await;
    // Read back through another connection, as another process would.
    c::batched_executions_conformance(Arc::new(state(&dir)), Arc::new(state(&dir))).await;
}

/// The registry's change signal moves after every committed write, by this
/// connection or any other (another process's `alga-lambda disable`), and only
/// then — what `up`'s registry cache relies on to see a change at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_registry_change_signal_sees_every_connections_writes() {
    use runtime_core::store::Registry;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let ours = SqliteRegistry::open(&path).unwrap();
    let theirs = SqliteRegistry::open(&path).unwrap();
    let signal = || async {
        ours.generation()
            .await
            .unwrap()
            .expect("SQLite has a signal")
    };
    let quiet = signal().await;
    assert_eq!(signal().await, quiet, "no write, no change");
    let v = c::sample_version("com.example.signal", "1.0.0");
    theirs.register_version(&v).await.unwrap();
    let after_theirs = signal().await;
    assert_ne!(after_theirs, quiet, "another connection's write");
    ours.install(&runtime_core::store::InstallRequest {
        tenant: "acme".into(),
        extension_id: "com.example.signal".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let after_ours = signal().await;
    assert_ne!(after_ours, after_theirs, "this registry's own write");
    theirs
        .set_enabled("acme", "com.example.signal", false)
        .await
        .unwrap();
    assert_ne!(signal().await, after_ours, "a disable elsewhere");
    // Reads change nothing.
    let still = signal().await;
    theirs
        .get_install("acme", "com.example.signal")
        .await
        .unwrap();
    assert_eq!(signal().await, still);

    // What it costs: printed, not asserted (see docs/backends.md).
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        signal().await;
    }
    let probe = started.elapsed().as_secs_f64() * 1e6 / 10_000.0;
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        ours.get_install("acme", "com.example.signal")
            .await
            .unwrap();
    }
    let read = started.elapsed().as_secs_f64() * 1e6 / 10_000.0;
    println!("PRAGMA data_version probe: {probe:.2} µs per call; get_install: {read:.2} µs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_secret_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileSecretStore::new(dir.path().join("secrets.json")));
    let writer = store.clone();
    let set = move |t: String, i: String, b: SecretBundle| -> c::BoxFut {
        let writer = writer.clone();
        Box::pin(async move { writer.set(&t, &i, &b).await.unwrap() })
    };
    c::secret_conformance(store, &set).await;
}

/// `Backends::local` keeps storage, quotas, idempotency records, execution records
/// and secrets across a restart (a second `Backends` over the same directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_backends_persist_across_restarts() {
    use runtime_core::store::{Claim, KvScope, QuotaKey, QuotaWindow};
    let dir = tempfile::tempdir().unwrap();
    let scope = KvScope {
        tenant: "t".into(),
        install_id: "i".into(),
    };
    let quota = QuotaKey::at("t", "e", QuotaWindow::Day, std::time::SystemTime::now());
    {
        let b = stores_local::backends(dir.path()).unwrap();
        b.kv.put(&scope, "ns", "k", b"kept", None).await.unwrap();
        b.quotas.charge(&quota, 10).await.unwrap();
        b.idempotency
            .complete("t", "key", b"resp", std::time::Duration::from_secs(60))
            .await
            .unwrap();
        FileSecretStore::new(dir.path().join("secrets.json"))
            .set(
                "t",
                "i",
                &SecretBundle {
                    values: [("k".to_string(), "v".to_string())].into(),
                    expires_at: None,
                },
            )
            .await
            .unwrap();
    }
    let b = stores_local::backends(dir.path()).unwrap();
    assert_eq!(
        b.kv.get(&scope, "ns", "k").await.unwrap().unwrap().value,
        b"kept"
    );
    assert_eq!(b.quotas.used(&quota).await.unwrap(), 1);
    assert_eq!(
        b.idempotency
            .claim("t", "key", std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Completed(b"resp".to_vec())
    );
    let secrets = b.secrets.load("t", "i").await.unwrap().unwrap();
    assert_eq!(secrets.values.get("k").map(String::as_str), Some("v"));
}
