//! Outbound HTTP: `alga:extension/http.fetch` and `wasi:http/outgoing-handler`
//! share one egress policy.
//!
//! Deny by default: without cap:http.fetch every request is refused, and with it
//! the allowlist decides. No allowlist is configured yet (the policy with DNS
//! checks arrives with the egress work), and an empty allowlist denies all, so
//! every outbound request is refused here: `not-allowed` for `http.fetch`,
//! `HTTP-request-denied` for `wasi:http`. Nothing is ever sent.

use wasmtime_wasi_http::{Error as WasiHttpError, WasiBody, WasiHttpHooks};

use super::HostState;
use super::bindings::alga::extension::http;
use super::bindings::alga::extension::types::{HttpError, HttpRequest, HttpResponse};
use super::logging::LogLevel;
use crate::capability::{Capability, CapabilitySet};

/// Why the egress policy refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDenial {
    /// cap:http.fetch is not granted.
    NotGranted,
    /// The host is not on the (empty) allowlist.
    NotAllowlisted(String),
    /// The URL could not be parsed.
    InvalidUrl,
}

/// The egress decision for a URL, shared by both outbound paths.
pub fn check_egress(granted: bool, url: &str) -> Result<(), EgressDenial> {
    if !granted {
        return Err(EgressDenial::NotGranted);
    }
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .filter(|h| !h.is_empty())
        .ok_or(EgressDenial::InvalidUrl)?;
    Err(EgressDenial::NotAllowlisted(host.to_string()))
}

impl http::Host for HostState {
    async fn fetch(
        &mut self,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<HttpResponse, HttpError>> {
        self.budget.charge()?;
        let granted = self.grants.has(Capability::HttpFetch);
        let decision = check_egress(granted, &request.url);
        Ok(match decision {
            Err(EgressDenial::InvalidUrl) => Err(HttpError::InvalidUrl),
            Err(denial) => {
                self.logs.note(
                    LogLevel::Warn,
                    format!("http.fetch {} refused: {denial:?}", request.method),
                );
                Err(HttpError::NotAllowed)
            }
            Ok(()) => Err(HttpError::NotAllowed),
        })
    }
}

/// `wasi:http` hooks that route every outgoing request through the egress policy.
pub struct WasiHttpEgress {
    granted: bool,
}

impl WasiHttpEgress {
    /// Hooks for a request with these grants.
    pub fn new(grants: &CapabilitySet) -> Self {
        WasiHttpEgress {
            granted: grants.has(Capability::HttpFetch),
        }
    }
}

type SendResult = Result<
    (
        ::http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
    ),
    WasiHttpError,
>;

impl WasiHttpHooks for WasiHttpEgress {
    fn send_request(
        &mut self,
        request: ::http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let url = request.uri().to_string();
        let decision = check_egress(self.granted, &url);
        Box::new(async move {
            match decision {
                Err(EgressDenial::InvalidUrl) => Err(WasiHttpError::HttpRequestUriInvalid),
                _ => Err(WasiHttpError::HttpRequestDenied),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_by_default() {
        assert_eq!(
            check_egress(false, "https://example.com/"),
            Err(EgressDenial::NotGranted)
        );
        assert_eq!(
            check_egress(true, "https://example.com/x"),
            Err(EgressDenial::NotAllowlisted("example.com".into()))
        );
        assert_eq!(
            check_egress(true, "not a url"),
            Err(EgressDenial::InvalidUrl)
        );
    }
}
