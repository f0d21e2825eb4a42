//! `ANY /api/ext/{extensionId}/{proxy+}`: a browser or the host app calls an
//! extension's endpoint directly. The authorizer names the tenant and user; the
//! request must match an endpoint the manifest declares; the guest's response
//! goes back through the response-header allowlist and the `location` check,
//! with a sandboxing content security policy. Failures behind the gateway show
//! the caller a generic message (`public_error`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;

use super::caller::Caller;
use super::headers::{
    DIRECT_ROUTE_CSP, location_allowed, request_header_allowed, response_header_allowed,
};
use super::public_error::{generic_message, internal_failure, is_internal};
use super::record::{Refused, Route};
use super::{Gateway, HttpReply, new_request_id};
use crate::execute::request::{HttpPayload, RequestContext, RequestedLimits};
use crate::execute::{Call, CallBody, ExecuteRequest, Outcome, RoutingHeaders};
use crate::manifest::Manifest;
use crate::store::{InstallRecord, RegistryError};

/// One request on the direct route.
#[derive(Debug)]
pub struct DirectRequest<'a> {
    /// Who calls, as the authorizer says; `Err` says why its word is not enough
    /// (no tenant claim, claims that disagree): answered 401.
    pub caller: Result<Caller, String>,
    /// `{extensionId}` of the route.
    pub extension_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// The path after the extension id, starting with `/` (still percent-encoded).
    pub path: &'a str,
    /// Query parameters (last value of a repeated name wins).
    pub query: BTreeMap<String, String>,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Body bytes.
    pub body: &'a [u8],
    /// The platform's request id, when it has one.
    pub request_id: Option<String>,
}

/// A registry failure: the caller gets the code and the request id, the log the
/// SDK's text (which names tables, ARNs and the account).
fn unavailable(e: RegistryError, request_id: &str) -> HttpReply {
    internal_failure(
        503,
        "backend_unavailable",
        format!("registry: {e}"),
        request_id,
    )
    .with_header("retry-after", "1")
}

impl Gateway {
    /// Serves one request on the direct route. Every request gets a request id and
    /// one log line, also when it is refused before any guest runs.
    pub async fn direct(&self, mut req: DirectRequest<'_>) -> HttpReply {
        let started = Instant::now();
        let request_id = req.request_id.take().unwrap_or_else(new_request_id);
        let tenant = req.caller.as_ref().ok().map(|c| c.tenant.clone());
        let extension = req.extension_id;
        let served = self.serve_direct(req, &request_id);
        match crate::store::within_request(started, served).await {
            Ok(reply) => reply,
            Err(reply) => {
                let refused = Refused {
                    route: Route::Direct,
                    request_id: &request_id,
                    tenant: tenant.as_deref().unwrap_or(""),
                    extension,
                    started,
                };
                self.log_refusal(&refused, &reply);
                reply
                    .with_header("x-request-id", request_id)
                    .with_header("content-security-policy", DIRECT_ROUTE_CSP)
            }
        }
    }

