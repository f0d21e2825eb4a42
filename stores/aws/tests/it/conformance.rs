//! The store conformance suites against the AWS backends on a real moto server
//! (S3, DynamoDB, Secrets Manager through the real aws-sdk clients).

use std::sync::Arc;

use runtime_core::store::{KvLimits, SecretBundle, StoreError};
use stores_aws::{DynamoKvStore, SecretsManagerStore};
use test_support::conformance as c;
use test_support::moto::AwsEnv;

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
    // Both windows in one TransactWriteItems: moto evaluates each Update's
    // condition and reports the failing one in CancellationReasons.
    c::quota_windows_conformance(env.backends.quotas.clone()).await;
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
    // BatchWriteItems of 25 from the batching writer, read back with a Query.
    let table = Arc::new(stores_aws::DynamoExecutionLog::new(
        env.clients.dynamodb.clone(),
        &env.settings.table,
    ));
    c::batched_executions_conformance(table.clone(), table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_registry_conformance() {
    let env = AwsEnv::new().await;
    c::registry_conformance(env.backends.registry.clone()).await;
    c::subscription_conformance(env.backends.registry.clone()).await;
    c::host_id_conformance(env.backends.registry.clone()).await;
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
    let cached = store(Duration::from_secs(3600));
    assert_eq!(
        cached.cache_ttl(),
        Duration::from_secs(30),
        "capped at 30 s"
    );
    let uncached = store(Duration::ZERO);
    operator.store("t", "i", &bundle("v1")).await.unwrap();
    assert_eq!(cached.load("t", "i").await.unwrap(), Some(bundle("v1")));
    operator.store("t", "i", &bundle("v2")).await.unwrap();
    assert_eq!(cached.load("t", "i").await.unwrap(), Some(bundle("v1")));
    assert_eq!(uncached.load("t", "i").await.unwrap(), Some(bundle("v2")));
    // Names that could spell another install's secret are refused, not mapped.
    assert!(uncached.load("t/x", "i").await.is_err());
    assert!(uncached.load("t", "../i").await.is_err());
    // A cached bundle lapses after its TTL: the next load reads the new value.
    let short = store(Duration::from_secs(2));
    assert_eq!(short.load("t", "i").await.unwrap(), Some(bundle("v2")));
    operator.store("t", "i", &bundle("v3")).await.unwrap();
    assert_eq!(short.load("t", "i").await.unwrap(), Some(bundle("v2")));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(short.load("t", "i").await.unwrap(), Some(bundle("v3")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_tokens_come_from_secrets_manager_trimmed_never_empty() {
    use stores_aws::read_secret_string;
    let env = AwsEnv::new().await;
    let secrets = &env.clients.secrets;
    let name = test_support::moto::unique("runner-token");
    secrets
        .create_secret()
        .name(&name)
        .secret_string("  s3cr3t-token\n")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_secret_string(secrets, &name).await.unwrap(),
        "s3cr3t-token"
    );
    let blank = test_support::moto::unique("blank-token");
    secrets
        .create_secret()
        .name(&blank)
        .secret_string("   ")
        .send()
        .await
        .unwrap();
    assert!(matches!(
        read_secret_string(secrets, &blank).await,
        Err(StoreError::Internal(_))
    ));
    assert!(read_secret_string(secrets, "no-such-secret").await.is_err());
}

/// Quota counters, execution records and idempotency records carry DynamoDB's
/// `ttl` attribute (epoch seconds) set to when they stop mattering, so the table's
/// TTL setting removes them and nothing grows without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_counters_records_and_claims_expire_through_the_ttl_attribute() {
    use runtime_core::store::{ExecutionRecord, QuotaKey, QuotaWindow};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let env = AwsEnv::new().await;
    let b = &env.backends;
    let now = SystemTime::now();
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let minute = QuotaKey::at("tenant-t", "ext", QuotaWindow::Minute, now);
    b.quotas.charge(&minute, 10).await.unwrap();
    let record = ExecutionRecord {
        request_id: "req-ttl".into(),
        tenant: "tenant-t".into(),
        extension: "ext".into(),
        install_id: None,
        version: None,
        content_hash: None,
        started_at_ms: now_secs * 1000,
        duration_ms: 3,
        status: 200,
        outcome: "ok".into(),
        error: None,
    };
    let week = Duration::from_secs(7 * 24 * 3600);
    b.executions.record(&record, week).await.unwrap();
    let day = Duration::from_secs(24 * 3600);
    b.idempotency
        .claim("tenant-t", "key", Duration::from_secs(60))
        .await
        .unwrap();
    b.idempotency
        .complete("tenant-t", "key", b"answer", day)
        .await
        .unwrap();

    let items = env
        .clients
        .dynamodb
        .scan()
        .table_name(&env.settings.table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let ttl_of = |prefix: &str| -> u64 {
        let item = items
            .iter()
            .find(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no {prefix} item in {items:?}"));
        item.get("ttl")
            .unwrap_or_else(|| panic!("{prefix} item without ttl: {item:?}"))
            .as_n()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(ttl_of("QUOTA#"), minute.expires_at());
    assert!(ttl_of("QUOTA#") <= now_secs + 60 + 86_400);
    let exec = ttl_of("EXEC#");
    assert!(
        (now_secs + week.as_secs()..=now_secs + week.as_secs() + 5).contains(&exec),
        "{exec}"
    );
    let idem = ttl_of("IDEM#");
    assert!(
        (now_secs + day.as_secs()..=now_secs + day.as_secs() + 5).contains(&idem),
        "{idem}"
    );
}
