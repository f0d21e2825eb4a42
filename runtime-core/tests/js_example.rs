//! The JavaScript example (examples/hello, built by jco like real Alga extensions)
//! runs from its precompiled artifact and uses context, logging, storage and secrets.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Harness, request};

fn example_wasm() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello/dist/main.wasm"
    );
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{path}: {e}; build it first (scripts/test does: npm --prefix examples/hello run build)"
        )
    })
}

fn body_json(out: &runtime_core::Outcome) -> Value {
    assert_eq!(
        out.envelope.error, None,
        "{:?} logs: {:?}",
        out.envelope, out.logs
    );
    serde_json::from_slice(&out.envelope.body().expect("a body")).expect("JSON body")
}

#[tokio::test]
async fn js_example_uses_context_logging_storage_and_secrets() {
    let h = Harness::new();
    let wasm = example_wasm();
    let (content, _) = h.publish(&wasm).await;
    let secrets = base64::engine::general_purpose::STANDARD.encode(r#"{"greeting":"Hi"}"#);
    let granted = json!({
        "providers": ["cap:storage.kv", "cap:secrets.get"],
        "secret_envelope": {"ciphertext_b64": secrets, "algorithm": "inline/base64"}
    });

    let first = h
        .run(request(&content, "GET", "/api/hello", granted.clone()))
        .await;
    assert_eq!(first.envelope.status, 200);
    assert_eq!(
        first.envelope.headers.as_ref().unwrap()["content-type"],
        "application/json"
    );
    let body = body_json(&first);
    assert_eq!(body["message"], "Hi from com.example.test");
    assert_eq!(body["greetingSource"], "secret");
    assert_eq!(body["tenant"], "tenant-a");
    assert_eq!(body["installId"], "install-1");
    assert_eq!(body["requestId"], "req-1");
    assert_eq!(body["counter"]["visits"], 1);
    assert!(
        first
            .logs
            .iter()
            .any(|l| l.message == "hello handler: GET /api/hello"),
        "{:?}",
        first.logs
    );
    assert!(
        first
            .logs
            .iter()
            .any(|l| l.source == "stdout" && l.message.contains("served /api/hello for tenant-a")),
        "console.log is captured from WASI stdout: {:?}",
        first.logs
    );
    // Storage persists per install across requests (fresh instance each time).
    let second = body_json(&h.run(request(&content, "GET", "/api/hello", granted)).await);
    assert_eq!(second["counter"]["visits"], 2);
    assert_eq!(second["counter"]["revision"], 2);

    // Without grants: secrets denied, storage denied — the handler still answers.
    let bare = body_json(
        &h.run(request(&content, "GET", "/api/hello", json!({})))
            .await,
    );
    assert_eq!(bare["greetingSource"], "default (denied)");
    assert_eq!(bare["counter"], Value::Null);

    // Echo: method, URL with the query, headers and body reach the guest.
    let echo = body_json(
        &h.run(request(
            &content,
            "POST",
            "/api/echo",
            json!({"http": {"query": {"a": "1"}, "headers": {"x-k": "v"},
                   "body_b64": base64::engine::general_purpose::STANDARD.encode("ping")}}),
        ))
        .await,
    );
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["url"], "/api/echo?a=1");
    assert_eq!(echo["body"], "ping");
    assert_eq!(echo["headers"], json!([["x-k", "v"]]));

    let missing = h.run(request(&content, "GET", "/nope", json!({}))).await;
    assert_eq!(missing.envelope.status, 404);
}
