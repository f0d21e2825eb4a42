//! `alga:extension/context`: who and what the request runs as.
//!
//! cap:context.read is always granted; were it not, the call would trap (the
//! function has no error case to answer with).

use super::HostState;
use super::bindings::alga::extension::{context, types::ContextData};
use crate::capability::Capability;

impl context::Host for HostState {
    async fn get_context(&mut self) -> wasmtime::Result<ContextData> {
        self.budget.charge()?;
        if !self.grants.has(Capability::ContextRead) {
            wasmtime::bail!("cap:context.read not granted");
        }
        let i = &self.invocation;
        Ok(ContextData {
            request_id: i.request_id.clone(),
            tenant_id: i.tenant_id.clone(),
            extension_id: i.extension_id.clone(),
            install_id: i.install_id.clone(),
            version_id: i.version_id.clone(),
        })
    }
}
