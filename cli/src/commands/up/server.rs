//! The local server of `alga-lambda up`: plays API Gateway (HTTP API, payload
//! v2) in front of the very handlers the Lambda functions run. Every request is
//! turned into the v2 event JSON Lambda would receive — with the dev identity as
//! JWT-authorizer claims on the direct route — and parsed by lambda_http, so
//! local and Lambda behaviour cannot drift.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use fn_execute::ExecuteFunction;
use fn_publish::PublishFunction;
use fn_ui_assets::UiAssetsFunction;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use tokio::net::TcpListener;

use super::log::{Entry, journal};
use super::{guard, host_page, sse};
use runtime_core::backends::Backends;

/// The largest body the local server reads; the handlers apply their own,
/// smaller limits, so a request between the two gets the handler's 413.
const TRANSPORT_BODY_MAX: usize = 16 << 20;

/// What the server serves.
pub struct Site {
    /// `/v1/execute` and `/api/ext/...`.
    pub execute: ExecuteFunction,
    /// `/ext-ui/...`.
    pub ui: UiAssetsFunction,
    /// `/v1/publish`.
    pub publish: PublishFunction,
    /// The registry, for the host page.
    pub backends: Backends,
    /// Claims the local "authorizer" attaches to direct-route requests.
    pub claims: BTreeMap<String, String>,
    /// The extension the host page shows.
    pub extension_id: String,
    /// The tenant the host page runs as.
    pub tenant: String,
    /// The local event bus (`POST /__alga/events`).
    pub bus: Option<Arc<runtime_core::events::LocalBus>>,
    /// The `Host` names served (DNS rebinding).
    pub hosts: guard::HostPolicy,
    /// `up`'s service token, which also admits a non-JSON state change (CSRF).
    pub token: String,
}

/// A response body: whole, or a stream (the request log's events).
pub type StreamBody = BoxBody<Bytes, Infallible>;

/// Serves `site` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, site: Arc<Site>) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let site = site.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let site = site.clone();
                async move { Ok::<_, Infallible>(site.logged(req, peer).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
}

fn plain(status: u16, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(text.to_string())))
        .expect("a valid response")
}

/// Paths of the host page itself, never logged.
fn is_internal(path: &str) -> bool {
    matches!(path, "/" | "/__alga/host.js" | "/favicon.ico") || path == sse::PATH
}

/// The `error` code of a JSON answer, if it has one.
fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?.as_str()?;
    Some(e.split(':').next().unwrap_or(e).trim().to_string())
}

impl Site {
    /// Serves a request and reports it to the request log (terminal and panel).
    async fn logged(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<StreamBody> {
        let started = std::time::Instant::now();
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let internal = is_internal(req.uri().path());
        if req.method() == hyper::Method::GET && req.uri().path() == sse::PATH {
            // The stream itself: after the host check, like everything.
            let host = req.headers().get(hyper::header::HOST);
            if !self.hosts.allows(host.and_then(|h| h.to_str().ok())) {
                return guard::host_refused().map(|b| b.boxed());
            }
            return sse::stream(req.headers());
        }
        let response = self.route(req, peer).await;
        if internal {
            return response.map(|b| b.boxed());
        }
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if let Some(journal) = journal() {
            let status = parts.status.as_u16();
            let outcome = if status < 400 {
                "ok".to_string()
            } else {
                error_code(&bytes).unwrap_or_else(|| format!("http_{status}"))
            };
            let request_id = parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            journal.finish(
                Entry {
                    method,
                    path,
                    status,
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                    outcome,
                    ..Entry::default()
                },
                request_id.as_deref(),
            );
        }
        Response::from_parts(parts, Full::new(bytes).boxed())
    }

    async fn route(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        // Before anything else, reads included: a rebound name reads what it gets.
        let host = req.headers().get(hyper::header::HOST);
        if !self.hosts.allows(host.and_then(|h| h.to_str().ok())) {
            return guard::host_refused();
        }
        let path = req.uri().path().to_string();
        if req.method() == hyper::Method::GET {
            match path.as_str() {
                "/" => return self.host_page().await,
                "/__alga/host.js" => return host_page::script(),
                "/favicon.ico" => return plain(404, "no icon"),
                _ => {}
            }
        }
        let direct = path.starts_with("/api/ext/");
        let (parts, body) = req.into_parts();
        // The direct route acts as the dev user and the bus for any tenant: a state
        // change must be one a cross-site page cannot send. Checked before the body
        // is read.
        let bus = path == super::bus::EVENTS_PATH && parts.method == hyper::Method::POST;
        if (direct || bus) && !guard::may_change_state(&parts, &self.token) {
            return guard::csrf_refused();
        }
        let body = match Limited::new(body, TRANSPORT_BODY_MAX).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(413, "request body too large"),
        };
        if bus {
            return super::bus::post(self.bus.as_deref(), &body, peer, &self.tenant);
        }
        let event = v2_event(&parts, &body, peer, direct.then_some(&self.claims));
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => return plain(400, &format!("bad request: {e}")),
        };
        let response = if path.starts_with("/ext-ui/") {
            self.ui.handle(request).await
        } else if path == "/v1/publish" {
            self.publish.handle_http(request).await
        } else {
            self.execute.handle(request).await
        };
        to_hyper(response)
    }

    async fn host_page(&self) -> Response<Full<Bytes>> {
        let install = self
            .backends
            .registry
            .get_install(&self.tenant, &self.extension_id)
            .await;
        match install {
            Ok(Some(i)) => host_page::page(
                &self.extension_id,
                &i.content_hash.to_string(),
                &self.tenant,
            ),
            Ok(None) => plain(404, "the extension is not installed"),
            Err(e) => plain(503, &format!("registry unavailable: {e}")),
        }
    }
}

/// The API Gateway HTTP API (payload v2) event for a request.
fn v2_event(
    parts: &http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    claims: Option<&BTreeMap<String, String>>,
) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let Ok(v) = value.to_str() else { continue };
        let entry = headers
            .entry(name.as_str().to_string())
            .or_insert_with(|| serde_json::Value::String(String::new()));
        if let serde_json::Value::String(s) = entry {
            // API Gateway joins repeated headers with commas.
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(v);
        }
    }
    let mut context = serde_json::json!({
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
        "requestId": runtime_core::gateway::new_request_id(),
        "routeKey": "$default",
        "stage": "$default",
        "timeEpoch": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default(),
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": peer.ip().to_string(),
            "userAgent": parts.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
        },
    });
    if let Some(claims) = claims {
        context["authorizer"] = serde_json::json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": context,
        "body": (!body.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(body)),
        "isBase64Encoded": true,
    })
}

fn to_hyper(response: lambda_http::Response<Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}
