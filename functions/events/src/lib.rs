//! The events Lambda: delivers (a) EventBridge events invoked directly, (b) SQS
//! batches fed by an EventBridge rule, reporting partial failures
//! (`batchItemFailures`), to the installs subscribed to each event's topic in
//! its tenant, through [`runtime_core::gateway::Dispatcher`]; and (c) fires the
//! schedule an EventBridge Scheduler firing message names
//! ([`runtime_core::gateway::Gateway::fire_message`]). It only translates trigger
//! payloads; `alga-lambda up` runs the same dispatcher on its local bus and the
//! same firing from its cron.

use std::sync::Arc;

mod sqs;

use lambda_runtime::{LambdaEvent, service_fn};
use runtime_core::RuntimeConfig;
use runtime_core::events::{Event, EventFields};
use runtime_core::gateway::{DeliveryStatus, Dispatcher, Report, RetryPolicy};
use runtime_core::gateway::{Gateway, GatewaySettings};
use runtime_core::schedule::{FireError, ScheduleFiring};
use serde_json::{Value, json};
pub use sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

/// The function's state, built once per process.
pub struct EventsFunction {
    gateway: Arc<Gateway>,
    dispatcher: Dispatcher,
    fields: EventFields,
}

impl EventsFunction {
    /// Builds the gateway and the dispatcher from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = fn_common::Environment::load().await?;
        let backends = fn_common::backends_in(&env).await?;
        let gateway = Gateway::build(
            backends,
            &RuntimeConfig::from_lookup(|k| env.get(k))?,
            GatewaySettings::from_lookup(|k| env.get(k))?,
        )?;
        Ok(Self::new(
            Arc::new(gateway),
            RetryPolicy::from_env(),
            EventFields::from_env(),
        ))
    }

    /// A function delivering through `gateway`.
    pub fn new(gateway: Arc<Gateway>, policy: RetryPolicy, fields: EventFields) -> Self {
        let dead_letters = gateway.backends().dead_letters.clone();
        EventsFunction {
            dispatcher: Dispatcher::new(gateway.clone(), dead_letters, policy)
                .with_host_topics(runtime_core::events::HostTopics::from_env()),
            gateway,
            fields,
        }
    }

    /// Handles one invocation payload of any trigger.
    pub async fn handle(&self, payload: Value) -> anyhow::Result<Value> {
        if payload.get("schedule_id").is_some() {
            return self.schedule_firing(&payload).await;
        }
        if payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| anyhow::anyhow!("invalid SQS event: {e}"))?;
            return Ok(serde_json::to_value(self.sqs_batch(batch).await)?);
        }
        if payload.get("detail-type").is_some() {
            let event = Event::from_eventbridge(&payload, &self.fields)?;
            let report = self.dispatcher.deliver(&event).await?;
            return Ok(summary(&event, &report));
        }
        anyhow::bail!("unrecognised payload: expected an EventBridge event or an SQS batch")
    }

    /// Fires the schedule a firing message names. A message naming nothing
    /// runnable (malformed, deleted, disabled) is dropped with its reason; a
    /// failing backend is an error, so Lambda's asynchronous retries (which
    /// EventBridge Scheduler's invocations get) try again.
    pub async fn schedule_firing(&self, payload: &Value) -> anyhow::Result<Value> {
        let firing = serde_json::to_vec(payload)
            .map_err(|e| FireError::Malformed(e.to_string()))
            .and_then(|bytes| ScheduleFiring::from_json(&bytes));
        let fired = match &firing {
            Ok(firing) => self.gateway.fire_message(firing).await,
            Err(e) => Err(e.clone()),
        };
        let schedule_id = payload.get("schedule_id").cloned().unwrap_or(Value::Null);
        match fired {
            Ok(outcome) => {
                let env = &outcome.envelope;
                let error = env.error.as_deref();
                tracing::info!(
                    target: "alga::schedule",
                    schedule = %schedule_id,
                    status = env.status,
                    error = error.unwrap_or(""),
                    "schedule fired"
                );
                if error.is_some_and(|e| e.starts_with("backend_unavailable")) {
                    anyhow::bail!("schedule {schedule_id}: {}", error.unwrap_or_default());
                }
                Ok(json!({
                    "schedule_id": schedule_id,
                    "request_id": outcome.metrics.request_id,
                    "status": "fired",
                    "http_status": env.status,
                    "error": error,
                }))
            }
            Err(e) if e.retryable() => anyhow::bail!("schedule {schedule_id}: {e}"),
            Err(e) => {
                tracing::warn!(target: "alga::schedule", schedule = %schedule_id, code = e.code(), error = %e, "firing dropped");
                Ok(json!({
                    "schedule_id": schedule_id,
                    "status": "dropped",
                    "code": e.code(),
                    "detail": e.to_string(),
                }))
            }
        }
    }

    /// Delivers each message's event; the messages to see again are reported.
    pub async fn sqs_batch(&self, batch: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in batch.records {
            if !self.sqs_message(&message).await {
                response.batch_item_failures.push(BatchItemFailure {
                    item_identifier: message.message_id.clone(),
                });
            }
        }
        response
    }

    /// Whether the message is done with (delivered, duplicate or dead-lettered).
    async fn sqs_message(&self, message: &SqsMessage) -> bool {
        let id = message.message_id.as_str();
        let event = match serde_json::from_str::<Value>(&message.body) {
            Ok(v) => Event::from_eventbridge(&v, &self.fields),
            Err(_) => Err(runtime_core::events::InvalidEvent(
                "the message body is not JSON".into(),
            )),
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                // Left on the queue: its redrive policy moves it to the queue's DLQ.
                tracing::error!(target: "alga::events", message_id = id, error = %e, "message refused");
                return false;
            }
        };
        let attempt = message.receive_count();
        match self.dispatcher.deliver_attempt(&event, attempt).await {
            Ok(report) => {
                log_report(&event, &report);
                report.settled()
            }
            Err(e) => {
                tracing::error!(target: "alga::events", event = %event.id, error = %e, "dispatch failed");
                false
            }
        }
    }
}

fn log_report(event: &Event, report: &Report) {
    for d in &report.deliveries {
        tracing::info!(
            target: "alga::events",
            event = %event.id,
            tenant = %event.tenant,
            topic = %event.topic,
            extension = %d.subscription.extension_id,
            handler = %d.subscription.handler,
            status = ?d.status,
            "delivery"
        );
    }
}

/// A short JSON account of one event's deliveries (the direct invocation's result).
fn summary(event: &Event, report: &Report) -> Value {
    log_report(event, report);
    let deliveries: Vec<Value> = report
        .deliveries
        .iter()
        .map(|d| {
            let (status, detail) = match &d.status {
                DeliveryStatus::Delivered(s) => ("delivered", json!(s)),
                DeliveryStatus::Duplicate => ("duplicate", Value::Null),
                DeliveryStatus::Skipped => ("skipped", Value::Null),
                DeliveryStatus::Failed { reason, .. } => ("failed", json!(reason)),
                DeliveryStatus::DeadLettered(reason) => ("dead_lettered", json!(reason)),
            };
            json!({
                "extension_id": d.subscription.extension_id,
                "handler": d.subscription.handler,
                "status": status,
                "detail": detail,
            })
        })
        .collect();
    json!({ "event_id": event.id, "tenant_id": event.tenant, "topic": event.topic, "deliveries": deliveries })
}

/// Runs the function under the Lambda runtime.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    fn_common::init_tracing();
    let function = Arc::new(EventsFunction::from_env().await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "init failed");
        e
    })?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            function
                .handle(event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
