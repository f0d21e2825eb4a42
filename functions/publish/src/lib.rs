//! The publish Lambda: triggered by S3 `ObjectCreated` events on the upload
//! prefix (a bundle and its signature sidecar) and by `POST /v1/publish` with an
//! operator credential. It runs [`runtime_core::publish`]; `alga-lambda up` serves
//! the same [`PublishFunction::handle_http`].

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use base64::Engine as _;
use fn_common::token_from_env;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{Body, Request, Response, service_fn};
use runtime_core::RuntimeConfig;
use runtime_core::backends::Backends;
use runtime_core::gateway::HttpReply;
use runtime_core::gateway::credential::token_matches;
use runtime_core::publish::uploads::{self, UploadOutcome, publish_upload};
use runtime_core::publish::{PublishError, Publisher};
use runtime_core::store::Registered;

/// Largest `POST /v1/publish` body: Lambda's 6 MB synchronous payload, so a
/// base64 bundle of up to ~4.4 MB; larger bundles go through the upload bucket.
const HTTP_BODY_MAX: usize = 6 << 20;

/// The function's state, built once per process.
pub struct PublishFunction {
    publisher: Publisher,
    backends: Backends,
    token: Option<String>,
    upload_prefix: String,
}

impl PublishFunction {
    /// Builds the function from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let backends = fn_common::backends().await?;
        let token = token_from_env("ALGA_PUBLISH_TOKEN", "ALGA_PUBLISH_TOKEN_SECRET_ID").await?;
        let prefix = std::env::var("ALGA_UPLOAD_PREFIX").unwrap_or_else(|_| "uploads/".into());
        let publisher = backends.publisher(&RuntimeConfig::from_env()?)?;
        Ok(Self::new(backends, publisher, token, prefix))
    }

    /// Builds the function over a publisher; `token` is the operator credential
    /// for `POST /v1/publish` (`None` refuses every HTTP publish).
    pub fn new(
        backends: Backends,
        publisher: Publisher,
        token: Option<String>,
        upload_prefix: String,
    ) -> Self {
        PublishFunction {
            publisher,
            backends,
            token,
            upload_prefix,
        }
    }

    /// Serves `POST /v1/publish`: JSON `{"bundle_b64": …, "signature": {sidecar}}`
    /// with `authorization: Bearer <token>`.
    pub async fn handle_http(&self, req: Request) -> Response<Body> {
        fn_common::into_response(self.http_reply(&req).await)
    }

    async fn http_reply(&self, req: &Request) -> HttpReply {
        if req.method() != lambda_http::http::Method::POST {
            return HttpReply::error(405, "method_not_allowed", "use POST")
                .with_header("allow", "POST");
        }
        let presented = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let authorized =
            matches!((&self.token, presented), (Some(t), Some(p)) if token_matches(t, p.trim()));
        if !authorized {
            return HttpReply::error(401, "unauthorized", "an operator bearer token is required")
                .with_header("www-authenticate", "Bearer");
        }
        let body = fn_common::body_bytes(req);
        if body.len() > HTTP_BODY_MAX {
            return HttpReply::error(
                413,
                "payload_too_large",
                "bundles over ~4 MB go through the upload bucket",
            );
        }
        let parsed: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return HttpReply::error(400, "malformed_json", e),
        };
        let Some(bundle) = parsed["bundle_b64"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        else {
            return HttpReply::error(422, "invalid_publish_request", "bundle_b64 must be base64");
        };
        let signature = match &parsed["signature"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
            other => Some(other.to_string().into_bytes()),
        };
        match self
            .publisher
            .publish(&bundle, signature.as_deref(), &|_| {})
            .await
        {
            Ok(p) => HttpReply::json(
                if p.outcome == Registered::Created {
                    201
                } else {
                    200
                },
                &serde_json::json!({
                    "content_hash": p.content_hash.to_string(),
                    "extension": p.manifest.name,
                    "version": p.manifest.version.to_string(),
                    "outcome": if p.outcome == Registered::Created { "created" } else { "unchanged" },
                    "artifacts": p.artifacts.iter().map(|a| a.object_key()).collect::<Vec<_>>(),
                    "warnings": p.warnings,
                }),
            ),
            Err(e) => {
                let status = match &e {
                    PublishError::Store(_) => 503,
                    PublishError::VersionConflict { .. } => 409,
                    _ => 422,
                };
                tracing::warn!(code = e.code(), error = %e, "publish refused");
                HttpReply::error(status, e.code(), e)
            }
        }
    }

    /// Handles an S3 notification: publishes each pair that is complete.
    pub async fn handle_s3(
        &self,
        event: S3Event,
    ) -> Result<Vec<UploadOutcome>, lambda_http::Error> {
        let mut outcomes = Vec::new();
        for record in event.records {
            let Some(raw) = record.s3.object.key else {
                continue;
            };
            // S3 event keys are URL-encoded, with '+' for spaces.
            let key = percent_encoding::percent_decode_str(&raw.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            if !key.starts_with(&self.upload_prefix) && !uploads::is_bundle_store_key(&key) {
                outcomes.push(UploadOutcome::Ignored);
                continue;
            }
            let outcome = publish_upload(&self.publisher, self.backends.uploads.as_ref(), &key)
                .await
                .map_err(|e| {
                    tracing::error!(key, error = %e, "upload publish failed; the event will be retried");
                    lambda_http::Error::from(e.to_string())
                })?;
            tracing::info!(target: "alga::publish", key, outcome = ?outcome, "upload handled");
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Dispatches one raw event: an S3 notification, or an HTTP request.
    pub async fn handle_event(
        &self,
        event: serde_json::Value,
    ) -> Result<serde_json::Value, lambda_http::Error> {
        let is_s3 = event["Records"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["eventSource"] == "aws:s3"));
        if is_s3 {
            let outcomes = self.handle_s3(serde_json::from_value(event)?).await?;
            return Ok(serde_json::json!({ "results": outcomes }));
        }
        let req = lambda_http::request::from_str(&event.to_string())?;
        let response = self.handle_http(req).await;
        Ok(http_event_response(response))
    }
}

/// A response in the shape API Gateway (v1 and v2) and Function URLs all accept.
fn http_event_response(response: Response<Body>) -> serde_json::Value {
    let (parts, body) = response.into_parts();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.into())))
        .collect();
    let (body, b64) = match body {
        Body::Empty => (String::new(), false),
        Body::Text(t) => (t, false),
        Body::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
        _ => (String::new(), false),
    };
    serde_json::json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
        "isBase64Encoded": b64,
    })
}

/// Runs the Lambda runtime loop.
pub async fn run() -> Result<(), lambda_http::Error> {
    fn_common::init_tracing();
    let function = Arc::new(PublishFunction::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        async move { function.handle_event(event.payload).await }
    }))
    .await
}
