//! Who may talk to `up`'s server. `up` vouches for the dev identity on every
//! direct-route request and its event bus speaks for any tenant, so a page on
//! another site must not reach it through the developer's browser.
//!
//! - **DNS rebinding.** A name the attacker controls, re-resolved to 127.0.0.1,
//!   makes the browser treat `up` as that site: same origin, so the page reads
//!   every answer. The browser still sends the attacker's name as `Host`, so only
//!   names that cannot be rebound are served: loopback addresses, `localhost` and
//!   `*.localhost` (browsers resolve those to loopback themselves), the `--host`
//!   `up` listens on (any address when that is 0.0.0.0 or ::), and the names given
//!   with `--allowed-host`. Vite's `server.allowedHosts` and webpack-dev-server's
//!   host check work the same way. The port is not compared: a port forward may
//!   change it, and the name is what a rebinding attacker controls.
//! - **CSRF.** A cross-site form or a `no-cors` fetch is a "simple" request: it
//!   may POST a text/plain (which can hold JSON), urlencoded or multipart body, or
//!   none, without a CORS preflight, and `up` grants no preflight. A request that
//!   can change state (any method but GET and HEAD) on the direct route or the event
//!   bus must therefore send a JSON content type, which only a preflighted request
//!   can, or `up`'s own service token.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use runtime_core::gateway::credential::token_matches;

/// The header that carries `up`'s service token (the one `/v1/execute` takes).
const TOKEN_HEADER: &str = "x-runner-service-token";

/// The `Host` names `up` answers.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// `--host`, lower case, IPv6 without brackets.
    bound: String,
    /// `--allowed-host` names, lower case.
    extra: Vec<String>,
}

impl HostPolicy {
    /// The policy for a server listening on `bound` that also answers `extra`.
    pub fn new(bound: &str, extra: &[String]) -> Self {
        HostPolicy {
            bound: unbracket(&bound.to_ascii_lowercase()).to_string(),
            extra: extra
                .iter()
                .map(|h| unbracket(&h.trim().to_ascii_lowercase()).to_string())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Whether a request with this `Host` header value is for this server.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(name) = host.and_then(host_name) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        let bare = unbracket(&name);
        if bare == "localhost" || bare.ends_with(".localhost") {
            return true;
        }
        if bare == self.bound || self.extra.iter().any(|e| e == bare) {
            return true;
        }
        match bare.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().is_loopback() || self.bound_unspecified(),
            Err(_) => false,
        }
    }

    /// Listening on every interface: the developer asked to be reached by address.
    fn bound_unspecified(&self) -> bool {
        self.bound
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
    }
}

fn unbracket(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

/// The name part of a `Host` value (`name`, `name:port`, `[v6]`, `[v6]:port`),
/// brackets kept; `None` for anything else (userinfo, paths, an empty name, a bad
/// port), since a browser never sends that.
fn host_name(value: &str) -> Option<&str> {
    let (name, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let inner = &value[1..end];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        (&value[..=end], &value[end + 1..])
    } else {
        let end = value.find(':').unwrap_or(value.len());
        let name = &value[..end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            return None;
        }
        (name, &value[end..])
    };
    match port.strip_prefix(':') {
        None if port.is_empty() => Some(name),
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(name)
        }
        _ => None,
    }
}

/// Whether a request may change state: GET and HEAD always may; anything else
/// needs a JSON content type (never sent cross-site without a preflight) or
/// `up`'s service token.
pub fn may_change_state(parts: &http::request::Parts, token: &str) -> bool {
    if matches!(parts.method, http::Method::GET | http::Method::HEAD) {
        return true;
    }
    if let Some(presented) = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return token_matches(token, presented);
    }
    parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json)
}

/// `application/json` or `application/*+json`, any parameters, any case.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json") && !sub.contains('/'))
}

fn refused(code: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(403)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(
            serde_json::json!({ "error": code, "message": message }).to_string(),
        )))
        .expect("a valid response")
}

/// The answer to a request whose `Host` is not this server's.
pub fn host_refused() -> Response<Full<Bytes>> {
    refused(
        "host_not_allowed",
        "this Host is not up's: it answers loopback names and addresses (localhost, \
         127.0.0.1, [::1]), its --host, and names given with --allowed-host",
    )
}

/// The answer to a state-changing request without JSON or the token.
pub fn csrf_refused() -> Response<Full<Bytes>> {
    refused(
        "csrf_rejected",
        "a request that can change state must send content-type: application/json or \
         up's x-runner-service-token (cross-site form posts are refused)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(policy: &HostPolicy, host: &str) -> bool {
        policy.allows(Some(host))
    }

    #[test]
    fn loopback_names_and_addresses_only_by_default() {
        let p = HostPolicy::new("127.0.0.1", &[]);
        for ok in [
            "localhost",
            "localhost:8787",
            "LOCALHOST:8787",
            "app.localhost:8787",
            "127.0.0.1:8787",
            "127.1.2.3",
            "[::1]:8787",
            "[::1]",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(allows(&p, ok), "{ok}");
        }
        for bad in [
            "",
            ":8787",
            "evil.example",
            "evil.example:8787",
            "127.0.0.1.evil.example",
            "localhost.evil.example:8787",
            "localhost.",
            "evil.example:8787@127.0.0.1",
            "user@localhost",
            "localhost:",
            "localhost:123456",
            "localhost:80x",
            "localhost/x",
            "::1",
            "[::1",
            "[]:80",
            "2130706433",
            "192.168.1.5:8787",
            "[2001:db8::1]",
        ] {
            assert!(!allows(&p, bad), "{bad:?}");
        }
        assert!(!p.allows(None));
    }

    #[test]
    fn the_bound_host_and_allowed_names_are_served_too() {
        let p = HostPolicy::new("192.168.1.5", &["Dev.Box.Lan".into()]);
        assert!(allows(&p, "192.168.1.5:8787"));
        assert!(allows(&p, "dev.box.lan:8787"));
        assert!(allows(&p, "localhost:8787"));
        assert!(!allows(&p, "192.168.1.6:8787"));
        assert!(!allows(&p, "box.lan:8787"));
        let p = HostPolicy::new("::1", &[]);
        assert!(allows(&p, "[::1]:8787"));
        // Every interface: any address (an address cannot be rebound), names still not.
        let p = HostPolicy::new("0.0.0.0", &[]);
        assert!(allows(&p, "192.168.1.6:8787"));
        assert!(allows(&p, "[2001:db8::1]:8787"));
        assert!(!allows(&p, "evil.example:8787"));
    }

    fn parts(method: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri("/api/ext/x/y");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn state_changes_need_json_or_the_token() {
        let t = "tok";
        assert!(may_change_state(&parts("GET", &[]), t));
        assert!(may_change_state(&parts("HEAD", &[]), t));
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/merge-patch+json",
        ] {
            assert!(
                may_change_state(&parts("POST", &[("content-type", ct)]), t),
                "{ct}"
            );
        }
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "text/json",
            "application/x/+json",
            "",
        ] {
            assert!(
                !may_change_state(&parts("POST", &[("content-type", ct)]), t),
                "{ct}"
            );
        }
        assert!(!may_change_state(&parts("POST", &[]), t));
        assert!(!may_change_state(&parts("DELETE", &[]), t));
        assert!(may_change_state(
            &parts("POST", &[(TOKEN_HEADER, t), ("content-type", "text/plain")]),
            t
        ));
        // A wrong token is a refusal, even with JSON.
        assert!(!may_change_state(
            &parts(
                "POST",
                &[(TOKEN_HEADER, "x"), ("content-type", "application/json")]
            ),
            t
        ));
    }
}
