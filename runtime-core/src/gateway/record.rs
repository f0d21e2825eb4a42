//! After every invocation: one structured log line (JSON on Lambda, for
//! CloudWatch), which is the execution record, and, when the settings keep
//! them there too ([`ExecutionRecords::Table`]), a copy queued for the execution
//! log (written off the request path by the backends' batching writer).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::settings::ExecutionRecords;
use super::{Gateway, HttpReply};
use crate::execute::Outcome;
use crate::store::ExecutionRecord;

/// Which route served an invocation.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    /// `POST /v1/execute`.
    Execute,
    /// `ANY /api/ext/...`.
    Direct,
    /// A schedule firing.
    Schedule,
    /// An event delivered to a subscription.
    Event,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Execute => "execute",
            Route::Direct => "direct",
            Route::Schedule => "schedule",
            Route::Event => "event",
        }
    }
}

/// A request answered before any guest ran (refused, or replayed).
pub(super) struct Refused<'a> {
    pub route: Route,
    pub request_id: &'a str,
    pub tenant: &'a str,
    pub extension: &'a str,
    pub started: Instant,
}

/// The stable code of a reply made without running a guest: the `error` of its
/// JSON body (`code` or `code: message`), `replayed` for an idempotent replay.
fn reply_code(reply: &HttpReply) -> String {
    if reply.header("x-idempotent-replay").is_some() {
        return "replayed".into();
    }
    let error = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(String::from));
    match error {
        Some(e) => e.split(':').next().unwrap_or_default().trim().to_string(),
        None => "ok".into(),
    }
}

impl Gateway {
    /// Logs the one line of a request answered without running a guest, with the
    /// same fields as an invocation's line (no install or content hash yet).
    pub(super) fn log_refusal(&self, r: &Refused<'_>, reply: &HttpReply) {
        let code = reply_code(reply);
        tracing::info!(
            target: "alga::request",
            route = r.route.name(),
            request_id = r.request_id,
            tenant = r.tenant,
            extension = r.extension,
            install = "",
            content_hash = "",
            status = reply.status,
            outcome = code.as_str(),
            duration_ms = r.started.elapsed().as_secs_f64() * 1000.0,
            "refused"
        );
    }

    /// Logs one line for the invocation and queues its execution record for the
    /// execution log. A store failure is logged, never surfaced: the guest's
    /// response is already decided.
    pub(super) async fn record(
        &self,
        route: Route,
        tenant: &str,
        extension: &str,
        outcome: &Outcome,
    ) {
        let m = &outcome.metrics;
        let env = &outcome.envelope;
        tracing::info!(
            target: "alga::request",
            route = route.name(),
            request_id = m.request_id.as_deref().unwrap_or(""),
            tenant,
            extension,
            install = m.install_id.as_deref().unwrap_or(""),
            content_hash = m.content_hash.as_deref().unwrap_or(""),
            status = env.status,
            outcome = m.outcome,
            duration_ms = m.total.as_secs_f64() * 1000.0,
            load_ms = m.load.as_secs_f64() * 1000.0,
            run_ms = m.run.as_secs_f64() * 1000.0,
            peak_memory = m.peak_memory,
            host_calls = m.host_calls,
            // The full `code: detail` of a failure: callers may only see a generic
            // message (see `public_error`), operators find the detail here.
            error = env.error.as_deref().unwrap_or(""),
            "invocation"
        );
        for line in &outcome.logs {
            tracing::info!(
                target: "alga::guest",
                request_id = m.request_id.as_deref().unwrap_or(""),
                tenant,
                extension,
                level = ?line.level,
                source = %line.source,
                "{}",
                line.message
            );
        }
        if let Some(namespace) = &self.settings.emf_namespace {
            let ctx = super::emf::EmfContext {
                namespace: namespace.clone(),
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default(),
            };
            // EMF lines go to stdout as they are: CloudWatch extracts the metrics.
            for line in super::emf::outcome_lines(outcome, &ctx) {
                println!("{line}");
            }
        }
        if self.settings.execution_records == ExecutionRecords::Log {
            return;
        }
        let started_at_ms = SystemTime::now()
            .checked_sub(m.total)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let record = ExecutionRecord {
            request_id: m.request_id.clone().unwrap_or_default(),
            tenant: tenant.to_string(),
            extension: extension.to_string(),
            install_id: m.install_id.clone(),
            version: m.version.clone(),
            content_hash: m.content_hash.clone(),
            started_at_ms,
            duration_ms: m.total.as_millis() as u64,
            status: env.status,
            outcome: m.outcome.to_string(),
            error: env.error.clone(),
        };
        if let Err(e) = self
            .backends
            .executions
            .record(&record, self.settings.execution_ttl)
            .await
        {
            tracing::warn!(error = %e, request_id = %record.request_id, "execution record not stored");
        }
    }
}
