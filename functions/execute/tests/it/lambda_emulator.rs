//! The execute Lambda binary on the real Lambda runtime protocol: cargo-lambda's
//! emulator feeds it the sample events of `events/` (HTTP API v2, REST API v1,
//! Function URL) against a deployment on moto where the example extension is
//! published and installed for tenant `acme`.

use test_support::lambda_emulator as emulator;

use base64::Engine as _;
use emulator::{Deployment, Emulator, body_bytes, event, header};

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
    let (_data, hex, lambda) = start_execute("token");

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

/// fn-execute under the emulator with `ALGA_EXECUTE_AUTH=auth`, on a deployment
/// (moto) where the example is installed for tenant `acme` only.
fn start_execute(auth: &str) -> (Deployment, String, Emulator) {
    start_execute_with(&[("ALGA_EXECUTE_AUTH", auth)])
}

/// [`start_execute`] with these settings added.
fn start_execute_with(settings: &[(&str, &str)]) -> (Deployment, String, Emulator) {
    let deployment = Deployment::new();
    let hex = deployment.publish_example("acme");
    let mut lambda = Emulator::start();
    let mut env = deployment.function_env();
    env.push(("RUNNER_SERVICE_TOKEN".into(), SERVICE_TOKEN.into()));
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    lambda.attach("fn-execute", env!("CARGO_BIN_EXE_fn-execute"), env);
    (deployment, hex, lambda)
}

/// A user of tenant `evil` sends acme's `/v1/execute` request (headers and body)
/// to `/api/ext/com.example.hello/v1/execute`, the JWT-only route, in three
/// shapes: the HTTP API's direct route, its `$default` route (also what a
/// Function URL and `up` send) and the REST API's direct resource.
fn cross_tenant_attempts(hex: &str) -> Vec<(&'static str, serde_json::Value)> {
    let acme = event("execute-v2.json", hex);
    let path = "/api/ext/com.example.hello/v1/execute";
    let mut v2 = event("direct-v2.json", hex);
    v2["rawPath"] = path.into();
    v2["requestContext"]["http"]["path"] = path.into();
    v2["requestContext"]["http"]["method"] = "POST".into();
    v2["pathParameters"]["proxy"] = "v1/execute".into();
    v2["requestContext"]["routeKey"] = "ANY /api/ext/{extensionId}/{proxy+}".into();
    v2["requestContext"]["authorizer"]["jwt"]["claims"]["tenant_id"] = "evil".into();
    for h in [
        "x-alga-tenant",
        "x-alga-extension",
        "x-request-id",
        "content-type",
    ] {
        v2["headers"][h] = acme["headers"][h].clone();
    }
    v2["body"] = acme["body"].clone();
    let mut default_route = v2.clone();
    default_route["routeKey"] = "$default".into();
    default_route["requestContext"]["routeKey"] = "$default".into();
    default_route
        .as_object_mut()
        .unwrap()
        .remove("pathParameters");
    let mut rest = event("direct-rest-v1.json", hex);
    rest["path"] = path.into();
    rest["requestContext"]["path"] = format!("/prod{path}").into();
    rest["pathParameters"]["proxy"] = "v1/execute".into();
    rest["requestContext"]["authorizer"]["tenant_id"] = "evil".into();
    for h in ["x-alga-tenant", "x-alga-extension", "content-type"] {
        rest["headers"][h] = acme["headers"][h].clone();
        rest["multiValueHeaders"][h] = serde_json::json!([acme["headers"][h].clone()]);
    }
    rest["body"] = acme["body"].clone();
    rest["isBase64Encoded"] = false.into();
    vec![
        ("HTTP API direct route", v2),
        ("HTTP API $default route", default_route),
        ("REST API direct resource", rest),
    ]
}

/// Each attempt is a direct-route request for tenant evil, which has no install:
/// the direct route's 404, never the execute API's envelope.
fn assert_direct_route_answers(lambda: &Emulator, hex: &str) {
    for (shape, attempt) in cross_tenant_attempts(hex) {
        let r = lambda.invoke("fn-execute", &attempt);
        let body = json_body(&r);
        assert!(
            body.get("body_b64").is_none() && body.get("status").is_none(),
            "{shape}: the execute API answered: {r}"
        );
        assert_eq!(r["statusCode"], 404, "{shape}: {r}");
        assert_eq!(body["error"], "not_installed", "{shape}: {body}");
    }
}

