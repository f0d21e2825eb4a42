//! Schedules end to end in runtime-core: the store conformance suite on every
//! backend (memory, SQLite, DynamoDB and DynamoDB + EventBridge Scheduler on
//! moto), the scheduler host functions through real WAT guests (with and
//! without `cap:scheduler.manage`, and across installs), manifest sync, and
//! firing through the gateway's execute path.

use std::sync::Arc;

use base64::Engine as _;
use runtime_core::Executor;
use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::engine::Target;
use runtime_core::execute::{ExecuteRequest, RegistryResolver, RoutingHeaders};
use runtime_core::gateway::{Gateway, GatewaySettings};
use runtime_core::host::bindings::alga::extension as ext;
use runtime_core::host::bindings::alga::extension::types::*;
use runtime_core::host::{HostSetup, HostState, Invocation, RequestLimits};
use runtime_core::publish::Publisher;
use runtime_core::schedule::{self, ScheduleFiring};
use runtime_core::store::{
    InstallRecord, InstallRequest, KvScope, ScheduleStore, ScheduleStoreError,
};
use runtime_core::{Capability, CapabilitySet};
use serde_json::json;
use stores_aws::{DynamoScheduleStore, MirroredScheduleStore, SchedulerTarget, schedule_name};
use stores_local::{MemoryScheduleStore, SqliteRegistry, SqliteScheduleStore};
use test_support::guests;
use test_support::moto::{AwsEnv, unique};
use test_support::schedule_conformance as sc;

const EXT: &str = "com.example.sched";

const MANIFEST: &str = r#"{
  "name": "com.example.sched",
  "version": "1.0.0",
  "runtime": "wasm-js@1",
  "capabilities": ["cap:storage.kv", "cap:scheduler.manage"],
  "api": {"endpoints": [
    {"method": "POST", "path": "/api/create", "handler": "h"},
    {"method": "POST", "path": "/api/delete", "handler": "h"},
    {"method": "POST", "path": "/api/get", "handler": "h"},
    {"method": "GET", "path": "/api/list", "handler": "h"},
    {"method": "GET", "path": "/api/endpoints", "handler": "h"},
    {"method": "POST", "path": "/api/record", "handler": "h"},
    {"method": "GET", "path": "/api/report", "handler": "h"},
    {"method": "GET", "path": "/api/items/:id", "handler": "h"},
    {"method": "DELETE", "path": "/api/purge", "handler": "h"}
  ]},
  "schedules": [
    {"endpoint": "POST /api/record", "cron": "*/15 * * * *", "payload": {"from": "manifest"}},
    {"endpoint": "/api/report", "cron": "0 8 * * 1-5", "name": "morning", "enabled": false},
    {"endpoint": "/api/report", "cron": "0 8 * * *", "timezone": "europe/paris"},
    {"endpoint": "/api/report", "cron": "0,58 1,3 * * *", "timezone": "Europe/Berlin"}
  ]
}"#;

