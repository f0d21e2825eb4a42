//! Which headers cross the boundary between the internet and a guest, each way.
//! Credentials, cookies and infrastructure headers never reach the guest, and a
//! guest can set neither cookies nor CORS or security policy on the API's domain.

/// Request headers a guest may see (plus any `x-ext-*`).
const REQUEST_ALLOW: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "user-agent",
    "x-request-id",
];

/// Response headers a guest may set (plus any `x-ext-*`).
const RESPONSE_ALLOW: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-language",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "location",
    "retry-after",
    "vary",
];

fn custom(name: &str) -> bool {
    name.starts_with("x-ext-")
}

/// Whether a request header is passed to the guest.
pub fn request_header_allowed(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    REQUEST_ALLOW.contains(&name.as_str()) || custom(&name)
}

/// Whether a guest's response header is passed to the client.
pub fn response_header_allowed(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    RESPONSE_ALLOW.contains(&name.as_str()) || custom(&name)
}

/// The policy on every direct-route response. The API's origin is shared by all
/// extensions (and may carry the host app's credentials), so a guest's HTML or SVG
/// must not run script or load anything there: `sandbox` gives the document an
/// opaque origin, `default-src 'none'` blocks every fetch. Guests cannot set or
/// relax it (`content-security-policy` is not in [`RESPONSE_ALLOW`]); UIs are served
/// by the ui-assets function on their own origin.
pub const DIRECT_ROUTE_CSP: &str = "sandbox; default-src 'none'";

/// Whether a guest's `location` may reach the client: a path on this origin
/// (`/...`, but not `//host` or `/\host`, which browsers read as another host), or
/// an absolute `http(s)` URL on this request's `host` under the extension's own
/// route (`own_route`, e.g. `/api/ext/com.example.hello`). Anything else
/// (other hosts, other schemes such as `javascript:`, relative references without
/// a leading `/`, control characters or whitespace that URL parsers strip) is
/// refused: the API's origin must not become an open redirect.
pub fn location_allowed(value: &str, own_route: &str, host: Option<&str>) -> bool {
    if value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    if let Some(rest) = value.strip_prefix('/') {
        return !rest.starts_with('/');
    }
    let lower = value.to_ascii_lowercase();
    let Some(after_scheme) = ["https://", "http://"]
        .iter()
        .find_map(|s| lower.starts_with(s).then(|| &value[s.len()..]))
    else {
        return false;
    };
    let (authority, path) =
        after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
    let same_host = host.is_some_and(|h| !h.is_empty() && authority.eq_ignore_ascii_case(h));
    let under_route = path
        .strip_prefix(own_route)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']));
    same_host && under_route && !path.split(['/', '?', '#']).any(is_dot_segment)
}

fn is_dot_segment(segment: &str) -> bool {
    let s = segment.to_ascii_lowercase().replace("%2e", ".");
    s == "." || s == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_cookies_never_cross() {
        for h in [
            "authorization",
            "cookie",
            "x-runner-service-token",
            "x-amz-date",
        ] {
            assert!(!request_header_allowed(h), "{h}");
        }
        for h in [
            "set-cookie",
            "access-control-allow-origin",
            "strict-transport-security",
        ] {
            assert!(!response_header_allowed(h), "{h}");
        }
        assert!(request_header_allowed("Content-Type"));
        assert!(response_header_allowed("x-ext-trace"));
    }

    #[test]
    fn sec_12_location_is_a_path_here_or_the_extensions_own_route() {
        let route = "/api/ext/com.example.hello";
        let host = Some("api.example.com");
        for ok in [
            "/api/ext/com.example.hello/done",
            "/",
            "/elsewhere/on/this/origin?x=1",
            "https://api.example.com/api/ext/com.example.hello/items/7",
            "HTTPS://API.EXAMPLE.COM/api/ext/com.example.hello",
            "https://api.example.com/api/ext/com.example.hello?next=1",
        ] {
            assert!(location_allowed(ok, route, host), "{ok}");
        }
        for refused in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example/x",
            "/\t/evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "evil.example/x",
            "https://api.example.com/api/ext/com.example.other/x",
            "https://api.example.com/api/ext/com.example.hellox/x",
            "https://api.example.com/api/ext/com.example.hello/../other/x",
            "https://api.example.com/api/ext/com.example.hello/%2e%2e/other",
            "https://api.example.com@evil.example/api/ext/com.example.hello/",
            "https://evil.example/api/ext/com.example.hello/",
            "ftp://api.example.com/api/ext/com.example.hello/",
            "",
        ] {
            assert!(!location_allowed(refused, route, host), "{refused:?}");
        }
        // Without a known host, only paths.
        assert!(!location_allowed(
            "https://api.example.com/api/ext/com.example.hello/x",
            route,
            None
        ));
        assert!(location_allowed(
            "/api/ext/com.example.hello/x",
            route,
            None
        ));
    }
}
