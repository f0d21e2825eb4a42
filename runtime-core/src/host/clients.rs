//! `alga:extension/clients`: read the tenant's clients through the host app.
//!
//! Not granted → `not-allowed`; bad paging → `invalid-input`; granted, but no host
//! API is configured → `internal` with a note in the request log.

use super::HostState;
use super::bindings::alga::extension::clients;
use super::bindings::alga::extension::types::{
    ClientReadError, ClientSummary, ClientsListInput, ClientsListResult,
};
use super::logging::LogLevel;
use crate::capability::Capability;

/// Checks 1-based paging: page ≥ 1, page size 1–100.
pub(super) fn valid_paging(page: Option<u32>, page_size: Option<u32>) -> bool {
    page.is_none_or(|p| p >= 1) && page_size.is_none_or(|s| (1..=100).contains(&s))
}

impl HostState {
    fn clients_gate(&mut self) -> wasmtime::Result<ClientReadError> {
        self.budget.charge()?;
        if !self.grants.has(Capability::ClientRead) {
            return Ok(ClientReadError::NotAllowed);
        }
        self.logs
            .note(LogLevel::Error, "clients: no host API is configured".into());
        Ok(ClientReadError::Internal)
    }
}

impl clients::Host for HostState {
    async fn list_clients(
        &mut self,
        input: ClientsListInput,
    ) -> wasmtime::Result<Result<ClientsListResult, ClientReadError>> {
        let err = self.clients_gate()?;
        if err == ClientReadError::Internal && !valid_paging(input.page, input.page_size) {
            return Ok(Err(ClientReadError::InvalidInput));
        }
        Ok(Err(err))
    }

    async fn get_client(
        &mut self,
        _client_id: String,
    ) -> wasmtime::Result<Result<Option<ClientSummary>, ClientReadError>> {
        Ok(Err(self.clients_gate()?))
    }
}
