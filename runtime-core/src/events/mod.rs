//! Events: what an event is, where it comes from (EventBridge directly, an SQS
//! queue fed by an EventBridge rule, an extension's `emit`, the local bus of
//! `up`) and its delivery to the installs subscribed to its topic in its tenant.
//!
//! An event names its tenant; fan-out never leaves that tenant. Each
//! subscription runs through the execute pipeline (POST to the handler path with
//! the event as the JSON body, a fresh request id, no user, the install's grants
//! and quotas). Delivery is at least once, made effectively once per (event id,
//! subscription) by the idempotency store. The delivery itself runs through the
//! gateway (`gateway::Dispatcher`); this module is what the host and the stores
//! share: the event, its publishers, topics and dead letters.

pub mod dead_letter;
pub mod publish;
pub mod topics;

use serde::{Deserialize, Serialize};

pub use dead_letter::{DeadLetter, DeadLetterSink, FileDeadLetters};
pub use publish::new_event;
pub use publish::{EventPublisher, LocalBus};
pub use topics::HostTopics;

/// Largest event data, serialized (EventBridge allows 256 KiB per entry; a
/// handler body should stay well below the execute body limit).
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Longest topic (the manifest's limit).
pub const MAX_TOPIC_CHARS: usize = 256;
/// Longest event id.
pub const MAX_ID_CHARS: usize = 128;
/// Longest tenant id.
pub const MAX_TENANT_CHARS: usize = 256;
/// Longest chain of extension emits: an event emitted while handling an event
/// of depth n has depth n + 1, and an emit past this depth is refused
/// (`too-many`), so an extension emitting a topic it subscribes to stops.
pub const MAX_EVENT_HOPS: u32 = 8;
/// Source prefix of extensions' events (`alga.extension/<extension id>`); no
/// other sender may use it (the EventBridge rule and IAM keep it the runner's).
pub const EXTENSION_SOURCE_PREFIX: &str = "alga.extension/";
/// Field of an extension event's EventBridge `detail` carrying its depth (the
/// host writes it over whatever the guest's payload says; read back and removed
/// from `data` by [`Event::from_eventbridge`]).
pub const HOPS_FIELD: &str = "alga_event_hops";
/// Field of `detail` the host always writes an extension event's tenant into.
pub const TENANT_ID_FIELD: &str = "tenant_id";

/// One event for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event (EventBridge's `id`); the deduplication key.
    pub id: String,
    /// The tenant the event belongs to.
    #[serde(rename = "tenant_id")]
    pub tenant: String,
    /// The topic subscriptions match on (exactly, case-sensitive).
    pub topic: String,
    /// Who sent it (EventBridge `source`, or `alga.extension/<id>`).
    pub source: String,
    /// RFC 3339 time of the event.
    pub time: String,
    /// The event's data (EventBridge `detail`): a JSON object.
    pub data: serde_json::Value,
    /// Depth in a chain of extension emits: 0 for the host app's events, n + 1
    /// for an event an extension emitted while handling one of depth n.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why an event was refused; never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid_event: {0}")]
pub struct InvalidEvent(pub String);

/// Where the tenant and the topic are read from in an EventBridge event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields {
    /// Field of `detail` naming the tenant (default `tenant_id`).
    pub tenant_field: String,
    /// Field of `detail` naming the topic; `None` = the event's `detail-type`.
    pub topic_field: Option<String>,
}

impl Default for EventFields {
    fn default() -> Self {
        EventFields {
            tenant_field: "tenant_id".into(),
            topic_field: None,
        }
    }
}

impl EventFields {
    /// From `ALGA_EVENTS_TENANT_FIELD` and `ALGA_EVENTS_TOPIC_FIELD`.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        EventFields {
            tenant_field: var("ALGA_EVENTS_TENANT_FIELD").unwrap_or_else(|| "tenant_id".into()),
            topic_field: var("ALGA_EVENTS_TOPIC_FIELD"),
        }
    }
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), InvalidEvent> {
    match value.chars().count() {
        0 => Err(InvalidEvent(format!("{what} is empty"))),
        n if n > max => Err(InvalidEvent(format!(
            "{what} has {n} characters; at most {max} are allowed"
        ))),
        _ if value.chars().any(char::is_control) => {
            Err(InvalidEvent(format!("{what} contains control characters")))
        }
        _ => Ok(()),
    }
}

