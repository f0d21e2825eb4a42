//! `alga:extension/ui-proxy`: calls a route of the host app on the extension's behalf.
//!
//! Not granted → `denied`. The route: `/api/…` or `api/…` goes to base + route,
//! anything else to base + `<extension-id>/` + route; `.`/`..` segments (also
//! percent-encoded), backslashes and control characters → `bad-request`. POST
//! with the payload when one is given, else GET. Status 401/403/429 → `denied`,
//! 404 → `route-not-found`, other 4xx → `bad-request`, anything else that is
//! not 2xx, a transport failure or no configured host API → `internal`.

use bytes::Bytes;

use super::HostState;
use super::bindings::alga::extension::types::ProxyError;
use super::bindings::alga::extension::ui_proxy;
use super::logging::{LogLevel, clip};
use crate::capability::Capability;

/// The path (with query) under the host API base for `route`, or `None` when the
/// route is not acceptable.
pub fn proxy_path(extension_id: &str, route: &str) -> Option<String> {
    let route = route.trim();
    if route.is_empty() || route.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let (path, query) = match route.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (route, None),
    };
    let rel = path.trim_start_matches('/');
    let dot = |s: &str| {
        let lower = s.to_ascii_lowercase().replace("%2e", ".");
        lower == "." || lower == ".."
    };
    if rel.is_empty() || rel.split('/').any(dot) || rel.to_ascii_lowercase().contains("%2f") {
        return None;
    }
    let mut out = if rel.starts_with("api/") {
        format!("/{rel}")
    } else {
        if extension_id.is_empty() || extension_id.contains(['/', '?', '#', '%']) {
            return None;
        }
        format!("/{extension_id}/{rel}")
    };
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

impl ui_proxy::Host for HostState {
    async fn call_route(
        &mut self,
        route: String,
        payload: Option<Vec<u8>>,
    ) -> wasmtime::Result<Result<Vec<u8>, ProxyError>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::UiProxy) {
            return Ok(Err(ProxyError::Denied));
        }
        let Some(path) = proxy_path(&self.invocation.extension_id, &route) else {
            self.logs.note(
                LogLevel::Warn,
                format!(
                    "ui-proxy.call-route {:?}: not an acceptable route",
                    clip(&route)
                ),
            );
            return Ok(Err(ProxyError::BadRequest));
        };
        let Some(api) = self.host_api.clone() else {
            self.logs.note(
                LogLevel::Error,
                format!(
                    "ui-proxy.call-route {:?}: no host API is configured",
                    clip(&route)
                ),
            );
            return Ok(Err(ProxyError::Internal));
        };
        let method = if payload.is_some() {
            http::Method::POST
        } else {
            http::Method::GET
        };
        let headers = self.identity_headers(payload.as_ref().map(|_| "application/json"));
        let result = api
            .call(
                method,
                &path,
                &headers,
                payload.map(Bytes::from),
                self.deadline,
            )
            .await;
        Ok(match result {
            Ok(r) if (200..300).contains(&r.status) => Ok(r.body.to_vec()),
            Ok(r) => {
                self.logs.note(
                    LogLevel::Warn,
                    format!(
                        "ui-proxy.call-route {:?}: host API answered {}",
                        clip(&route),
                        r.status
                    ),
                );
                Err(match r.status {
                    401 | 403 | 429 => ProxyError::Denied,
                    404 => ProxyError::RouteNotFound,
                    400..=499 => ProxyError::BadRequest,
                    _ => ProxyError::Internal,
                })
            }
            Err(e) => {
                self.logs.note(
                    LogLevel::Error,
                    format!(
                        "ui-proxy.call-route {:?}: {}: {}",
                        clip(&route),
                        e.code(),
                        clip(&e.to_string())
                    ),
                );
                Err(ProxyError::Internal)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::proxy_path;

    #[test]
    fn routes_map_like_the_seed() {
        assert_eq!(
            proxy_path("ext", "/api/x?y=1").as_deref(),
            Some("/api/x?y=1")
        );
        assert_eq!(proxy_path("ext", "api/x").as_deref(), Some("/api/x"));
        assert_eq!(proxy_path("ext", "status").as_deref(), Some("/ext/status"));
        assert_eq!(proxy_path("ext", "/a/b").as_deref(), Some("/ext/a/b"));
        for bad in [
            "",
            "  ",
            "/a/../b",
            "./a",
            "a/%2e%2E/b",
            "a\\b",
            "a/%2fb",
            "a\nb",
            "/",
        ] {
            assert_eq!(proxy_path("ext", bad), None, "{bad:?}");
        }
    }
}