#[test]
fn sec_01_the_jwt_route_never_reaches_the_execute_api_token_mode() {
    let (_data, hex, lambda) = start_execute("token");
    assert_direct_route_answers(&lambda, &hex);
    // The genuine route still works.
    let r = lambda.invoke("fn-execute", &event("execute-v2.json", &hex));
    assert_eq!(envelope_guest_body(&r)["tenant"], "acme");

    // A caller naming a bundle that is not acme's install learns nothing about
    // what acme runs: neither the installed version nor its hash.
    let mut other = event("execute-v2.json", &hex);
    let foreign = "f".repeat(64);
    other["body"] = other["body"]
        .as_str()
        .unwrap()
        .replace(&hex, &foreign)
        .into();
    let r = lambda.invoke("fn-execute", &other);
    let envelope = json_body(&r);
    let error = envelope["error"].as_str().unwrap();
    assert!(error.starts_with("not_installed"), "{envelope}");
    for leak in ["0.1.0", hex.as_str()] {
        assert!(!error.contains(leak), "{leak} in {error}");
    }
}

#[test]
fn sec_01_the_jwt_route_never_reaches_the_execute_api_iam_mode() {
    let (_data, hex, lambda) = start_execute("iam");
    assert_direct_route_answers(&lambda, &hex);

    // The execute route without the IAM authorizer's context (a route left with
    // authorization NONE, a Function URL without AWS_IAM): 401.
    let unsigned = event("execute-v2.json", &hex);
    let r = lambda.invoke("fn-execute", &unsigned);
    assert_eq!(r["statusCode"], 401, "{r}");
    let error = json_body(&r)["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("unauthorized"), "{error}");

    // Signed (API Gateway filled `authorizer.iam`): the request runs, no token needed.
    let mut signed = unsigned.clone();
    signed["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-runner-service-token");
    signed["requestContext"]["authorizer"] = serde_json::json!({
        "iam": {
            "accessKey": "ASIAEXAMPLE",
            "accountId": "123456789012",
            "callerId": "AROAEXAMPLE:alga-server",
            "principalOrgId": null,
            "userArn": "arn:aws:sts::123456789012:assumed-role/alga-server/alga-server",
            "userId": "AROAEXAMPLE:alga-server"
        }
    });
    let r = lambda.invoke("fn-execute", &signed);
    assert_eq!(envelope_guest_body(&r)["tenant"], "acme");

    // REST API (v1) with IAM authorization: the caller's identity is in `identity`.
    let mut rest = event("direct-rest-v1.json", &hex);
    rest["resource"] = "/v1/execute".into();
    rest["path"] = "/v1/execute".into();
    rest["requestContext"]["resourcePath"] = "/v1/execute".into();
    rest["requestContext"]["path"] = "/prod/v1/execute".into();
    rest["pathParameters"] = serde_json::Value::Null;
    rest["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    for h in [
        "x-alga-tenant",
        "x-alga-extension",
        "x-request-id",
        "content-type",
    ] {
        rest["headers"][h] = unsigned["headers"][h].clone();
        rest["multiValueHeaders"][h] = serde_json::json!([unsigned["headers"][h].clone()]);
    }
    rest["body"] = unsigned["body"].clone();
    rest["isBase64Encoded"] = false.into();
    let r = lambda.invoke("fn-execute", &rest);
    assert_eq!(r["statusCode"], 401, "unsigned REST request: {r}");
    rest["requestContext"]["identity"]["userArn"] =
        "arn:aws:sts::123456789012:assumed-role/alga-server/alga-server".into();
    rest["requestContext"]["identity"]["accessKey"] = "ASIAEXAMPLE".into();
    rest["requestContext"]["identity"]["caller"] = "AROAEXAMPLE:alga-server".into();
    let r = lambda.invoke("fn-execute", &rest);
    assert_eq!(envelope_guest_body(&r)["tenant"], "acme");
}

/// The VPC endpoint id in `events/execute-private-rest-v1.json`.
const HOST_APP_VPCE: &str = "vpce-0a1b2c3d4e5f60718";

#[test]
fn private_mode_refuses_to_start_without_the_host_apps_vpc_endpoint() {
    let deployment = Deployment::new();
    let mut env = deployment.function_env();
    env.push(("ALGA_EXECUTE_AUTH".into(), "private".into()));
    let output = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fn-execute"))
        .envs(env)
        .env_remove("ALGA_EXECUTE_VPC_ENDPOINT_IDS")
        // Nothing listens there: a function that started would poll it and retry.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "fn-execute")
        .stdin(std::process::Stdio::null())
        .stdout(output.reopen().unwrap())
        .stderr(output.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fn-execute kept running in private mode without a VPC endpoint id");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(output.path()).unwrap();
    assert!(!status.success(), "{status}: {said}");
    assert!(said.contains("ALGA_EXECUTE_VPC_ENDPOINT_IDS"), "{said}");
}

#[test]
fn private_mode_answers_only_requests_through_the_host_apps_vpc_endpoint() {
    let (_deployment, hex, lambda) = start_execute_with(&[
        ("ALGA_EXECUTE_AUTH", "private"),
        ("ALGA_EXECUTE_VPC_ENDPOINT_IDS", HOST_APP_VPCE),
    ]);
    // Alga's scheduled jobs and public gateway send no credential: through the
    // private API and the host app's endpoint, the request runs.
    let private = event("execute-private-rest-v1.json", &hex);
    assert_eq!(
        private["requestContext"]["identity"]["vpceId"],
        HOST_APP_VPCE
    );
    let r = lambda.invoke("fn-execute", &private);
    assert_eq!(envelope_guest_body(&r)["tenant"], "acme");

    // Another VPC endpoint, none at all, or the public HTTP API even with the
    // service token: 401, nothing runs.
    let mut other = private.clone();
    other["requestContext"]["identity"]["vpceId"] = "vpce-0ffffffffffffffff".into();
    let mut none = private.clone();
    none["requestContext"]["identity"]
        .as_object_mut()
        .unwrap()
        .remove("vpceId");
    let public = event("execute-v2.json", &hex);
    for (shape, e) in [
        ("other endpoint", other),
        ("no endpoint", none),
        ("HTTP API", public),
    ] {
        let r = lambda.invoke("fn-execute", &e);
        assert_eq!(r["statusCode"], 401, "{shape}: {r}");
        let error = json_body(&r)["error"].as_str().unwrap().to_string();
        assert!(error.starts_with("unauthorized"), "{shape}: {error}");
    }
}

/// Alga's three senders of `POST /v1/execute`, replayed as Alga's code sends
/// them (headers, body shape, its registry UUID as the extension, its install
/// UUID, the install's grants as `providers`; a credential only from the
/// ext-proxy), through the private REST API in `caller` install mode: each runs
/// the guest as the request names it, though our registry has no such install.
#[test]
fn algas_three_senders_run_unchanged_through_the_private_api_in_caller_mode() {
    const TENANT: &str = "5f0e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
    const REGISTRY_UUID: &str = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a";
    const INSTALL_UUID: &str = "3c2b1a09-8f7e-4d6c-a5b4-93827160f5e4";
    const VERSION_UUID: &str = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";
    let (_deployment, hex, lambda) = start_execute_with(&[
        ("ALGA_EXECUTE_AUTH", "private"),
        ("ALGA_EXECUTE_VPC_ENDPOINT_IDS", HOST_APP_VPCE),
        ("ALGA_INSTALL_SOURCE", "caller"),
    ]);
    let providers = serde_json::json!([
        "cap:context.read",
        "cap:log.emit",
        "cap:storage.kv",
        "cap:secrets.get"
    ]);
    let through_private_api = |headers: serde_json::Value, body: serde_json::Value| {
        let mut e = event("execute-private-rest-v1.json", &hex);
        e["multiValueHeaders"] = headers
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!([v])))
            .collect::<serde_json::Map<_, _>>()
            .into();
        e["headers"] = headers;
        e["body"] = body.to_string().into();
        lambda.invoke("fn-execute", &e)
    };
    let hash = format!("sha256:{hex}");

    // (a) The iframe bridge's ext-proxy: the service token (ignored here), the routing headers.
    let ext_proxy = through_private_api(
        serde_json::json!({
            "content-type": "application/json",
            "x-runner-service-token": "local-runner-key",
            "x-request-id": "proxy-1",
            "x-alga-tenant": TENANT,
            "x-alga-extension": REGISTRY_UUID,
        }),
        serde_json::json!({
            "context": {"request_id": "proxy-1", "tenant_id": TENANT, "extension_id": REGISTRY_UUID,
                        "install_id": INSTALL_UUID, "version_id": VERSION_UUID, "content_hash": hash,
                        "config": {}},
            "http": {"method": "GET", "path": "/api/hello", "query": {}, "headers": {}},
            "limits": {"timeout_ms": 5000},
            "providers": providers,
        }),
    );
    let body = envelope_guest_body(&ext_proxy);
    assert_eq!(body["tenant"], TENANT, "{body}");
    assert_eq!(body["installId"], INSTALL_UUID, "{body}");

    // (b) The public gateway route: no credential; an idempotency key, the
    // caller's query and filtered headers, the signed-in user, a POST body.
    let gateway = through_private_api(
        serde_json::json!({
            "content-type": "application/json",
            "x-request-id": "gw-1",
            "x-alga-tenant": TENANT,
            "x-alga-extension": REGISTRY_UUID,
            "x-idempotency-key": "gw-1",
        }),
        serde_json::json!({
            "context": {"request_id": "gw-1", "tenant_id": TENANT, "extension_id": REGISTRY_UUID,
                        "install_id": INSTALL_UUID, "content_hash": hash, "version_id": VERSION_UUID,
                        "config": {}},
            "http": {"method": "POST", "path": "/api/echo", "query": {"page": "1"},
                     "headers": {"content-type": "application/json", "x-alga-tenant": TENANT,
                                 "x-alga-extension": REGISTRY_UUID},
                     "body_b64": base64::engine::general_purpose::STANDARD.encode(br#"{"hello":"alga"}"#)},
            "limits": {"timeout_ms": 30000},
            "providers": providers,
            "user": {"user_id": "u-1", "user_email": "grace@acme.example", "user_name": "Grace Hopper",
                     "company_name": "Acme", "user_type": "internal"},
        }),
    );
    assert_eq!(gateway["statusCode"], 200, "{gateway}");
    let envelope = json_body(&gateway);
    assert_eq!(envelope["status"], 200, "{envelope}");
    let echoed = base64::engine::general_purpose::STANDARD
        .decode(envelope["body_b64"].as_str().unwrap())
        .unwrap();
    let echoed: serde_json::Value = serde_json::from_slice(&echoed).unwrap();
    assert_eq!(echoed["body"], r#"{"hello":"alga"}"#, "{echoed}");
    assert_eq!(echoed["method"], "POST", "{echoed}");
    assert_eq!(echoed["url"], "/api/echo?page=1", "{echoed}");

    // (c) The scheduled-invocation job: no credential, a fresh request id as the
    // idempotency key, `trigger` and `schedule_id` in the context, no body for GET.
    let scheduled = through_private_api(
        serde_json::json!({
            "content-type": "application/json",
            "x-request-id": "job-1",
            "x-idempotency-key": "job-1",
            "x-alga-tenant": TENANT,
            "x-alga-extension": REGISTRY_UUID,
        }),
        serde_json::json!({
            "context": {"request_id": "job-1", "tenant_id": TENANT, "extension_id": REGISTRY_UUID,
                        "install_id": INSTALL_UUID, "version_id": VERSION_UUID, "content_hash": hash,
                        "config": {}, "trigger": "schedule", "schedule_id": "sch-1"},
            "http": {"method": "GET", "path": "/api/hello", "query": {},
                     "headers": {"x-alga-tenant": TENANT, "x-alga-extension": REGISTRY_UUID}},
            "limits": {"timeout_ms": 30000},
            "providers": providers,
        }),
    );
    let body = envelope_guest_body(&scheduled);
    assert_eq!(body["tenant"], TENANT, "{body}");
    assert_eq!(body["installId"], INSTALL_UUID, "{body}");
}
