//! `alga:extension/services`: read the tenant's service catalogue through the host app.
//!
//! Not granted → `not-allowed`; bad paging → `invalid-input`; granted, but no host
//! API is configured → `internal` with a note in the request log.

use super::HostState;
use super::bindings::alga::extension::services;
use super::bindings::alga::extension::types::{
    ServiceReadError, ServiceSummary, ServicesListInput, ServicesListResult,
};
use super::clients::valid_paging;
use super::logging::LogLevel;
use crate::capability::Capability;

impl HostState {
    fn services_gate(&mut self) -> wasmtime::Result<ServiceReadError> {
        self.budget.charge()?;
        if !self.grants.has(Capability::ServiceRead) {
            return Ok(ServiceReadError::NotAllowed);
        }
        self.logs.note(
            LogLevel::Error,
            "services: no host API is configured".into(),
        );
        Ok(ServiceReadError::Internal)
    }
}

impl services::Host for HostState {
    async fn list_services(
        &mut self,
        input: ServicesListInput,
    ) -> wasmtime::Result<Result<ServicesListResult, ServiceReadError>> {
        let err = self.services_gate()?;
        if err == ServiceReadError::Internal && !valid_paging(input.page, input.page_size) {
            return Ok(Err(ServiceReadError::InvalidInput));
        }
        Ok(Err(err))
    }

    async fn get_service(
        &mut self,
        _service_id: String,
    ) -> wasmtime::Result<Result<Option<ServiceSummary>, ServiceReadError>> {
        Ok(Err(self.services_gate()?))
    }
}
