//! `alga:extension/ui-proxy`: calls a route of the host app on the extension's behalf.
//!
//! Not granted → `denied`. Granted, but no host API is configured for this runner →
//! `internal` with a note in the request log; the bridge to the host API arrives
//! with the host-API work.

use super::HostState;
use super::bindings::alga::extension::types::ProxyError;
use super::bindings::alga::extension::ui_proxy;
use super::logging::LogLevel;
use crate::capability::Capability;

impl ui_proxy::Host for HostState {
    async fn call_route(
        &mut self,
        route: String,
        _payload: Option<Vec<u8>>,
    ) -> wasmtime::Result<Result<Vec<u8>, ProxyError>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::UiProxy) {
            return Ok(Err(ProxyError::Denied));
        }
        self.logs.note(
            LogLevel::Error,
            format!("ui-proxy.call-route {route:?}: no host API is configured"),
        );
        Ok(Err(ProxyError::Internal))
    }
}
