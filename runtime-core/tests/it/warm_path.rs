//! The warm path on the local backends, through `Gateway::build` as `up` builds
//! it: the registry cache sees a change made by another connection (another
//! process) on the very next request, and the execution records written off the
//! request path are all stored once the gateway is flushed, as a clean shutdown
//! does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use runtime_core::backends::Backends;
use runtime_core::gateway::{Caller, DirectRequest, ExecutionRecords, Gateway, GatewaySettings};
use runtime_core::store::{ExecutionLog, Registry};
use stores_local::{SqliteRegistry, SqliteStateStore};
use test_support::guests;
use test_support::signer::{Signer, endpoint_bundle, install};

const EXT: &str = "com.example.warm";

/// A data directory with `EXT` published and installed for `acme`, and the
/// gateway `up` would build over it.
async fn local(settings: GatewaySettings) -> (tempfile::TempDir, Backends, Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(dir.path()).unwrap();
    let signer = Signer::new("warm");
    std::fs::write(dir.path().join("trust.json"), signer.trust.to_json()).unwrap();
    let bundle = endpoint_bundle(EXT, "1.0.0", &guests::hello());
    signer.publish(&signer.publisher(&backends), &bundle).await;
    install(&backends, "acme", EXT, &[], BTreeMap::new()).await;
    let gateway = Gateway::build(backends.clone(), &test_support::test_config(), settings).unwrap();
    (dir, backends, gateway)
}

/// `GET /api/ext/EXT/hello` as tenant `acme`: the status and the error code.
async fn hello(gateway: &Gateway) -> (u16, String) {
    let headers = http::HeaderMap::new();
    let reply = gateway
        .direct(DirectRequest {
            caller: Ok(Caller {
                tenant: "acme".into(),
                user: None,
            }),
            extension_id: EXT,
            method: "GET",
            path: "/hello",
            query: BTreeMap::new(),
            headers: &headers,
            body: &[],
            request_id: None,
        })
        .await;
    let code = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).into_owned());
    (reply.status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_install_stops_running_on_the_next_request_locally() {
    let mut settings = GatewaySettings::default();
    // A TTL far beyond the test: only SQLite's change signal can make the
    // cache see the changes below.
    settings.registry_cache.ttl = Duration::from_secs(3600);
    let (dir, _backends, gateway) = local(settings).await;
    assert_eq!(hello(&gateway).await, (200, "hello".into()));
    assert_eq!(hello(&gateway).await, (200, "hello".into()), "warm");

    // Another connection to the registry file: what `alga-lambda disable` in
    // another process does while `up` serves.
    let admin = SqliteRegistry::open(&dir.path().join("registry.db")).unwrap();
    admin.set_enabled("acme", EXT, false).await.unwrap();
    assert_eq!(hello(&gateway).await, (403, "install_disabled".into()));
    admin.set_enabled("acme", EXT, true).await.unwrap();
    assert_eq!(hello(&gateway).await, (200, "hello".into()));
    admin.uninstall("acme", EXT).await.unwrap();
    assert_eq!(hello(&gateway).await, (404, "not_installed".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_never_lost_on_a_clean_shutdown() {
    let settings = GatewaySettings {
        execution_records: ExecutionRecords::Table,
        ..GatewaySettings::default()
    };
    let (dir, backends, gateway) = local(settings).await;
    let gateway = Arc::new(gateway);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let gateway = gateway.clone();
        requests.spawn(async move { hello(&gateway).await });
    }
    for answer in requests.join_all().await {
        assert_eq!(answer, (200, "hello".into()));
    }
    // The clean shutdown: drain the writer, then the process is gone.
    gateway.flush_records().await.unwrap();
    drop(gateway);
    drop(backends);
    let reopened = SqliteStateStore::open(&dir.path().join("state.db")).unwrap();
    let stored = reopened.recent("acme", EXT, 1000).await.unwrap();
    assert_eq!(stored.len(), 40, "{stored:?}");
    assert!(stored.iter().all(|r| r.status == 200 && r.outcome == "ok"));

    // With `log`, the log line is the record and nothing is queued.
    let settings = GatewaySettings {
        execution_records: ExecutionRecords::Log,
        ..GatewaySettings::default()
    };
    let (dir, backends, gateway) = local(settings).await;
    assert_eq!(hello(&gateway).await, (200, "hello".into()));
    gateway.flush_records().await.unwrap();
    assert_eq!(
        backends.executions.recent("acme", EXT, 10).await.unwrap(),
        vec![]
    );
    drop(dir);
}
