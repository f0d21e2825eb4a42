//! `POST /v1/execute`: the Alga runner's wire contract. Execution outcomes are
//! always HTTP 200 with the four-key envelope; only transport-level problems
//! (credential, media type, malformed or oversize body) use other statuses.

use std::time::{Duration, Instant};

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::credential::token_matches;
use super::public_error::public_envelope;
use super::record::{Refused, Route};
use super::settings::{ExecuteAuth, PlatformIdentity};
use super::{Gateway, HttpReply, new_request_id};
use crate::execute::{Envelope, ExecError, ExecuteRequest, Outcome, RoutingHeaders};
use crate::store::Claim;

/// Longest accepted `x-idempotency-key`.
const IDEMPOTENCY_KEY_MAX: usize = 256;

/// What an idempotency record holds: the request it answered and the answer.
#[derive(Serialize, Deserialize)]
struct StoredResponse {
    request_sha256: String,
    envelope: Envelope,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn envelope_reply(env: &Envelope) -> HttpReply {
    HttpReply::json(200, &serde_json::to_value(env).unwrap_or_default())
}

/// A backend failure before the guest ran: the detail to the log, the caller the
/// envelope with `backend_unavailable` and the request id.
fn backend_failure(detail: String, request_id: &str) -> HttpReply {
    let e = ExecError::BackendUnavailable(detail);
    tracing::warn!(target: "alga::backend", request_id, code = e.code(), detail = %e, "request failed behind the gateway");
    envelope_reply(&public_envelope(&Envelope::error(&e), e.code(), request_id))
}

/// The key an `x-idempotency-key` is stored under within its tenant's scope: keys
/// are per tenant *and* extension, so two extensions of one tenant never share one.
/// A newline cannot occur in an HTTP header, so the pair is unambiguous.
pub fn idempotency_store_key(extension: &str, key: &str) -> String {
    format!("{extension}\n{key}")
}

/// The sha256 a replay must match: the request's JSON without
/// `context.request_id`, which Alga's callers make fresh on every retry of the
/// same request. `value` is left as it was.
fn request_fingerprint(value: &mut serde_json::Value) -> String {
    let context = value.get_mut("context").and_then(|c| c.as_object_mut());
    let request_id = context.and_then(|c| c.remove("request_id"));
    let digest = hex::encode(Sha256::digest(
        serde_json::to_vec(value).unwrap_or_default(),
    ));
    if let Some(id) = request_id
        && let Some(context) = value.get_mut("context").and_then(|c| c.as_object_mut())
    {
        context.insert("request_id".into(), id);
    }
    digest
}

/// Reads a `/v1/execute` body as the gateway does: the request and, with
/// `fingerprint`, the sha256 an idempotent replay must match (see
/// [`Gateway::execute_api`]). `Err` is the refusal: 400 `malformed_json` when the
/// body is not JSON, 422 `invalid_execute_request` when it is not a request.
pub fn parse_execute_body(
    body: &[u8],
    fingerprint: bool,
) -> Result<(ExecuteRequest, Option<String>), HttpReply> {
    let mut value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Err(refusal(400, "malformed_json", &e.to_string())),
    };
    let fingerprint = fingerprint.then(|| request_fingerprint(&mut value));
    match serde_json::from_value(value) {
        Ok(req) => Ok((req, fingerprint)),
        Err(e) => Err(refusal(422, "invalid_execute_request", &e.to_string())),
    }
}

/// An envelope for a failure outside the guest, with its own HTTP status.
fn refusal(http_status: u16, code: &str, message: &str) -> HttpReply {
    HttpReply::json(
        http_status,
        &serde_json::json!({
            "status": http_status,
            "headers": {},
            "body_b64": null,
            "error": format!("{code}: {message}"),
        }),
    )
}

impl Gateway {
    /// Serves `POST /v1/execute` with the request's headers and raw body, for a
    /// transport that carries no IAM identity (`up`, tests): with
    /// [`ExecuteAuth::Iam`] every such request is refused.
    pub async fn execute_api(&self, headers: &HeaderMap, body: &[u8]) -> HttpReply {
        self.execute_api_as(&PlatformIdentity::default(), headers, body)
            .await
    }

