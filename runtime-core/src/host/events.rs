//! `alga:extension/events` (an alga-lambda addition): `emit(topic, payload)`
//! publishes an event for the calling install's tenant, gated by
//! `cap:events.emit` and bounded per invocation.
//!
//! The tenant is never the guest's to choose: it is the invocation's, and it is
//! written into the event's data (`tenant_id`) over anything the payload says,
//! so an extension cannot address another tenant's installs.

use std::sync::Arc;

use super::HostState;
use super::bindings::alga::extension::events::{self, EmitError};
use crate::capability::Capability;
use crate::events::publish::new_event;
use crate::events::{EventPublisher, MAX_DATA_BYTES};

/// Events one invocation may emit unless configured (`ALGA_EVENTS_EMIT_MAX`).
pub const DEFAULT_EMIT_MAX: u32 = 10;

/// Per-request emit state: where events go and how many were sent.
#[derive(Default)]
pub(crate) struct EmitState {
    publisher: Option<Arc<dyn EventPublisher>>,
    emitted: u32,
    max: u32,
}

impl HostState {
    /// Connects `emit` to a publisher, allowing `max` events this invocation.
    pub fn attach_events(&mut self, publisher: Arc<dyn EventPublisher>, max: u32) {
        self.events = EmitState {
            publisher: Some(publisher),
            emitted: 0,
            max,
        };
    }

    /// Events emitted so far.
    pub fn events_emitted(&self) -> u32 {
        self.events.emitted
    }
}

impl events::Host for HostState {
    async fn emit(
        &mut self,
        topic: String,
        payload: String,
    ) -> wasmtime::Result<Result<String, EmitError>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::EventsEmit) {
            return Ok(Err(EmitError::Denied));
        }
        let Some(publisher) = self.events.publisher.clone() else {
            return Ok(Err(EmitError::Unavailable));
        };
        if self.events.emitted >= self.events.max {
            return Ok(Err(EmitError::TooMany));
        }
        if payload.len() > MAX_DATA_BYTES {
            return Ok(Err(EmitError::InvalidPayload));
        }
        let Ok(serde_json::Value::Object(mut data)) = serde_json::from_str(&payload) else {
            return Ok(Err(EmitError::InvalidPayload));
        };
        let tenant = self.invocation.tenant_id.clone();
        data.insert(
            "tenant_id".into(),
            serde_json::Value::String(tenant.clone()),
        );
        let source = format!("alga.extension/{}", self.invocation.extension_id);
        let event = new_event(&tenant, &topic, &source, serde_json::Value::Object(data));
        if let Err(e) = event.validate() {
            return Ok(Err(if e.0.starts_with("topic") {
                EmitError::InvalidTopic
            } else {
                EmitError::InvalidPayload
            }));
        }
        // Counted before the call: a failing bus must not let a guest retry forever.
        self.events.emitted += 1;
        let result = match self.deadline {
            Some(deadline) => {
                match tokio::time::timeout_at(deadline.into(), publisher.publish(&event)).await {
                    Ok(r) => r,
                    Err(_) => return Ok(Err(EmitError::Unavailable)),
                }
            }
            None => publisher.publish(&event).await,
        };
        Ok(match result {
            Ok(id) => Ok(id),
            Err(e) => {
                self.logs.note(
                    super::logging::LogLevel::Warn,
                    format!("events: emit on {topic:?} failed: {e}"),
                );
                Err(EmitError::Unavailable)
            }
        })
    }
}
