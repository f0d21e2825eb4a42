//! The bridge to the operator's host API (the Alga server): `ui-proxy.call-route`
//! and the clients / services / invoicing operations.
//!
//! The base URL is operator configuration, so these calls do not pass the tenant
//! egress allowlist; they still have a request size cap, a response size cap and
//! a timeout bounded by the invocation's deadline, and carry `x-runner-auth`:
//! ui-proxy calls the ui-proxy credential, bridge calls their own
//! ([`Credential`]), so the host app can refuse the first on its internal API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::ServerName;

use super::http::resolve::{DnsResolver, SystemResolver};
use super::http::{EgressError, HttpClient, OutboundResponse};

/// The operator's host API (the Alga server): ui-proxy and the clients, services
/// and invoicing bridge. Not subject to the tenant egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostApiSettings {
    /// Base URL, e.g. `https://alga.example.com`; none disables the bridge.
    pub base: Option<String>,
    /// Sent as `x-runner-auth` on ui-proxy calls (and on bridge calls when
    /// `bridge_token` is unset).
    pub token: Option<String>,
    /// Sent as `x-runner-auth` on the clients / services / invoicing bridge calls
    /// (`/api/internal/ext-*`), so the host app can accept the ui-proxy credential
    /// on its public routes without accepting it on the internal ones. Unset:
    /// `token`, as before.
    pub bridge_token: Option<String>,
    /// Host-API path prefixes (without leading or trailing `/`, e.g. `api`,
    /// `api/v1`) ui-proxy may call besides the extension's own routes
    /// (`/<extension-id>/…`). `api/internal` is refused whatever this says.
    pub ui_proxy_routes: Vec<String>,
    /// Time allowed per call (bounded by the invocation's remaining deadline).
    pub timeout: Duration,
    /// Largest request body sent.
    pub request_body_max: usize,
    /// Largest response body read.
    pub response_body_max: usize,
}

impl Default for HostApiSettings {
    fn default() -> Self {
        HostApiSettings {
            base: None,
            token: None,
            bridge_token: None,
            ui_proxy_routes: vec!["api".into()],
            timeout: Duration::from_secs(5),
            request_body_max: 1 << 20,
            response_body_max: 1 << 20,
        }
    }
}

/// Which operator credential a host-API call carries as `x-runner-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// ui-proxy: a route the guest chose (`ALGA_HOST_API_TOKEN`).
    UiProxy,
    /// The clients / services / invoicing bridge: a path the runner builds
    /// (`ALGA_HOST_API_BRIDGE_TOKEN`, else `ALGA_HOST_API_TOKEN`).
    Bridge,
}

/// A configured host API.
pub struct HostApi {
    settings: HostApiSettings,
    base: url::Url,
    client: HttpClient,
}

