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
