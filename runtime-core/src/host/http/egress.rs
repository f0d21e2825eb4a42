//! The egress pipeline both outbound paths share: capability, allowlist, our own
//! DNS lookup with every address checked, connection to the checked address,
//! bounded redirects each re-checked, caps on sizes, time and call count.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::ServerName;

use super::EgressError;
use super::client::{HttpClient, OutboundResponse};
use super::policy::{EgressPolicy, Target, TargetHost, parse_allowlist};
use super::resolve::{DnsResolver, SystemResolver};
use super::settings::EgressSettings;

/// An outbound request as a guest asked for it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Method.
    pub method: http::Method,
    /// Absolute URL.
    pub url: String,
    /// Headers (hop-by-hop ones and `host` are replaced by ours).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Bytes>,
}

/// Process-wide egress: settings, resolver and connector (configured once).
pub struct Egress {
    settings: EgressSettings,
    resolver: Arc<dyn DnsResolver>,
    client: HttpClient,
}

impl Egress {
    /// Egress with the system resolver and the system's TLS roots.
    pub fn new(settings: EgressSettings) -> Self {
        Egress {
            settings,
            resolver: Arc::new(SystemResolver),
            client: HttpClient::default(),
        }
    }

    /// Replaces the resolver (tests pin names to their loopback server).
    pub fn with_resolver(mut self, resolver: Arc<dyn DnsResolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Replaces the connector (e.g. one trusting a test CA).
    pub fn with_client(mut self, client: HttpClient) -> Self {
        self.client = client;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &EgressSettings {
        &self.settings
    }

    /// The per-invocation session: grants, the install's allowlist merged with the
    /// global one, and the invocation's deadline.
    pub fn session(
        self: &Arc<Self>,
        granted: bool,
        install_allowlist: Option<&str>,
        deadline: Option<Instant>,
    ) -> EgressSession {
        let mut list = self.settings.allowlist.clone();
        list.extend(install_allowlist.map(parse_allowlist).unwrap_or_default());
        EgressSession {
            egress: self.clone(),
            granted,
            policy: EgressPolicy::new(list, &self.settings.allow_ranges),
            deadline,
            calls: AtomicU32::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

/// One invocation's view of egress, shared by `http.fetch` and `wasi:http`.
pub struct EgressSession {
    egress: Arc<Egress>,
    granted: bool,
    policy: EgressPolicy,
    deadline: Option<Instant>,
    calls: AtomicU32,
    bytes: AtomicU64,
}

impl EgressSession {
    /// Outbound connections made (each redirect hop counts).
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Bytes sent and received in bodies.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The policy in force.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The largest request body accepted.
    pub fn request_body_max(&self) -> usize {
        self.egress.settings.request_body_max
    }

    /// The checks that need no I/O (capability, URL, allowlist, literal address),
    /// so a refused request is refused before its body is even read.
    pub fn precheck(&self, url: &str) -> Result<(), EgressError> {
        if !self.granted {
            return Err(EgressError::NotGranted);
        }
        self.policy.check_url(url).map(|_| ())
    }

    /// Sends `req` through the policy; follows up to the configured number of
    /// redirects when `follow_redirects`, re-checking each target.
    pub async fn send(
        &self,
        req: OutboundRequest,
        follow_redirects: bool,
    ) -> Result<OutboundResponse, EgressError> {
        if !self.granted {
            return Err(EgressError::NotGranted);
        }
        let s = &self.egress.settings;
        // Checked before anything is sent, so a refused URL costs no time.
        let target = self.policy.check_url(&req.url)?;
        if let Some(b) = &req.body
            && b.len() > s.request_body_max
        {
            return Err(EgressError::RequestTooLarge {
                size: b.len(),
                limit: s.request_body_max,
            });
        }
        let mut budget = s.timeout;
        if let Some(deadline) = self.deadline {
            budget = budget.min(deadline.saturating_duration_since(Instant::now()));
        }
        if budget.is_zero() {
            return Err(EgressError::Timeout { ms: 0 });
        }
        tokio::time::timeout(budget, self.hops(target, req, follow_redirects))
            .await
            .unwrap_or(Err(EgressError::Timeout {
                ms: budget.as_millis() as u64,
            }))
    }

    async fn hops(
        &self,
        mut target: Target,
        mut req: OutboundRequest,
        follow: bool,
    ) -> Result<OutboundResponse, EgressError> {
        let max_redirects = self.egress.settings.max_redirects;
        let mut redirects = 0;
        loop {
            let response = self.exchange(&target, &req).await?;
            let location = response.header("location").map(str::to_string);
            let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            let (true, true, Some(location)) = (follow, redirect, location) else {
                return Ok(response);
            };
            if redirects == max_redirects {
                return Err(EgressError::TooManyRedirects {
                    limit: max_redirects,
                });
            }
            redirects += 1;
            let next = target
                .url
                .join(&location)
                .map_err(|e| EgressError::InvalidUrl(format!("redirect to {location:?}: {e}")))?;
            // Every hop goes through the full policy again.
            let next = self.policy.check_parsed(next)?;
            // Browser semantics: 303, and 301/302 after a POST, become a GET
            // without body.
            if response.status == 303
                || (matches!(response.status, 301 | 302) && req.method == http::Method::POST)
            {
                req.method = http::Method::GET;
                req.body = None;
            }
            redirect_headers(&target, &next, &mut req.headers)?;
            req.url = next.url.to_string();
            target = next;
        }
    }

    /// One exchange with a checked target: resolve, check every address, connect.
    async fn exchange(
        &self,
        target: &Target,
        req: &OutboundRequest,
    ) -> Result<OutboundResponse, EgressError> {
        let s = &self.egress.settings;
        if self.calls.fetch_add(1, Ordering::Relaxed) >= s.max_calls {
            return Err(EgressError::TooManyCalls { limit: s.max_calls });
        }
        let ips = match &target.host {
            TargetHost::Ip(ip) => vec![*ip],
            TargetHost::Domain(name) => {
                let ips = self
                    .egress
                    .resolver
                    .lookup(name)
                    .await
                    .map_err(|e| EgressError::Dns(e.to_string()))?;
                self.policy.check_addrs(&ips)?;
                ips
            }
        };
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, target.port))
            .collect();
        let tls_name = if target.tls {
            Some(match &target.host {
                TargetHost::Ip(ip) => ServerName::from(*ip),
                TargetHost::Domain(d) => ServerName::try_from(d.clone())
                    .map_err(|e| EgressError::InvalidUrl(e.to_string()))?,
            })
        } else {
            None
        };
        let request = build_request(target, req)?;
        let sent = req.body.as_ref().map_or(0, |b| b.len() as u64);
        let response = self
            .egress
            .client
            .exchange(&addrs, tls_name, request, s.response_body_max)
            .await?;
        self.bytes
            .fetch_add(sent + response.body.len() as u64, Ordering::Relaxed);
        Ok(response)
    }
}

/// The only guest headers that follow a redirect to another origin: nothing that
/// can carry a credential (`authorization`, `cookie`, `x-api-key`, any custom
/// header). The CORS-safelisted request headers plus `user-agent`.
const CROSS_ORIGIN_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "user-agent",
];

/// Applies the redirect rules between two checked targets: an `https` → `http`
/// downgrade is refused (the body and the path would travel in clear text), and
/// on a hop to another origin (scheme, host or port differs, as browsers and
/// curl define it) every header off [`CROSS_ORIGIN_HEADERS`] is dropped: the
/// guest addressed its credentials to the first origin only, and a redirect is
/// chosen by that server, not by the guest.
fn redirect_headers(
    from: &Target,
    to: &Target,
    headers: &mut Vec<(String, String)>,
) -> Result<(), EgressError> {
    if from.tls && !to.tls {
        return Err(EgressError::InsecureRedirect(format!(
            "{} -> {}",
            origin(from),
            origin(to)
        )));
    }
    if (from.tls, &from.host, from.port) != (to.tls, &to.host, to.port) {
        headers.retain(|(k, _)| {
            CROSS_ORIGIN_HEADERS
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
        });
    }
    Ok(())
}

fn origin(t: &Target) -> String {
    let scheme = if t.tls { "https" } else { "http" };
    match &t.host {
        TargetHost::Ip(std::net::IpAddr::V6(v6)) => format!("{scheme}://[{v6}]:{}", t.port),
        h => format!("{scheme}://{}:{}", h.name(), t.port),
    }
}

/// Headers the connection owns; a guest's values are dropped.
const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn build_request(
    target: &Target,
    req: &OutboundRequest,
) -> Result<http::Request<Full<Bytes>>, EgressError> {
    let url = &target.url;
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(path)
        .header(http::header::HOST, host)
        .header(http::header::CONNECTION, "close");
    for (k, v) in &req.headers {
        if HOP_HEADERS.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            continue;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(req.body.clone().unwrap_or_default()))
        .map_err(|e| EgressError::InvalidUrl(format!("request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        EgressPolicy::new(["example.com", "other.test"], &[])
            .check_url(url)
            .unwrap()
    }

    fn headers() -> Vec<(String, String)> {
        [
            ("Authorization", "Bearer t"),
            ("Cookie", "a=1"),
            ("X-Api-Key", "k"),
            ("X-Custom", "v"),
            ("Accept", "*/*"),
            ("Content-Type", "application/json"),
            ("User-Agent", "g"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn names(h: &[(String, String)]) -> Vec<String> {
        h.iter().map(|(k, _)| k.to_ascii_lowercase()).collect()
    }

    #[test]
    fn sec_14_redirect_headers_follow_the_origin() {
        let kept = ["accept", "content-type", "user-agent"];
        // Same origin (spelling aside): everything stays.
        let mut h = headers();
        redirect_headers(
            &target("https://example.com/a"),
            &target("https://EXAMPLE.com.:443/b"),
            &mut h,
        )
        .unwrap();
        assert_eq!(h, headers());
        // Other host, other port, or http → https: only the safelist stays.
        for (from, to) in [
            ("https://example.com/", "https://other.test/"),
            ("https://example.com/", "https://example.com:8443/"),
            ("http://example.com/", "http://example.com:8080/"),
            ("http://example.com/", "https://example.com/"),
            ("https://example.com/", "https://x.example.com/"),
        ] {
            let mut h = headers();
            redirect_headers(&target(from), &target(to), &mut h).unwrap();
            assert_eq!(names(&h), kept, "{from} -> {to}");
        }
        // https → http is refused, even to the same host.
        for to in ["http://example.com/", "http://example.com:443/"] {
            let mut h = headers();
            let e =
                redirect_headers(&target("https://example.com/"), &target(to), &mut h).unwrap_err();
            assert_eq!(e.code(), "insecure_redirect");
            assert!(e.is_refusal());
        }
    }
}