impl HostApi {
    /// The bridge, or `None` when no base URL is configured.
    pub fn new(settings: HostApiSettings) -> Option<Self> {
        let base = url::Url::parse(settings.base.as_deref()?).ok()?;
        Some(HostApi {
            settings,
            base,
            client: HttpClient::default(),
        })
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// The path prefixes ui-proxy may call besides the extension's own routes.
    pub fn ui_proxy_routes(&self) -> &[String] {
        &self.settings.ui_proxy_routes
    }

    /// Sends `method` to `base + path` (path starts with `/`, query allowed) with
    /// the `credential`'s `x-runner-auth` and `headers`.
    pub async fn call(
        &self,
        credential: Credential,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
        deadline: Option<Instant>,
    ) -> Result<OutboundResponse, EgressError> {
        let url = url::Url::parse(&format!("{}{path}", self.base()))
            .map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        if let Some(b) = &body
            && b.len() > self.settings.request_body_max
        {
            return Err(EgressError::RequestTooLarge {
                size: b.len(),
                limit: self.settings.request_body_max,
            });
        }
        let mut budget = self.settings.timeout;
        if let Some(d) = deadline {
            budget = budget.min(d.saturating_duration_since(Instant::now()));
        }
        if budget.is_zero() {
            return Err(EgressError::Timeout { ms: 0 });
        }
        let ms = budget.as_millis() as u64;
        let token = match credential {
            Credential::UiProxy => self.settings.token.as_deref(),
            Credential::Bridge => (self.settings.bridge_token.as_ref())
                .or(self.settings.token.as_ref())
                .map(String::as_str),
        };
        tokio::time::timeout(budget, self.send(url, token, method, headers, body))
            .await
            .unwrap_or(Err(EgressError::Timeout { ms }))
    }

    async fn send(
        &self,
        url: url::Url,
        token: Option<&str>,
        method: http::Method,
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<OutboundResponse, EgressError> {
        let host = url
            .host_str()
            .ok_or_else(|| EgressError::InvalidUrl("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let ips = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => SystemResolver
                .lookup(&host)
                .await
                .map_err(|e| EgressError::Dns(e.to_string()))?,
        };
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        let tls = if url.scheme() == "https" {
            Some(match host.parse::<std::net::IpAddr>() {
                Ok(ip) => ServerName::from(ip),
                Err(_) => ServerName::try_from(host.clone())
                    .map_err(|e| EgressError::InvalidUrl(e.to_string()))?,
            })
        } else {
            None
        };
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONNECTION, "close");
        if let Some(token) = token {
            builder = builder.header("x-runner-auth", token);
        }
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
        self.client
            .exchange(&addrs, tls, request, self.settings.response_body_max)
            .await
    }
}

/// Why a bridge call produced no HTTP answer.
#[derive(Debug)]
pub(crate) enum BridgeFailure {
    /// `ALGA_HOST_API_BASE` is not set.
    NotConfigured,
    /// The request has no install id to address.
    NoInstall,
    /// The call failed (connect, timeout, size caps).
    Transport(EgressError),
}

impl std::fmt::Display for BridgeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BridgeFailure::NotConfigured => write!(f, "no host API is configured"),
            BridgeFailure::NoInstall => write!(f, "the request has no install id"),
            BridgeFailure::Transport(e) => write!(f, "{}: {e}", e.code()),
        }
    }
}

/// An HTTP answer of the host API: status and the body parsed as JSON (if it is).
#[derive(Debug)]
pub(crate) struct BridgeReply {
    pub status: u16,
    pub json: Option<serde_json::Value>,
}

impl super::HostState {
    /// POSTs `payload` (with `operation` set) to
    /// `{base}/api/internal/ext-{kind}/install/{install_id}`.
    pub(crate) async fn bridge(
        &mut self,
        kind: &str,
        operation: &str,
        mut payload: serde_json::Map<String, serde_json::Value>,
    ) -> Result<BridgeReply, BridgeFailure> {
        let api = self.host_api.clone().ok_or(BridgeFailure::NotConfigured)?;
        let install = self
            .invocation
            .install_id
            .clone()
            .ok_or(BridgeFailure::NoInstall)?;
        payload.insert("operation".into(), operation.into());
        if let Some(user) = &self.invocation.user {
            // The host app applies the user's own permissions on top (RBAC).
            payload.insert(
                "user".into(),
                serde_json::json!({"userId": user.user_id, "userType": user.user_type}),
            );
        }
        let path = format!(
            "/api/internal/ext-{kind}/install/{}",
            form_urlencoded::byte_serialize(install.as_bytes()).collect::<String>()
        );
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let headers = self.identity_headers(Some("application/json"));
        let r = api
            .call(
                Credential::Bridge,
                http::Method::POST,
                &path,
                &headers,
                Some(Bytes::from(body)),
                self.deadline,
            )
            .await
            .map_err(BridgeFailure::Transport)?;
        Ok(BridgeReply {
            status: r.status,
            json: serde_json::from_slice(&r.body).ok(),
        })
    }

    /// The headers naming who calls: request, tenant, extension, install, version.
    pub(crate) fn identity_headers(
        &self,
        content_type: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let inv = &self.invocation;
        let mut h = vec![
            ("x-alga-tenant", inv.tenant_id.clone()),
            ("x-alga-extension", inv.extension_id.clone()),
        ];
        if let Some(r) = &inv.request_id {
            h.push(("x-request-id", r.clone()));
        }
        if let Some(i) = &inv.install_id {
            h.push(("x-ext-install-id", i.clone()));
        }
        if let Some(v) = &inv.version_id {
            h.push(("x-ext-version-id", v.clone()));
        }
        if let Some(ct) = content_type {
            h.push(("content-type", ct.to_string()));
        }
        h
    }
}
