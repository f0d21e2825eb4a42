//! What the alga-lambda functions share: turning Lambda HTTP events into
//! runtime-core inputs and [`HttpReply`]s back into Lambda responses, reading
//! authorizer claims, and the JSON log setup for CloudWatch.

use std::collections::BTreeMap;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use runtime_core::gateway::{Claims, HttpReply};

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

/// The claims an API Gateway authorizer attached: JWT claims (HTTP API), a Lambda
/// authorizer's context, or a REST API authorizer's context (with Cognito's
/// nested `claims`). Non-string values are rendered as JSON.
pub fn claims(req: &Request) -> Claims {
    let mut out = Claims::new();
    let Some(auth) = req
        .request_context_ref()
        .and_then(RequestContext::authorizer)
    else {
        return out;
    };
    let mut add = |k: &str, v: &serde_json::Value| {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(k.to_string(), text);
    };
    for (k, v) in &auth.fields {
        match (k.as_str(), v) {
            ("claims", serde_json::Value::Object(map)) => {
                for (ck, cv) in map {
                    add(ck, cv);
                }
            }
            _ => add(k, v),
        }
    }
    if let Some(jwt) = &auth.jwt {
        for (k, v) in &jwt.claims {
            out.insert(k.clone(), v.clone());
        }
    }
    out
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
