//! The internal call type: what the pipeline runs. `/v1/execute` hands over its
//! wire request as is ([`Call::wire`]); the gateway's own routes (the direct
//! route, event deliveries, schedule firings) hand over the body as bytes, so
//! base64 exists only at the `/v1/execute` edge, and the install they already
//! read from the registry, so it is not read twice.

use super::request::ExecuteRequest;
use super::resolve::InstallSource;
use crate::store::InstallRecord;

/// The guest's request body.
#[derive(Debug, Clone, Copy)]
pub enum CallBody<'a> {
    /// The wire request's `body_b64`, decoded when the guest is about to run (a
    /// malformed one is `invalid_request` in the seed runner's order of checks).
    Wire,
    /// The bytes themselves (`None`: no body).
    Bytes(Option<&'a [u8]>),
}

/// One call of a handler.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Context, HTTP method, path, query and headers, limits, secrets, grants, user.
    pub request: &'a ExecuteRequest,
    /// Where the body is.
    pub body: CallBody<'a>,
    /// Who names the install.
    pub source: InstallSource,
    /// The install the caller already read from the registry (it must be the
    /// tenant's install of the request's extension); `None`: the resolver reads it.
    pub install: Option<&'a InstallRecord>,
    /// The event's depth in a chain of extension emits (0: not an event delivery).
    pub event_hops: u32,
}

impl<'a> Call<'a> {
    /// A `/v1/execute` request as it came: body in base64, install from the registry.
    pub fn wire(request: &'a ExecuteRequest) -> Self {
        Call {
            request,
            body: CallBody::Wire,
            source: InstallSource::Registry,
            install: None,
            event_hops: 0,
        }
    }
}
