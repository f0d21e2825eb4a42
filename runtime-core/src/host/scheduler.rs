//! `alga:extension/scheduler`: an install's schedules.
//!
//! Not granted → reads `denied`, mutations `{success: false, error: "Permission
//! denied: cap:scheduler.manage not granted"}` (checked first, nothing is read).
//! Granted, but no scheduler backend or no install → reads `internal`, mutations
//! `success: false` naming that. Otherwise every call is scoped to the
//! invocation's own (tenant, install id) — a guest cannot name another install —
//! and validation failures come back as `validation-failed` / `field-errors`
//! (a JSON object `{field: message}`).

use std::sync::Arc;

use super::HostState;
use super::bindings::alga::extension::scheduler;
use super::bindings::alga::extension::types::{
    CreateScheduleInput, CreateScheduleResult, DeleteScheduleResult, EndpointInfo, ScheduleInfo,
    SchedulerError, UpdateScheduleInput, UpdateScheduleResult,
};
use crate::capability::Capability;
use crate::schedule::{
    InstallScope, Schedule, ScheduleInput, SchedulePatch, Scheduler, SchedulerFailure,
};

const DENIED: &str = "Permission denied: cap:scheduler.manage not granted";
const UNCONFIGURED: &str = "scheduler is not configured on this runner";
const NO_INSTALL: &str = "scheduler needs an install (no install id in this request)";

/// What the gate decided.
enum Gate {
    Open(Arc<Scheduler>, InstallScope),
    Closed(&'static str),
}

impl HostState {
    /// Gate of every scheduler call: the capability first, then a backend and an install.
    fn scheduler_gate(&mut self) -> wasmtime::Result<Gate> {
        self.budget.charge()?;
        if !self.grants.has(Capability::SchedulerManage) {
            return Ok(Gate::Closed(DENIED));
        }
        let Some(scheduler) = self.scheduler.clone() else {
            return Ok(Gate::Closed(UNCONFIGURED));
        };
        // A store the host app keeps names the install by the host app's id.
        let install_id = if scheduler.keyed_by_host_app_ids() {
            self.invocation.host_app_install_id()
        } else {
            self.invocation.install_id.as_deref()
        };
        let Some(install_id) = install_id.map(str::to_string) else {
            return Ok(Gate::Closed(NO_INSTALL));
        };
        Ok(Gate::Open(
            scheduler,
            InstallScope {
                tenant: self.invocation.tenant_id.clone(),
                install_id,
                extension_id: self.invocation.extension_id.clone(),
                content_hash: self.invocation.content_hash,
            },
        ))
    }

    fn scheduler_note(&self, what: &str, e: &SchedulerFailure) {
        self.logs.note(
            super::logging::LogLevel::Warn,
            format!("scheduler.{what}: {e}"),
        );
    }
}

fn closed_read(reason: &str) -> SchedulerError {
    if reason == DENIED {
        SchedulerError::Denied
    } else {
        SchedulerError::Internal
    }
}

fn read_error(e: &SchedulerFailure) -> SchedulerError {
    match e {
        SchedulerFailure::Invalid(_) => SchedulerError::ValidationFailed,
        SchedulerFailure::QuotaExceeded => SchedulerError::QuotaExceeded,
        SchedulerFailure::NotFound | SchedulerFailure::NotInstalled(_) => SchedulerError::NotFound,
        SchedulerFailure::Internal(_) => SchedulerError::Internal,
    }
}

/// `(error, field-errors)` of a failed mutation; backend details stay in the log.
fn mutation_error(e: &SchedulerFailure) -> (String, Option<String>) {
    match e {
        SchedulerFailure::Invalid(v) => {
            let mut fields = serde_json::Map::new();
            fields.insert(v.field.to_string(), v.message.clone().into());
            (
                "validation failed".into(),
                Some(serde_json::Value::Object(fields).to_string()),
            )
        }
        SchedulerFailure::Internal(_) => ("internal error".into(), None),
        other => (other.to_string(), None),
    }
}

fn rfc3339(secs: i64) -> Option<String> {
    let t =
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs.try_into().ok()?))?;
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

fn info(s: Schedule) -> ScheduleInfo {
    ScheduleInfo {
        created_at: rfc3339(s.created_at),
        id: s.id,
        endpoint_path: s.path,
        endpoint_method: s.method,
        name: s.name,
        cron: s.cron,
        timezone: s.timezone,
        enabled: s.enabled,
        payload: s.payload,
        // Runs are recorded in the execution log, not on the schedule.
        last_run_at: None,
        last_run_status: None,
        last_error: None,
    }
}

