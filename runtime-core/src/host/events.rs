//! `alga:extension/events` (an alga-lambda addition): `emit(topic, payload)`
//! publishes an event for the calling install's tenant, gated by
//! `cap:events.emit` and bounded per invocation, per tenant and per chain.
//!
//! The tenant is never the guest's to choose: it is the invocation's, and it is
//! written into the event's data (`tenant_id`, and the field the events function
//! reads it from, `ALGA_EVENTS_TENANT_FIELD`) over anything the payload says, so
//! an extension cannot address another tenant's installs. The host app's topics
//! are not the guest's either ([`HostTopics`]).
//!
//! Refusals keep the WIT's `emit-error` cases (guests built against it must
//! keep linking) and say which rule refused in a host note with a stable code:
//! `reserved_topic` (denied), `hop_limit` and `rate_limited` (too-many).

use std::sync::Arc;
use std::time::SystemTime;

use super::HostState;
use super::bindings::alga::extension::events::{self, EmitError};
use crate::capability::Capability;
use crate::events::publish::new_event;
use crate::events::{EventPublisher, HostTopics, MAX_DATA_BYTES, MAX_EVENT_HOPS, TENANT_ID_FIELD};
use crate::store::{QuotaCharge, QuotaKey, QuotaStore, QuotaWindow};

/// Events one invocation may emit unless configured (`ALGA_EVENTS_EMIT_MAX`).
pub const DEFAULT_EMIT_MAX: u32 = 10;
/// Events one tenant's extensions may emit per minute unless configured
/// (`ALGA_EVENTS_EMIT_PER_MINUTE`; 0 = unlimited).
pub const DEFAULT_EMIT_PER_MINUTE: u64 = 600;
/// The quota counter's "extension" part for the per-tenant emit rate: a name no
/// extension can have (`:` is not allowed in extension names), so it never
/// shares a counter with an install's invocation quota.
pub const EMIT_QUOTA_NAME: &str = "events:emit";

/// How guests may emit, for one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitSettings {
    /// Events one invocation may emit.
    pub max_per_invocation: u32,
    /// Events one tenant may emit per minute (a quota-store counter shared by
    /// every process, like the invocation quotas); 0 = unlimited.
    pub per_tenant_per_minute: u64,
    /// The `detail` field the events function reads the tenant from.
    pub tenant_field: String,
    /// Topics only the host app may send.
    pub host_topics: HostTopics,
}

impl Default for EmitSettings {
    fn default() -> Self {
        EmitSettings {
            max_per_invocation: DEFAULT_EMIT_MAX,
            per_tenant_per_minute: DEFAULT_EMIT_PER_MINUTE,
            tenant_field: TENANT_ID_FIELD.into(),
            host_topics: HostTopics::default(),
        }
    }
}

impl From<u32> for EmitSettings {
    /// The defaults with `max_per_invocation` events per invocation.
    fn from(max_per_invocation: u32) -> Self {
        EmitSettings {
            max_per_invocation,
            ..EmitSettings::default()
        }
    }
}

impl EmitSettings {
    /// From `ALGA_EVENTS_EMIT_MAX` (at most 100), `ALGA_EVENTS_EMIT_PER_MINUTE`,
    /// `ALGA_EVENTS_TENANT_FIELD` and `ALGA_EVENTS_HOST_TOPICS`.
    pub fn from_env() -> Self {
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let d = EmitSettings::default();
        EmitSettings {
            max_per_invocation: num("ALGA_EVENTS_EMIT_MAX")
                .map(|n| n.min(100) as u32)
                .unwrap_or(d.max_per_invocation),
            per_tenant_per_minute: num("ALGA_EVENTS_EMIT_PER_MINUTE")
                .unwrap_or(d.per_tenant_per_minute),
            tenant_field: crate::events::EventFields::from_env().tenant_field,
            host_topics: HostTopics::from_env(),
        }
    }
}

/// Per-request emit state: where events go and how many were sent.
#[derive(Default)]
pub(crate) struct EmitState {
    publisher: Option<Arc<dyn EventPublisher>>,
    settings: Arc<EmitSettings>,
    quotas: Option<Arc<dyn QuotaStore>>,
    /// Depth of the event this invocation handles (0: not an event delivery).
    hops: u32,
    emitted: u32,
}

