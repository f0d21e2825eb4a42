//! `alga:extension/scheduler`: an install's schedules.
//!
//! Not granted → reads `denied`, mutations `{success: false, error: "Permission
//! denied: cap:scheduler.manage not granted"}`. Granted, but no scheduler backend
//! is configured → reads `internal`, mutations `success: false` naming that.

use super::HostState;
use super::bindings::alga::extension::scheduler;
use super::bindings::alga::extension::types::{
    CreateScheduleInput, CreateScheduleResult, DeleteScheduleResult, EndpointInfo, ScheduleInfo,
    SchedulerError, UpdateScheduleInput, UpdateScheduleResult,
};
use crate::capability::Capability;

const DENIED: &str = "Permission denied: cap:scheduler.manage not granted";
const UNCONFIGURED: &str = "scheduler is not configured on this runner";

impl HostState {
    /// Gate of every scheduler call: `Ok(None)` when granted, else the error text.
    fn scheduler_gate(&mut self) -> wasmtime::Result<Option<&'static str>> {
        self.budget.charge()?;
        Ok(Some(if self.grants.has(Capability::SchedulerManage) {
            UNCONFIGURED
        } else {
            DENIED
        }))
    }

    fn scheduler_read_error(&mut self) -> wasmtime::Result<SchedulerError> {
        Ok(match self.scheduler_gate()? {
            Some(DENIED) => SchedulerError::Denied,
            _ => SchedulerError::Internal,
        })
    }
}

impl scheduler::Host for HostState {
    async fn list_schedules(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<ScheduleInfo>, SchedulerError>> {
        Ok(Err(self.scheduler_read_error()?))
    }

    async fn get_schedule(
        &mut self,
        _schedule_id: String,
    ) -> wasmtime::Result<Result<Option<ScheduleInfo>, SchedulerError>> {
        Ok(Err(self.scheduler_read_error()?))
    }

    async fn create_schedule(
        &mut self,
        _input: CreateScheduleInput,
    ) -> wasmtime::Result<CreateScheduleResult> {
        let error = self.scheduler_gate()?.map(String::from);
        Ok(CreateScheduleResult {
            success: false,
            schedule_id: None,
            error,
            field_errors: None,
        })
    }

    async fn update_schedule(
        &mut self,
        _schedule_id: String,
        _input: UpdateScheduleInput,
    ) -> wasmtime::Result<UpdateScheduleResult> {
        let error = self.scheduler_gate()?.map(String::from);
        Ok(UpdateScheduleResult {
            success: false,
            error,
            field_errors: None,
        })
    }

    async fn delete_schedule(
        &mut self,
        _schedule_id: String,
    ) -> wasmtime::Result<DeleteScheduleResult> {
        let error = self.scheduler_gate()?.map(String::from);
        Ok(DeleteScheduleResult {
            success: false,
            error,
        })
    }

    async fn get_endpoints(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<EndpointInfo>, SchedulerError>> {
        Ok(Err(self.scheduler_read_error()?))
    }
}
