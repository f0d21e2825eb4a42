//! The JavaScript example (examples/hello, built by jco like real Alga extensions)
//! runs from its precompiled artifact and uses context, logging, storage and secrets;
//! built against our world `runner`, it imports only what Alga's runner provides.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};
use test_support::{Harness, request};

/// What world `runner` of Alga's runner (`ee/runner/wit/extension-runner.wit`)
/// imports, `types` through its `use`: a guest importing anything else of
/// `alga:extension` does not link there.
const ALGA_RUNNER_IMPORTS: [&str; 13] = [
    "alga:extension/types",
    "alga:extension/context",
    "alga:extension/secrets",
    "alga:extension/http",
    "alga:extension/storage",
    "alga:extension/logging",
    "alga:extension/ui-proxy",
    "alga:extension/user",
    "alga:extension/user-v2",
    "alga:extension/scheduler",
    "alga:extension/invoicing",
    "alga:extension/clients",
    "alga:extension/services",
];

/// Our additions, in world `runner-plus` only.
const OUR_IMPORTS: [&str; 2] = ["alga:extension/metrics", "alga:extension/events"];

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A world's imported and exported interfaces and functions (the types a world
/// `use`s are items too, but aliases into `types`, which is imported itself).
fn world_names(
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        items
            .iter()
            .filter(|(_, item)| !matches!(item, wit_parser::WorldItem::Type { .. }))
            .map(|(key, _)| resolve.name_world_key(key))
            .collect::<BTreeSet<_>>()
    };
    let world = &resolve.worlds[world];
    (names(&world.imports), names(&world.exports))
}

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

/// `wit/`: world `runner` imports and exports exactly what Alga's does, and
/// `runner-plus` is that plus `metrics` and `events` (what the host binds).
#[test]
fn world_runner_is_algas_and_runner_plus_adds_metrics_and_events() {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(test_support::guests::wit_dir())
        .expect("wit/ parses");
    let runner = resolve.select_world(&[pkg], Some("runner")).unwrap();
    let plus = resolve.select_world(&[pkg], Some("runner-plus")).unwrap();

    let (imports, exports) = world_names(&resolve, runner);
    assert_eq!(imports, set(&ALGA_RUNNER_IMPORTS));
    assert_eq!(exports, set(&["handler"]));

    let (imports, exports) = world_names(&resolve, plus);
    let mut expected = set(&ALGA_RUNNER_IMPORTS);
    expected.extend(set(&OUR_IMPORTS));
    assert_eq!(imports, expected);
    assert_eq!(exports, set(&["handler"]));
}

/// The example is built by jco against world `runner`, and jco imports every
/// interface of the world it builds against: the built component must import
/// none of our additions, or it would not link on Alga's runner.
#[test]
fn js_example_built_against_runner_imports_only_algas_interfaces() {
    let wit_parser::decoding::DecodedWasm::Component(resolve, world) =
        wit_parser::decoding::decode(&example_wasm()).expect("the example decodes")
    else {
        panic!("the example is not a component");
    };
    let (imports, exports) = world_names(&resolve, world);
    let alga: BTreeSet<_> = imports
        .iter()
        .filter(|name| name.starts_with("alga:"))
        .cloned()
        .collect();
    for addition in OUR_IMPORTS {
        assert!(
            !alga.contains(addition),
            "the example imports {addition}: stale build? (scripts/build-example)"
        );
    }
    // jco imports the whole world, so the set is all of Alga's, not a subset.
    assert_eq!(alga, set(&ALGA_RUNNER_IMPORTS));
    assert!(exports.contains("handler"), "{exports:?}");
    // Everything else is WASI 0.2.
    let others: Vec<_> = imports
        .iter()
        .filter(|name| !name.starts_with("alga:") && !name.starts_with("wasi:"))
        .collect();
    assert!(others.is_empty(), "{others:?}");
}