    /// The direct route; `Err` is a refusal before any guest ran.
    async fn serve_direct(
        &self,
        req: DirectRequest<'_>,
        request_id: &str,
    ) -> Result<HttpReply, HttpReply> {
        let caller = match req.caller {
            Ok(caller) => caller,
            Err(why) => return Err(HttpReply::error(401, "unauthenticated", why)),
        };
        if req.body.len() > self.settings.body_max {
            return Err(HttpReply::error(
                413,
                "payload_too_large",
                format!(
                    "body of {} bytes exceeds the {} byte limit",
                    req.body.len(),
                    self.settings.body_max
                ),
            ));
        }
        let install = match self
            .backends
            .registry
            .get_install(&caller.tenant, req.extension_id)
            .await
        {
            Ok(Some(i)) => i,
            Ok(None) => {
                return Err(HttpReply::error(
                    404,
                    "not_installed",
                    format!("{} is not installed for this tenant", req.extension_id),
                ));
            }
            Err(e) => return Err(unavailable(e, request_id)),
        };
        let manifest = self.manifest_of(&install, request_id).await?;
        if manifest.match_endpoint(req.method, req.path).is_none() {
            return Err(HttpReply::error(
                404,
                "endpoint_not_found",
                format!(
                    "{} declares no endpoint for {} {}",
                    req.extension_id, req.method, req.path
                ),
            ));
        }

        let headers: BTreeMap<String, String> = req
            .headers
            .iter()
            .filter(|(name, _)| request_header_allowed(name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let execute = ExecuteRequest {
            context: RequestContext {
                tenant_id: caller.tenant.clone(),
                extension_id: req.extension_id.to_string(),
                content_hash: install.content_hash.to_string(),
                request_id: Some(request_id.to_string()),
                install_id: Some(install.install_id.clone()),
                version_id: Some(install.version.clone()),
                config: None,
            },
            http: HttpPayload {
                method: req.method.to_ascii_uppercase(),
                path: req.path.to_string(),
                query: Some(req.query),
                headers: Some(headers),
                // The body travels as bytes (`Call::body`), never through base64.
                body_b64: None,
            },
            limits: RequestedLimits::default(),
            secret_envelope: None,
            providers: None,
            user: caller.user.clone(),
        };
        let routing = RoutingHeaders {
            tenant: Some(caller.tenant.clone()),
            extension: Some(req.extension_id.to_string()),
            request_id: Some(request_id.to_string()),
        };
        let call = Call {
            body: CallBody::Bytes(
                (!req.body.is_empty() || req.method != "GET").then_some(req.body),
            ),
            install: Some(&install),
            ..Call::wire(&execute)
        };
        let outcome = self.executor.call(&routing, call).await;
        self.record(Route::Direct, &caller.tenant, req.extension_id, &outcome)
            .await;
        let to = ReplyTo {
            method: req.method,
            own_route: format!("/api/ext/{}", req.extension_id),
            host: req.headers.get("host").and_then(|h| h.to_str().ok()),
            request_id,
        };
        Ok(guest_reply(&outcome, &to).with_header("x-request-id", request_id))
    }

    /// The manifest of an install's bundle (parsed once per bundle).
    async fn manifest_of(
        &self,
        install: &InstallRecord,
        request_id: &str,
    ) -> Result<Arc<Manifest>, HttpReply> {
        if let Some(m) = self.manifests.lock().unwrap().get(&install.content_hash) {
            return Ok(m.clone());
        }
        let version = self
            .backends
            .registry
            .get_version(&install.extension_id, &install.version)
            .await
            .map_err(|e| unavailable(e, request_id))?
            .ok_or_else(|| {
                // The install names a version that is gone: the operator's problem;
                // the caller learns nothing about which version the tenant runs.
                tracing::warn!(
                    request_id,
                    extension = %install.extension_id,
                    version = %install.version,
                    "installed version is not published"
                );
                HttpReply::error(
                    404,
                    "not_installed",
                    format!("{} is not installed for this tenant", install.extension_id),
                )
            })?;
        let manifest = Manifest::parse(version.manifest_json.as_bytes()).map_err(|e| {
            internal_failure(
                500,
                "invalid_manifest",
                format!("stored manifest: {e}"),
                request_id,
            )
        })?;
        let manifest = Arc::new(manifest);
        self.manifests
            .lock()
            .unwrap()
            .put(install.content_hash, manifest.clone());
        Ok(manifest)
    }
}

/// What shapes a guest's answer besides its outcome.
struct ReplyTo<'a> {
    /// The request's method (HEAD answers without a body).
    method: &'a str,
    /// `/api/ext/{extensionId}`: where the guest's absolute redirects may point.
    own_route: String,
    /// The request's `host`, for absolute redirects to the own route.
    host: Option<&'a str>,
    /// The request id, named in generic error messages.
    request_id: &'a str,
}

/// The guest's response as HTTP, or the error with its status and code. Internal
/// failures show only a generic message (the detail is in the invocation's log
/// line); guest headers pass the allowlist, `location` only when
/// [`location_allowed`]; every response carries [`DIRECT_ROUTE_CSP`].
fn guest_reply(outcome: &Outcome, to: &ReplyTo<'_>) -> HttpReply {
    let env = &outcome.envelope;
    if let Some(error) = &outcome.error {
        let code = error.code();
        let message = if is_internal(code) {
            generic_message(code, to.request_id)
        } else {
            error.detail()
        };
        let mut reply = HttpReply::error(error.status(), code, message)
            .with_header("content-security-policy", DIRECT_ROUTE_CSP);
        if let Some(secs) = error.retry_after() {
            reply = reply.with_header("retry-after", secs.to_string());
        }
        return reply;
    }
    let mut headers: Vec<(String, String)> = env
        .headers
        .iter()
        .flatten()
        .filter(|(k, _)| response_header_allowed(k))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .filter(|(k, v)| {
            let keep = k != "location" || location_allowed(v, &to.own_route, to.host);
            if !keep {
                tracing::info!(
                    request_id = to.request_id,
                    // The guest's text: bounded in the log.
                    location = %v.chars().take(256).collect::<String>(),
                    "guest's location header dropped: not a path on this origin or the extension's own route"
                );
            }
            keep
        })
        .collect();
    if !headers.iter().any(|(k, _)| k == "cache-control") {
        headers.push(("cache-control".into(), "no-store".into()));
    }
    headers.push(("x-content-type-options".into(), "nosniff".into()));
    headers.push(("content-security-policy".into(), DIRECT_ROUTE_CSP.into()));
    let body = if to.method.eq_ignore_ascii_case("HEAD") {
        Vec::new()
    } else {
        env.body.clone().unwrap_or_default()
    };
    HttpReply {
        status: env.status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::{Envelope, ExecError, Metrics};

    fn outcome(envelope: Envelope) -> Outcome {
        Outcome {
            envelope,
            error: None,
            logs: Vec::new(),
            metrics: Metrics {
                outcome: "ok",
                ..Metrics::default()
            },
        }
    }

    fn to() -> ReplyTo<'static> {
        ReplyTo {
            method: "GET",
            own_route: "/api/ext/x".into(),
            host: Some("api.example.com"),
            request_id: "req-1",
        }
    }

    fn page(headers: &[(&str, &str)]) -> Outcome {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        outcome(Envelope::success(
            200,
            headers,
            Some(b"<script>alert(1)</script>".to_vec()),
        ))
    }

    #[test]
    fn sec_12_guest_html_is_sandboxed_and_redirects_stay_on_the_extensions_route() {
        // A guest serving HTML from the shared API origin, trying to lift the
        // sandbox with its own policy and to send the browser elsewhere.
        let reply = guest_reply(
            &page(&[
                ("content-type", "text/html"),
                ("content-security-policy", "default-src *"),
                ("location", "https://evil.example/phish"),
            ]),
            &to(),
        );
        let csp: Vec<&str> = reply
            .headers
            .iter()
            .filter(|(k, _)| k == "content-security-policy")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(csp, ["sandbox; default-src 'none'"], "{:?}", reply.headers);
        assert_eq!(reply.header("location"), None, "{:?}", reply.headers);
        // Redirects within the origin survive.
        let reply = guest_reply(&page(&[("location", "/api/ext/x/done")]), &to());
        assert_eq!(reply.header("location"), Some("/api/ext/x/done"));
        assert_eq!(
            reply.header("content-security-policy"),
            Some("sandbox; default-src 'none'")
        );
    }

    #[test]
    fn sec_18_backend_error_text_stays_in_the_log() {
        let arn = "User: arn:aws:sts::123456789012:assumed-role/alga-exec/fn is not authorized \
                   to perform dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/alga-registry";
        // A failure inside the pipeline (the envelope's `code: detail`).
        let failed = Outcome::failed(
            ExecError::BackendUnavailable(format!("registry: {arn}")),
            Metrics::default(),
        );
        let reply = guest_reply(&failed, &to());
        let body = String::from_utf8_lossy(&reply.body).to_string();
        assert_eq!(reply.status, 503);
        assert!(body.contains("\"backend_unavailable\""), "{body}");
        assert!(body.contains("req-1"), "the request id correlates: {body}");
        for leak in ["arn:", "123456789012", "dynamodb", "registry:"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
        // A wasmtime error chain.
        let chain = "failed to instantiate: /var/task/.cache/ab12.cwasm: incompatible \
                     import type for `wasi:http/outgoing-handler@0.2.6` at 0x1f";
        let failed = Outcome::failed(ExecError::ExecuteFailed(chain.into()), Metrics::default());
        let body = String::from_utf8_lossy(&guest_reply(&failed, &to()).body).to_string();
        for leak in ["/var/task", "wasi:http", "0x1f"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
        // A refusal before the guest ran (the registry read failed).
        let refused = unavailable(
            RegistryError::Store(crate::store::StoreError::Unavailable(arn.into())),
            "req-1",
        );
        let body = String::from_utf8_lossy(&refused.body).to_string();
        assert_eq!(refused.status, 503);
        for leak in ["arn:", "123456789012"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
    }
}