/// What `emit` needs for one request.
pub struct EmitSetup {
    /// Where events go.
    pub publisher: Arc<dyn EventPublisher>,
    /// The emit bounds.
    pub settings: Arc<EmitSettings>,
    /// Counts the per-tenant emit rate (none: only the per-invocation bound).
    pub quotas: Option<Arc<dyn QuotaStore>>,
    /// Depth of the event this invocation delivers (0 for anything else).
    pub hops: u32,
}

impl EmitState {
    pub(crate) fn new(setup: EmitSetup) -> Self {
        EmitState {
            publisher: Some(setup.publisher),
            settings: setup.settings,
            quotas: setup.quotas,
            hops: setup.hops,
            emitted: 0,
        }
    }
}

impl HostState {
    /// Events emitted so far.
    pub fn events_emitted(&self) -> u32 {
        self.events.emitted
    }

    fn emit_refused(&mut self, code: &str, topic: &str, why: String) {
        let topic: String = topic.chars().take(256).collect();
        self.logs.note(
            super::logging::LogLevel::Warn,
            format!("events: {code}: emit on {topic:?} refused: {why}"),
        );
    }
}

/// Charges `tenant`'s per-minute emit counter: whether the emit may go ahead.
async fn charge_emit_rate(
    quotas: Option<Arc<dyn QuotaStore>>,
    limit: u64,
    tenant: &str,
) -> Result<bool, String> {
    let Some(quotas) = quotas.filter(|_| limit > 0) else {
        return Ok(true);
    };
    let key = QuotaKey::at(
        tenant,
        EMIT_QUOTA_NAME,
        QuotaWindow::Minute,
        SystemTime::now(),
    );
    match quotas.charge(&key, limit).await {
        Ok(QuotaCharge::Allowed { .. }) => Ok(true),
        Ok(QuotaCharge::Exhausted) => Ok(false),
        Err(e) => Err(e.to_string()),
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
        if self.events.emitted >= self.events.settings.max_per_invocation {
            return Ok(Err(EmitError::TooMany));
        }
        // The host app's topics are the host's: a same-tenant extension must not
        // forge `ticket.created` for the installs that trust it.
        if self.events.settings.host_topics.reserves(&topic) {
            self.emit_refused(
                "reserved_topic",
                &topic,
                "the topic is reserved for the host app".into(),
            );
            return Ok(Err(EmitError::Denied));
        }
        // An emit chain (an extension emitting what it, or another, subscribes
        // to) stops at a fixed depth instead of multiplying deliveries.
        let hops = self.events.hops.saturating_add(1);
        if hops > MAX_EVENT_HOPS {
            self.emit_refused(
                "hop_limit",
                &topic,
                format!("the event would be {hops} emits deep; at most {MAX_EVENT_HOPS}"),
            );
            return Ok(Err(EmitError::TooMany));
        }
        if payload.len() > MAX_DATA_BYTES {
            return Ok(Err(EmitError::InvalidPayload));
        }
        let Ok(serde_json::Value::Object(mut data)) = serde_json::from_str(&payload) else {
            return Ok(Err(EmitError::InvalidPayload));
        };
        let tenant = self.invocation.tenant_id.clone();
        // Both fields, over the payload's: `tenant_id` (what handlers read) and
        // the field the events function takes the tenant from.
        for field in [TENANT_ID_FIELD, self.events.settings.tenant_field.as_str()] {
            data.insert(field.into(), serde_json::Value::String(tenant.clone()));
        }
        let source = format!("alga.extension/{}", self.invocation.extension_id);
        let mut event = new_event(&tenant, &topic, &source, serde_json::Value::Object(data));
        event.hops = hops;
        if let Err(e) = event.validate() {
            return Ok(Err(if e.0.starts_with("topic") {
                EmitError::InvalidTopic
            } else {
                EmitError::InvalidPayload
            }));
        }
        // Counted before the call: a failing bus must not let a guest retry forever.
        self.events.emitted += 1;
        let limit = self.events.settings.per_tenant_per_minute;
        match charge_emit_rate(self.events.quotas.clone(), limit, &tenant).await {
            Ok(true) => {}
            Ok(false) => {
                self.emit_refused(
                    "rate_limited",
                    &topic,
                    format!("the tenant's {limit} events per minute are used up"),
                );
                return Ok(Err(EmitError::TooMany));
            }
            Err(e) => {
                self.emit_refused("backend_unavailable", &topic, format!("quotas: {e}"));
                return Ok(Err(EmitError::Unavailable));
            }
        }
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
