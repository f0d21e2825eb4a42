//! The host-app backends against the stub of Alga's internal API
//! (`test_support::alga_host_stub`), over real HTTP on 127.0.0.1: the shared
//! conformance suites where Alga's API can hold them, the rest of our semantics
//! case by case with what Alga cannot express refused, outages, the ext-ui install
//! check, and the per-deployment choice.

mod choice;
mod faults;
mod host_ids;
mod kv;
mod schedules;
mod ui_check;

use std::sync::Arc;

use runtime_core::host::HostApiSettings;
use stores_host_api::InternalApi;
use test_support::alga_host_stub::AlgaHostStub;

/// The runner's credential the stub accepts.
pub const TOKEN: &str = "runner-token-for-tests";

/// Host API settings pointing at `stub` with the right credential.
pub fn settings(stub: &AlgaHostStub) -> HostApiSettings {
    HostApiSettings {
        base: Some(stub.base()),
        bridge_token: Some(TOKEN.into()),
        ..HostApiSettings::default()
    }
}

/// The internal API of `stub`.
pub fn api(stub: &AlgaHostStub) -> Arc<InternalApi> {
    Arc::new(InternalApi::new(&settings(stub), "tests").unwrap())
}
