//! The execute Lambda binary on the real Lambda runtime protocol: cargo-lambda's
//! emulator feeds it the sample events of `events/` (HTTP API v2, REST API v1,
//! Function URL) against a data directory where the example extension is
//! published and installed for tenant `acme`.

#[allow(dead_code)]
#[path = "../../../tests/support/lambda_emulator.rs"]
mod emulator;

use base64::Engine as _;
use emulator::{Emulator, body_bytes, event, header};

const SERVICE_TOKEN: &str = "sample-service-token";

fn json_body(response: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&body_bytes(response))
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {response}"))
}

/// The guest's body inside a `/v1/execute` envelope.
fn envelope_guest_body(response: &serde_json::Value) -> serde_json::Value {
    assert_eq!(response["statusCode"], 200, "{response}");
    let envelope = json_body(response);
    for key in ["status", "headers", "body_b64", "error"] {
        assert!(envelope.get(key).is_some(), "missing {key}: {envelope}");
    }
    assert_eq!(envelope["status"], 200, "{envelope}");
    assert!(envelope["error"].is_null(), "{envelope}");
    let body = base64::engine::general_purpose::STANDARD
        .decode(envelope["body_b64"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn fn_execute_answers_the_sample_events_under_cargo_lambdas_emulator() {
    let data = tempfile::tempdir().unwrap();
    let hex = emulator::publish_example(data.path(), "acme");
    let mut lambda = Emulator::start();
    lambda.attach(
        "fn-execute",
        env!("CARGO_BIN_EXE_fn-execute"),
        &[
            ("ALGA_DATA", data.path().to_str().unwrap()),
            ("RUNNER_SERVICE_TOKEN", SERVICE_TOKEN),
        ],
    );

    // HTTP API v2, POST /v1/execute with the service token: the envelope carries
    // the guest's answer for tenant acme.
    let r = lambda.invoke("fn-execute", &event("execute-v2.json", &hex));
    let body = envelope_guest_body(&r);
    assert_eq!(body["tenant"], "acme", "{body}");
    assert_eq!(body["message"], "Hello from com.example.hello", "{body}");
    assert_eq!(body["requestId"], "req-sample-1", "{body}");

    // The same request without the token: 401, still the four-key envelope.
    let mut no_token = event("execute-v2.json", &hex);
    no_token["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-runner-service-token");
    let r = lambda.invoke("fn-execute", &no_token);
    assert_eq!(r["statusCode"], 401, "{r}");
    assert!(
        json_body(&r)["error"]
            .as_str()
            .unwrap()
            .starts_with("unauthorized"),
        "{r}"
    );

    // Function URL, base64 body: the same envelope.
    let r = lambda.invoke("fn-execute", &event("function-url-execute.json", &hex));
    let body = envelope_guest_body(&r);
    assert_eq!(body["tenant"], "acme", "{body}");

    // HTTP API v2 direct route: tenant and user from the JWT authorizer's claims;
    // the guest's own response comes back as is.
    let r = lambda.invoke("fn-execute", &event("direct-v2.json", &hex));
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(header(&r, "content-type"), Some("application/json"), "{r}");
    let body = json_body(&r);
    assert_eq!(body["tenant"], "acme", "{body}");
    assert_eq!(body["message"], "Hello from com.example.hello", "{body}");

    // REST API v1 direct route with a Lambda authorizer's context and a base64
    // body: the guest echoes the decoded body.
    let r = lambda.invoke("fn-execute", &event("direct-rest-v1.json", &hex));
    assert_eq!(r["statusCode"], 200, "{r}");
    let body = json_body(&r);
    assert_eq!(body["method"], "POST", "{body}");
    assert_eq!(body["url"], "/api/echo", "{body}");
    assert_eq!(body["body"], r#"{"hello":"rest"}"#, "{body}");

    // A path the manifest does not declare: 404 endpoint_not_found.
    let mut undeclared = event("direct-v2.json", &hex);
    undeclared["rawPath"] = "/api/ext/com.example.hello/api/nope".into();
    undeclared["requestContext"]["http"]["path"] = "/api/ext/com.example.hello/api/nope".into();
    undeclared["pathParameters"]["proxy"] = "api/nope".into();
    let r = lambda.invoke("fn-execute", &undeclared);
    assert_eq!(r["statusCode"], 404, "{r}");
    assert!(
        String::from_utf8_lossy(&body_bytes(&r)).contains("endpoint_not_found"),
        "{r}"
    );

    // One JSON log line per request, refused ones included, with the fields a
    // CloudWatch Logs Insights query needs; the X-Ray trace id rides on the span.
    let lines: Vec<serde_json::Value> = lambda
        .log_lines("fn-execute")
        .into_iter()
        .filter(|l| l["target"] == "alga::request")
        .collect();
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["fields"]["outcome"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "unauthorized", "ok", "ok", "ok", "endpoint_not_found"],
        "{lines:#?}"
    );
    let statuses: Vec<u64> = lines
        .iter()
        .map(|l| l["fields"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 401, 200, 200, 200, 404]);
    for line in &lines {
        let f = &line["fields"];
        assert_eq!(f["tenant"], "acme", "{line}");
        assert_eq!(f["extension"], "com.example.hello", "{line}");
        assert!(!f["request_id"].as_str().unwrap().is_empty(), "{line}");
        assert!(f["duration_ms"].as_f64().is_some(), "{line}");
        let ran = f["outcome"] == "ok";
        assert_eq!(
            f["content_hash"].as_str().unwrap(),
            if ran {
                format!("sha256:{hex}")
            } else {
                String::new()
            },
            "{line}"
        );
        assert_eq!(!f["install"].as_str().unwrap().is_empty(), ran, "{line}");
        assert!(
            line["span"]["xray_trace_id"].is_string(),
            "every request line sits in the request span: {line}"
        );
    }
    // The first sample carries API Gateway's trace header (or the runtime's own).
    assert!(
        lines[0]["span"]["xray_trace_id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["fields"]["request_id"], "req-sample-1");
}
