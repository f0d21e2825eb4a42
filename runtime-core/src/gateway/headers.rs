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
}
