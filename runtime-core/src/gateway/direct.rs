//! `ANY /api/ext/{extensionId}/{proxy+}`: a browser or the host app calls an
//! extension's endpoint directly. The authorizer names the tenant and user; the
//! request must match an endpoint the manifest declares; the guest's response
//! goes back as is, through the response-header allowlist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use http::HeaderMap;

use super::caller::Caller;
use super::headers::{request_header_allowed, response_header_allowed};
use super::record::{Refused, Route};
use super::{Gateway, HttpReply, new_request_id};
use crate::execute::request::{HttpPayload, RequestContext, RequestedLimits};
use crate::execute::{ExecError, ExecuteRequest, Outcome, RoutingHeaders};
use crate::manifest::Manifest;
use crate::store::{InstallRecord, RegistryError};

/// One request on the direct route.
#[derive(Debug)]
pub struct DirectRequest<'a> {
    /// Who calls, as the authorizer says; `None` when it said nothing.
    pub caller: Option<Caller>,
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

fn unavailable(e: RegistryError) -> HttpReply {
    HttpReply::error(503, "backend_unavailable", format!("registry: {e}"))
        .with_header("retry-after", "1")
}

impl Gateway {
    /// Serves one request on the direct route. Every request gets a request id and
    /// one log line, also when it is refused before any guest runs.
    pub async fn direct(&self, mut req: DirectRequest<'_>) -> HttpReply {
        let started = Instant::now();
        let request_id = req.request_id.take().unwrap_or_else(new_request_id);
        let tenant = req.caller.as_ref().map(|c| c.tenant.clone());
        let extension = req.extension_id;
        match self.serve_direct(req, &request_id).await {
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
                reply.with_header("x-request-id", request_id)
            }
        }
    }

    /// The direct route; `Err` is a refusal before any guest ran.
    async fn serve_direct(
        &self,
        req: DirectRequest<'_>,
        request_id: &str,
    ) -> Result<HttpReply, HttpReply> {
        let Some(caller) = req.caller else {
            return Err(HttpReply::error(
                401,
                "unauthenticated",
                format!(
                    "the authorizer supplied no {:?} claim",
                    self.settings.tenant_claim
                ),
            ));
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
            Err(e) => return Err(unavailable(e)),
        };
        let manifest = self.manifest_of(&install).await?;
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
                body_b64: (!req.body.is_empty() || req.method != "GET")
                    .then(|| base64::engine::general_purpose::STANDARD.encode(req.body)),
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
        let outcome = self.executor.execute(&routing, &execute).await;
        self.record(Route::Direct, &caller.tenant, req.extension_id, &outcome)
            .await;
        Ok(guest_reply(&outcome, req.method).with_header("x-request-id", request_id))
    }

    /// The manifest of an install's bundle (parsed once per bundle).
    async fn manifest_of(&self, install: &InstallRecord) -> Result<Arc<Manifest>, HttpReply> {
        if let Some(m) = self.manifests.lock().unwrap().get(&install.content_hash) {
            return Ok(m.clone());
        }
        let version = self
            .backends
            .registry
            .get_version(&install.extension_id, &install.version)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                HttpReply::error(
                    404,
                    "not_installed",
                    format!(
                        "{} {} is not published",
                        install.extension_id, install.version
                    ),
                )
            })?;
        let manifest = Manifest::parse(version.manifest_json.as_bytes()).map_err(|e| {
            HttpReply::error(500, "invalid_manifest", format!("stored manifest: {e}"))
        })?;
        let manifest = Arc::new(manifest);
        self.manifests
            .lock()
            .unwrap()
            .put(install.content_hash, manifest.clone());
        Ok(manifest)
    }
}

/// The guest's response as HTTP, or the error with its status and code.
fn guest_reply(outcome: &Outcome, method: &str) -> HttpReply {
    let env = &outcome.envelope;
    if let Some(error) = &env.error {
        let code = outcome.metrics.outcome;
        let message = error
            .strip_prefix(code)
            .map(|m| m.trim_start_matches(':').trim())
            .unwrap_or(error);
        let mut reply = HttpReply::error(env.status, code, message);
        if let Some(secs) = outcome.metrics.retry_after {
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
        .collect();
    if !headers.iter().any(|(k, _)| k == "cache-control") {
        headers.push(("cache-control".into(), "no-store".into()));
    }
    headers.push(("x-content-type-options".into(), "nosniff".into()));
    let body = if method.eq_ignore_ascii_case("HEAD") {
        Vec::new()
    } else {
        env.body().unwrap_or_default()
    };
    HttpReply {
        status: env.status,
        headers,
        body,
    }
}

impl From<ExecError> for HttpReply {
    fn from(e: ExecError) -> Self {
        HttpReply::error(e.status(), e.code(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::{Envelope, Metrics};

    fn outcome(envelope: Envelope, code: &'static str) -> Outcome {
        Outcome {
            envelope,
            logs: Vec::new(),
            metrics: Metrics {
                outcome: code,
                ..Metrics::default()
            },
        }
    }

    fn page(headers: &[(&str, &str)]) -> Outcome {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        outcome(
            Envelope::success(200, headers, Some(b"<script>alert(1)</script>")),
            "ok",
        )
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
            "GET",
        );
        let csp: Vec<&str> = reply
            .headers
            .iter()
            .filter(|(k, _)| k == "content-security-policy")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(csp, ["sandbox; default-src 'none'"], "{:?}", reply.headers);
        assert_eq!(reply.header("location"), None, "{:?}", reply.headers);
    }

    #[test]
    fn sec_18_backend_error_text_stays_in_the_log() {
        let arn = "User: arn:aws:sts::123456789012:assumed-role/alga-exec/fn is not authorized \
                   to perform dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/alga-registry";
        // A failure inside the pipeline (the envelope's `code: detail`).
        let failed = outcome(
            Envelope::error(&ExecError::BackendUnavailable(format!("registry: {arn}"))),
            "backend_unavailable",
        );
        let reply = guest_reply(&failed, "GET");
        let body = String::from_utf8_lossy(&reply.body).to_string();
        assert_eq!(reply.status, 503);
        assert!(body.contains("\"backend_unavailable\""), "{body}");
        for leak in ["arn:", "123456789012", "dynamodb", "registry:"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
        // A wasmtime error chain.
        let chain = "failed to instantiate: /var/task/.cache/ab12.cwasm: incompatible \
                     import type for `wasi:http/outgoing-handler@0.2.6` at 0x1f";
        let failed = outcome(
            Envelope::error(&ExecError::ExecuteFailed(chain.into())),
            "execute_failed",
        );
        let body = String::from_utf8_lossy(&guest_reply(&failed, "GET").body).to_string();
        for leak in ["/var/task", "wasi:http", "0x1f"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
        // A refusal before the guest ran (the registry read failed).
        let refused = unavailable(RegistryError::Store(crate::store::StoreError::Unavailable(
            arn.into(),
        )));
        let body = String::from_utf8_lossy(&refused.body).to_string();
        assert_eq!(refused.status, 503);
        for leak in ["arn:", "123456789012"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
    }
}
