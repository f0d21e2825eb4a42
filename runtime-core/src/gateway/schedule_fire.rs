//! Firing a schedule: the same execute path as `POST /v1/execute` (resolution
//! through the registry, the install's grants and configuration, quotas, limits,
//! the request log and execution record), with a fresh request id, no user, and
//! the schedule's JSON payload as the body (`content-type: application/json`).
//!
//! Two entry points: [`Gateway::fire_schedule`] runs a schedule you already hold
//! (`up`'s in-process cron); [`Gateway::fire_message`] is what the events
//! function calls for an EventBridge Scheduler invocation: it looks the schedule
//! up (scoped to the message's tenant and install) and fires it if it still
//! exists and is enabled.

use super::internal::InternalCall;
use super::record::Route;
use super::{Gateway, new_request_id};
use crate::execute::{ExecError, Metrics, Outcome};
use crate::schedule::{FireError, Schedule, ScheduleFiring};
use crate::store::{InstallRecord, ScheduleStoreError};

impl Gateway {
    /// Looks up the schedule a firing message names and fires it (the events
    /// function's entry point). `Err` when nothing ran.
    pub async fn fire_message(&self, msg: &ScheduleFiring) -> Result<Outcome, FireError> {
        let schedule = self
            .backends()
            .schedules
            .get(&msg.tenant, &msg.install_id, &msg.schedule_id)
            .await
            .map_err(|e| match e {
                ScheduleStoreError::NotFound(_) => FireError::NotFound,
                other => FireError::Backend(other.to_string()),
            })?
            .ok_or(FireError::NotFound)?;
        if !schedule.enabled {
            return Err(FireError::Disabled);
        }
        Ok(self.fire_schedule(&schedule).await)
    }

    /// Runs `schedule` as `/v1/execute` would run the equivalent request: the
    /// install's current bundle, grants and configuration, quotas, a fresh
    /// request id, no user, the payload as a JSON body and the schedule id in
    /// `x-alga-schedule-id`; logged and recorded like every invocation (route
    /// `schedule`).
    pub async fn fire_schedule(&self, schedule: &Schedule) -> Outcome {
        let install = match self.schedule_install(schedule).await {
            Ok(install) => install,
            Err(e) => {
                let outcome = Outcome::failed(
                    e,
                    Metrics {
                        request_id: Some(new_request_id()),
                        tenant_id: Some(schedule.tenant.clone()),
                        extension_id: Some(schedule.extension_id.clone()),
                        install_id: Some(schedule.install_id.clone()),
                        ..Metrics::default()
                    },
                );
                self.record(
                    Route::Schedule,
                    &schedule.tenant,
                    &schedule.extension_id,
                    &outcome,
                )
                .await;
                return outcome;
            }
        };
        self.run_internal(InternalCall {
            install: &install,
            method: &schedule.method,
            path: &schedule.path,
            body: schedule.payload.as_deref().map(str::as_bytes),
            headers: &[("x-alga-schedule-id", &schedule.id)],
            route: Route::Schedule,
            event_hops: 0,
        })
        .await
    }

    /// The install the schedule belongs to, if it still exists under that id.
    async fn schedule_install(&self, schedule: &Schedule) -> Result<InstallRecord, ExecError> {
        self.backends
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
            })
    }
}