impl Event {
    /// Checks the limits every event must meet.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        check_len("id", &self.id, MAX_ID_CHARS)?;
        check_len("tenant", &self.tenant, MAX_TENANT_CHARS)?;
        check_len("topic", &self.topic, MAX_TOPIC_CHARS)?;
        if self.hops > MAX_EVENT_HOPS {
            return Err(InvalidEvent(format!(
                "hop_limit: the event is {} emits deep; at most {MAX_EVENT_HOPS} are allowed",
                self.hops
            )));
        }
        if !self.data.is_object() {
            return Err(InvalidEvent("data must be a JSON object".into()));
        }
        let size = self.data.to_string().len();
        if size > MAX_DATA_BYTES {
            return Err(InvalidEvent(format!(
                "data is {size} bytes; at most {MAX_DATA_BYTES} are allowed"
            )));
        }
        Ok(())
    }

    /// Whether an extension emitted it (its source is `alga.extension/...`).
    pub fn is_from_extension(&self) -> bool {
        self.source.starts_with(EXTENSION_SOURCE_PREFIX)
    }

    /// The EventBridge `detail` of an event put on the bus: its data, plus the
    /// depth of an extension's event (which [`Event::from_eventbridge`] reads back).
    pub fn eventbridge_detail(&self) -> serde_json::Value {
        let mut detail = self.data.clone();
        if self.is_from_extension()
            && let Some(obj) = detail.as_object_mut()
        {
            obj.insert(HOPS_FIELD.into(), self.hops.into());
        }
        detail
    }

    /// Reads an EventBridge event (`id`, `detail-type`, `source`, `time`,
    /// `detail`), taking tenant and topic where `fields` says.
    ///
    /// An extension's event (source `alga.extension/...`) is read only from the
    /// fields the host wrote over the guest's payload: the tenant from the
    /// configured field, which must agree with `tenant_id` (the host writes
    /// both; a runner configured with another field than this function writes
    /// only `tenant_id`, and a guest's own value in the other field is then
    /// refused, never believed); the topic from `detail-type`; the depth from
    /// [`HOPS_FIELD`].
    pub fn from_eventbridge(
        value: &serde_json::Value,
        fields: &EventFields,
    ) -> Result<Event, InvalidEvent> {
        let text = |v: &serde_json::Value, name: &str| -> Result<String, InvalidEvent> {
            v.get(name)
                .and_then(|x| x.as_str())
                .map(String::from)
                .ok_or_else(|| InvalidEvent(format!("{name} is missing or not a string")))
        };
        let mut detail = value
            .get("detail")
            .filter(|d| d.is_object())
            .cloned()
            .ok_or_else(|| InvalidEvent("detail is missing or not an object".into()))?;
        let source = text(value, "source").unwrap_or_default();
        let from_extension = source.starts_with(EXTENSION_SOURCE_PREFIX);
        let topic = match &fields.topic_field {
            _ if from_extension => text(value, "detail-type")?,
            None => text(value, "detail-type")?,
            Some(field) => text(&detail, field).map_err(|_| {
                InvalidEvent(format!(
                    "detail.{field} (the topic) is missing or not a string"
                ))
            })?,
        };
        let tenant = text(&detail, &fields.tenant_field).map_err(|_| {
            InvalidEvent(format!(
                "detail.{} (the tenant) is missing or not a string",
                fields.tenant_field
            ))
        })?;
        let mut hops = 0;
        if from_extension {
            if text(&detail, TENANT_ID_FIELD).ok().as_deref() != Some(tenant.as_str()) {
                return Err(InvalidEvent(format!(
                    "an extension's event names its tenant in detail.{} and detail.{TENANT_ID_FIELD} differently",
                    fields.tenant_field
                )));
            }
            let obj = detail.as_object_mut().expect("checked above");
            hops = match obj.remove(HOPS_FIELD) {
                // Written by every emit; an extension's event is at least one deep.
                None => 1,
                Some(n) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| InvalidEvent(format!("detail.{HOPS_FIELD} is not a count")))?,
            };
        }
        let event = Event {
            id: text(value, "id")?,
            tenant,
            topic,
            source,
            time: text(value, "time").unwrap_or_default(),
            data: detail,
            hops,
        };
        event.validate()?;
        Ok(event)
    }

    /// The body a handler receives: the event as JSON.
    pub fn handler_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event serializes")
    }
}

