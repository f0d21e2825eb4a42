//! `alga:extension/ui-proxy`: calls a route of the host app on the extension's behalf.
//!
//! Not granted → `denied`. The route is normalised first (RFC 3986 §6.2.2:
//! escapes of unreserved characters decoded, empty segments dropped), and what
//! was checked is what is sent. `/api/…` or `api/…` goes to base + route,
//! anything else to base + `<extension-id>/` + route (the host app's extension id
//! when the install carries one, as Alga's runner uses its registry UUID).
//!
//! Refused unsent: the host app's internal API (`api/internal/…` in any spelling:
//! case, `%69`, `//`, `.`/`..`, `;params`) and `/api/…` routes outside the
//! operator's prefixes (`ALGA_UI_PROXY_ROUTES`, default `api`) → `denied`;
//! `.`/`..` segments otherwise, `%2f`/`%5c`, `#`, backslashes and control
//! characters → `bad-request`. The call carries the ui-proxy credential, never
//! the bridges' one, and identity fields of a JSON payload are pinned to the
//! invocation's. As Alga's runner does, it also carries the install's `api_key`
//! secret as `x-api-key` (Alga's platform routes authenticate the extension with
//! it; it goes only to the configured ui-proxy base, and the guest never sees it
//! on this path) and the user as `x-user-id` / `x-user-email`. POST with the
//! payload when one is given, else GET. Status 401/403/429 → `denied`, 404 →
//! `route-not-found`, other 4xx → `bad-request`, anything else that is not 2xx or
//! a transport failure → `internal`. No configured host API → `route-not-found`,
//! as Alga's runner answers.

use bytes::Bytes;
use serde_json::{Value, json};

use super::bindings::alga::extension::types::ProxyError;
use super::bindings::alga::extension::ui_proxy;
use super::host_api::Credential;
use super::logging::{LogLevel, clip};
use super::{HostState, Invocation};
use crate::capability::Capability;

/// Why a route is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRefusal {
    /// Not a usable route (empty, control characters, `\`, `#`, encoded
    /// separators, dot segments): `bad-request`.
    Malformed,
    /// The host app's internal API, whatever the spelling: `denied`.
    Internal,
}

/// Decodes the percent-escapes of unreserved characters (`%69` is `i`, `%2e` is
/// `.`), which mean the same as the characters themselves; other escapes stay.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(c) = u8::from_str_radix(hex, 16)
            && (c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        {
            out.push(c as char);
            i += 3;
            continue;
        }
        let ch = path[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Whether `segments` address the host app's internal API (`api/internal`), the
/// way a lenient server could read them: ASCII case folded, `;params` cut, dot
/// segments resolved.
fn is_internal<'a>(segments: impl IntoIterator<Item = &'a str>) -> bool {
    let mut resolved: Vec<String> = Vec::new();
    for s in segments {
        let s = s.split(';').next().unwrap_or_default().to_ascii_lowercase();
        match s.as_str() {
            "" | "." => {}
            ".." => {
                resolved.pop();
            }
            _ => resolved.push(s),
        }
    }
    resolved.len() >= 2 && resolved[0] == "api" && resolved[1] == "internal"
}

/// The path (with query) under the host API base for `route`, or why it is not
/// sent. The operator's prefix allowlist is checked separately
/// ([`route_allowed`]), once a host API is known to be configured.
pub fn proxy_path(extension_id: &str, route: &str) -> Result<String, RouteRefusal> {
    let route = route.trim();
    if route.is_empty()
        || route
            .chars()
            .any(|c| c.is_control() || c == '\\' || c == '#')
    {
        return Err(RouteRefusal::Malformed);
    }
    let (path, query) = match route.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (route, None),
    };
    let path = decode_unreserved(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // The internal API first, so no spelling of it gets a softer answer.
    if is_internal(segments.iter().copied()) {
        return Err(RouteRefusal::Internal);
    }
    let lower = path.to_ascii_lowercase();
    if segments.is_empty()
        || segments.iter().any(|s| *s == "." || *s == "..")
        || lower.contains("%2f")
        || lower.contains("%5c")
    {
        return Err(RouteRefusal::Malformed);
    }
    let mut rel = segments.join("/");
    if path.ends_with('/') {
        rel.push('/');
    }
    let mut out = if rel.starts_with("api/") {
        format!("/{rel}")
    } else {
        if extension_id.is_empty() || extension_id.contains(['/', '?', '#', '%', '\\']) {
            return Err(RouteRefusal::Malformed);
        }
        format!("/{extension_id}/{rel}")
    };
    // An extension whose id spells `api` cannot get there through its own routes.
    if is_internal(out.split('/')) {
        return Err(RouteRefusal::Internal);
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Whether `path` (from [`proxy_path`]) may be called: the extension's own
/// routes always, other paths only under one of `prefixes` (segment-wise, exact
/// case).
pub fn route_allowed(path: &str, extension_id: &str, prefixes: &[String]) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let under = |p: &str| {
        path.strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(p))
            .is_some_and(|tail| tail.is_empty() || tail.starts_with('/'))
    };
    (!extension_id.is_empty() && under(extension_id)) || prefixes.iter().any(|p| under(p))
}

/// Parses `ALGA_UI_PROXY_ROUTES`: comma-separated prefixes, each `api` or under
/// `api/`, plain segments only, never the internal API. `None` when one is not.
pub fn parse_route_prefixes(raw: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let p = entry.trim_matches('/');
        let segments: Vec<&str> = p.split('/').collect();
        let plain = |s: &&str| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && !s.contains(['%', '?', '#', ';', '\\'])
                && !s.chars().any(char::is_control)
        };
        if segments.first() != Some(&"api")
            || !segments.iter().all(plain)
            || is_internal(segments.iter().copied())
        {
            return None;
        }
        out.push(p.to_string());
    }
    Some(out)
}

