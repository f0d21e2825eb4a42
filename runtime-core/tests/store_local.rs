//! The store conformance suites against the local backends (the same assertions
//! as `store_aws.rs`).

mod support;

use std::sync::Arc;

use runtime_core::store::local::{
    MemoryBlobStore, MemoryExecutionLog, MemoryIdempotencyStore, MemoryKvStore, MemoryQuotaStore,
    MemorySecretStore, SqliteRegistry,
};
use runtime_core::store::{KvLimits, SecretBundle};
use support::conformance as c;

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
    c::blob_conformance(Arc::new(runtime_core::store::local::DirBlobStore::new(
        dir.path(),
    )))
    .await;
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
    c::registry_conformance(Arc::new(reg)).await;
}
