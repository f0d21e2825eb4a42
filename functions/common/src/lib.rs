//! What the alga-lambda functions share: turning Lambda HTTP events into
//! runtime-core inputs and [`HttpReply`]s back into Lambda responses, reading
//! authorizer claims, and the JSON log setup for CloudWatch.

mod environment;

use std::collections::BTreeMap;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use runtime_core::backends::{BackendError, Backends};
use runtime_core::gateway::{Claims, HttpReply, IamPrincipal, PlatformIdentity};

pub use environment::{Environment, FROM_SECRETS_MANAGER};
pub use stores_aws::token_from_env;

/// The backends every function runs on: the AWS set, configured by the
/// environment. The functions are built without the local backends (no SQLite in
/// a Lambda), so `ALGA_BACKEND`, when set, must say `aws`. `ALGA_HOST_STORES`
/// puts the host app's storage and/or schedules in place of DynamoDB's.
pub async fn backends() -> Result<Backends, BackendError> {
    let env = Environment::load()
        .await
        .map_err(|e| BackendError::Config(format!("reading credentials: {e}")))?;
    backends_in(&env).await
}

/// [`backends`] configured by `env` (the environment with its credentials read).
pub async fn backends_in(env: &Environment) -> Result<Backends, BackendError> {
    let mut backends = match std::env::var("ALGA_BACKEND").as_deref().map(str::trim) {
        Err(_) | Ok("") | Ok("aws") => stores_aws::backends_from_env().await?,
        Ok(other) => {
            return Err(BackendError::Config(format!(
                "ALGA_BACKEND={other:?}: the Lambda functions run on the AWS backends only (set aws, or leave it unset)"
            )));
        }
    };
    let host = stores_host_api::HostStores::from_lookup(|k| env.get(k))?;
    // The host app fires the schedules it keeps; mirroring them to EventBridge
    // Scheduler as well would fire each twice, so the two settings exclude each other.
    if host.schedules
        && std::env::var("ALGA_SCHEDULER_TARGET_ARN").is_ok_and(|v| !v.trim().is_empty())
    {
        return Err(BackendError::Config(
            "ALGA_HOST_STORES=schedules: the host app keeps and fires the schedules, so they \
             are not mirrored to EventBridge Scheduler; unset ALGA_SCHEDULER_TARGET_ARN"
                .into(),
        ));
    }
    if host.any() {
        let config = runtime_core::RuntimeConfig::from_lookup(|k| env.get(k))
            .map_err(|e| BackendError::Config(e.to_string()))?;
        stores_host_api::apply(&mut backends, host, &config.host_api)?;
    }
    Ok(backends)
}

/// The request body's bytes.
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// The request's path: the raw path the client sent (lambda_http strips the stage).
pub fn path(req: &Request) -> String {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path().to_string()
    } else {
        raw.to_string()
    }
}

/// Query parameters (the last value of a repeated name wins).
pub fn query(req: &Request) -> BTreeMap<String, String> {
    let params = req.query_string_parameters();
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Two sources of the authorizer's word disagree on a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimConflict {
    /// The claim's name.
    pub claim: String,
}

impl std::fmt::Display for ClaimConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the authorizer's context and its token claims disagree on {:?}",
            self.claim
        )
    }
}

impl std::error::Error for ClaimConflict {}

/// The claims an API Gateway authorizer attached: JWT claims (HTTP API), a Lambda
/// authorizer's context, or a REST API authorizer's context (with Cognito's
/// nested `claims`). Non-string values are rendered as JSON.
///
/// These are up to three sources (the context's own keys, its nested `claims`,
/// the JWT authorizer's claims), and a Lambda authorizer may copy a token's claims
/// in beside its own decisions. There is no precedence to get wrong: when two
/// sources hold the same claim with different values the request is refused
/// ([`ClaimConflict`], answered 401), since either could be the attacker's; the
/// same value in several places is fine.
pub fn claims(req: &Request) -> Result<Claims, ClaimConflict> {
    let mut out = Claims::new();
    let Some(auth) = req
        .request_context_ref()
        .and_then(RequestContext::authorizer)
    else {
        return Ok(out);
    };
    let mut add = |k: &str, text: String| match out.get(k) {
        Some(existing) if *existing != text => Err(ClaimConflict {
            claim: k.to_string(),
        }),
        _ => {
            out.insert(k.to_string(), text);
            Ok(())
        }
    };
    let render = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (k, v) in &auth.fields {
        match (k.as_str(), v) {
            ("claims", serde_json::Value::Object(map)) => {
                for (ck, cv) in map {
                    add(ck, render(cv))?;
                }
            }
            _ => add(k, render(v))?,
        }
    }
    if let Some(jwt) = &auth.jwt {
        for (k, v) in &jwt.claims {
            add(k, v.clone())?;
        }
    }
    Ok(out)
}

/// What the platform vouches for about this request: its IAM principal and the
/// VPC endpoint it came through. API Gateway writes the request context; a client
/// cannot set it.
pub fn platform_identity(req: &Request) -> PlatformIdentity {
    PlatformIdentity {
        iam: iam_principal(req),
        vpc_endpoint: vpc_endpoint(req),
    }
}