impl scheduler::Host for HostState {
    async fn list_schedules(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<ScheduleInfo>, SchedulerError>> {
        let (s, scope) = match self.scheduler_gate()? {
            Gate::Open(s, scope) => (s, scope),
            Gate::Closed(r) => return Ok(Err(closed_read(r))),
        };
        Ok(match s.list(&scope).await {
            Ok(list) => Ok(list.into_iter().map(info).collect()),
            Err(e) => {
                self.scheduler_note("list-schedules", &e);
                Err(read_error(&e))
            }
        })
    }

    async fn get_schedule(
        &mut self,
        schedule_id: String,
    ) -> wasmtime::Result<Result<Option<ScheduleInfo>, SchedulerError>> {
        let (s, scope) = match self.scheduler_gate()? {
            Gate::Open(s, scope) => (s, scope),
            Gate::Closed(r) => return Ok(Err(closed_read(r))),
        };
        Ok(match s.get(&scope, &schedule_id).await {
            Ok(found) => Ok(found.map(info)),
            Err(e) => {
                self.scheduler_note("get-schedule", &e);
                Err(read_error(&e))
            }
        })
    }

    async fn create_schedule(
        &mut self,
        input: CreateScheduleInput,
    ) -> wasmtime::Result<CreateScheduleResult> {
        let (s, scope) = match self.scheduler_gate()? {
            Gate::Open(s, scope) => (s, scope),
            Gate::Closed(r) => {
                return Ok(CreateScheduleResult {
                    success: false,
                    schedule_id: None,
                    error: Some(r.into()),
                    field_errors: None,
                });
            }
        };
        let input = ScheduleInput {
            endpoint: input.endpoint,
            cron: input.cron,
            timezone: input.timezone,
            name: input.name,
            payload: input.payload,
            enabled: input.enabled,
        };
        Ok(match s.create(&scope, &input).await {
            Ok(created) => CreateScheduleResult {
                success: true,
                schedule_id: Some(created.id),
                error: None,
                field_errors: None,
            },
            Err(e) => {
                self.scheduler_note("create-schedule", &e);
                let (error, field_errors) = mutation_error(&e);
                CreateScheduleResult {
                    success: false,
                    schedule_id: None,
                    error: Some(error),
                    field_errors,
                }
            }
        })
    }

    async fn update_schedule(
        &mut self,
        schedule_id: String,
        input: UpdateScheduleInput,
    ) -> wasmtime::Result<UpdateScheduleResult> {
        let (s, scope) = match self.scheduler_gate()? {
            Gate::Open(s, scope) => (s, scope),
            Gate::Closed(r) => {
                return Ok(UpdateScheduleResult {
                    success: false,
                    error: Some(r.into()),
                    field_errors: None,
                });
            }
        };
        let patch = SchedulePatch {
            endpoint: input.endpoint,
            cron: input.cron,
            timezone: input.timezone,
            enabled: input.enabled,
            name: input.name,
            payload: input.payload,
        };
        Ok(match s.update(&scope, &schedule_id, &patch).await {
            Ok(_) => UpdateScheduleResult {
                success: true,
                error: None,
                field_errors: None,
            },
            Err(e) => {
                self.scheduler_note("update-schedule", &e);
                let (error, field_errors) = mutation_error(&e);
                UpdateScheduleResult {
                    success: false,
                    error: Some(error),
                    field_errors,
                }
            }
        })
    }

    async fn delete_schedule(
        &mut self,
        schedule_id: String,
    ) -> wasmtime::Result<DeleteScheduleResult> {
        let (s, scope) = match self.scheduler_gate()? {
            Gate::Open(s, scope) => (s, scope),
            Gate::Closed(r) => {
                return Ok(DeleteScheduleResult {
                    success: false,
                    error: Some(r.into()),
                });
            }
        };
        Ok(match s.delete(&scope, &schedule_id).await {
            Ok(()) => DeleteScheduleResult {
                success: true,
                error: None,
            },
            Err(e) => {
                self.scheduler_note("delete-schedule", &e);
                DeleteScheduleResult {
                    success: false,
                    error: Some(mutation_error(&e).0),
                }
            }
        })
    }

    async fn get_endpoints(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<EndpointInfo>, SchedulerError>> {
        let (s, scope) = match self.scheduler_gate()? {
            Gate::Open(s, scope) => (s, scope),
            Gate::Closed(r) => return Ok(Err(closed_read(r))),
        };
        Ok(match s.endpoints(&scope).await {
            Ok(list) => Ok(list
                .into_iter()
                .map(|e| EndpointInfo {
                    // The id is the selector create-schedule accepts.
                    id: format!("{} {}", e.method, e.path),
                    schedulable: e.is_schedulable(),
                    method: e.method,
                    path: e.path,
                    handler: e.handler,
                })
                .collect()),
            Err(e) => {
                self.scheduler_note("get-endpoints", &e);
                Err(read_error(&e))
            }
        })
    }
}
