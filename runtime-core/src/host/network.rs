//! The outbound side of the host, configured once per process: guest egress and
//! the operator's host API. Attached to each request's [`HostState`](super::HostState).

use std::sync::Arc;

use super::host_api::HostApi;
use super::http::Egress;
use crate::config::RuntimeConfig;

/// Egress and host-API clients shared by every request.
#[derive(Clone)]
pub struct Network {
    /// Guest egress (policy, resolver, connector).
    pub egress: Arc<Egress>,
    /// The host API bridge; none when `ALGA_HOST_API_BASE` is unset.
    pub host_api: Option<Arc<HostApi>>,
}

impl Network {
    /// From the runtime configuration (system resolver and TLS roots).
    pub fn from_config(config: &RuntimeConfig) -> Self {
        Network {
            egress: Arc::new(Egress::new(config.egress.clone())),
            host_api: HostApi::new(config.host_api.clone()).map(Arc::new),
        }
    }
}
