//! Fan-out of one event to its subscriptions, each run through the execute
//! pipeline. Every subscription is attempted whatever the others do; one that
//! succeeded is recorded in the idempotency store under (event id, extension,
//! handler), so a redelivered event runs only what has not succeeded yet.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Gateway, InternalCall, Route};
use crate::events::dead_letter::{DeadLetter, DeadLetterSink};
use crate::events::{Event, HostTopics, MAX_EVENT_HOPS, now_rfc3339};
use crate::execute::ExecError;
use crate::store::{Claim, RegistryError, StoreError, Subscription};

/// How long a finished delivery is remembered (EventBridge retries for up to
/// 24 hours; SQS keeps messages for up to 14 days, so queues with a longer
/// retention should use a shorter `maxReceiveCount` × visibility timeout).
pub const DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);

/// Attempts and backoff for deliveries retried in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per subscription before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// From `ALGA_EVENTS_MAX_ATTEMPTS` and `ALGA_EVENTS_BACKOFF_MS`.
    pub fn from_env() -> Self {
        let d = RetryPolicy::default();
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        RetryPolicy {
            max_attempts: num("ALGA_EVENTS_MAX_ATTEMPTS")
                .map(|n| n.clamp(1, 100) as u32)
                .unwrap_or(d.max_attempts),
            first_backoff: num("ALGA_EVENTS_BACKOFF_MS")
                .map(|ms| Duration::from_millis(ms.min(60_000)))
                .unwrap_or(d.first_backoff),
        }
    }
}

/// What happened to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// The handler answered with this (2xx/3xx) status.
    Delivered(u16),
    /// An earlier delivery of this event already succeeded.
    Duplicate,
    /// The install went away or is disabled since the subscription was read.
    Skipped,
    /// The attempt failed; `retryable` says whether another attempt may succeed.
    Failed {
        /// The error code or the handler's status, with detail.
        reason: String,
        /// Worth another attempt (5xx, timeouts, backend trouble; never a quota
        /// refusal, which is dead-lettered at once).
        retryable: bool,
    },
    /// Given up and kept as a dead letter with its reason.
    DeadLettered(String),
}

/// One subscription's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The subscription.
    pub subscription: Subscription,
    /// What happened.
    pub status: DeliveryStatus,
}

/// The results for one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One per subscription.
    pub deliveries: Vec<Delivery>,
}

impl Report {
    /// Subscriptions still worth another attempt.
    pub fn retryable(&self) -> impl Iterator<Item = &Delivery> {
        self.deliveries.iter().filter(|d| {
            matches!(
                d.status,
                DeliveryStatus::Failed {
                    retryable: true,
                    ..
                }
            )
        })
    }

    /// Whether nothing is left to retry.
    pub fn settled(&self) -> bool {
        self.retryable().next().is_none()
    }
}

/// Why an event could not be dispatched at all (retry the whole event).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The registry could not list the subscriptions.
    #[error("backend_unavailable: {0}")]
    Registry(#[from] RegistryError),
    /// A dead letter could not be kept, so the event must not be acknowledged.
    #[error("backend_unavailable: dead letter: {0}")]
    DeadLetter(StoreError),
}

/// Delivers events to subscriptions. One per process.
pub struct Dispatcher {
    gateway: Arc<Gateway>,
    dead_letters: Arc<dyn DeadLetterSink>,
    policy: RetryPolicy,
    host_topics: HostTopics,
}

fn dedup_key(event: &Event, sub: &Subscription) -> String {
    let mut h = Sha256::new();
    for part in [&event.id, &sub.extension_id, &sub.handler] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("event:{}", hex::encode(h.finalize()))
}

impl Dispatcher {
    /// A dispatcher running handlers on `gateway`.
    pub fn new(
        gateway: Arc<Gateway>,
        dead_letters: Arc<dyn DeadLetterSink>,
        policy: RetryPolicy,
    ) -> Self {
        Dispatcher {
            gateway,
            dead_letters,
            policy,
            host_topics: HostTopics::default(),
        }
    }

