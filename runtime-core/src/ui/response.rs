//! UI responses: the file (200/304) and the small JSON errors.

use super::{content_type, headers};

/// The response: status, headers (lowercase names), body (empty for HEAD and 304), and
/// for errors a stable code (`invalid_hash`, `invalid_path`, `not_found`,
/// `method_not_allowed`, `backend_unavailable`, `asset_too_large`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for HEAD and 304).
    pub body: Vec<u8>,
    /// The error code, for errors.
    pub code: Option<&'static str>,
}

impl UiResponse {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A JSON error `{"error": code, "message": message}` that is never cached.
    pub(crate) fn error(status: u16, code: &'static str, message: &str, head: bool) -> Self {
        let body = serde_json::to_vec(&serde_json::json!({"error": code, "message": message}))
            .unwrap_or_default();
        let mut headers = vec![
            h("content-type", "application/json"),
            h("content-length", &body.len().to_string()),
            h("cache-control", headers::CACHE_NO_STORE),
            h("x-content-type-options", "nosniff"),
        ];
        if status == 405 {
            headers.push(h("allow", "GET, HEAD"));
        }
        UiResponse {
            status,
            headers,
            body: if head { Vec::new() } else { body },
            code: Some(code),
        }
    }

    /// 200 with the file (no body for HEAD). Every file carries the CSP, not
    /// only HTML: an SVG (or anything a browser renders as a document when it is
    /// opened directly) runs script on the UI origin unless its response limits it.
    pub(crate) fn file(name: &str, bytes: Vec<u8>, etag: String, csp: &str, head: bool) -> Self {
        let ct = content_type::for_file(name);
        let headers = vec![
            h("content-type", ct),
            h("content-length", &bytes.len().to_string()),
            h("etag", &etag),
            h("cache-control", headers::CACHE_IMMUTABLE),
            h("x-content-type-options", "nosniff"),
            h("content-security-policy", csp),
        ];
        UiResponse {
            status: 200,
            headers,
            body: if head { Vec::new() } else { bytes },
            code: None,
        }
    }

    /// 304: the validators, caching headers and CSP a 200 would carry, no body
    /// (a cache may update the stored response's headers from it).
    pub(crate) fn not_modified(etag: String, csp: &str) -> Self {
        let headers = vec![
            h("etag", &etag),
            h("cache-control", headers::CACHE_IMMUTABLE),
            h("x-content-type-options", "nosniff"),
            h("content-security-policy", csp),
        ];
        UiResponse {
            status: 304,
            headers,
            body: Vec::new(),
            code: None,
        }
    }
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}