// ---------------------------------------------------------------- stores

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_schedule_conformance() {
    sc::schedules_conformance(Arc::new(MemoryScheduleStore::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_schedule_conformance_in_an_existing_registry_db() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    // A registry database from before schedules existed gains the table.
    drop(SqliteRegistry::open(&path).unwrap());
    let store = SqliteScheduleStore::open(&path).unwrap();
    sc::schedules_conformance(Arc::new(store)).await;
    // Persisted: a second connection (another process) sees the same rows, and
    // the registry still opens on the file.
    let again = SqliteScheduleStore::open(&path).unwrap();
    assert_eq!(again.list("t1", "i1").await.unwrap().len(), 50);
    SqliteRegistry::open(&path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_schedule_conformance() {
    let env = AwsEnv::new().await;
    // Without ALGA_SCHEDULER_* the AWS set stores schedules in the table only.
    sc::schedules_conformance(env.backends.schedules.clone()).await;
}

async fn mirrored(env: &AwsEnv, group: &str) -> (Arc<dyn ScheduleStore>, SchedulerTarget) {
    let target = SchedulerTarget {
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:alga-events".into(),
        role_arn: "arn:aws:iam::123456789012:role/alga-scheduler".into(),
        group: group.into(),
    };
    let inner = Arc::new(DynamoScheduleStore::new(
        env.clients.dynamodb.clone(),
        &env.settings.table,
    ));
    let store = MirroredScheduleStore::new(inner, env.clients.scheduler.clone(), target.clone());
    (Arc::new(store), target)
}

/// moto 5.2.5 serves EventBridge Scheduler: every write is mirrored and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_schedules_are_mirrored_to_eventbridge_scheduler() {
    let env = AwsEnv::new().await;
    let group = unique("grp");
    env.clients
        .scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let (store, target) = mirrored(&env, &group).await;
    sc::schedules_conformance(store.clone()).await;

    let sch = sc::schedule("acme#1", "inst/with spaces and ünïcode", "sch_1");
    store.create(&sch).await.unwrap();
    let name = schedule_name(&sch.tenant, &sch.install_id, &sch.id);
    assert!(name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    // What EventBridge Scheduler holds for it now.
    let fetch = || {
        env.clients
            .scheduler
            .get_schedule()
            .name(&name)
            .group_name(&group)
            .send()
    };
    let got = fetch().await.unwrap();
    assert_eq!(
        got.schedule_expression(),
        Some("cron(0,15,30,45 9-17 ? * 2-6 *)")
    );
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(got.state().map(|s| s.as_str()), Some("ENABLED"));
    let t = got.target().unwrap();
    assert_eq!(t.arn(), target.target_arn);
    assert_eq!(t.role_arn(), target.role_arn);
    assert_eq!(
        ScheduleFiring::from_json(t.input().unwrap().as_bytes()).unwrap(),
        ScheduleFiring {
            tenant: sch.tenant.clone(),
            install_id: sch.install_id.clone(),
            schedule_id: sch.id.clone(),
        }
    );

    let mut off = sch.clone();
    off.enabled = false;
    off.cron = "30 4 1,15 * *".into();
    store.update(&off).await.unwrap();
    let got = fetch().await.unwrap();
    assert_eq!(got.schedule_expression(), Some("cron(30 4 1,15 * ? *)"));
    assert_eq!(got.state().map(|s| s.as_str()), Some("DISABLED"));

    // The schedule's IANA zone is EventBridge Scheduler's
    // ScheduleExpressionTimezone (the cron's fields are the same in any zone),
    // on create and on update.
    let mut berlin = sc::schedule("acme#1", "i", "berlin");
    berlin.cron = "30 2 * * *".into();
    berlin.timezone = "Europe/Berlin".into();
    store.create(&berlin).await.unwrap();
    let fetch_named = |id: &str| {
        env.clients
            .scheduler
            .get_schedule()
            .name(schedule_name("acme#1", "i", id))
            .group_name(&group)
            .send()
    };
    let got = fetch_named("berlin").await.unwrap();
    assert_eq!(got.schedule_expression(), Some("cron(30 2 * * ? *)"));
    assert_eq!(got.schedule_expression_timezone(), Some("Europe/Berlin"));
    berlin.timezone = "America/New_York".into();
    store.update(&berlin).await.unwrap();
    let got = fetch_named("berlin").await.unwrap();
    assert_eq!(got.schedule_expression_timezone(), Some("America/New_York"));
    // A zone AWS could not evaluate never reaches it, nor the table.
    let mut nowhere = sc::schedule("acme#1", "i", "nowhere");
    nowhere.timezone = "Mars/Olympus_Mons".into();
    assert!(matches!(
        store.create(&nowhere).await.unwrap_err(),
        ScheduleStoreError::Invalid {
            field: "timezone",
            ..
        }
    ));
    assert_eq!(store.get("acme#1", "i", "nowhere").await.unwrap(), None);
    assert!(fetch_named("nowhere").await.is_err());

    // A cron AWS cannot express is refused before anything is written.
    let mut both = sc::schedule("acme#1", "i", "both");
    both.cron = "0 0 1 * 1".into();
    assert!(matches!(
        store.create(&both).await.unwrap_err(),
        ScheduleStoreError::Invalid { field: "cron", .. }
    ));
    assert_eq!(store.get("acme#1", "i", "both").await.unwrap(), None);

    store
        .delete(&sch.tenant, &sch.install_id, &sch.id)
        .await
        .unwrap();
    let gone = fetch().await.unwrap_err();
    assert!(
        gone.as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
}

/// When the Scheduler API fails, the registry write is undone and the caller
/// gets an internal error (here: a group that does not exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_a_failed_mirror_undoes_the_registry_write() {
    let env = AwsEnv::new().await;
    let (store, _) = mirrored(&env, &unique("missing-group")).await;
    let sch = sc::schedule("t", "i", "x");
    let e = store.create(&sch).await.unwrap_err();
    assert_eq!(e.code(), "internal", "{e}");
    assert_eq!(store.get("t", "i", "x").await.unwrap(), None);
    assert!(store.list("t", "i").await.unwrap().is_empty());
    // The count was undone too: 50 still fit in the table underneath.
    let plain = DynamoScheduleStore::new(env.clients.dynamodb.clone(), &env.settings.table);
    for n in 0..50 {
        plain
            .create(&sc::schedule("t", "i", &format!("p{n}")))
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------- guests

struct Env {
    _dir: tempfile::TempDir,
    backends: Backends,
    executor: Executor,
    content: ContentHash,
}

fn pack(manifest: &str, wasm: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), manifest).unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/main.wasm"), wasm).unwrap();
    archive::pack_dir(dir.path(), &ArchiveLimits::default()).unwrap()
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let backends = stores_local::backends(&dir.path().join("data")).unwrap();
        let key = SigningKey::generate("k").unwrap();
        let trust = TrustBundle::default().with_key(key.public());
        let config = test_support::test_config();
        let publisher = Publisher::new(
            backends.blobs.clone(),
            backends.registry.clone(),
            trust.clone(),
            config.engine.clone(),
        )
        .with_targets(vec![Target::host()]);
        let bundle = pack(MANIFEST, &guests::scheduler_guest());
        let sig = Signature::sign(&ContentHash::of(&bundle), &key).to_json();
        let published = publisher
            .publish(&bundle, Some(sig.as_bytes()), &|_| {})
            .await
            .unwrap();
        let executor = Executor::new(
            &config,
            backends.blobs.clone(),
            Arc::new(RegistryResolver::new(backends.registry.clone(), trust)),
            backends.host_services(),
        )
        .unwrap()
        .with_scheduler(backends.scheduler());
        Env {
            _dir: dir,
            backends,
            executor,
            content: published.content_hash,
        }
    }

    async fn install(&self, tenant: &str, grants: &[&str]) -> InstallRecord {
        self.backends
            .registry
            .install(&InstallRequest {
                tenant: tenant.into(),
                extension_id: EXT.into(),
                version: None,
                grants: grants.iter().map(|g| g.to_string()).collect(),
                config: Default::default(),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn call(&self, tenant: &str, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = json!({
            "context": {"tenant_id": tenant, "extension_id": EXT,
                        "content_hash": self.content.to_string(), "request_id": "r1"},
            "http": {"method": method, "path": path,
                     "body_b64": base64::engine::general_purpose::STANDARD.encode(body)}
        });
        let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).unwrap()).unwrap();
        let routing = RoutingHeaders {
            tenant: Some(tenant.into()),
            extension: Some(EXT.into()),
            request_id: None,
        };
        let out = self.executor.execute(&routing, &req).await;
        assert!(out.envelope.error.is_none(), "{:?}", out.envelope);
        let body = String::from_utf8(out.envelope.body().unwrap_or_default()).unwrap();
        (out.envelope.status, body)
    }
}

const ALL: &[&str] = &["cap:storage.kv", "cap:scheduler.manage"];

/// Written first: a guest can never see or touch another install's schedules,
/// even knowing their ids — not another tenant's, not through its own install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_never_sees_or_touches_another_installs_schedules() {
    let env = Env::new().await;
    let acme = env.install("acme", ALL).await;
    env.install("evil", ALL).await;
    let (status, id) = env
        .call("acme", "POST", "/api/create", "POST /api/record")
        .await;
    assert_eq!(status, 201, "{id}");

    // evil knows the id: get → none, delete → not found, list → 0.
    assert_eq!(env.call("evil", "POST", "/api/get", &id).await.0, 404);
    let (status, err) = env.call("evil", "POST", "/api/delete", &id).await;
    assert_eq!((status, err.as_str()), (400, "schedule not found"));
    assert_eq!(env.call("evil", "GET", "/api/list", "").await.0, 200);
    // acme's schedule is intact.
    assert_eq!(env.call("acme", "POST", "/api/get", &id).await.0, 200);
    assert_eq!(env.call("acme", "GET", "/api/list", "").await.0, 201);
    let stored = env
        .backends
        .schedules
        .get("acme", &acme.install_id, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.extension_id, EXT);

    // Directly at the host: an invocation naming acme's tenant but another
    // install id (a stale or forged one) is refused as not installed.
    let mut s = state(
        "acme",
        Some("inst_forged"),
        &[Capability::SchedulerManage],
        &env,
    );
    assert_eq!(
        ext::scheduler::Host::get_endpoints(&mut s).await.unwrap(),
        Err(SchedulerError::NotFound)
    );
    assert!(
        ext::scheduler::Host::list_schedules(&mut s)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    let forged = ext::scheduler::Host::delete_schedule(&mut s, id.clone())
        .await
        .unwrap();
    assert!(!forged.success);
    assert!(
        env.backends
            .schedules
            .get("acme", &acme.install_id, &id)
            .await
            .unwrap()
            .is_some()
    );
}

fn state(tenant: &str, install: Option<&str>, caps: &[Capability], env: &Env) -> HostState {
    HostState::new(HostSetup {
        scheduler: Some(env.backends.scheduler()),
        ..HostSetup::new(
            Arc::new(Invocation {
                tenant_id: tenant.into(),
                extension_id: EXT.into(),
                install_id: install.map(String::from),
                ..Invocation::default()
            }),
            CapabilitySet::with(caps.iter().copied()),
            &env.backends.host_services(),
            RequestLimits {
                memory_bytes: 1 << 20,
                host_calls: 1000,
                log_bytes: 10_000,
            },
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_with_and_without_the_capability() {
    let env = Env::new().await;
    let install = env.install("acme", ALL).await;
    env.install("nocap", &["cap:storage.kv"]).await;

    // Without cap:scheduler.manage: the seed's denial values, nothing stored.
    let (status, err) = env
        .call("nocap", "POST", "/api/create", "POST /api/record")
        .await;
    assert_eq!(
        (status, err.as_str()),
        (400, "Permission denied: cap:scheduler.manage not granted")
    );
    assert_eq!(env.call("nocap", "GET", "/api/list", "").await.0, 403);
    assert_eq!(env.call("nocap", "GET", "/api/endpoints", "").await.0, 403);
    assert_eq!(env.call("nocap", "POST", "/api/get", "x").await.0, 403);
    let (status, err) = env.call("nocap", "POST", "/api/delete", "x").await;
    assert_eq!(
        (status, err.as_str()),
        (400, "Permission denied: cap:scheduler.manage not granted")
    );

    // With it: create, validation, list, endpoints, delete.
    let (status, id) = env
        .call("acme", "POST", "/api/create", "POST /api/record")
        .await;
    assert_eq!(status, 201);
    assert!(id.starts_with("sch_"), "{id}");
    for bad in [
        "DELETE /api/purge",
        "/api/items/:id",
        "/api/nope",
        "PUT /api/report",
    ] {
        let (status, err) = env.call("acme", "POST", "/api/create", bad).await;
        assert_eq!((status, err.as_str()), (400, "validation failed"), "{bad}");
    }
    assert_eq!(env.call("acme", "GET", "/api/list", "").await.0, 201);
    assert_eq!(env.call("acme", "GET", "/api/endpoints", "").await.0, 209);
    assert_eq!(env.call("acme", "POST", "/api/delete", &id).await.0, 200);
    assert_eq!(env.call("acme", "POST", "/api/get", &id).await.0, 404);
    assert_eq!(env.call("acme", "GET", "/api/list", "").await.0, 200);

    // The 51st is quota-exceeded.
    for _ in 0..50 {
        assert_eq!(
            env.call("acme", "POST", "/api/create", "/api/report")
                .await
                .0,
            201
        );
    }
    let (status, err) = env.call("acme", "POST", "/api/create", "/api/report").await;
    assert_eq!(
        (status, err.as_str()),
        (400, "quota exceeded: at most 50 schedules per install")
    );
    assert_eq!(
        env.backends
            .schedules
            .list("acme", &install.install_id)
            .await
            .unwrap()
            .len(),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_functions_give_field_errors_and_apply_updates() {
    let env = Env::new().await;
    let install = env.install("acme", ALL).await;
    let mut s = state(
        "acme",
        Some(&install.install_id),
        &[Capability::SchedulerManage],
        &env,
    );
    use ext::scheduler::Host;
    let input = |endpoint: &str, cron: &str| CreateScheduleInput {
        endpoint: endpoint.into(),
        cron: cron.into(),
        timezone: None,
        enabled: None,
        name: Some("nightly".into()),
        payload: Some(r#"{"a":1}"#.into()),
    };
    let bad = Host::create_schedule(&mut s, input("/api/report", "* * * * *"))
        .await
        .unwrap();
    assert!(!bad.success);
    assert_eq!(bad.error.as_deref(), Some("validation failed"));
    let fields: serde_json::Value = serde_json::from_str(&bad.field_errors.unwrap()).unwrap();
    assert!(
        fields["cron"].as_str().unwrap().contains("at least 5"),
        "{fields}"
    );
    let mut bad_payload = input("/api/report", "0 * * * *");
    bad_payload.payload = Some("{not json".into());
    let r = Host::create_schedule(&mut s, bad_payload).await.unwrap();
    assert!(r.field_errors.unwrap().contains("payload"));

    let ok = Host::create_schedule(&mut s, input("post /api/record", "0 3 * * *"))
        .await
        .unwrap();
    assert!(ok.success, "{ok:?}");
    let id = ok.schedule_id.unwrap();
    let info = Host::get_schedule(&mut s, id.clone())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            info.endpoint_method.as_str(),
            info.endpoint_path.as_str(),
            info.cron.as_str()
        ),
        ("POST", "/api/record", "0 3 * * *")
    );
    assert_eq!(info.timezone, "UTC");
    assert_eq!(info.payload.as_deref(), Some(r#"{"a":1}"#));
    assert!(info.enabled && info.created_at.unwrap().ends_with('Z'));

    let patch =
        |cron: Option<&str>, payload: Option<&str>, enabled: Option<bool>| UpdateScheduleInput {
            endpoint: None,
            cron: cron.map(String::from),
            timezone: None,
            enabled,
            name: None,
            payload: payload.map(String::from),
        };
    let r = Host::update_schedule(&mut s, id.clone(), patch(Some("*/2 * * * *"), None, None))
        .await
        .unwrap();
    assert_eq!(r.error.as_deref(), Some("validation failed"));
    assert!(r.field_errors.unwrap().contains("cron"));
    let r = Host::update_schedule(
        &mut s,
        id.clone(),
        patch(Some("*/10 * * * *"), Some(""), Some(false)),
    )
    .await
    .unwrap();
    assert!(r.success, "{r:?}");
    let info = Host::get_schedule(&mut s, id.clone())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (info.cron.as_str(), info.payload, info.enabled),
        ("*/10 * * * *", None, false)
    );
    assert_eq!(info.name.as_deref(), Some("nightly"));
    let r = Host::update_schedule(&mut s, "sch_missing".into(), patch(None, None, None))
        .await
        .unwrap();
    assert_eq!(r.error.as_deref(), Some("schedule not found"));

    // IANA time zones: stored by canonical name, changed by an update, and an
    // unknown one is a `timezone` field error.
    let mut zoned = input("/api/report", "30 2 * * *");
    zoned.timezone = Some("europe/berlin".into());
    let created = Host::create_schedule(&mut s, zoned).await.unwrap();
    assert!(created.success, "{created:?}");
    let zoned_id = created.schedule_id.unwrap();
    let zone_of = |info: Option<ScheduleInfo>| info.unwrap().timezone;
    assert_eq!(
        zone_of(
            Host::get_schedule(&mut s, zoned_id.clone())
                .await
                .unwrap()
                .unwrap()
        ),
        "Europe/Berlin"
    );
    let r = Host::update_schedule(
        &mut s,
        zoned_id.clone(),
        UpdateScheduleInput {
            timezone: Some("America/New_York".into()),
            ..patch(None, None, None)
        },
    )
    .await
    .unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(
        zone_of(
            Host::get_schedule(&mut s, zoned_id.clone())
                .await
                .unwrap()
                .unwrap()
        ),
        "America/New_York"
    );
    let mut unknown = input("/api/report", "30 2 * * *");
    unknown.timezone = Some("Europe/Berlen".into());
    let r = Host::create_schedule(&mut s, unknown).await.unwrap();
    assert_eq!(r.error.as_deref(), Some("validation failed"));
    let fields: serde_json::Value = serde_json::from_str(&r.field_errors.unwrap()).unwrap();
    assert!(
        fields["timezone"]
            .as_str()
            .unwrap()
            .starts_with("unknown time zone \"Europe/Berlen\""),
        "{fields}"
    );

    let endpoints = Host::get_endpoints(&mut s).await.unwrap().unwrap();
    let schedulable: Vec<_> = endpoints
        .iter()
        .filter(|e| e.schedulable)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(schedulable.len(), 7);
    assert!(
        !endpoints
            .iter()
            .any(|e| e.schedulable && (e.path.contains(':') || e.method == "DELETE"))
    );
    assert!(
        endpoints
            .iter()
            .any(|e| e.id == "GET /api/items/:id" && !e.schedulable)
    );

    // Granted, but no install id in the request: internal, never a trap.
    let mut s = state("acme", None, &[Capability::SchedulerManage], &env);
    assert_eq!(
        Host::list_schedules(&mut s).await.unwrap(),
        Err(SchedulerError::Internal)
    );
    let r = Host::create_schedule(&mut s, input("/api/report", "0 * * * *"))
        .await
        .unwrap();
    assert!(r.error.unwrap().contains("install"));
}

// ---------------------------------------------------------------- sync and firing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_schedules_follow_the_install_and_go_with_it() {
    let env = Env::new().await;
    let install = env.install("acme", ALL).await;
    let (status, guest_id) = env.call("acme", "POST", "/api/create", "/api/report").await;
    assert_eq!(status, 201);
    let store = env.backends.schedules.as_ref();
    let report = schedule::sync_installed(env.backends.registry.as_ref(), store, &install)
        .await
        .unwrap();
    let ids: Vec<_> = report.created.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["manifest-0", "manifest-1", "manifest-2"]);
    // IANA zones are kept, by their canonical name (publish refuses an unknown one). One
    // that fires 2 real minutes apart when Berlin springs forward (01:58 CET, 03:00 CEST)
    // passes publish's checks but not the scheduler's: the install stands without it.
    assert_eq!(report.created[2].timezone, "Europe/Paris");
    assert_eq!(report.created[0].timezone, "UTC");
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, 3);
    assert!(
        report.refused[0].1.contains("changes its clocks"),
        "{:?}",
        report.refused
    );
    let m0 = &report.created[0];
    assert_eq!(
        (
            m0.method.as_str(),
            m0.path.as_str(),
            m0.payload.as_deref(),
            m0.enabled
        ),
        ("POST", "/api/record", Some(r#"{"from":"manifest"}"#), true)
    );
    assert!(!report.created[1].enabled);
    // Again (a reinstall): replaced, not duplicated; the guest's own stays.
    let again = schedule::sync_installed(env.backends.registry.as_ref(), store, &install)
        .await
        .unwrap();
    assert_eq!((again.removed, again.created.len()), (3, 3));
    let all = store.list("acme", &install.install_id).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().any(|s| s.id == guest_id));
    // Uninstall removes them all.
    assert_eq!(
        schedule::remove_for_install(store, "acme", &install.install_id)
            .await
            .unwrap(),
        4
    );
    assert!(
        store
            .list("acme", &install.install_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_runs_the_endpoint_through_the_execute_path_with_the_payload() {
    let env = Env::new().await;
    let install = env.install("acme", ALL).await;
    let report = schedule::sync_installed(
        env.backends.registry.as_ref(),
        env.backends.schedules.as_ref(),
        &install,
    )
    .await
    .unwrap();
    let Env {
        backends,
        executor,
        _dir,
        ..
    } = env;
    let gateway = Gateway::new(
        Arc::new(executor),
        backends.clone(),
        GatewaySettings::default(),
    );

    // Through the events function's entry point: the firing message.
    let msg = ScheduleFiring::from_json(
        serde_json::to_string(&ScheduleFiring::of(&report.created[0]))
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let first = gateway.fire_message(&msg).await.unwrap();
    assert_eq!(first.envelope.error, None);
    assert_eq!(first.envelope.status, 200);
    assert_eq!(first.envelope.body().unwrap(), br#"{"from":"manifest"}"#);
    let second = gateway.fire_schedule(&report.created[0]).await;
    let (r1, r2) = (
        first.metrics.request_id.clone().unwrap(),
        second.metrics.request_id.clone().unwrap(),
    );
    assert_ne!(r1, r2, "a fresh request id per firing");
    assert_eq!(r1.len(), 32);
    // The guest saw the payload under that request id, with the install's grants.
    let scope = KvScope {
        tenant: "acme".into(),
        install_id: install.install_id.clone(),
    };
    let seen = backends
        .kv
        .get(&scope, "sched", &r1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.value, br#"{"from":"manifest"}"#);
    // Recorded like every invocation.
    let recent = backends.executions.recent("acme", EXT, 10).await.unwrap();
    assert!(recent.iter().any(|r| r.request_id == r1 && r.status == 200));

    // Disabled, deleted, malformed.
    let disabled = ScheduleFiring::of(&report.created[1]);
    assert_eq!(
        gateway.fire_message(&disabled).await.unwrap_err().code(),
        "disabled"
    );
    let mut gone = msg.clone();
    gone.install_id = "inst_other".into();
    assert_eq!(
        gateway.fire_message(&gone).await.unwrap_err().code(),
        "not_found"
    );
    for bad in [
        &b"{}"[..],
        b"[1]",
        br#"{"tenant":"a","install_id":"b","schedule_id":"c","x":1}"#,
    ] {
        assert_eq!(
            ScheduleFiring::from_json(bad).unwrap_err().code(),
            "malformed"
        );
    }

    // The install is gone: the firing answers not_installed, nothing runs.
    backends.registry.uninstall("acme", EXT).await.unwrap();
    let out = gateway.fire_schedule(&report.created[0]).await;
    assert_eq!(out.envelope.status, 404);
    assert!(out.envelope.error.unwrap().starts_with("not_installed"));
}