/// The VPC endpoint a private REST API request came through
/// (`requestContext.identity.vpceId`, set by API Gateway only on private APIs).
pub fn vpc_endpoint(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(c) => c
            .identity
            .other
            .get("vpceId")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(String::from),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The IAM principal the platform authenticated for this request: HTTP API (v2)
/// and Function URLs put it in `requestContext.authorizer.iam`, a REST API (v1)
/// route with AWS_IAM authorization in `requestContext.identity` (`userArn`,
/// `caller`, `accessKey`, empty otherwise). `None` when the request was not
/// IAM-authenticated.
pub fn iam_principal(req: &Request) -> Option<IamPrincipal> {
    let first = |candidates: [Option<&String>; 3]| {
        candidates
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .map(|arn| IamPrincipal {
                arn: arn.to_string(),
            })
    };
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => {
            let iam = c.authorizer.as_ref()?.iam.as_ref()?;
            first([
                iam.user_arn.as_ref(),
                iam.caller_id.as_ref(),
                iam.access_key.as_ref(),
            ])
        }
        RequestContext::ApiGatewayV1(c) => first([
            c.identity.user_arn.as_ref(),
            c.identity.caller.as_ref(),
            c.identity.access_key.as_ref(),
        ]),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The route template the platform matched, without the method: the HTTP API's
/// route key (`POST /v1/execute` → `/v1/execute`) or the REST API's resource path.
/// `None` for the catch-all `$default` route (also what Function URLs and `up`
/// send), where only the path tells.
pub fn route_template(req: &Request) -> Option<String> {
    let template = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => {
            let key = c.route_key.as_deref()?.trim();
            key.split_once(' ')
                .map_or(key, |(_, path)| path)
                .to_string()
        }
        RequestContext::ApiGatewayV1(c) => c.resource_path.clone()?,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    (!template.is_empty() && template != "$default").then_some(template)
}

/// The stage name API Gateway prefixes to `rawPath` on a named stage (`None` for
/// `$default`).
pub fn stage(req: &Request) -> Option<String> {
    let stage = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => c.stage.clone()?,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    (!stage.is_empty() && stage != "$default").then_some(stage)
}

/// The platform's request id (API Gateway's, else the Lambda invocation's).
pub fn request_id(req: &Request) -> Option<String> {
    let from_context = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        _ => None,
    };
    from_context.or_else(|| {
        req.lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty())
    })
}

/// Whether a content type is text that API Gateway can carry without base64.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.starts_with("application/json")
        || ct.starts_with("application/javascript")
        || ct.starts_with("image/svg+xml")
}

/// A reply as a Lambda HTTP response. Text bodies go as text; everything else as
/// binary, which lambda_http base64-encodes and flags for API Gateway.
pub fn into_response(reply: HttpReply) -> Response<Body> {
    let text = is_text(reply.header("content-type")) && std::str::from_utf8(&reply.body).is_ok();
    let body = if reply.body.is_empty() {
        Body::Empty
    } else if text {
        Body::Text(String::from_utf8(reply.body).unwrap_or_default())
    } else {
        Body::Binary(reply.body)
    };
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(body).unwrap_or_else(|e| {
        let mut r = Response::new(Body::Text(format!("response build failed: {e}")));
        *r.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// Logs as JSON lines (CloudWatch), filtered by `ALGA_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ALGA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A REST API (v1) direct-route event whose authorizer context is `authorizer`.
    fn rest_event(authorizer: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "resource": "/api/ext/{extensionId}/{proxy+}",
            "path": "/api/ext/x/api/hello",
            "httpMethod": "GET",
            "headers": {},
            "multiValueHeaders": {},
            "pathParameters": {"extensionId": "x", "proxy": "api/hello"},
            "requestContext": {
                "accountId": "123456789012",
                "resourcePath": "/api/ext/{extensionId}/{proxy+}",
                "httpMethod": "GET",
                "stage": "prod",
                "requestId": "r-1",
                "identity": {"sourceIp": "203.0.113.1"},
                "authorizer": authorizer,
            },
            "body": null,
            "isBase64Encoded": false,
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    /// An HTTP API (v2) event with a Lambda authorizer's context.
    fn lambda_authorizer_event(context: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "ANY /api/ext/{extensionId}/{proxy+}",
            "rawPath": "/api/ext/x/api/hello",
            "rawQueryString": "",
            "headers": {},
            "requestContext": {
                "routeKey": "ANY /api/ext/{extensionId}/{proxy+}",
                "stage": "$default",
                "requestId": "r-2",
                "http": {"method": "GET", "path": "/api/ext/x/api/hello", "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.1", "userAgent": "t"},
                "authorizer": {"lambda": context},
                "timeEpoch": 0,
            },
            "isBase64Encoded": false,
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn sec_19_authorizer_sources_that_disagree_are_refused() {
        // The authorizer's own context says one tenant, the token's claims (which
        // a Lambda authorizer may copy in unchecked) another: which one wins must
        // not depend on a HashMap's iteration order. Refused, every time.
        for _ in 0..20 {
            let req = rest_event(serde_json::json!({
                "tenant_id": "acme",
                "claims": {"tenant_id": "evil", "sub": "u-1"},
            }));
            let err = claims(&req).unwrap_err();
            assert!(err.to_string().contains("tenant_id"), "{err}");
            let req = lambda_authorizer_event(serde_json::json!({
                "tenant_id": "acme",
                "claims": {"tenant_id": "evil"},
            }));
            assert!(claims(&req).is_err());
        }
        // The same value in both places is no conflict; distinct keys merge.
        let req = rest_event(serde_json::json!({
            "tenant_id": "acme",
            "principalId": "u-1",
            "claims": {"tenant_id": "acme", "sub": "u-1", "email": "a@acme.example"},
        }));
        let got = claims(&req).unwrap();
        assert_eq!(got["tenant_id"], "acme");
        assert_eq!(got["sub"], "u-1");
        assert_eq!(got["principalId"], "u-1");
        // Non-string values are rendered as JSON, in every source.
        let req = lambda_authorizer_event(serde_json::json!({"tenant_id": "acme", "n": 3}));
        assert_eq!(claims(&req).unwrap()["n"], "3");
    }
}
