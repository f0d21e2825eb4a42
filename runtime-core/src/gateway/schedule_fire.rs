//! A schedule firing through the execute path (see `schedule::fire`).

use base64::Engine as _;

use super::record::Route;
use super::{Gateway, new_request_id};
use crate::execute::{Envelope, ExecError, ExecuteRequest, Metrics, Outcome, RoutingHeaders};
use crate::schedule::Schedule;

impl Gateway {
    /// Runs `schedule` as `/v1/execute` would run the equivalent request: the
    /// install's current bundle, grants and configuration, quotas, a fresh
    /// request id, no user, the payload as a JSON body; logged and recorded
    /// like every invocation (route `schedule`).
    pub async fn fire_schedule(&self, schedule: &Schedule) -> Outcome {
        let request_id = new_request_id();
        let outcome = match self.schedule_request(schedule, &request_id).await {
            Ok(req) => {
                let routing = RoutingHeaders {
                    tenant: Some(schedule.tenant.clone()),
                    extension: Some(schedule.extension_id.clone()),
                    request_id: Some(request_id),
                };
                self.executor.execute(&routing, &req).await
            }
            Err(e) => Outcome {
                envelope: Envelope::error(&e),
                logs: Vec::new(),
                metrics: Metrics {
                    outcome: e.code(),
                    request_id: Some(request_id),
                    tenant_id: Some(schedule.tenant.clone()),
                    extension_id: Some(schedule.extension_id.clone()),
                    install_id: Some(schedule.install_id.clone()),
                    ..Metrics::default()
                },
            },
        };
        self.record(
            Route::Schedule,
            &schedule.tenant,
            &schedule.extension_id,
            &outcome,
        )
        .await;
        outcome
    }

    async fn schedule_request(
        &self,
        schedule: &Schedule,
        request_id: &str,
    ) -> Result<ExecuteRequest, ExecError> {
        let install = self
            .backends
            .registry
            .get_install(&schedule.tenant, &schedule.extension_id)
            .await
            .map_err(|e| ExecError::BackendUnavailable(format!("registry: {e}")))?
            // The schedule belongs to this install id only: a reinstall under a new
            // id does not inherit the old install's schedules.
            .filter(|i| i.install_id == schedule.install_id)
            .ok_or_else(|| {
                ExecError::NotInstalled(format!(
                    "install {} of {} no longer exists",
                    schedule.install_id, schedule.extension_id
                ))
            })?;
        let mut headers = serde_json::Map::new();
        headers.insert("x-alga-schedule-id".into(), schedule.id.clone().into());
        let body_b64 = schedule.payload.as_ref().map(|p| {
            headers.insert("content-type".into(), "application/json".into());
            base64::engine::general_purpose::STANDARD.encode(p.as_bytes())
        });
        let req = serde_json::json!({
            "context": {
                "tenant_id": schedule.tenant,
                "extension_id": schedule.extension_id,
                "content_hash": install.content_hash.to_string(),
                "request_id": request_id,
                "install_id": install.install_id,
                "version_id": install.version,
            },
            "http": {
                "method": schedule.method,
                "path": schedule.path,
                "headers": headers,
                "body_b64": body_b64,
            },
        });
        serde_json::from_value(req).map_err(|e| ExecError::ExecuteFailed(e.to_string()))
    }
}