    /// Serves `POST /v1/execute`; `platform` is what the platform vouches for
    /// (the IAM principal it authenticated, the VPC endpoint the request came
    /// through). Every request gets one log line, also when it is refused or
    /// replayed without running a guest.
    pub async fn execute_api_as(
        &self,
        platform: &PlatformIdentity,
        headers: &HeaderMap,
        body: &[u8],
    ) -> HttpReply {
        let started = Instant::now();
        let mut request_id = header(headers, "x-request-id")
            .map(String::from)
            .unwrap_or_else(new_request_id);
        let served = self.serve_execute(platform, headers, body, &mut request_id);
        match crate::store::within_request(started, served).await {
            Ok(reply) => reply,
            Err(reply) => {
                let refused = Refused {
                    route: Route::Execute,
                    request_id: &request_id,
                    tenant: header(headers, "x-alga-tenant").unwrap_or(""),
                    extension: header(headers, "x-alga-extension").unwrap_or(""),
                    started,
                };
                self.log_refusal(&refused, &reply);
                reply.with_header("x-request-id", request_id)
            }
        }
    }

    /// `/v1/execute`; `Err` is an answer given without running a guest. The
    /// request id in force is left in `request_id`.
    async fn serve_execute(
        &self,
        platform: &PlatformIdentity,
        headers: &HeaderMap,
        body: &[u8],
        request_id: &mut String,
    ) -> Result<HttpReply, HttpReply> {
        match &self.settings.execute_auth {
            ExecuteAuth::Token(expected) => {
                let presented = header(headers, "x-runner-service-token");
                let ok = match (expected, presented) {
                    (Some(e), Some(p)) => token_matches(e, p),
                    _ => false,
                };
                if !ok {
                    return Err(refusal(
                        401,
                        "unauthorized",
                        "a valid x-runner-service-token is required",
                    )
                    .with_header("www-authenticate", "Token"));
                }
            }
            // Deny by default: without the platform's IAM context nothing vouches
            // for the caller, whatever route the request came by.
            ExecuteAuth::Iam => match &platform.iam {
                Some(p) => tracing::debug!(principal = %p.arn, "IAM caller"),
                None => {
                    return Err(refusal(
                        401,
                        "unauthorized",
                        "an IAM-signed (SigV4) request on the execute route is required",
                    ));
                }
            },
            // The resource policy admits only the host app's endpoint; the function
            // checks again, so a route or API left open elsewhere still fails closed.
            ExecuteAuth::Private { vpc_endpoints } => match &platform.vpc_endpoint {
                Some(id) if vpc_endpoints.iter().any(|allowed| allowed == id) => {
                    tracing::debug!(vpc_endpoint = %id, "private API caller");
                }
                _ => {
                    return Err(refusal(
                        401,
                        "unauthorized",
                        "the execute API answers only requests through the host app's VPC endpoint",
                    ));
                }
            },
        }
        // base64 inflates the body by 4/3; the JSON around it is small.
        let wire_max = self.settings.body_max / 3 * 4 + (64 << 10);
        if body.len() > wire_max {
            return Err(refusal(
                413,
                "payload_too_large",
                &format!("request of {} bytes exceeds {wire_max}", body.len()),
            ));
        }
        if let Some(ct) = header(headers, "content-type")
            && !ct.to_ascii_lowercase().starts_with("application/json")
        {
            return Err(refusal(
                415,
                "unsupported_media_type",
                "send application/json",
            ));
        }
        let (mut req, fingerprint) =
            parse_execute_body(body, header(headers, "x-idempotency-key").is_some())?;
        let routing = RoutingHeaders {
            tenant: header(headers, "x-alga-tenant").map(String::from),
            extension: header(headers, "x-alga-extension").map(String::from),
            request_id: Some(
                header(headers, "x-request-id")
                    .map(String::from)
                    .or_else(|| req.context.request_id.clone())
                    .unwrap_or_else(|| request_id.clone()),
            ),
        };
        if let Some(id) = &routing.request_id {
            request_id.clone_from(id);
        }
        if req.context.request_id.is_none() {
            req.context.request_id = routing.request_id.clone();
        }

        let idempotency = match (
            header(headers, "x-idempotency-key"),
            &routing.tenant,
            fingerprint,
        ) {
            (Some(key), Some(tenant), Some(digest)) => {
                if key.len() > IDEMPOTENCY_KEY_MAX {
                    return Err(refusal(
                        400,
                        "invalid_idempotency_key",
                        &format!("at most {IDEMPOTENCY_KEY_MAX} characters"),
                    ));
                }
                let extension = routing.extension.as_deref().unwrap_or_default();
                Some((
                    tenant.clone(),
                    idempotency_store_key(extension, key),
                    digest,
                ))
            }
            _ => None,
        };
        if let Some((tenant, key, digest)) = &idempotency {
            // An unfinished claim lapses after the longest possible run.
            let claim_ttl = self.executor.max_timeout() + Duration::from_secs(30);
            match self
                .backends
                .idempotency
                .claim(tenant, key, claim_ttl)
                .await
            {
                Ok(Claim::Claimed) => {}
                Ok(Claim::InProgress) => {
                    return Err(envelope_reply(&Envelope::error_code(
                        409,
                        "idempotency_in_progress",
                        "a request with this x-idempotency-key is still running",
                    )));
                }
                Ok(Claim::Completed(bytes)) => {
                    return Err(match serde_json::from_slice::<StoredResponse>(&bytes) {
                        Ok(stored) if &stored.request_sha256 == digest => {
                            envelope_reply(&stored.envelope)
                                .with_header("x-idempotent-replay", "true")
                        }
                        Ok(_) => envelope_reply(&Envelope::error_code(
                            422,
                            "idempotency_key_reused",
                            "this x-idempotency-key was used with another request body",
                        )),
                        Err(e) => backend_failure(format!("stored response: {e}"), request_id),
                    });
                }
                Err(e) => {
                    return Err(backend_failure(format!("idempotency: {e}"), request_id));
                }
            }
        }

        let mut outcome = self
            .executor
            .execute_from(&routing, &req, self.settings.install_source)
            .await;
        self.record(
            Route::Execute,
            routing.tenant.as_deref().unwrap_or(""),
            routing.extension.as_deref().unwrap_or(""),
            &outcome,
        )
        .await;
        // The log line and the execution record have the detail; the caller (and
        // an idempotent replay) gets the code and a generic message.
        outcome.envelope = public_envelope(&outcome.envelope, outcome.metrics.outcome, request_id);
        if let Some((tenant, key, digest)) = &idempotency {
            self.settle_idempotency(tenant, key, digest, &outcome).await;
        }
        let mut reply = envelope_reply(&outcome.envelope);
        if let Some(secs) = outcome.metrics.retry_after {
            reply = reply.with_header("retry-after", secs.to_string());
        }
        Ok(reply.with_header("x-request-id", request_id.clone()))
    }

    /// Stores the response for replays, or frees the key when the failure is one
    /// a retry may get past (throttled, overloaded, backend down).
    async fn settle_idempotency(&self, tenant: &str, key: &str, digest: &str, outcome: &Outcome) {
        let store = &self.backends.idempotency;
        let retryable = matches!(
            outcome.metrics.outcome,
            "quota_exceeded" | "capacity_exhausted" | "backend_unavailable" | "bundle_fetch_failed"
        );
        let result = if retryable {
            store.release(tenant, key).await
        } else {
            let stored = StoredResponse {
                request_sha256: digest.to_string(),
                envelope: outcome.envelope.clone(),
            };
            let bytes = serde_json::to_vec(&stored).unwrap_or_default();
            match store
                .complete(tenant, key, &bytes, self.settings.idempotency_ttl)
                .await
            {
                // A response the store cannot keep (e.g. too large for one DynamoDB
                // item) frees the key rather than blocking it until the claim lapses.
                Err(e) => {
                    tracing::warn!(error = %e, "idempotent response not stored; key released");
                    store.release(tenant, key).await
                }
                ok => ok,
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "idempotency record not updated");
        }
    }
}
