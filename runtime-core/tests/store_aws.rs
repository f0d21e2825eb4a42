//! The store conformance suites against the AWS backends on a real moto server
//! (S3, DynamoDB, Secrets Manager through the real aws-sdk clients).

mod support;

use std::sync::Arc;

use runtime_core::store::aws::{DynamoKvStore, SecretsManagerStore};
use runtime_core::store::{KvLimits, SecretBundle};
use support::conformance as c;
use support::moto::AwsEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_kv_conformance() {
    let env = AwsEnv::new().await;
    c::kv_conformance(env.backends.kv.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_kv_paging_through_1000_keys() {
    let env = AwsEnv::new().await;
    c::kv_paging_conformance(env.backends.kv.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_kv_limits() {
    let env = AwsEnv::new().await;
    let store = DynamoKvStore::with_limits(
        env.clients.dynamodb.clone(),
        &env.settings.table,
        KvLimits {
            namespaces_per_install: 2,
            keys_per_namespace: 5,
            ..KvLimits::default()
        },
    );
    c::kv_limits_conformance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_blob_conformance() {
    let env = AwsEnv::new().await;
    c::blob_conformance(env.backends.blobs.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_secret_conformance() {
    let env = AwsEnv::new().await;
    let writer = Arc::new(SecretsManagerStore::new(
        env.clients.secrets.clone(),
        &env.settings.secrets_prefix,
        env.settings.secrets_cache_ttl,
    ));
    let set = move |t: String, i: String, b: SecretBundle| -> c::BoxFut {
        let writer = writer.clone();
        Box::pin(async move { writer.store(&t, &i, &b).await.unwrap() })
    };
    c::secret_conformance(env.backends.secrets.clone(), &set).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_quota_parallel_charges_allow_exactly_n() {
    let env = AwsEnv::new().await;
    c::quota_conformance(env.backends.quotas.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_idempotency_conformance() {
    let env = AwsEnv::new().await;
    c::idempotency_conformance(env.backends.idempotency.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_executions_conformance() {
    let env = AwsEnv::new().await;
    c::executions_conformance(env.backends.executions.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_registry_conformance() {
    let env = AwsEnv::new().await;
    c::registry_conformance(env.backends.registry.clone()).await;
    c::subscription_conformance(env.backends.registry.clone()).await;
}

/// A loaded bundle is reused for at most the cache time (30 s in production), so
/// a rotated secret reaches running functions within it; a zero cache reads through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_secrets_cache_is_bounded() {
    use runtime_core::store::SecretStore;
    use std::time::Duration;
    let env = AwsEnv::new().await;
    let store = |ttl| {
        SecretsManagerStore::new(
            env.clients.secrets.clone(),
            &env.settings.secrets_prefix,
            ttl,
        )
    };
    let bundle = |v: &str| SecretBundle {
        values: [("k".to_string(), v.to_string())].into(),
        expires_at: None,
    };
    let operator = store(Duration::ZERO);
    let cached = store(Duration::from_secs(3600)); // capped at 30 s
    let uncached = store(Duration::ZERO);
    operator.store("t", "i", &bundle("v1")).await.unwrap();
    assert_eq!(cached.load("t", "i").await.unwrap(), Some(bundle("v1")));
    operator.store("t", "i", &bundle("v2")).await.unwrap();
    assert_eq!(cached.load("t", "i").await.unwrap(), Some(bundle("v1")));
    assert_eq!(uncached.load("t", "i").await.unwrap(), Some(bundle("v2")));
    // Names that could spell another install's secret are refused, not mapped.
    assert!(uncached.load("t/x", "i").await.is_err());
    assert!(uncached.load("t", "../i").await.is_err());
}