/// Top-level payload keys the host app reads as the caller's identity (the
/// bridge protocol's `user`, tenant, install and extension ids).
const IDENTITY_KEYS: &[&str] = &[
    "user",
    "userId",
    "user_id",
    "userType",
    "user_type",
    "tenant",
    "tenantId",
    "tenant_id",
    "installId",
    "install_id",
    "extensionId",
    "extension_id",
];

/// The invocation's value for an identity key, `None` when it has none.
fn identity_value(key: &str, inv: &Invocation) -> Option<Value> {
    let user = inv.user.as_ref();
    match key {
        "user" => user.map(|u| json!({"userId": u.user_id, "userType": u.user_type})),
        "userId" | "user_id" => user.map(|u| json!(u.user_id)),
        "userType" | "user_type" => user.map(|u| json!(u.user_type)),
        "tenant" | "tenantId" | "tenant_id" => Some(json!(inv.tenant_id)),
        "installId" | "install_id" => inv.host_app_install_id().map(|i| json!(i)),
        "extensionId" | "extension_id" => Some(json!(inv.host_app_extension_id())),
        _ => None,
    }
}

/// A payload that cannot claim someone else's identity: when it is a JSON
/// object carrying any [`IDENTITY_KEYS`], those are replaced by the invocation's
/// values (or removed when it has none) and the object re-serialised (which also
/// drops duplicate keys a lenient parser might read differently). Anything else
/// is sent unchanged.
pub fn pin_identity(payload: Vec<u8>, inv: &Invocation) -> Vec<u8> {
    // A BOM is skipped by the host app's decoder, so it is skipped here too.
    let json = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&payload);
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(json) else {
        return payload;
    };
    if !IDENTITY_KEYS.iter().any(|k| map.contains_key(*k)) {
        return payload;
    }
    for key in IDENTITY_KEYS {
        if map.contains_key(*key) {
            match identity_value(key, inv) {
                Some(v) => map.insert((*key).to_string(), v),
                None => map.remove(*key),
            };
        }
    }
    serde_json::to_vec(&map).unwrap_or_default()
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
        let extension_id = self.invocation.host_app_extension_id().to_string();
        let path = match proxy_path(&extension_id, &route) {
            Ok(path) => path,
            Err(RouteRefusal::Internal) => {
                self.logs.note(
                    LogLevel::Warn,
                    format!(
                        "ui-proxy.call-route {:?}: the host app's internal API is not proxyable",
                        clip(&route)
                    ),
                );
                return Ok(Err(ProxyError::Denied));
            }
            Err(RouteRefusal::Malformed) => {
                self.logs.note(
                    LogLevel::Warn,
                    format!(
                        "ui-proxy.call-route {:?}: not an acceptable route",
                        clip(&route)
                    ),
                );
                return Ok(Err(ProxyError::BadRequest));
            }
        };
        let Some(api) =
            (self.host_api.clone()).filter(|a| a.base_for(Credential::UiProxy).is_some())
        else {
            self.logs.note(
                LogLevel::Warn,
                format!(
                    "ui-proxy.call-route {:?}: no host API is configured",
                    clip(&route)
                ),
            );
            return Ok(Err(ProxyError::RouteNotFound));
        };
        if !route_allowed(&path, &extension_id, api.ui_proxy_routes()) {
            self.logs.note(
                LogLevel::Warn,
                format!(
                    "ui-proxy.call-route {:?}: not under a proxyable prefix (ALGA_UI_PROXY_ROUTES)",
                    clip(&route)
                ),
            );
            return Ok(Err(ProxyError::Denied));
        }
        let method = if payload.is_some() {
            http::Method::POST
        } else {
            http::Method::GET
        };
        let mut headers = self.identity_headers(payload.as_ref().map(|_| "application/json"));
        match self.secrets.api_key().await {
            Ok(Some(key)) => headers.push(("x-api-key", key)),
            Ok(None) => {}
            Err(e) => {
                // Without its key the host app would refuse the call anyway; say why.
                self.logs.note(
                    LogLevel::Error,
                    format!("ui-proxy.call-route: the install's api_key is unavailable: {e}"),
                );
                return Ok(Err(ProxyError::Internal));
            }
        }
        if let Some(user) = &self.invocation.user {
            headers.push(("x-user-id", user.user_id.clone()));
            headers.push(("x-user-email", user.user_email.clone()));
        }
        let payload = payload.map(|p| pin_identity(p, &self.invocation));
        let result = api
            .call(
                Credential::UiProxy,
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
    use super::*;

    #[test]
    fn routes_map_like_the_seed() {
        assert_eq!(proxy_path("ext", "/api/x?y=1").as_deref(), Ok("/api/x?y=1"));
        assert_eq!(proxy_path("ext", "api/x").as_deref(), Ok("/api/x"));
        assert_eq!(proxy_path("ext", "status").as_deref(), Ok("/ext/status"));
        assert_eq!(proxy_path("ext", "/a/b").as_deref(), Ok("/ext/a/b"));
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
            assert_eq!(
                proxy_path("ext", bad),
                Err(RouteRefusal::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sec_03_the_internal_api_is_refused_in_every_spelling() {
        for route in [
            "api/internal/ext-invoicing/install/i",
            "/api//internal/x",
            "api/%69nternal/x",
            "%41PI/internal/x",
            "API/Internal/x",
            "api/./internal/x",
            "api/%2E/internal/x",
            "api/x/../internal/x",
            "../api/internal/x",
            "api/internal;a=b/x",
            "api/internal",
            "api/internal/",
            "api/internal?x",
        ] {
            assert_eq!(
                proxy_path("ext", route),
                Err(RouteRefusal::Internal),
                "{route}"
            );
        }
        assert_eq!(proxy_path("api", "internal/x"), Err(RouteRefusal::Internal));
        assert_eq!(
            proxy_path("API", "Internal;x/y"),
            Err(RouteRefusal::Internal)
        );
        // Neighbours are not the internal API.
        assert_eq!(
            proxy_path("ext", "api/internals/x").as_deref(),
            Ok("/api/internals/x")
        );
        assert_eq!(
            proxy_path("ext", "x/api/internal").as_deref(),
            Ok("/ext/x/api/internal")
        );
        // Normalised form is what is sent.
        assert_eq!(
            proxy_path("ext", "//api//%76%31/things/").as_deref(),
            Ok("/api/v1/things/")
        );
    }

    #[test]
    fn sec_03_only_allowlisted_prefixes_and_own_routes() {
        let prefixes = vec!["api/v1".to_string()];
        assert!(route_allowed("/ext/x", "ext", &prefixes));
        assert!(route_allowed("/api/v1", "ext", &prefixes));
        assert!(route_allowed("/api/v1/x?y=/api/v2", "ext", &prefixes));
        assert!(!route_allowed("/api/v1x", "ext", &prefixes));
        assert!(!route_allowed("/api/v2/x?/api/v1", "ext", &prefixes));
        assert!(!route_allowed("/api/V1/x", "ext", &prefixes));
        assert!(!route_allowed("/extra/x", "ext", &prefixes));
        assert!(!route_allowed("/api/x", "", &[]));
        assert_eq!(
            parse_route_prefixes(" /api/ , api/v1/reports/"),
            Some(vec!["api".to_string(), "api/v1/reports".to_string()])
        );
        assert_eq!(parse_route_prefixes(""), Some(vec![]));
        for bad in ["api/internal", "API/INTERNAL/x", "x", "api//v1", "api/%76"] {
            assert_eq!(parse_route_prefixes(bad), None, "{bad}");
        }
    }

    #[test]
    fn sec_03_payload_identity_is_pinned() {
        let inv = Invocation {
            tenant_id: "t1".into(),
            extension_id: "e".into(),
            ..Invocation::default()
        };
        let forged = br#"{"user":{"userId":"admin"},"user":{"userId":"root"},"tenantId":"t2","installId":"i9","a":[1]}"#;
        let pinned: Value = serde_json::from_slice(&pin_identity(forged.to_vec(), &inv)).unwrap();
        assert_eq!(pinned, json!({"tenantId": "t1", "a": [1]}));
        let bom = [&b"\xEF\xBB\xBF"[..], br#"{"tenant_id":"t2"}"#].concat();
        let pinned: Value = serde_json::from_slice(&pin_identity(bom, &inv)).unwrap();
        assert_eq!(pinned, json!({"tenant_id": "t1"}));
        // Payloads without identity fields, and non-objects, are sent byte for byte.
        for same in [&br#"{ "a" : 1.50 }"#[..], b"[1]", b"not json", b""] {
            assert_eq!(pin_identity(same.to_vec(), &inv), same);
        }
    }
}
