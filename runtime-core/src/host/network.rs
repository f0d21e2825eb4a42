//! The outbound side of the host, configured once per process: guest egress and
//! the operator's host API. Attached to each request's [`HostState`](super::HostState).

use std::sync::Arc;

use super::host_api::{HostApi, HostApiSettings};
use super::http::{Egress, EgressSettings};

/// Egress and host-API clients shared by every request.
#[derive(Clone)]
pub struct Network {
    /// Guest egress (policy, resolver, connector).
    pub egress: Arc<Egress>,
    /// The host API bridge; none when `ALGA_HOST_API_BASE` is unset.
    pub host_api: Option<Arc<HostApi>>,
}

impl Network {
    /// From the egress and host-API settings (system resolver and TLS roots).
    pub fn new(egress: &EgressSettings, host_api: &HostApiSettings) -> Self {
        Network {
            egress: Arc::new(Egress::new(egress.clone())),
            host_api: HostApi::new(host_api.clone()).map(Arc::new),
        }
    }
}
