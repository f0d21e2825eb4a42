//! Why an outbound request did not complete, with stable codes.

use std::net::IpAddr;

/// An egress refusal or failure. [`code`](EgressError::code) is stable; the
/// message goes to the request log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// cap:http.fetch is not granted.
    #[error("cap:http.fetch is not granted")]
    NotGranted,
    /// The URL or method cannot be used.
    #[error("invalid URL or method: {0}")]
    InvalidUrl(String),
    /// The host is not on the allowlist (empty allowlist: nothing is).
    #[error("host {0:?} is not on the egress allowlist")]
    NotAllowlisted(String),
    /// The address is loopback, private, link-local, metadata, ... and no
    /// operator range allows it.
    #[error("address {addr} is not public ({class})")]
    ForbiddenAddress {
        /// The refused address.
        addr: IpAddr,
        /// Which range it is in.
        class: String,
    },
    /// The name did not resolve.
    #[error("DNS lookup failed: {0}")]
    Dns(String),
    /// The invocation used up its outbound calls.
    #[error("more than {limit} outbound requests in one invocation")]
    TooManyCalls {
        /// The limit.
        limit: u32,
    },
    /// A redirect from `https` to `http` (refused: the request would continue in
    /// clear text).
    #[error("redirect from https to http refused: {0}")]
    InsecureRedirect(String),
    /// More redirects than allowed.
    #[error("more than {limit} redirects")]
    TooManyRedirects {
        /// The limit.
        limit: u32,
    },
    /// The request body is over the cap.
    #[error("request body of {size} bytes is over the {limit} byte limit")]
    RequestTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The response body is over the cap.
    #[error("response body is over the {limit} byte limit")]
    ResponseTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The per-request timeout or the invocation's deadline passed.
    #[error("outbound request timed out after {ms} ms")]
    Timeout {
        /// The time allowed, in milliseconds.
        ms: u64,
    },
    /// No connection could be made.
    #[error("connect failed: {0}")]
    Connect(String),
    /// TLS failed (handshake, certificate, or no roots).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The peer broke HTTP/1.1.
    #[error("HTTP protocol error: {0}")]
    Protocol(String),
}

impl EgressError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            EgressError::NotGranted => "not_granted",
            EgressError::InvalidUrl(_) => "invalid_url",
            EgressError::NotAllowlisted(_) => "not_allowlisted",
            EgressError::ForbiddenAddress { .. } => "forbidden_address",
            EgressError::Dns(_) => "dns_failed",
            EgressError::TooManyCalls { .. } => "too_many_calls",
            EgressError::TooManyRedirects { .. } => "too_many_redirects",
            EgressError::InsecureRedirect(_) => "insecure_redirect",
            EgressError::RequestTooLarge { .. } => "request_too_large",
            EgressError::ResponseTooLarge { .. } => "response_too_large",
            EgressError::Timeout { .. } => "timeout",
            EgressError::Connect(_) => "connect_failed",
            EgressError::Tls(_) => "tls_failed",
            EgressError::Protocol(_) => "protocol_error",
        }
    }

    /// Whether the policy refused (as opposed to the network failing).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            EgressError::NotGranted
                | EgressError::NotAllowlisted(_)
                | EgressError::ForbiddenAddress { .. }
                | EgressError::TooManyCalls { .. }
                | EgressError::InsecureRedirect(_)
        )
    }
}
