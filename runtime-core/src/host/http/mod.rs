//! Outbound HTTP: `alga:extension/http.fetch` and `wasi:http/outgoing-handler`
//! go through one egress pipeline ([`EgressSession`]).
//!
//! Deny by default: without cap:http.fetch every request is refused; with it the
//! allowlist (global `EXT_EGRESS_ALLOWLIST` plus the install's `egress_allowlist`
//! config key; empty denies all) decides, then every address the name resolves to
//! must be public unless an operator range (`ALGA_EGRESS_ALLOW_RANGES`) allows it,
//! and the connection goes to exactly the checked address. `http.fetch` follows
//! redirects (bounded, each re-checked); `wasi:http` hands redirects to the guest,
//! whose next request is checked again.

mod client;
mod egress;
mod error;
pub mod operator;
pub mod policy;
pub mod resolve;
mod settings;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{Error as WasiHttpError, WasiBody, WasiHttpHooks, WasiHttpView};

use super::HostState;
use super::bindings::alga::extension::http;
use super::bindings::alga::extension::types::{HttpError, HttpHeader, HttpRequest, HttpResponse};
use super::logging::{LogLevel, LogSink, clip};

pub use client::{HttpClient, OutboundResponse};
pub use egress::{Egress, EgressSession, OutboundRequest};
pub use error::EgressError;
pub use settings::EgressSettings;

/// The `http-error` a guest of `http.fetch` sees for an egress error.
pub fn fetch_error(e: &EgressError) -> HttpError {
    match e {
        EgressError::InvalidUrl(_) => HttpError::InvalidUrl,
        e if e.is_refusal() => HttpError::NotAllowed,
        _ => HttpError::Transport,
    }
}

/// The `wasi:http` error code a guest sees for an egress error.
pub fn wasi_error(e: &EgressError) -> WasiHttpError {
    match e {
        EgressError::InvalidUrl(_) => WasiHttpError::HttpRequestUriInvalid,
        EgressError::ForbiddenAddress { .. } => WasiHttpError::DestinationIpProhibited,
        EgressError::NotGranted
        | EgressError::NotAllowlisted(_)
        | EgressError::TooManyCalls { .. }
        | EgressError::InsecureRedirect(_) => WasiHttpError::HttpRequestDenied,
        EgressError::Dns(_) => WasiHttpError::DnsError {
            rcode: None,
            info_code: None,
        },
        EgressError::RequestTooLarge { size, .. } => {
            WasiHttpError::HttpRequestBodySize(Some(*size as u64))
        }
        EgressError::ResponseTooLarge { .. } => WasiHttpError::HttpResponseBodySize(None),
        EgressError::Timeout { .. } => WasiHttpError::ConnectionTimeout,
        EgressError::Connect(_) => WasiHttpError::ConnectionRefused,
        EgressError::Tls(_) => WasiHttpError::TlsProtocolError,
        EgressError::TooManyRedirects { .. } | EgressError::Protocol(_) => {
            WasiHttpError::HttpProtocolError
        }
    }
}

/// Notes a refused or failed outbound request. `url` comes clipped ([`clip`]);
/// the method and error text hold guest strings too (a refused host name is part
/// of the error), so they are clipped here. The note counts against the log budget.
fn note_refusal(logs: &LogSink, via: &str, method: &str, url: &str, e: &EgressError) {
    logs.note(
        LogLevel::Warn,
        format!(
            "{via} {} {}: {} ({})",
            clip(method),
            url,
            e.code(),
            clip(&e.to_string())
        ),
    );
}

/// The `wasi:http` package version wasmtime-wasi-http implements (its WIT); the
/// budgeted `handle` below replaces wasmtime's under this name. A unit test
/// fails if the name stops matching after a wasmtime upgrade.
pub(crate) const WASI_HTTP_VERSION: &str = "0.2.12";

/// `wasi:http/outgoing-handler.handle` with the request's host-call budget in
/// front: every request is charged, refused ones included (the egress policy
/// decides later, in [`WasiHttpEgress`]), so a guest cannot loop refused requests
/// for free. Past the budget the guest traps with the typed host-call limit.
pub fn handle_charged(
    state: &mut HostState,
    request: Resource<HostOutgoingRequest>,
    options: Option<Resource<wasmtime_wasi_http::RequestOptions>>,
) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, ErrorCode>> {
    state.budget.charge()?;
    match outgoing_handler::Host::handle(&mut state.http(), request, options) {
        Ok(future) => Ok(Ok(future)),
        Err(e) => Ok(Err(e.downcast()?)),
    }
}

