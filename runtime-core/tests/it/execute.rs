//! The execute pipeline end to end, from precompiled artifacts, with real guests.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use test_support::{Harness, guests, request};

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn hello_runs_from_a_precompiled_artifact() {
    let h = Harness::new();
    let (content, _) = h.publish(&guests::hello()).await;
    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    assert_eq!(out.envelope.error, None, "{:?}", out.envelope);
    assert_eq!(out.envelope.status, 200);
    assert_eq!(
        out.envelope.body_b64().as_deref(),
        Some(b64(b"hello").as_str())
    );
    assert_eq!(
        out.envelope.headers.as_ref().unwrap()["content-type"],
        "text/plain"
    );
    let stats = h.executor.loader().stats();
    assert_eq!(stats.fetched.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The second request is served from the in-memory cache: nothing compiled or fetched.
    let again = h.run(request(&content, "GET", "/", json!({}))).await;
    assert_eq!(again.envelope.status, 200);
    assert_eq!(stats.fetched.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        stats.memory_hits.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn the_envelope_always_has_four_keys() {
    let h = Harness::new();
    let (content, _) = h.publish(&guests::trap()).await;
    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    let v = serde_json::to_value(&out.envelope).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["body_b64", "error", "headers", "status"]);
    assert!(v["body_b64"].is_null());
    assert_eq!(
        v["headers"],
        json!({}),
        "an error's headers are an empty object"
    );
}

#[tokio::test]
async fn echo_sees_method_url_headers_and_body() {
    let h = Harness::new();
    let (content, _) = h.publish(&guests::echo()).await;
    let out = h
        .run(request(
            &content,
            "POST",
            "/api/items?x=1",
            json!({"http": {"query": {"q": "a b&c"}, "headers": {"x-custom": "yes"}, "body_b64": b64(b"{\"n\":1}")}}),
        ))
        .await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    let headers = out.envelope.headers.clone().unwrap();
    assert_eq!(headers["x-echo-method"], "POST");
    assert_eq!(headers["x-echo-url"], "/api/items?x=1&q=a+b%26c");
    assert_eq!(headers["x-custom"], "yes");
    assert_eq!(out.envelope.body().unwrap(), b"{\"n\":1}");

    // No body_b64 → no body; "" → an empty body.
    let none = h.run(request(&content, "GET", "/", json!({}))).await;
    assert_eq!(none.envelope.body_b64(), None);
    let empty = h
        .run(request(
            &content,
            "GET",
            "/",
            json!({"http": {"body_b64": ""}}),
        ))
        .await;
    assert_eq!(empty.envelope.body_b64().as_deref(), Some(""));
    // Bad base64 is a typed request error.
    let bad = h
        .run(request(
            &content,
            "GET",
            "/",
            json!({"http": {"body_b64": "%%%"}}),
        ))
        .await;
    assert_eq!(bad.envelope.status, 400);
    assert!(bad.envelope.error.unwrap().starts_with("invalid_request:"));
}

#[tokio::test]
async fn infinite_loop_times_out_on_time_and_the_next_request_works() {
    let h = Harness::new();
    let (spin, _) = h.publish(&guests::infinite_loop()).await;
    let (hello, _) = h.publish(&guests::hello()).await;
    for timeout_ms in [100u64, 300] {
        let started = Instant::now();
        let out = h
            .run(request(
                &spin,
                "GET",
                "/",
                json!({"limits": {"timeout_ms": timeout_ms}}),
            ))
            .await;
        let took = started.elapsed();
        assert_eq!(out.envelope.status, 504);
        assert_eq!(out.metrics.outcome, "timeout");
        // A hang shows as minutes; the overrun itself is measured in the hostile
        // guests' report (RELIABILITY.md), not asserted on a shared CI machine.
        assert!(
            took < Duration::from_millis(timeout_ms + 2000),
            "deadline {timeout_ms} ms took {took:?}"
        );
        assert!(
            took >= Duration::from_millis(timeout_ms),
            "fired early: {took:?}"
        );
        h.assert_next_request_works(&hello).await;
    }
}

#[tokio::test]
async fn a_request_without_limits_gets_the_default_deadline() {
    let mut config = test_support::test_config();
    config.limits.timeout_default = Duration::from_millis(150);
    let h = Harness::with_config(config);
    let (spin, _) = h.publish(&guests::infinite_loop()).await;
    let started = Instant::now();
    let out = h.run(request(&spin, "GET", "/", json!({}))).await;
    assert_eq!(out.metrics.outcome, "timeout");
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn memory_grower_hits_memory_limit_and_rss_stays_flat() {
    // RSS is per process: measured alone, not beside the other tests.
    if !test_support::in_own_process("execute::memory_grower_hits_memory_limit_and_rss_stays_flat")
    {
        return;
    }
    let h = Harness::new();
    let (grow, _) = h.publish(&guests::memory_grower()).await;
    let (hello, _) = h.publish(&guests::hello()).await;
    let req = request(&grow, "GET", "/", json!({"limits": {"memory_mb": 16}}));
    let first = h.run(req.clone()).await;
    assert_eq!(
        first.metrics.outcome, "memory_limit",
        "{:?}",
        first.envelope
    );
    assert!(first.envelope.error.as_deref().unwrap().contains("16 MiB"));
    // Warm up, then measure RSS across 1,000 more.
    for _ in 0..50 {
        h.run(req.clone()).await;
    }
    let before = test_support::rss_bytes();
    for _ in 0..1000 {
        let out = h.run(req.clone()).await;
        assert_eq!(out.metrics.outcome, "memory_limit");
    }
    let after = test_support::rss_bytes();
    let growth = after.saturating_sub(before);
    assert!(
        growth < 32 << 20,
        "RSS grew by {} MiB over 1,000 memory-limit requests",
        growth >> 20
    );
    h.assert_next_request_works(&hello).await;
}

#[tokio::test]
async fn recursion_trap_huge_response_and_floods_get_typed_errors() {
    let h = Harness::new();
    let (hello, _) = h.publish(&guests::hello()).await;
    let cases: Vec<(Vec<u8>, &str, u16)> = vec![
        (guests::deep_recursion(), "stack_overflow", 500),
        (guests::trap(), "guest_trap", 500),
        (guests::huge_response(6 << 20), "output_too_large", 502),
        (guests::log_flood(), "log_limit", 500),
        (guests::host_call_flood(), "host_call_limit", 500),
    ];
    for (wasm, code, status) in cases {
        let (content, _) = h.publish(&wasm).await;
        let out = h.run(request(&content, "GET", "/", json!({}))).await;
        assert_eq!(out.metrics.outcome, code, "{:?}", out.envelope);
        assert_eq!(out.envelope.status, status);
        assert!(out.envelope.error.as_deref().unwrap().starts_with(code));
        h.assert_next_request_works(&hello).await;
    }
}

#[tokio::test]
async fn seed_error_strings_in_their_order() {
    let h = Harness::new();
    let (content, _) = h.publish(&guests::hello()).await;
    let req = runtime_core::ExecuteRequest::from_json(
        &serde_json::to_vec(&request(
            &content,
            "GET",
            "/",
            json!({"providers": ["cap:nope"]}),
        ))
        .unwrap(),
    )
    .unwrap();
    // Missing routing headers come first, whatever else is wrong.
    let out = h
        .executor
        .execute(&runtime_core::RoutingHeaders::default(), &req)
        .await;
    assert_eq!(
        out.envelope.error.as_deref(),
        Some("missing_routing_headers")
    );
    assert_eq!(out.envelope.status, 400);
    // Then unknown capabilities, named.
    let out = h
        .run(request(
            &content,
            "GET",
            "/",
            json!({"providers": ["cap:storage.kv", "cap:nope", " CAP:ALSO.BAD "]}),
        ))
        .await;
    assert_eq!(
        out.envelope.error.as_deref(),
        Some("unknown_capabilities: cap:nope, cap:also.bad")
    );
    // Then the secret envelope.
    let out = h
        .run(request(
            &content,
            "GET",
            "/",
            json!({"secret_envelope": {"ciphertext_b64": "***"}}),
        ))
        .await;
    assert_eq!(out.envelope.error.as_deref(), Some("secret_decrypt_failed"));
    assert_eq!(out.envelope.status, 500);
    // An unknown content hash: no artifact for this runtime.
    let other = runtime_core::artifact::ContentHash::of(b"never published");
    let out = h.run(request(&other, "GET", "/", json!({}))).await;
    assert_eq!(out.metrics.outcome, "artifact_missing");
    assert_eq!(out.envelope.status, 503);
}

/// Runs `req` as its own task, like a server does per request; returns the outcome
/// and the time from spawn to completion.
async fn spawned(
    h: &std::sync::Arc<Harness>,
    req: serde_json::Value,
) -> (runtime_core::execute::Outcome, Duration) {
    let h = h.clone();
    let started = Instant::now();
    let out = tokio::spawn(async move { h.run(req).await }).await.unwrap();
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_22_spinning_guests_do_not_hold_the_workers() {
    let h = std::sync::Arc::new(Harness::new());
    let (spin, _) = h.publish(&guests::infinite_loop()).await;
    let (hello, _) = h.publish(&guests::hello()).await;
    let hello_req = request(&hello, "GET", "/", json!({}));
    // Warm both components, then time the hello alone.
    let warm = spawned(
        &h,
        request(&spin, "GET", "/", json!({"limits": {"timeout_ms": 20}})),
    )
    .await;
    assert_eq!(warm.0.metrics.outcome, "timeout");
    let mut alone = Duration::ZERO;
    for _ in 0..5 {
        let (out, took) = spawned(&h, hello_req.clone()).await;
        assert_eq!(out.envelope.status, 200);
        alone = alone.max(took);
    }

    // Two guests spin for 3 s, one per worker thread.
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let h = h.clone();
            let req = request(&spin, "GET", "/", json!({"limits": {"timeout_ms": 3000}}));
            tokio::spawn(async move {
                let started = Instant::now();
                let out = h.run(req).await;
                (out, started.elapsed())
            })
        })
        .collect();
    // A blocking sleep: this thread is not a worker, and with both workers busy
    // nothing would drive tokio's timer for an async one.
    std::thread::sleep(Duration::from_millis(300));
    let (out, with_spinners) = spawned(&h, hello_req.clone()).await;
    assert_eq!(out.envelope.status, 200);
    assert!(
        with_spinners < alone + Duration::from_millis(500),
        "hello took {with_spinners:?} beside two spinners, {alone:?} alone"
    );
    // The spinners still end with the timeout code at their deadline.
    for s in spinners {
        let (out, took) = s.await.unwrap();
        assert_eq!(out.metrics.outcome, "timeout", "{:?}", out.envelope);
        assert_eq!(out.envelope.status, 504);
        assert!(
            took >= Duration::from_millis(3000) && took < Duration::from_millis(4000),
            "a 3000 ms deadline took {took:?}"
        );
    }
}
