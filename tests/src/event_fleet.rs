//! A small fleet of extensions for event tests, published and installed on any
//! backends: two listeners echoing what they get, one that always traps, one
//! that emits an event, and one that records what its schedules send. Shared by
//! runtime-core's and fn-events' tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use runtime_core::Executor;
use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::config::RuntimeConfig;
use runtime_core::engine::Target;
use runtime_core::events::EventPublisher;
use runtime_core::execute::Outcome;
use runtime_core::execute::{QuotaLimits, QuotaPolicy, RegistryResolver};
use runtime_core::gateway::{Gateway, GatewaySettings, InternalCall, Route};
use runtime_core::host::events::EmitSettings;
use runtime_core::publish::Publisher;
use runtime_core::store::InstallRequest;
use serde_json::json;

use crate::guests;

/// Listener subscribed to `ticket.created` (tenants t1 and t2).
pub const LISTENER_A: &str = "com.example.listener-a";
/// Listener subscribed to `ticket.created` and `invoice.paid` (t1 only).
pub const LISTENER_B: &str = "com.example.listener-b";
/// Always traps; subscribed to `ticket.created` (t1 only).
pub const BROKEN: &str = "com.example.broken";
/// Emits `widget.made` on GET /api/emit (t1 with cap:events.emit, t2 without).
pub const EMITTER: &str = "com.example.emitter";

/// Emits `widget.made` with `{"n":1,"org":"other-tenant","tenant_id":"other-tenant"}`
/// on every request and subscribes to `widget.made` itself (handler `/api/emit`):
/// an emit loop, and a payload naming another tenant (t1 and other-tenant, both
/// with cap:events.emit).
pub const LOOPER: &str = "com.example.looper";
/// The tenant LOOPER's payload names.
pub const OTHER_TENANT: &str = "other-tenant";
/// Emits the host app's topic `ticket.created` (t1, with cap:events.emit).
pub const SPOOFER: &str = "com.example.spoofer";

/// Records each request's body in kv (`sched`, key = the request id) on
/// `POST /api/tick` (t1, with cap:storage.kv): the target of schedule firings.
pub const SCHEDULED: &str = "com.example.scheduled";

