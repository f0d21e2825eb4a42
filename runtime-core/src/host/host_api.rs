//! The bridge to the operator's host API (the Alga server): `ui-proxy.call-route`
//! and the clients / services / invoicing operations.
//!
//! The base URL is operator configuration, so these calls do not pass the tenant
//! egress allowlist; they still have a request size cap, a response size cap and
//! a timeout bounded by the invocation's deadline, and carry `x-runner-auth`:
//! ui-proxy calls the ui-proxy credential, bridge calls their own
//! ([`Credential`]), so the host app can refuse the first on its internal API.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::http::{EgressError, HttpClient, OutboundResponse, operator};

/// The operator's host API (the Alga server): ui-proxy and the clients, services
/// and invoicing bridge. Not subject to the tenant egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostApiSettings {
    /// Base URL of the host app's internal API (the bridges, the host-app stores),
    /// e.g. `https://alga.example.com`; none disables the bridges.
    pub base: Option<String>,
    /// Base URL ui-proxy calls go to; none: [`HostApiSettings::base`]. Neither:
    /// ui-proxy answers `route-not-found`, as Alga's runner does.
    pub ui_proxy_base: Option<String>,
    /// Sent as `x-runner-auth` on ui-proxy calls (and on bridge calls when
    /// `bridge_token` is unset).
    pub token: Option<String>,
    /// Sent as `x-runner-auth` on the clients / services / invoicing bridge calls
    /// (`/api/internal/ext-*`), so the host app can accept the ui-proxy credential
    /// on its public routes without accepting it on the internal ones. Unset:
    /// `token`, as before.
    pub bridge_token: Option<String>,
    /// Sent as `x-api-key` where the host app's public API wants the runner's own
    /// key (Alga's install check for ext-ui, `/api/installs/validate`).
    pub api_key: Option<String>,
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
            ui_proxy_base: None,
            token: None,
            bridge_token: None,
            api_key: None,
            ui_proxy_routes: vec!["api".into()],
            timeout: Duration::from_secs(5),
            request_body_max: 1 << 20,
            response_body_max: 1 << 20,
        }
    }
}

/// Which operator credential a host-API call carries as `x-runner-auth`, and
/// which base URL it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// ui-proxy: a route the guest chose (`ALGA_HOST_API_TOKEN`), under the
    /// ui-proxy base.
    UiProxy,
    /// The clients / services / invoicing bridge and the host-app stores: a path
    /// the runner builds (`ALGA_HOST_API_BRIDGE_TOKEN`, else `ALGA_HOST_API_TOKEN`),
    /// under the internal API's base.
    Bridge,
}

/// A configured host API.
pub struct HostApi {
    settings: HostApiSettings,
    base: Option<url::Url>,
    ui_proxy_base: Option<url::Url>,
    client: HttpClient,
}

impl HostApi {
    /// The host API, or `None` when no base URL is configured at all.
    pub fn new(settings: HostApiSettings) -> Option<Self> {
        let parse = |b: Option<&String>| b.and_then(|b| url::Url::parse(b).ok());
        let base = parse(settings.base.as_ref());
        let ui_proxy_base = parse(settings.ui_proxy_base.as_ref()).or_else(|| base.clone());
        if base.is_none() && ui_proxy_base.is_none() {
            return None;
        }
        Some(HostApi {
            settings,
            base,
            ui_proxy_base,
            client: HttpClient::default(),
        })
    }

    /// The base URL `credential`'s calls go to, without a trailing slash; `None`
    /// when that part of the host API is not configured.
    pub fn base_for(&self, credential: Credential) -> Option<String> {
        let base = match credential {
            Credential::UiProxy => self.ui_proxy_base.as_ref(),
            Credential::Bridge => self.base.as_ref(),
        }?;
        Some(base.as_str().trim_end_matches('/').to_string())
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
        let base = self.base_for(credential).ok_or_else(|| {
            EgressError::InvalidUrl("this part of the host API is not configured".into())
        })?;
        let url = url::Url::parse(&format!("{base}{path}"))
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
        let mut all: Vec<(&str, String)> = Vec::with_capacity(headers.len() + 1);
        if let Some(token) = token {
            all.push(("x-runner-auth", token.to_string()));
        }
        all.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
        operator::send(
            &self.client,
            &url,
            method,
            &all,
            body,
            self.settings.response_body_max,
        )
        .await
    }
}

/// Why a bridge call produced no HTTP answer.
#[derive(Debug)]
pub(crate) enum BridgeFailure {
    /// No internal API base is configured (`ALGA_HOST_API_BASE`).
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
        let api = (self.host_api.clone())
            .filter(|api| api.base_for(Credential::Bridge).is_some())
            .ok_or(BridgeFailure::NotConfigured)?;
        // The host app looks installs up by its own id.
        let install = self
            .invocation
            .host_app_install_id()
            .ok_or(BridgeFailure::NoInstall)?
            .to_string();
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

    /// The headers naming who calls: request, tenant, extension, install, version
    /// (the extension and install by the host app's ids when the install has them).
    pub(crate) fn identity_headers(
        &self,
        content_type: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let inv = &self.invocation;
        let mut h = vec![
            ("x-alga-tenant", inv.tenant_id.clone()),
            ("x-alga-extension", inv.host_app_extension_id().to_string()),
        ];
        if let Some(r) = &inv.request_id {
            h.push(("x-request-id", r.clone()));
        }
        if let Some(i) = inv.host_app_install_id() {
            h.push(("x-ext-install-id", i.to_string()));
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