/// RFC 3339 UTC now, to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A fresh random event id.
pub fn new_event_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source");
    format!("evt-{}", hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bridge() -> serde_json::Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": "ticket.created",
            "source": "alga.psa", "time": "2026-11-22T10:00:00Z",
            "detail": {"tenant_id": "t1", "ticket": 42}
        })
    }

    #[test]
    fn reads_eventbridge_events() {
        let e = Event::from_eventbridge(&bridge(), &EventFields::default()).unwrap();
        assert_eq!((e.id.as_str(), e.tenant.as_str()), ("e-1", "t1"));
        assert_eq!(e.topic, "ticket.created");
        assert_eq!(e.data["ticket"], 42);
        let body: serde_json::Value = serde_json::from_slice(&e.handler_body()).unwrap();
        assert_eq!(body["tenant_id"], "t1");
        assert_eq!(body["data"]["ticket"], 42);

        let mut v = bridge();
        v["detail"]["kind"] = json!("invoice.paid");
        v["detail"]["tenant"] = json!("t9");
        let fields = EventFields {
            tenant_field: "tenant".into(),
            topic_field: Some("kind".into()),
        };
        let e = Event::from_eventbridge(&v, &fields).unwrap();
        assert_eq!(
            (e.tenant.as_str(), e.topic.as_str()),
            ("t9", "invoice.paid")
        );
    }

    #[test]
    fn extension_events_are_read_only_from_host_written_fields() {
        let ext = |detail: serde_json::Value| {
            json!({
                "id": "e-2", "detail-type": "widget.made", "source": "alga.extension/x",
                "time": "2026-11-22T10:00:00Z", "detail": detail
            })
        };
        let org = EventFields {
            tenant_field: "org".into(),
            topic_field: Some("kind".into()),
        };
        // The host wrote both fields and the depth: read back, depth removed.
        let e = Event::from_eventbridge(
            &ext(json!({"org": "t1", "tenant_id": "t1", "kind": "ticket.created", HOPS_FIELD: 3})),
            &org,
        )
        .unwrap();
        assert_eq!((e.tenant.as_str(), e.hops), ("t1", 3));
        assert_eq!(
            e.topic, "widget.made",
            "the topic is detail-type, never the payload's"
        );
        assert!(e.data.get(HOPS_FIELD).is_none());
        assert_eq!(e.eventbridge_detail()[HOPS_FIELD], 3);
        // A guest's own value in the configured field disagrees with tenant_id.
        let spoofed = ext(json!({"org": "t2", "tenant_id": "t1"}));
        assert!(Event::from_eventbridge(&spoofed, &org).is_err());
        // Past the hop bound: refused.
        let deep = ext(json!({"org": "t1", "tenant_id": "t1", HOPS_FIELD: MAX_EVENT_HOPS + 1}));
        assert!(Event::from_eventbridge(&deep, &org).is_err());
        // The host app's events keep their data as it is, at depth 0.
        let mut host = bridge();
        host["detail"][HOPS_FIELD] = json!(5);
        let e = Event::from_eventbridge(&host, &EventFields::default()).unwrap();
        assert_eq!((e.hops, &e.data[HOPS_FIELD]), (0, &json!(5)));
    }

    #[test]
    fn refuses_events_without_tenant_topic_or_object_detail() {
        let f = EventFields::default();
        for (path, value) in [
            ("detail", json!("text")),
            ("id", json!(7)),
            ("detail-type", json!("")),
            ("detail-type", json!("x".repeat(MAX_TOPIC_CHARS + 1))),
            ("id", json!("a\nb")),
        ] {
            let mut v = bridge();
            v[path] = value;
            assert!(Event::from_eventbridge(&v, &f).is_err(), "{path}");
        }
        let mut v = bridge();
        v["detail"].as_object_mut().unwrap().remove("tenant_id");
        let e = Event::from_eventbridge(&v, &f).unwrap_err();
        assert!(e.0.contains("detail.tenant_id"), "{e}");
        let mut v = bridge();
        v["detail"]["blob"] = json!("x".repeat(MAX_DATA_BYTES));
        assert!(
            Event::from_eventbridge(&v, &f)
                .unwrap_err()
                .0
                .contains("bytes")
        );
    }
}