    /// Reserves these topics for the host app (default [`HostTopics::default`];
    /// processes read `ALGA_EVENTS_HOST_TOPICS` with [`HostTopics::from_env`]).
    pub fn with_host_topics(mut self, host_topics: HostTopics) -> Self {
        self.host_topics = host_topics;
        self
    }

    /// Why an event must not be delivered at all, whatever reached the bus: an
    /// extension's event on a host topic (same-tenant spoofing), or one past the
    /// emit-chain bound. Emit refuses both first; this is the second wall.
    fn refusal(&self, event: &Event) -> Option<&'static str> {
        if event.is_from_extension() && self.host_topics.reserves(&event.topic) {
            return Some("reserved_topic");
        }
        if event.hops > MAX_EVENT_HOPS {
            return Some("hop_limit");
        }
        None
    }

    /// The retry policy in force.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// One attempt at every subscription of `event` not yet delivered. A
    /// refused event (see `refusal`) reaches no subscription: the report is
    /// empty, so it is settled and never retried.
    pub async fn attempt(&self, event: &Event) -> Result<Report, DispatchError> {
        if let Some(code) = self.refusal(event) {
            tracing::warn!(
                target: "alga::events",
                event = %event.id,
                tenant = %event.tenant,
                topic = %event.topic,
                source = %event.source,
                hops = event.hops,
                code,
                "event refused"
            );
            return Ok(Report::default());
        }
        let subs = self
            .gateway
            .backends()
            .registry
            .subscriptions(&event.tenant, &event.topic)
            .await?;
        let mut report = Report::default();
        for sub in subs {
            let status = self.attempt_one(event, &sub).await;
            report.deliveries.push(Delivery {
                subscription: sub,
                status,
            });
        }
        Ok(report)
    }

    async fn attempt_one(&self, event: &Event, sub: &Subscription) -> DeliveryStatus {
        // Defence in depth: the subscription names its tenant; it must be the event's.
        if sub.tenant != event.tenant {
            return DeliveryStatus::Skipped;
        }
        let backends = self.gateway.backends();
        let install = match backends
            .registry
            .get_install(&event.tenant, &sub.extension_id)
            .await
        {
            Ok(Some(i)) if i.enabled => i,
            Ok(_) => return DeliveryStatus::Skipped,
            Err(e) => return failed(format!("backend_unavailable: registry: {e}"), true),
        };
        let key = dedup_key(event, sub);
        let claim_ttl = self.gateway.executor().max_timeout() + Duration::from_secs(30);
        match backends
            .idempotency
            .claim(&event.tenant, &key, claim_ttl)
            .await
        {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Completed(_)) => return DeliveryStatus::Duplicate,
            Ok(Claim::InProgress) => {
                return failed(
                    "in_progress: another delivery of this event runs".into(),
                    true,
                );
            }
            Err(e) => return failed(format!("backend_unavailable: idempotency: {e}"), true),
        }
        let body = event.handler_body();
        let outcome = self
            .gateway
            .run_internal(InternalCall {
                install: &install,
                method: "POST",
                path: &sub.handler,
                body: Some(&body),
                headers: &[],
                route: Route::Event,
                event_hops: event.hops,
            })
            .await;
        let env = &outcome.envelope;
        let status = match &env.error {
            None if env.status < 400 => {
                let record = env.status.to_string();
                if let Err(e) = backends
                    .idempotency
                    .complete(&event.tenant, &key, record.as_bytes(), DEDUP_TTL)
                    .await
                {
                    // The handler ran; a redelivery may run it again (at least once).
                    tracing::warn!(event = %event.id, error = %e, "delivery not recorded");
                }
                return DeliveryStatus::Delivered(env.status);
            }
            // A quota refusal is final for this delivery: retrying within the
            // window only spends more of the quota (and an emit loop would keep
            // hammering it), so it goes to the dead letters at once.
            Some(_) if matches!(outcome.error, Some(ExecError::QuotaExceeded { .. })) => {
                failed(env.error.clone().unwrap_or_default(), false)
            }
            Some(error) => failed(error.clone(), !matches!(env.status, 400..=428 | 430..=499)),
            None => failed(
                format!("handler answered {}", env.status),
                env.status >= 500 || env.status == 429 || env.status == 408,
            ),
        };
        if let Err(e) = backends.idempotency.release(&event.tenant, &key).await {
            tracing::warn!(event = %event.id, error = %e, "delivery claim not released");
        }
        status
    }

    /// Delivers with retries in this process (direct EventBridge invocations,
    /// the local bus): only the failed subscriptions are retried, with backoff,
    /// then dead-lettered. `Ok` means every subscription is settled.
    pub async fn deliver(&self, event: &Event) -> Result<Report, DispatchError> {
        let mut report = self.attempt(event).await?;
        self.dead_letter_permanent(event, &mut report, 1).await?;
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1;
        while !report.settled() && attempt < self.policy.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
            for d in &mut report.deliveries {
                if matches!(
                    d.status,
                    DeliveryStatus::Failed {
                        retryable: true,
                        ..
                    }
                ) {
                    d.status = self.attempt_one(event, &d.subscription).await;
                }
            }
            self.dead_letter_permanent(event, &mut report, attempt)
                .await?;
        }
        self.dead_letter_failures(event, &mut report, attempt)
            .await?;
        Ok(report)
    }

    /// One attempt of a queued delivery (`attempt` counts from 1, as SQS's
    /// `ApproximateReceiveCount` does). Failures on the last attempt, and
    /// failures no retry can fix, are dead-lettered; the report says whether
    /// the message should come back (some delivery still retryable).
    pub async fn deliver_attempt(
        &self,
        event: &Event,
        attempt: u32,
    ) -> Result<Report, DispatchError> {
        let mut report = self.attempt(event).await?;
        if attempt >= self.policy.max_attempts {
            self.dead_letter_failures(event, &mut report, attempt)
                .await?;
        } else {
            self.dead_letter_permanent(event, &mut report, attempt)
                .await?;
        }
        Ok(report)
    }

    /// Dead-letters every failure (the last attempt).
    async fn dead_letter_failures(
        &self,
        event: &Event,
        report: &mut Report,
        attempts: u32,
    ) -> Result<(), DispatchError> {
        self.dead_letter_where(event, report, attempts, |_| true)
            .await
    }

    /// Dead-letters the failures no retry can fix.
    async fn dead_letter_permanent(
        &self,
        event: &Event,
        report: &mut Report,
        attempts: u32,
    ) -> Result<(), DispatchError> {
        self.dead_letter_where(event, report, attempts, |retryable| !retryable)
            .await
    }

    async fn dead_letter_where(
        &self,
        event: &Event,
        report: &mut Report,
        attempts: u32,
        give_up: impl Fn(bool) -> bool,
    ) -> Result<(), DispatchError> {
        for d in &mut report.deliveries {
            if let DeliveryStatus::Failed { reason, retryable } = &d.status
                && give_up(*retryable)
            {
                let reason = reason.clone();
                self.send_dead_letter(event, &d.subscription, &reason, attempts)
                    .await?;
                d.status = DeliveryStatus::DeadLettered(reason);
            }
        }
        Ok(())
    }

    async fn send_dead_letter(
        &self,
        event: &Event,
        sub: &Subscription,
        reason: &str,
        attempts: u32,
    ) -> Result<(), DispatchError> {
        tracing::warn!(
            target: "alga::events",
            event = %event.id,
            tenant = %event.tenant,
            topic = %event.topic,
            extension = %sub.extension_id,
            handler = %sub.handler,
            attempts,
            reason,
            "delivery dead-lettered"
        );
        self.dead_letters
            .send(&DeadLetter {
                event: event.clone(),
                extension_id: sub.extension_id.clone(),
                handler: sub.handler.clone(),
                reason: reason.to_string(),
                attempts,
                failed_at: now_rfc3339(),
            })
            .await
            .map_err(DispatchError::DeadLetter)
    }
}

fn failed(reason: String, retryable: bool) -> DeliveryStatus {
    DeliveryStatus::Failed { reason, retryable }
}
