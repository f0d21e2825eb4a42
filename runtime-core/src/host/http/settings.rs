//! The egress policy's knobs, read by `config` from the environment.

use std::time::Duration;

use ipnet::IpNet;

/// Outbound HTTP of guests (`http.fetch`, `wasi:http`): the egress policy's knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressSettings {
    /// Hosts every install may reach (exact or dot-suffix); merged with each
    /// install's `egress_allowlist`. Empty (and no install list) denies all.
    pub allowlist: Vec<String>,
    /// Address ranges the operator allows although they are not public
    /// (e.g. a VPC range, or tests' 127.0.0.0/8). Empty by default.
    pub allow_ranges: Vec<IpNet>,
    /// Time allowed per outbound request (redirects included), further bounded
    /// by the invocation's remaining deadline.
    pub timeout: Duration,
    /// Redirects `http.fetch` follows, each re-checked.
    pub max_redirects: u32,
    /// Largest outbound request body.
    pub request_body_max: usize,
    /// Largest response body read.
    pub response_body_max: usize,
    /// Outbound connections per invocation (each redirect hop counts).
    pub max_calls: u32,
}

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            allowlist: Vec::new(),
            allow_ranges: Vec::new(),
            timeout: Duration::from_secs(10),
            max_redirects: 5,
            request_body_max: 1 << 20,
            response_body_max: 5 << 20,
            max_calls: 20,
        }
    }
}
