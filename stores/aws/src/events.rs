//! Events on AWS: extensions' events go to EventBridge (`PutEvents`), dead
//! letters to an SQS queue with their reason as a message attribute.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::MessageAttributeValue;

use super::error::map_sdk;
use runtime_core::events::{DeadLetter, DeadLetterSink, Event, EventPublisher};
use runtime_core::store::StoreError;

/// Publishes events on an EventBridge bus: `source` and `detail-type` (the
/// topic) as the event says, `detail` = its data (which carries the tenant) plus
/// an extension event's depth ([`Event::eventbridge_detail`]).
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgePublisher {
    /// A publisher on `bus` (a name or ARN).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgePublisher {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, event: &Event) -> Result<String, StoreError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&event.source)
            .detail_type(&event.topic)
            .detail(event.eventbridge_detail().to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| map_sdk("PutEvents", &e))?;
        // PutEvents answers 200 with per-entry failures.
        let first = out.entries().first();
        match first.and_then(|e| e.event_id()) {
            Some(id) if out.failed_entry_count() == 0 => Ok(id.to_string()),
            _ => {
                let code = first.and_then(|e| e.error_code()).unwrap_or("unknown");
                let message = first.and_then(|e| e.error_message()).unwrap_or("");
                let detail = format!("PutEvents entry failed: {code} {message}");
                Err(if code.contains("Throttl") || code.contains("Internal") {
                    StoreError::Unavailable(detail)
                } else {
                    StoreError::Internal(detail)
                })
            }
        }
    }
}

/// Dead letters as SQS messages: the body is the [`DeadLetter`] JSON; the
/// reason, tenant and extension are also message attributes for filtering.
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    /// Dead letters to the queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetters {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn text_attribute(value: &str) -> Result<MessageAttributeValue, StoreError> {
    // Attribute values must be non-empty; 256 characters is plenty for filtering.
    let value: String = value.chars().take(256).collect();
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(if value.is_empty() { "-".into() } else { value })
        .build()
        .map_err(|e| StoreError::Internal(format!("message attribute: {e}")))
}

#[async_trait]
impl DeadLetterSink for SqsDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let body = serde_json::to_string(letter)
            .map_err(|e| StoreError::Internal(format!("dead letter: {e}")))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("reason", text_attribute(&letter.reason)?)
            .message_attributes("tenant", text_attribute(&letter.event.tenant)?)
            .message_attributes("extension", text_attribute(&letter.extension_id)?)
            .send()
            .await
            .map_err(|e| map_sdk("SendMessage (dead letter)", &e))?;
        Ok(())
    }
}

/// Dead letters when no queue is configured: refused, so the event is not
/// acknowledged and the trigger's own retry/redrive keeps it.
#[derive(Clone, Debug, Default)]
pub struct NoDeadLetters;

#[async_trait]
impl DeadLetterSink for NoDeadLetters {
    async fn send(&self, _letter: &DeadLetter) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            "ALGA_EVENTS_DLQ_URL is not set: no dead-letter queue".into(),
        ))
    }
}