/// The guest `emit("widget.made", {"n":1,"tenant_id":"spoofed"})`: 200 + the
/// event id, or 400 + the `emit-error` index.
pub fn emitter_guest() -> Vec<u8> {
    emit_guest("widget.made", r#"{"n":1,"tenant_id":"spoofed"}"#)
}

/// A guest calling `emit(topic, payload)` on every request: 200 + the event id,
/// or 400 + the `emit-error` index. World `runner-plus`, which has `events`.
pub fn emit_guest(topic: &str, payload: &str) -> Vec<u8> {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    guests::result_caller(
        "alga:extension/events",
        "emit",
        "i32 i32 i32 i32",
        &format!(
            "(i32.const 1024) (i32.const {}) (i32.const 1400) (i32.const {})",
            topic.len(),
            payload.len()
        ),
        4,
        true,
        &format!(
            r#"(data (i32.const 1024) "{}") (data (i32.const 1400) "{}")"#,
            escape(topic),
            escape(payload)
        ),
    )
}

fn pack(name: &str, caps: &[&str], events: serde_json::Value, wasm: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let manifest = json!({
        "name": name,
        "version": "1.0.0",
        "runtime": "wasm-js@1",
        "capabilities": caps,
        "api": {"endpoints": [
            {"method": "GET", "path": "/api/emit", "handler": "dist/main.wasm"},
            {"method": "POST", "path": "/api/tick", "handler": "dist/main.wasm"}
        ]},
        "events": events,
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/main.wasm"), wasm).unwrap();
    archive::pack_dir(dir.path(), &ArchiveLimits::default()).unwrap()
}

/// Publishes and installs the fleet on `backends`; answers a gateway running
/// them, whose guests emit to `events` (at most `emit_max` per invocation).
pub async fn fleet(
    backends: &Backends,
    events: Option<(Arc<dyn EventPublisher>, u32)>,
) -> Arc<Gateway> {
    fleet_with(backends, events.map(|(p, max)| (p, max.into()))).await
}

/// [`fleet`] whose guests emit with these settings.
pub async fn fleet_with(
    backends: &Backends,
    events: Option<(Arc<dyn EventPublisher>, EmitSettings)>,
) -> Arc<Gateway> {
    let key = SigningKey::generate("events-test").unwrap();
    let trust = TrustBundle::default().with_key(key.public());
    let mut config = RuntimeConfig::default();
    config.engine.pool_instances = 8;
    let publisher = Publisher::new(
        backends.blobs.clone(),
        backends.registry.clone(),
        trust.clone(),
        config.engine.clone(),
    )
    .with_targets(vec![Target::host()]);
    let ticket = json!([{"topic": "ticket.created", "handler": "/events/ticket"}]);
    let extensions = [
        (LISTENER_A, vec![], ticket.clone(), guests::echo()),
        (
            LISTENER_B,
            vec![],
            json!([{"topic": "ticket.created", "handler": "/on/ticket"},
                   {"topic": "invoice.paid", "handler": "/on/paid"}]),
            guests::echo(),
        ),
        (BROKEN, vec![], ticket, guests::trap()),
        (EMITTER, vec!["cap:events.emit"], json!([]), emitter_guest()),
        (
            LOOPER,
            vec!["cap:events.emit"],
            json!([{"topic": "widget.made", "handler": "/api/emit"}]),
            emit_guest(
                "widget.made",
                r#"{"n":1,"org":"other-tenant","tenant_id":"other-tenant"}"#,
            ),
        ),
        (
            SPOOFER,
            vec!["cap:events.emit"],
            json!([]),
            emit_guest("ticket.created", r#"{"ticket":666}"#),
        ),
        (
            SCHEDULED,
            vec!["cap:storage.kv"],
            json!([]),
            guests::scheduler_guest(),
        ),
    ];
    for (name, caps, events, wasm) in extensions {
        let bundle = pack(name, &caps, events, &wasm);
        let sig = Signature::sign(&ContentHash::of(&bundle), &key).to_json();
        publisher
            .publish(&bundle, Some(sig.as_bytes()), &|_| {})
            .await
            .unwrap();
    }
    let installs = [
        ("t1", LISTENER_A, vec![]),
        ("t1", LISTENER_B, vec![]),
        ("t1", BROKEN, vec![]),
        ("t1", EMITTER, vec!["cap:events.emit".to_string()]),
        ("t1", LOOPER, vec!["cap:events.emit".to_string()]),
        (OTHER_TENANT, LOOPER, vec!["cap:events.emit".to_string()]),
        ("t1", SPOOFER, vec!["cap:events.emit".to_string()]),
        ("t2", LISTENER_A, vec![]),
        ("t2", EMITTER, vec![]),
        ("t1", SCHEDULED, vec!["cap:storage.kv".to_string()]),
    ];
    for (tenant, ext, grants) in installs {
        backends
            .registry
            .install(&InstallRequest {
                tenant: tenant.into(),
                extension_id: ext.into(),
                version: None,
                grants,
                config: BTreeMap::new(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut executor = Executor::new(
        &config,
        backends.blobs.clone(),
        Arc::new(RegistryResolver::new(backends.registry.clone(), trust)),
        backends.host_services(),
    )
    .unwrap()
    .with_quotas(QuotaPolicy::new(
        backends.quotas.clone(),
        QuotaLimits::default(),
    ));
    if let Some((publisher, settings)) = events {
        executor = executor.with_events(publisher, settings);
    }
    Arc::new(Gateway::new(
        Arc::new(executor),
        backends.clone(),
        GatewaySettings::default(),
    ))
}

/// Runs `tenant`'s install of the emitter (GET /api/emit) on `gateway`.
pub async fn run_emitter(gateway: &Gateway, tenant: &str) -> Outcome {
    run_emit(gateway, tenant, EMITTER).await
}

/// Runs `tenant`'s install of `extension` (GET /api/emit) on `gateway`.
pub async fn run_emit(gateway: &Gateway, tenant: &str, extension: &str) -> Outcome {
    let install = gateway
        .backends()
        .registry
        .get_install(tenant, extension)
        .await
        .unwrap()
        .unwrap();
    gateway
        .run_internal(InternalCall {
            install: &install,
            method: "GET",
            path: "/api/emit",
            body: None,
            headers: &[],
            route: Route::Event,
            event_hops: 0,
        })
        .await
}
