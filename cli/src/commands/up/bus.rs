//! `up`'s event bus: the guests' `emit` and `POST /__alga/events` (what
//! `alga-lambda emit` calls) queue events on the local bus; one task delivers
//! them through the events dispatcher, as the events Lambda does on AWS.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use runtime_core::backends::Backends;
use runtime_core::events::{Event, LocalBus, new_event};
use runtime_core::gateway::Gateway;
use runtime_core::gateway::{Dispatcher, RetryPolicy};

/// The local route events are posted to.
pub const EVENTS_PATH: &str = "/__alga/events";

/// Starts delivering the local bus's events; `None` when the bus is not local.
pub fn start(backends: &Backends, gateway: Arc<Gateway>) -> Option<Arc<LocalBus>> {
    let bus = backends.local_bus.clone()?;
    let rx = bus.take_receiver()?;
    let dispatcher = Arc::new(
        Dispatcher::new(
            gateway,
            backends.dead_letters.clone(),
            RetryPolicy::from_env(),
        )
        .with_host_topics(runtime_core::events::HostTopics::from_env()),
    );
    tokio::spawn(runtime_core::gateway::drain_local_bus(rx, dispatcher));
    Some(bus)
}

fn json(status: u16, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("a valid response")
}

fn refused(status: u16, code: &str, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({ "error": code, "message": message.to_string() }),
    )
}

/// `POST /__alga/events` with `{"topic", "data"?, "tenant_id"?, "id"?}` from
/// this machine only: queues the event (tenant defaults to `up`'s), answers 202
/// with its id.
pub fn post(
    bus: Option<&LocalBus>,
    body: &[u8],
    peer: SocketAddr,
    default_tenant: &str,
) -> Response<Full<Bytes>> {
    // The dev bus speaks for any tenant, so only local processes may use it.
    if !peer.ip().is_loopback() {
        return refused(
            403,
            "forbidden",
            "the local event bus only takes loopback callers",
        );
    }
    let Some(bus) = bus else {
        return refused(503, "unavailable", "no local event bus runs");
    };
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return refused(400, "malformed_json", e),
    };
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(String::from);
    let Some(topic) = text("topic") else {
        return refused(400, "invalid_event", "topic is required");
    };
    let tenant = text("tenant_id").unwrap_or_else(|| default_tenant.to_string());
    let mut data = value
        .get("data")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(obj) = data.as_object_mut() {
        obj.insert(
            "tenant_id".into(),
            serde_json::Value::String(tenant.clone()),
        );
    }
    let mut event: Event = new_event(&tenant, &topic, "alga.cli", data);
    if let Some(id) = text("id") {
        event.id = id;
    }
    if let Err(e) = event.validate() {
        return refused(400, "invalid_event", e.0);
    }
    match bus.queue(event.clone()) {
        Ok(()) => json(
            202,
            serde_json::json!({ "event_id": event.id, "tenant_id": tenant, "topic": topic }),
        ),
        Err(e) => refused(503, "unavailable", e),
    }
}
