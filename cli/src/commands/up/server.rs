//! The local server of `alga-lambda up`: plays API Gateway (HTTP API, payload
//! v2) in front of the very handlers the Lambda functions run. Every request is
//! turned into the v2 event Lambda would receive (lambda_http's own event type)
//! — with the dev identity as JWT-authorizer claims on the direct route — and
//! into its request by lambda_http, so local and Lambda behaviour cannot drift.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

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
    pub claims: HashMap<String, String>,
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
        // Answers are written whole: nothing is gained by Nagle's wait.
        let _ = stream.set_nodelay(true);
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
        let request = v2_request(&parts, body, peer, direct.then_some(&self.claims));
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

/// The API Gateway HTTP API (payload v2) event for a request, as lambda_http
/// deserializes it from Lambda's JSON, turned into its request by lambda_http's
/// own conversion. Built as the typed event rather than as JSON text: the
/// request lambda_http hands the handler is the same, without a JSON
/// round trip (and the untagged-enum guessing its parser does) per request.
fn v2_request(
    parts: &http::request::Parts,
    body: Bytes,
    peer: SocketAddr,
    claims: Option<&HashMap<String, String>>,
) -> lambda_http::Request {
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequest,
    };
    let text = |name: &str| parts.headers.get(name).and_then(|h| h.to_str().ok());
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some("$default".into());
    event.raw_path = Some(parts.uri.path().to_string());
    event.raw_query_string = Some(parts.uri.query().unwrap_or("").to_string());
    event.headers = gateway_headers(&parts.headers);
    event.is_base64_encoded = true;
    let context = &mut event.request_context;
    context.account_id = Some("000000000000".into());
    context.apiid = Some("local".into());
    context.domain_name = Some(text("host").unwrap_or("localhost").to_string());
    context.request_id = Some(runtime_core::gateway::new_request_id());
    context.route_key = Some("$default".into());
    context.stage = Some("$default".into());
    context.time_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    context.http.method = parts.method.clone();
    context.http.path = Some(parts.uri.path().to_string());
    context.http.protocol = Some("HTTP/1.1".into());
    context.http.source_ip = Some(peer.ip().to_string());
    context.http.user_agent = Some(text("user-agent").unwrap_or("").to_string());
    if let Some(claims) = claims {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims.clone();
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        context.authorizer = Some(authorizer);
    }
    let mut request: lambda_http::Request =
        lambda_http::request::LambdaRequest::ApiGatewayV2(event).into();
    // The event would carry the body in base64 for lambda_http to decode into
    // these very bytes.
    if !body.is_empty() {
        *request.body_mut() = Body::Binary(body.into());
    }
    request
}

/// The headers as API Gateway passes them: one value per name, repeated headers
/// joined with commas, values that are not text left out.
fn gateway_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
        let Some(first) = values.next() else { continue };
        let mut joined = first.to_string();
        for v in values {
            joined.push(',');
            joined.push_str(v);
        }
        if let Ok(value) = http::HeaderValue::from_str(&joined) {
            out.insert(name.clone(), value);
        }
    }
    out
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