/// Replaces wasmtime's `outgoing-handler.handle` (linked just before) with
/// [`handle_charged`]. The bindgen traits cannot be wrapped one function at a
/// time (the interface trait requires every `wasi:http/types` resource), so the
/// one function is shadowed in the linker.
pub(crate) fn link_charged_outgoing_handler(
    linker: &mut Linker<HostState>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(&format!("wasi:http/outgoing-handler@{WASI_HTTP_VERSION}"))?
        .func_wrap(
            "handle",
            |mut store: StoreContextMut<'_, HostState>,
             (request, options): (
                Resource<HostOutgoingRequest>,
                Option<Resource<wasmtime_wasi_http::RequestOptions>>,
            )| { Ok((handle_charged(store.data_mut(), request, options)?,)) },
        )?;
    linker.allow_shadowing(false);
    Ok(())
}

impl http::Host for HostState {
    async fn fetch(
        &mut self,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<HttpResponse, HttpError>> {
        self.budget.charge()?;
        let method = match ::http::Method::from_bytes(request.method.trim().as_bytes()) {
            Ok(m) => m,
            Err(_) => return Ok(Err(HttpError::InvalidUrl)),
        };
        // Only a clipped copy of the URL is kept for the refusal note.
        let noted_url = clip(&request.url).into_owned();
        let outbound = OutboundRequest {
            method: method.clone(),
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: request.body.map(Bytes::from),
        };
        let session = self.egress.clone();
        Ok(match session.send(outbound, true).await {
            Ok(r) => Ok(HttpResponse {
                status: r.status,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(name, value)| HttpHeader { name, value })
                    .collect(),
                body: Some(r.body.to_vec()),
            }),
            Err(e) => {
                note_refusal(&self.logs, "http.fetch", method.as_str(), &noted_url, &e);
                Err(fetch_error(&e))
            }
        })
    }
}

/// `wasi:http` hooks that route every outgoing request through the egress session.
pub struct WasiHttpEgress {
    session: Arc<EgressSession>,
    logs: LogSink,
    /// Outgoing-body buffer this request may still hand out, in bytes.
    body_buffer_left: usize,
}

/// Buffer all outgoing bodies of one request share. Each body buffers one chunk
/// until its request is sent (wasmtime's default chunk is 1 MiB, our egress body
/// cap), so without a shared budget a guest pins 1 MiB per body it creates and
/// never sends. 20 MiB covers the default 20 outbound calls at full size.
pub const OUTGOING_BODY_BUFFER_MAX: usize = 20 << 20;

/// The chunk a body gets once the shared budget is spent: it still streams
/// (after `handle`), it just cannot pin more before its request is sent.
const OUTGOING_BODY_MIN_CHUNK: usize = 4 << 10;

impl WasiHttpEgress {
    /// Hooks sending through `session`, noting refusals in `logs`.
    pub fn new(session: Arc<EgressSession>, logs: LogSink) -> Self {
        WasiHttpEgress {
            session,
            logs,
            body_buffer_left: OUTGOING_BODY_BUFFER_MAX,
        }
    }
}

type SendResult = Result<
    (
        ::http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
    ),
    WasiHttpError,
>;

impl WasiHttpHooks for WasiHttpEgress {
    /// Called once per outgoing body created: each takes its chunk (the most it
    /// buffers unsent; one chunk per body) from the request's shared budget.
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        let chunk = wasmtime_wasi_http::p2::DEFAULT_OUTGOING_BODY_CHUNK_SIZE
            .min(self.body_buffer_left)
            .max(OUTGOING_BODY_MIN_CHUNK);
        self.body_buffer_left = self.body_buffer_left.saturating_sub(chunk);
        chunk
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn send_request(
        &mut self,
        request: ::http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let session = self.session.clone();
        let logs = self.logs.clone();
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let result = async {
                // Refuse before reading the body, so a denied guest uploads nothing.
                session.precheck(&url)?;
                let limit = session.request_body_max();
                let body = read_capped(body, limit).await?;
                let headers = parts
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                    .collect();
                session
                    .send(
                        OutboundRequest {
                            method: parts.method.clone(),
                            url: url.clone(),
                            headers,
                            body: Some(body),
                        },
                        false,
                    )
                    .await
            }
            .await;
            match result {
                Ok(r) => {
                    let mut response = ::http::Response::builder().status(r.status);
                    for (k, v) in &r.headers {
                        response = response.header(k.as_str(), v.as_str());
                    }
                    let body: WasiBody = http_body_util::Full::new(r.body)
                        .map_err(|never: std::convert::Infallible| -> WasiHttpError {
                            match never {}
                        })
                        .boxed_unsync();
                    let response = response
                        .body(body)
                        .map_err(|_| WasiHttpError::HttpProtocolError)?;
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                }
                Err(e) => {
                    note_refusal(&logs, "wasi:http", parts.method.as_str(), &clip(&url), &e);
                    Err(wasi_error(&e))
                }
            }
        })
    }
}

async fn read_capped(mut body: WasiBody, limit: usize) -> Result<Bytes, EgressError> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| EgressError::Protocol(format!("request body: {e:?}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(EgressError::RequestTooLarge {
                    size: buf.len() + data.len(),
                    limit,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}
