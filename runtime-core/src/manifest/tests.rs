use serde_json::{Value, json};

use super::*;

const HELLO: &str = include_str!("../../../examples/hello/manifest.json");

fn minimal() -> Value {
    json!({ "name": "com.example.x", "version": "1.0.0", "runtime": "wasm-js@1" })
}

fn with(changes: Value) -> Value {
    let mut doc = minimal();
    for (k, v) in changes.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

fn without(key: &str) -> Value {
    let mut doc = minimal();
    doc.as_object_mut().unwrap().remove(key);
    doc
}

/// Strict mode: the validator as it was before compatible mode, which these tests
/// pin down (compatible mode is tested against Alga's shapes below).
fn parse_value(doc: &Value) -> Result<Manifest, ManifestError> {
    let checked = check(&serde_json::to_vec(doc).unwrap(), Strictness::Strict)?;
    assert!(checked.warnings().is_empty(), "strict mode never warns");
    Ok(checked.exact().expect("strict mode has no wildcard").0)
}

#[track_caller]
fn rejects(doc: &Value, field: &str, phrase: &str) -> ManifestError {
    let err = parse_value(doc).expect_err("the manifest should be refused");
    assert_eq!(err.field, field, "wrong field in {err:?}");
    assert!(
        err.message.contains(phrase),
        "message {:?} should contain {phrase:?}",
        err.message
    );
    err
}

fn api(endpoints: Value) -> Value {
    with(json!({ "api": { "endpoints": endpoints } }))
}

fn ep(method: &str, path: &str) -> Value {
    json!({ "method": method, "path": path, "handler": "dist/main.wasm" })
}

#[test]
fn the_example_manifest_parses() {
    let m = parse(HELLO.as_bytes()).unwrap();
    assert_eq!(m.name, "com.example.hello");
    assert_eq!(m.version, semver::Version::new(0, 1, 0));
    assert_eq!(m.runtime, "wasm-js@1");
    assert_eq!(m.publisher.as_deref(), Some("Example Inc."));
    assert_eq!(
        m.capabilities,
        vec![
            Capability::ContextRead,
            Capability::LogEmit,
            Capability::StorageKv,
            Capability::SecretsGet
        ]
    );
    let ui = m.ui.as_ref().unwrap();
    assert_eq!(ui.kind, "iframe");
    assert_eq!(ui.entry, "ui/index.html");
    let hooks = ui.hooks.as_ref().unwrap();
    assert_eq!(hooks.app_menu.as_ref().unwrap().label, "Hello");
    assert!(hooks.client_portal_menu.is_none());
    assert_eq!(m.endpoints().len(), 2);
    assert_eq!(m.endpoints()[1].method, "POST");
    assert_eq!(m.endpoints()[1].path, "/api/echo");
    assert_eq!(m.endpoints()[1].handler, "dist/main.wasm");
    assert_eq!(m.events.len(), 1);
    assert_eq!(
        (m.events[0].topic.as_str(), m.events[0].handler.as_str()),
        ("hello.ping", "/events/hello-ping")
    );
    assert!(m.schedules.is_empty());
    assert!(m.assets.is_none() && m.precompiled.is_none());

    let caps = m.requested_capabilities();
    assert!(caps.has(Capability::StorageKv) && caps.has(Capability::UserRead));
    assert!(!caps.has(Capability::HttpFetch));
    let schedulable: Vec<&str> = m.schedulable_endpoints().map(|e| e.path.as_str()).collect();
    assert_eq!(schedulable, ["/api/hello", "/api/echo"]);
}

#[test]
fn to_json_round_trips() {
    let m = parse(HELLO.as_bytes()).unwrap();
    let json = m.to_json();
    assert_eq!(json["ui"]["type"], "iframe");
    assert_eq!(json["ui"]["hooks"]["appMenu"]["label"], "Hello");
    assert_eq!(json["version"], "0.1.0");
    assert_eq!(json["capabilities"][2], "cap:storage.kv");
    assert_eq!(parse_value(&json).unwrap(), m);
}

#[test]
fn required_fields_are_named_when_missing() {
    rejects(&without("name"), "name", "required key is missing");
    rejects(&without("version"), "version", "required key is missing");
    rejects(&without("runtime"), "runtime", "required key is missing");
    // name, version, runtime are checked first, in that order
    rejects(&json!({ "bogus": 1 }), "name", "missing");
    rejects(&json!({ "name": "a", "ui": 3 }), "version", "missing");
}

#[test]
fn required_fields_must_have_the_right_type_and_shape() {
    rejects(&with(json!({ "name": 5 })), "name", "found the number 5");
    rejects(&with(json!({ "name": null })), "name", "found null");
    rejects(
        &with(json!({ "name": "" })),
        "name",
        "found an empty string",
    );
    rejects(
        &with(json!({ "name": "-x" })),
        "name",
        "starting with an ASCII letter",
    );
    rejects(
        &with(json!({ "name": "a b" })),
        "name",
        "found ' ' at character 2",
    );
    rejects(
        &with(json!({ "name": "a".repeat(129) })),
        "name",
        "at most 128",
    );
    for ok in ["@acme/tickets", "a", "com.example_x-1"] {
        assert_eq!(parse_value(&with(json!({ "name": ok }))).unwrap().name, ok);
    }
    rejects(
        &with(json!({ "runtime": "" })),
        "runtime",
        "found an empty string",
    );
    rejects(
        &with(json!({ "runtime": "wasm js" })),
        "runtime",
        "without spaces",
    );
    rejects(
        &with(json!({ "publisher": "" })),
        "publisher",
        "expected a publisher",
    );
    rejects(
        &with(json!({ "publisher": "p".repeat(257) })),
        "publisher",
        "at most 256",
    );
    assert!(
        parse_value(&with(json!({ "publisher": null })))
            .unwrap()
            .publisher
            .is_none()
    );
}

#[test]
fn bad_semver_is_refused() {
    let err = rejects(
        &with(json!({ "version": "1.0" })),
        "version",
        "expected a semantic version",
    );
    assert!(err.message.contains("found \"1.0\""), "{err}");
    rejects(
        &with(json!({ "version": "v1.0.0" })),
        "version",
        "found \"v1.0.0\"",
    );
    rejects(
        &with(json!({ "version": 1 })),
        "version",
        "found the number 1",
    );
    let m = parse_value(&with(json!({ "version": "1.2.3-beta.1+build.5" }))).unwrap();
    assert_eq!(m.version.pre.as_str(), "beta.1");
}

#[test]
fn unknown_top_level_keys_are_refused_with_the_accepted_list() {
    let err = rejects(
        &with(json!({ "capabilites": [] })),
        "capabilites",
        "unknown key \"capabilites\"",
    );
    for key in [
        "name",
        "version",
        "runtime",
        "publisher",
        "capabilities",
        "ui",
        "api",
    ] {
        assert!(err.message.contains(key), "{err}");
    }
    assert!(
        err.message
            .contains("assets, precompiled, events, schedules"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("manifest.json: capabilites: {}", err.message)
    );
    // several unknown keys: the first in sorted order, the others mentioned
    let err = rejects(
        &with(json!({ "zeta": 1, "alpha": 2 })),
        "alpha",
        "also unknown: \"zeta\"",
    );
    assert!(err.message.starts_with("unknown key \"alpha\""));
    // odd key names stay readable in the path
    rejects(&with(json!({ "a b": 1 })), "[\"a b\"]", "unknown key");
}

#[test]
fn unknown_nested_keys_are_refused_with_their_path() {
    let doc = api(json!([
        ep("GET", "/a"),
        ep("GET", "/b"),
        { "method": "GET", "path": "/c", "handlr": "dist/main.wasm" }
    ]));
    let err = rejects(&doc, "api.endpoints[2].handlr", "unknown key \"handlr\"");
    assert!(err.message.contains("method, path, handler"), "{err}");

    rejects(
        &with(json!({ "api": { "endpoints": [], "x": 1 } })),
        "api.x",
        "unknown key",
    );
    rejects(
        &with(
            json!({ "ui": { "type": "iframe", "entry": "ui/i.html", "hooks": { "appmenu": {} } } }),
        ),
        "ui.hooks.appmenu",
        "expected only: appMenu, clientPortalMenu",
    );
    rejects(
        &with(
            json!({ "ui": { "type": "iframe", "entry": "ui/i.html", "hooks": { "appMenu": { "label": "x", "icon": "y" } } } }),
        ),
        "ui.hooks.appMenu.icon",
        "unknown key",
    );
    rejects(
        &with(json!({ "events": [{ "topic": "t", "handler": "/h", "filter": {} }] })),
        "events[0].filter",
        "expected only: topic, handler",
    );
    let doc = with(json!({
        "api": { "endpoints": [ep("POST", "/api/sync")] },
        "schedules": [{ "endpoint": "/api/sync", "cron": "0 * * * *", "tz": "UTC" }]
    }));
    rejects(&doc, "schedules[0].tz", "unknown key \"tz\"");
}

#[test]
fn unknown_capabilities_are_named_with_the_valid_list() {
    let doc = with(json!({ "capabilities": ["cap:log.emit", "cap:root"] }));
    let err = rejects(&doc, "capabilities[1]", "unknown capability \"cap:root\"");
    for cap in Capability::ALL {
        assert!(err.message.contains(cap.as_str()), "{err}");
    }
    rejects(
        &with(json!({ "capabilities": [7] })),
        "capabilities[0]",
        "found the number 7",
    );
    rejects(
        &with(json!({ "capabilities": "cap:log.emit" })),
        "capabilities",
        "expected an array",
    );
}

#[test]
fn capabilities_are_normalised_and_deduplicated_in_order() {
    let doc = with(json!({
        "capabilities": [" CAP:Storage.KV ", "cap:http.fetch", "cap:storage.kv", "Cap:Log.Emit"]
    }));
    let m = parse_value(&doc).unwrap();
    assert_eq!(
        m.capabilities,
        vec![
            Capability::StorageKv,
            Capability::HttpFetch,
            Capability::LogEmit
        ]
    );
    assert_eq!(
        m.to_json()["capabilities"],
        json!(["cap:storage.kv", "cap:http.fetch", "cap:log.emit"])
    );
}

#[test]
fn endpoint_paths_and_methods_are_checked() {
    let bad = [
        ("api/x", "starting with '/'"),
        ("", "found an empty string"),
        ("/a//b", "without empty segments"),
        ("/a/", "without a trailing '/'"),
        ("/a?x=1", "without a query string"),
        ("/a#top", "without a fragment"),
        ("/a/:", "without a name"),
        ("/a/:id-x", "only letters, digits and '_'"),
        ("/a/:id/:id", "appears twice"),
        ("/a/../b", "without '.' or '..' segments"),
        ("/a/{id}", "write it as ':id'"),
        ("/a b", "contains ' '"),
    ];
    for (path, phrase) in bad {
        rejects(
            &api(json!([ep("GET", "/ok"), ep("GET", path)])),
            "api.endpoints[1].path",
            phrase,
        );
    }
    for ok in ["/", "/a", "/api/items/:item_id/notes/:n2", "/a:b/x@y/%20"] {
        parse_value(&api(json!([ep("GET", ok)]))).unwrap();
    }

    rejects(
        &api(json!([ep("FETCH", "/a")])),
        "api.endpoints[0].method",
        "expected one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
    );
    let m = parse_value(&api(json!([ep("patch", "/a")]))).unwrap();
    assert_eq!(m.endpoints()[0].method, "PATCH");

    let missing = json!([{ "method": "GET", "handler": "dist/main.wasm" }]);
    rejects(
        &api(missing),
        "api.endpoints[0].path",
        "required key is missing",
    );
    rejects(
        &api(json!([{ "method": "GET", "path": "/a", "handler": "" }])),
        "api.endpoints[0].handler",
        "found an empty string",
    );
    rejects(
        &with(json!({ "api": {} })),
        "api.endpoints",
        "required key is missing",
    );
    rejects(&api(json!([1])), "api.endpoints[0]", "expected an object");

    // two endpoints answering the same requests
    let err = rejects(
        &api(json!([
            ep("GET", "/a/:id"),
            ep("POST", "/a/:id"),
            ep("GET", "/a/:key")
        ])),
        "api.endpoints[2]",
        "matches the same requests as api.endpoints[0]",
    );
    assert!(err.message.contains("GET /a/:key"), "{err}");
}

#[test]
fn ui_must_be_an_iframe_with_a_safe_entry() {
    let ui = |v: Value| with(json!({ "ui": v }));
    rejects(
        &ui(json!({ "type": "popup", "entry": "ui/index.html" })),
        "ui.type",
        "expected \"iframe\", found \"popup\"",
    );
    rejects(
        &ui(json!({ "entry": "ui/index.html" })),
        "ui.type",
        "required key is missing",
    );
    rejects(
        &ui(json!({ "type": "iframe" })),
        "ui.entry",
        "required key is missing",
    );
    let bad = [
        ("ui/../secret.html", "without '.' or '..' segments"),
        ("../ui/index.html", "without '.' or '..' segments"),
        ("./ui/index.html", "without '.' or '..' segments"),
        ("/ui/index.html", "no leading '/'"),
        ("ui\\index.html", "no '\\'"),
        ("ui/.hidden/index.html", "hidden"),
        ("ui//index.html", "without empty segments"),
        ("", "found an empty string"),
    ];
    for (entry, phrase) in bad {
        rejects(
            &ui(json!({ "type": "iframe", "entry": entry })),
            "ui.entry",
            phrase,
        );
    }
    rejects(
        &ui(
            json!({ "type": "iframe", "entry": "ui/i.html", "hooks": { "clientPortalMenu": { "label": " " } } }),
        ),
        "ui.hooks.clientPortalMenu.label",
        "expected a menu label",
    );
    let m = parse_value(&ui(json!({
        "type": "iframe", "entry": "ui/index.html",
        "hooks": { "appMenu": { "label": "A" }, "clientPortalMenu": { "label": "P" } }
    })))
    .unwrap();
    let hooks = m.ui.unwrap().hooks.unwrap();
    assert_eq!(hooks.client_portal_menu.unwrap().label, "P");
}

#[test]
fn events_and_schedules_are_accepted() {
    let doc = with(json!({
        "api": { "endpoints": [
            ep("GET", "/api/report"), ep("POST", "/api/sync"), ep("POST", "/api/report"),
            ep("POST", "/api/items/:id"), ep("PUT", "/api/put")
        ] },
        "events": [
            { "topic": "ticket.created", "handler": "/api/sync" },
            { "topic": "psa:billing/invoice-paid_v2", "handler": "/api/report" }
        ],
        "schedules": [
            { "endpoint": "/api/sync", "cron": "*/15  * * * *" },
            {
                "endpoint": "get /api/report", "cron": "0 8 * * 1-5", "timezone": "America/New_York",
                "name": "morning report", "payload": { "days": 1 }, "enabled": false
            }
        ],
        "assets": { "anything": [1, 2] },
        "precompiled": null
    }));
    let m = parse_value(&doc).unwrap();
    assert_eq!(m.events.len(), 2);
    assert_eq!(m.events[1].topic, "psa:billing/invoice-paid_v2");
    assert_eq!(m.schedules[0].endpoint, "POST /api/sync");
    assert_eq!(m.schedules[0].cron, "*/15 * * * *");
    assert_eq!(m.schedules[0].enabled, None);
    let s = &m.schedules[1];
    assert_eq!(s.endpoint, "GET /api/report");
    assert_eq!(s.timezone.as_deref(), Some("America/New_York"));
    assert_eq!(s.name.as_deref(), Some("morning report"));
    assert_eq!(s.payload, Some(json!({ "days": 1 })));
    assert_eq!(s.enabled, Some(false));
    assert_eq!(m.assets, Some(json!({ "anything": [1, 2] })));
    assert_eq!(m.precompiled, None);
    let schedulable: Vec<String> = m
        .schedulable_endpoints()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(
        schedulable,
        ["GET /api/report", "POST /api/sync", "POST /api/report"]
    );
    assert_eq!(parse_value(&m.to_json()).unwrap(), m);
}

#[test]
fn bad_events_and_schedules_are_named() {
    let event = |topic: &str, handler: &str| {
        with(json!({ "events": [{ "topic": topic, "handler": handler }] }))
    };
    rejects(&event("", "/h"), "events[0].topic", "found an empty string");
    rejects(&event("a b", "/h"), "events[0].topic", "found ' '");
    rejects(
        &event(&"t".repeat(257), "/h"),
        "events[0].topic",
        "at most 256",
    );
    rejects(&event("t", "h"), "events[0].handler", "starting with '/'");
    rejects(
        &event("t", "/items/:id"),
        "events[0].handler",
        "without parameters",
    );
    rejects(
        &with(
            json!({ "events": [{ "topic": "t", "handler": "/h" }, { "topic": "t", "handler": "/h" }] }),
        ),
        "events[1]",
        "the same as events[0]",
    );

    let schedule = |s: Value| {
        with(json!({
            "api": { "endpoints": [ep("GET", "/r"), ep("POST", "/r"), ep("POST", "/s/:id"), ep("PUT", "/p")] },
            "schedules": [s]
        }))
    };
    let sched =
        |endpoint: &str, cron: &str| schedule(json!({ "endpoint": endpoint, "cron": cron }));
    // Method-less with GET and POST both declared: GET, as the scheduler resolves it.
    let m = parse_value(&sched("/r", "0 * * * *")).unwrap();
    assert_eq!(m.schedules[0].endpoint, "GET /r");
    rejects(
        &sched("PUT /p", "0 * * * *"),
        "schedules[0].endpoint",
        "expected GET or POST",
    );
    rejects(
        &sched("POST /s/:id", "0 * * * *"),
        "schedules[0].endpoint",
        "without parameters",
    );
    rejects(
        &sched("GET /nope", "0 * * * *"),
        "schedules[0].endpoint",
        "declared: GET /r, POST /r",
    );
    rejects(
        &sched("sync", "0 * * * *"),
        "schedules[0].endpoint",
        "\"[METHOD ]/path\"",
    );
    rejects(
        &sched("GET /r", "0 * * *"),
        "schedules[0].cron",
        "expected 5 fields",
    );
    rejects(
        &sched("GET /r", "0 * * * MON"),
        "schedules[0].cron",
        "day-of-week field",
    );
    rejects(
        &schedule(json!({ "cron": "0 * * * *" })),
        "schedules[0].endpoint",
        "required key is missing",
    );
    rejects(
        &schedule(json!({ "endpoint": "GET /r", "cron": "0 * * * *", "payload": "x" })),
        "schedules[0].payload",
        "expected a JSON object or array",
    );
    rejects(
        &schedule(json!({ "endpoint": "GET /r", "cron": "0 * * * *", "enabled": "yes" })),
        "schedules[0].enabled",
        "expected true or false",
    );
    rejects(
        &schedule(json!({ "endpoint": "GET /r", "cron": "0 * * * *", "timezone": "New York" })),
        "schedules[0].timezone",
        "expected a time zone name",
    );
    // Well-formed but not in the IANA database the scheduler fires by.
    rejects(
        &schedule(
            json!({ "endpoint": "GET /r", "cron": "0 * * * *", "timezone": "Europe/Berlen" }),
        ),
        "schedules[0].timezone",
        "unknown time zone",
    );
    let no_api = with(json!({ "schedules": [{ "endpoint": "GET /r", "cron": "0 * * * *" }] }));
    rejects(&no_api, "schedules[0].endpoint", "none are declared");

    let same_name = json!({ "endpoint": "GET /r", "cron": "0 * * * *", "name": "n" });
    let mut doc = schedule(same_name.clone());
    doc["schedules"] = json!([same_name.clone(), same_name]);
    rejects(&doc, "schedules[1].name", "already used by schedules[0]");
    let one = json!({ "endpoint": "GET /r", "cron": "0 * * * *" });
    doc["schedules"] = Value::Array(vec![one; MAX_SCHEDULES + 1]);
    rejects(&doc, "schedules", "at most 50 schedules, found 51");
}

#[test]
fn oversized_input_is_refused() {
    let mut doc = minimal();
    doc["assets"] = json!("x".repeat(MAX_MANIFEST_BYTES));
    let bytes = serde_json::to_vec(&doc).unwrap();
    let err = parse(&bytes).unwrap_err();
    assert_eq!(err.field, "");
    assert!(err.message.contains("at most 262144 bytes"), "{err}");
    assert!(
        err.message
            .contains(&format!("found {} bytes", bytes.len())),
        "{err}"
    );
    assert_eq!(err.to_string(), format!("manifest.json: {}", err.message));

    // exactly at the cap is fine
    let base = serde_json::to_vec(&with(json!({ "assets": "" }))).unwrap();
    doc["assets"] = json!("x".repeat(MAX_MANIFEST_BYTES - base.len()));
    let bytes = serde_json::to_vec(&doc).unwrap();
    assert_eq!(bytes.len(), MAX_MANIFEST_BYTES);
    parse(&bytes).unwrap();
}

#[test]
fn the_document_must_be_a_json_object() {
    for (input, phrase) in [
        (
            "[1, 2]",
            "expected a JSON object, found an array of 2 item(s)",
        ),
        ("\"manifest\"", "found \"manifest\""),
        ("null", "found null"),
        ("42", "found the number 42"),
        ("", "invalid JSON"),
        ("{\"name\": ", "invalid JSON"),
        ("{} {}", "invalid JSON"),
    ] {
        let err = parse(input.as_bytes()).unwrap_err();
        assert_eq!(err.field, "", "{input}");
        assert!(err.message.contains(phrase), "{input}: {err}");
    }
    // a UTF-8 byte order mark is tolerated
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(HELLO.as_bytes());
    parse(&bytes).unwrap();
}

#[test]
fn duplicate_keys_are_refused() {
    let input = r#"{"name":"a","version":"1.0.0","runtime":"r","name":"b"}"#;
    let err = parse(input.as_bytes()).unwrap_err();
    assert_eq!(err.field, "name");
    assert!(err.message.contains("found \"name\" twice"), "{err}");
    let input = r#"{"name":"a","version":"1.0.0","runtime":"r",
        "api":{"endpoints":[{"method":"GET","path":"/a","path":"/b","handler":"h"}]}}"#;
    let err = parse(input.as_bytes()).unwrap_err();
    assert_eq!(err.field, "api.endpoints[0].path");
}

fn routes() -> Manifest {
    parse_value(&api(json!([
        ep("GET", "/"),
        ep("GET", "/api/hello"),
        ep("POST", "/api/echo"),
        ep("GET", "/api/items/:id"),
        ep("GET", "/api/items/new"),
        ep("DELETE", "/api/items/:id/notes/:note_id"),
        ep("HEAD", "/api/ping"),
        ep("GET", "/api/ping"),
    ])))
    .unwrap()
}

#[track_caller]
fn routed(m: &Manifest, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
    m.match_endpoint(method, path).map(|hit| {
        (
            format!("{} {}", hit.endpoint.method, hit.endpoint.path),
            hit.params,
        )
    })
}

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn head_runs_the_get_endpoint() {
    let m = routes();
    assert_eq!(
        routed(&m, "HEAD", "/api/hello"),
        Some(("GET /api/hello".into(), vec![]))
    );
    assert_eq!(
        routed(&m, "HEAD", "/api/items/7").unwrap().0,
        "GET /api/items/:id"
    );
    // a declared HEAD endpoint wins over the GET one
    assert_eq!(routed(&m, "HEAD", "/api/ping").unwrap().0, "HEAD /api/ping");
    assert_eq!(routed(&m, "GET", "/api/ping").unwrap().0, "GET /api/ping");
    // but not the other way round
    assert_eq!(routed(&m, "HEAD", "/api/echo"), None);
}

#[test]
fn params_take_one_non_empty_segment() {
    let m = routes();
    assert_eq!(
        routed(&m, "GET", "/api/items/42"),
        Some(("GET /api/items/:id".into(), p(&[("id", "42")])))
    );
    assert_eq!(
        routed(&m, "DELETE", "/api/items/a%20b/notes/n-1"),
        Some((
            "DELETE /api/items/:id/notes/:note_id".into(),
            p(&[("id", "a%20b"), ("note_id", "n-1")])
        ))
    );
    assert_eq!(routed(&m, "GET", "/api/items//"), None);
    assert_eq!(routed(&m, "DELETE", "/api/items//notes/1"), None);
    // a literal beats a parameter, whatever the declaration order
    assert_eq!(
        routed(&m, "GET", "/api/items/new"),
        Some(("GET /api/items/new".into(), vec![]))
    );
}

#[test]
fn sec_13_params_refuse_dot_segments_and_encoded_separators() {
    let m = routes();
    // Each of these would reach a guest that joins the parameter into a storage
    // key, a file path or an outbound URL as a traversal.
    for hostile in [
        "/api/items/..",
        "/api/items/.",
        "/api/items/%2e%2e",
        "/api/items/%2E%2E",
        "/api/items/.%2e",
        "/api/items/%2e",
        "/api/items/..%2Fadmin",
        "/api/items/a%2fb",
        "/api/items/a%5Cb",
        "/api/items/a%5cb",
        "/api/items/a\\b",
        "/api/items/..\\x",
    ] {
        assert_eq!(routed(&m, "GET", hostile), None, "{hostile}");
    }
    assert_eq!(routed(&m, "DELETE", "/api/items/1/notes/.."), None);
    assert_eq!(routed(&m, "DELETE", "/api/items/../notes/1"), None);
    // Dots inside a value, other escapes and `%25` (a literal '%') still match.
    for fine in [
        "/api/items/v1.2",
        "/api/items/...",
        "/api/items/a%20b",
        "/api/items/%252F",
    ] {
        assert_eq!(
            routed(&m, "GET", fine).map(|r| r.0),
            Some("GET /api/items/:id".into()),
            "{fine}"
        );
    }
}

#[test]
fn segment_counts_must_agree() {
    let m = routes();
    assert_eq!(routed(&m, "GET", "/api/items"), None);
    assert_eq!(routed(&m, "GET", "/api/items/1/2"), None);
    assert_eq!(routed(&m, "GET", "/api/hello/extra"), None);
    assert_eq!(routed(&m, "GET", "/api"), None);
    assert_eq!(routed(&m, "GET", "/").unwrap().0, "GET /");
    assert_eq!(routed(&m, "GET", ""), None);
    assert_eq!(routed(&m, "GET", "api/hello"), None);
}

#[test]
fn a_trailing_slash_is_a_different_path() {
    let m = routes();
    assert_eq!(routed(&m, "GET", "/api/hello/"), None);
    assert_eq!(routed(&m, "GET", "/api/items/7/"), None);
    assert_eq!(routed(&m, "GET", "//"), None);
}

#[test]
fn the_query_string_is_ignored() {
    let m = routes();
    assert_eq!(
        routed(&m, "GET", "/api/hello?name=x&y=/z").unwrap().0,
        "GET /api/hello"
    );
    assert_eq!(
        routed(&m, "GET", "/api/items/9?full=1#top"),
        Some(("GET /api/items/:id".into(), p(&[("id", "9")])))
    );
    assert_eq!(routed(&m, "GET", "/?q").unwrap().0, "GET /");
    assert_eq!(routed(&m, "GET", "/api/hello/?x=1"), None);
}

#[test]
fn the_method_must_match() {
    let m = routes();
    assert_eq!(routed(&m, "POST", "/api/hello"), None);
    assert_eq!(routed(&m, "GET", "/api/echo"), None);
    assert_eq!(routed(&m, "PUT", "/api/items/1"), None);
    assert_eq!(routed(&m, "post", "/api/echo").unwrap().0, "POST /api/echo");
    assert_eq!(routed(&m, "OPTIONS", "/api/hello"), None);
    let none = parse_value(&minimal()).unwrap();
    assert_eq!(none.match_endpoint("GET", "/"), None);
    assert_eq!(none.schedulable_endpoints().count(), 0);
}

#[test]
fn schedulable_endpoints_are_get_and_post_without_params() {
    let m = routes();
    let got: Vec<String> = m
        .schedulable_endpoints()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(
        got,
        [
            "GET /",
            "GET /api/hello",
            "POST /api/echo",
            "GET /api/items/new",
            "GET /api/ping"
        ]
    );
}

#[test]
fn errors_display_with_the_field() {
    let err = rejects(
        &api(json!([ep("GET", "x")])),
        "api.endpoints[0].path",
        "found \"x\"",
    );
    assert_eq!(
        err.to_string(),
        format!("manifest.json: api.endpoints[0].path: {}", err.message)
    );
}

// ---- Compatible mode: Alga's real manifests ----
//
// Fixture manifests of our own that reproduce every key and value shape found in
// Alga's real manifests (Nine-Minds/alga-psa, all revisions of its `manifest.json`
// files, read 2026-12), and where each comes from in that repository:
//
// - top-level `entry: "dist/main.wasm"`, a name without dots: extensions/manual-invoice-demo/component,
//   extensions/service-proxy-demo/component, sdk/alga-client-sdk/templates/component-basic
// - top-level `entry: "dist/main.wasm#handle"` and `sbom`, `ui.routes[{path, iframePath}]`,
//   `events[{topic, handler: "dist/handlers/….wasm#handle"}]`, capabilities without `cap:`
//   (`http.fetch`, `storage.kv`, `secrets.get`), endpoint handlers `dist/handlers/http/…#handle`,
//   `precompiled: {target: path}`, `assets: ["ui/**/*"]`: ee/docs/examples/extension-bundle-v2
// - `version: "0.3.*"` / `"0.1.*"` (resolved by its publish, bundles/manifest.ts
//   resolveWildcardVersion), `precompiled`: ee/extensions/nineminds-reporting,
//   ee/extensions/samples/ui-kit-showcase
// - top-level `settings[{key, type, label, description, required, encrypted}]`:
//   ee/extensions/nineminds-reporting (earlier revisions)
// - `api.endpoints[].schedulable: true` on GET and POST endpoints beside a DELETE
//   `/api/schedules/:id`: sdk/samples/component/scheduler-demo
// - name and `appMenu.label` `"__PACKAGE_NAME__"`, publisher "Your Org":
//   sdk/alga-client-sdk/templates/basic, ui-gallery, component-basic
// - `ui.hooks` with appMenu and clientPortalMenu: ee/extensions/samples/client-portal-test;
//   any other hook key: the schema's `.catchall(z.unknown())`
//   (ee/server/src/lib/extensions/schemas/manifest-v2.schema.ts)
// The other samples (hello-world, invoicing-demo, secrets-demo, client-service-read-demo,
// service-proxy-demo, softwareone-ext, manual-invoice-demo) use only these shapes.

/// Alga's documented bundle example.
const ALGA_DOCS_EXAMPLE: &str = r#"{
  "name": "com.example.agreements",
  "publisher": "Example Corp",
  "version": "1.2.3",
  "runtime": "wasm-js@1",
  "capabilities": ["http.fetch", "storage.kv", "secrets.get"],
  "ui": {
    "type": "iframe",
    "entry": "ui/index.html",
    "routes": [{ "path": "/contracts", "iframePath": "ui/index.html" }]
  },
  "events": [{ "topic": "billing.invoice.finalized", "handler": "dist/handlers/invoice.wasm#handle" }],
  "entry": "dist/main.wasm#handle",
  "precompiled": {
    "x86_64-linux-gnu": "artifacts/cwasm/x86_64-linux-gnu/main.cwasm",
    "aarch64-linux-gnu": "artifacts/cwasm/aarch64-linux-gnu/main.cwasm"
  },
  "api": {
    "endpoints": [
      { "method": "GET", "path": "/contracts", "handler": "dist/handlers/http/list#handle" },
      { "method": "POST", "path": "/contracts/sync", "handler": "dist/handlers/http/sync#handle" }
    ]
  },
  "assets": ["ui/**/*"],
  "sbom": "sbom.spdx.json"
}"#;

/// An auto-increment version, install settings and precompiled paths.
const ALGA_WILDCARD: &str = r#"{
  "name": "com.example.reports",
  "publisher": "Example Corp",
  "version": "0.3.*",
  "runtime": "wasm-js@1",
  "capabilities": ["cap:context.read", "cap:log.emit", "cap:ui.proxy"],
  "ui": { "type": "iframe", "entry": "ui/index.html", "hooks": { "appMenu": { "label": "Reports" } } },
  "settings": [
    { "key": "api_key", "type": "string", "label": "API key", "description": "Key of the billing tenant", "required": true, "encrypted": true }
  ],
  "precompiled": { "x86_64-linux-gnu": "precompiled/x86_64-linux-gnu.cwasm" },
  "assets": ["ui/**/*"]
}"#;

/// A component-only manifest with its `entry`.
const ALGA_COMPONENT: &str = r#"{
  "name": "invoice-demo",
  "publisher": "Example Corp",
  "version": "0.1.0",
  "runtime": "wasm-js@1",
  "entry": "dist/main.wasm",
  "capabilities": ["cap:invoice.manual.create", "cap:log.emit", "cap:context.read"]
}"#;

/// A project template, placeholders unreplaced.
const ALGA_TEMPLATE: &str = r#"{
  "name": "__PACKAGE_NAME__",
  "publisher": "Your Org",
  "version": "0.1.0",
  "runtime": "wasm-js@1",
  "ui": { "type": "iframe", "entry": "ui/index.html", "hooks": { "appMenu": { "label": "__PACKAGE_NAME__" } } },
  "assets": ["ui/**/*"]
}"#;

/// `schedulable` flags (ours adds one on a DELETE endpoint, which cannot be scheduled).
const ALGA_SCHEDULER: &str = r#"{
  "name": "com.example.jobs",
  "publisher": "Example Corp",
  "version": "0.1.0",
  "runtime": "wasm-js@1",
  "capabilities": ["cap:scheduler.manage", "cap:log.emit", "cap:context.read"],
  "ui": { "type": "iframe", "entry": "ui/index.html", "hooks": { "appMenu": { "label": "Jobs" } } },
  "api": {
    "endpoints": [
      { "method": "GET", "path": "/api/status", "handler": "dist/main", "schedulable": true },
      { "method": "POST", "path": "/api/setup", "handler": "dist/main" },
      { "method": "DELETE", "path": "/api/schedules/:id", "handler": "dist/main", "schedulable": true },
      { "method": "POST", "path": "/api/heartbeat", "handler": "dist/main", "schedulable": true }
    ]
  },
  "assets": ["ui/**/*"]
}"#;

/// Both menus, and a hook Alga's schema passes through.
const ALGA_HOOKS: &str = r#"{
  "name": "com.example.portal",
  "publisher": "Example Corp",
  "version": "1.3.0",
  "runtime": "wasm-js@1",
  "capabilities": ["cap:context.read", "cap:log.emit", "cap:ui.proxy", "cap:http.fetch", "cap:user.read"],
  "ui": {
    "type": "iframe",
    "entry": "ui/index.html",
    "hooks": {
      "appMenu": { "label": "Portal" },
      "clientPortalMenu": { "label": "Portal" },
      "ticketSidebar": { "label": "Portal" }
    }
  },
  "assets": ["ui/**/*"]
}"#;

#[track_caller]
fn compatible(doc: &str) -> Checked {
    check(doc.as_bytes(), Strictness::Compatible).expect("compatible mode accepts it")
}

fn warned_fields(warnings: &[ManifestWarning]) -> Vec<&str> {
    warnings.iter().map(|w| w.field.as_str()).collect()
}

#[track_caller]
fn warning<'a>(warnings: &'a [ManifestWarning], field: &str) -> &'a str {
    &warnings
        .iter()
        .find(|w| w.field == field)
        .unwrap_or_else(|| panic!("no warning for {field} in {warnings:?}"))
        .message
}

#[test]
fn every_alga_manifest_shape_is_accepted_with_a_warning_per_ignored_field_and_refused_by_strict() {
    let cases: [(&str, &[&str], &str, &str); 6] = [
        (
            ALGA_DOCS_EXAMPLE,
            &[
                "entry",
                "sbom",
                "capabilities[0]",
                "capabilities[1]",
                "capabilities[2]",
                "ui.routes",
                "events[0].handler",
            ],
            "entry",
            "unknown key \"entry\" (also unknown: \"sbom\")",
        ),
        (
            ALGA_WILDCARD,
            &["settings"],
            "version",
            "expected a semantic version like \"1.2.3\", found \"0.3.*\"",
        ),
        (ALGA_COMPONENT, &["entry"], "entry", "unknown key \"entry\""),
        (
            ALGA_TEMPLATE,
            &["name", "ui.hooks.appMenu.label"],
            "name",
            "found the template placeholder \"__PACKAGE_NAME__\"",
        ),
        (
            ALGA_SCHEDULER,
            &[
                "api.endpoints[0].schedulable",
                "api.endpoints[2].schedulable",
                "api.endpoints[3].schedulable",
            ],
            "api.endpoints[0].schedulable",
            "unknown key \"schedulable\"; expected only: method, path, handler",
        ),
        (
            ALGA_HOOKS,
            &["ui.hooks.ticketSidebar"],
            "ui.hooks.ticketSidebar",
            "expected only: appMenu, clientPortalMenu",
        ),
    ];
    for (doc, warned, strict_field, strict_phrase) in cases {
        let checked = compatible(doc);
        assert_eq!(warned_fields(checked.warnings()), warned, "{doc}");
        for w in checked.warnings() {
            assert!(
                w.to_string()
                    .starts_with(&format!("manifest.json: {}: ", w.field)),
                "{w}"
            );
        }
        let err = check(doc.as_bytes(), Strictness::Strict).expect_err("strict refuses it");
        assert_eq!(err.field, strict_field, "{err}");
        assert!(err.message.contains(strict_phrase), "{err}");

        // The stored form (what publish registers) holds only what was read and
        // loads again without warnings.
        let (manifest, _) = checked.resolve(["0.3.0"]);
        let stored = manifest.to_json();
        for ignored in ["entry", "sbom", "settings"] {
            assert!(stored.get(ignored).is_none(), "{stored}");
        }
        let reloaded = check(stored.to_string().as_bytes(), Strictness::Compatible).unwrap();
        assert_eq!(reloaded.exact().unwrap().0, manifest);
        assert_eq!(parse(stored.to_string().as_bytes()).unwrap(), manifest);
    }
}

#[test]
fn what_alga_stores_without_acting_on_is_dropped_and_each_warning_says_why() {
    let (m, w) = compatible(ALGA_DOCS_EXAMPLE).exact().unwrap();
    assert!(warning(&w, "entry").contains("always dist/main.wasm"));
    assert!(warning(&w, "sbom").contains("not read"));
    assert!(warning(&w, "ui.routes").contains("own routing"));
    // Prefix-less capabilities are not requested (Alga's install drops them too).
    assert!(m.capabilities.is_empty());
    assert!(
        warning(&w, "capabilities[0]").contains("write \"cap:http.fetch\" to request it"),
        "{w:?}"
    );
    // A file-handler subscription cannot be delivered: dropped.
    assert!(m.events.is_empty());
    assert!(warning(&w, "events[0].handler").contains("names a bundle file"));
    // Handler strings of endpoints are kept as written; routing uses method + path.
    assert_eq!(m.endpoints()[1].handler, "dist/handlers/http/sync#handle");
    assert!(m.match_endpoint("POST", "/contracts/sync").is_some());
    assert_eq!(
        m.precompiled.as_ref().unwrap()["x86_64-linux-gnu"].as_str(),
        Some("artifacts/cwasm/x86_64-linux-gnu/main.cwasm")
    );

    let (m, w) = compatible(ALGA_SCHEDULER).exact().unwrap();
    assert!(warning(&w, "api.endpoints[0].schedulable").contains("this one included"));
    assert!(
        warning(&w, "api.endpoints[2].schedulable").contains("so this DELETE endpoint cannot be")
    );
    let schedulable: Vec<&str> = m.schedulable_endpoints().map(|e| e.path.as_str()).collect();
    assert_eq!(schedulable, ["/api/status", "/api/setup", "/api/heartbeat"]);

    let (m, w) = compatible(ALGA_TEMPLATE).exact().unwrap();
    assert_eq!(m.name, "__PACKAGE_NAME__");
    assert!(warning(&w, "name").contains("unreplaced template placeholder"));

    let (m, w) = compatible(ALGA_COMPONENT).exact().unwrap();
    assert_eq!(m.name, "invoice-demo");
    assert!(m.ui.is_none());
    assert_eq!(w.len(), 1);

    let (m, _) = compatible(ALGA_HOOKS).exact().unwrap();
    let hooks = m.ui.unwrap().hooks.unwrap();
    assert_eq!(hooks.client_portal_menu.unwrap().label, "Portal");
}

#[test]
fn unknown_keys_anywhere_are_warnings_with_their_path_and_the_keys_read_there() {
    let doc = json!({
        "name": "com.example.x", "version": "1.0.0", "runtime": "wasm-js@1",
        "capabilites": ["cap:storage.kv"],
        "ui": { "type": "iframe", "entry": "ui/i.html", "hooks": { "appMenu": { "label": "x", "icon": "y" } } },
        "api": { "version": 2, "endpoints": [
            { "method": "GET", "path": "/a", "handler": "dist/main.wasm", "handlr": "x" }
        ] },
        "events": [{ "topic": "t", "handler": "/a", "filter": {} }],
        "schedules": [{ "endpoint": "/a", "cron": "0 * * * *", "tz": "UTC" }]
    });
    let checked = check(&serde_json::to_vec(&doc).unwrap(), Strictness::Compatible).unwrap();
    assert_eq!(
        warned_fields(checked.warnings()),
        [
            "capabilites",
            "ui.hooks.appMenu.icon",
            "api.version",
            "api.endpoints[0].handlr",
            "events[0].filter",
            "schedules[0].tz"
        ]
    );
    let typo = warning(checked.warnings(), "capabilites");
    assert!(
        typo.starts_with("unknown key \"capabilites\" ignored"),
        "{typo}"
    );
    assert!(
        typo.contains("the keys read here are: name, version, runtime, publisher, capabilities"),
        "{typo}"
    );
    assert!(warning(checked.warnings(), "schedules[0].tz").contains("timezone"));
    let (m, _) = checked.exact().unwrap();
    assert!(m.capabilities.is_empty());
    assert_eq!(m.events.len(), 1);
    assert_eq!(m.schedules[0].endpoint, "GET /a");
    // Strict: the first unknown key is the error, as before.
    rejects(&doc, "capabilites", "unknown key \"capabilites\"");
}

#[test]
fn compatible_mode_keeps_exact_errors_for_what_the_runtime_acts_on() {
    #[track_caller]
    fn refuses(doc: Value, field: &str, phrase: &str) {
        let err = check(&serde_json::to_vec(&doc).unwrap(), Strictness::Compatible)
            .expect_err("compatible mode refuses it too");
        assert_eq!(err.field, field, "{err}");
        assert!(err.message.contains(phrase), "{err}");
    }
    let event = |handler: &str| with(json!({ "events": [{ "topic": "t", "handler": handler }] }));
    refuses(with(json!({ "name": "-x" })), "name", "starting with");
    refuses(with(json!({ "name": "" })), "name", "empty string");
    refuses(
        with(json!({ "version": "latest" })),
        "version",
        "expected a semantic version",
    );
    refuses(with(json!({ "runtime": "" })), "runtime", "empty string");
    // A misspelt capability is not Alga's prefix-less form: refused.
    refuses(
        with(json!({ "capabilities": ["cap:storag.kv"] })),
        "capabilities[0]",
        "unknown capability",
    );
    refuses(
        with(json!({ "capabilities": ["root"] })),
        "capabilities[0]",
        "unknown capability",
    );
    refuses(
        with(json!({ "capabilities": [""] })),
        "capabilities[0]",
        "unknown capability",
    );
    refuses(
        with(json!({ "ui": { "type": "page", "entry": "ui/i.html" } })),
        "ui.type",
        "expected \"iframe\"",
    );
    refuses(
        with(json!({ "ui": { "type": "iframe", "entry": "../i.html" } })),
        "ui.entry",
        "'..'",
    );
    refuses(
        api(json!([ep("FETCH", "/a")])),
        "api.endpoints[0].method",
        "expected one of",
    );
    refuses(
        api(json!([ep("GET", "a")])),
        "api.endpoints[0].path",
        "starting with '/'",
    );
    refuses(
        api(json!([{ "method": "GET", "path": "/a" }])),
        "api.endpoints[0].handler",
        "missing",
    );
    // Only Alga's file-handler form (`path.wasm` or `path#export`) is dropped.
    refuses(event("api/on-x"), "events[0].handler", "starting with '/'");
    refuses(
        event("/items/:id"),
        "events[0].handler",
        "without parameters",
    );
    refuses(
        event("dist/x.wasm#"),
        "events[0].handler",
        "starting with '/'",
    );
    refuses(
        event("../x.wasm#handle"),
        "events[0].handler",
        "starting with '/'",
    );
    refuses(
        with(json!({ "schedules": [{ "endpoint": "/nope", "cron": "0 * * * *" }] })),
        "schedules[0].endpoint",
        "none are declared",
    );
    // The placeholder check is about whole placeholders, not underscores.
    let (m, w) = compatible(&with(json!({ "name": "_private.ext" })).to_string())
        .exact()
        .unwrap();
    assert_eq!((m.name.as_str(), w.len()), ("_private.ext", 0));
}

#[test]
fn wildcard_versions_resolve_to_the_next_patch_of_their_line() {
    let checked = compatible(ALGA_WILDCARD);
    let w = VersionWildcard { major: 0, minor: 3 };
    assert_eq!(checked.wildcard(), Some(w));
    assert_eq!(w.to_string(), "0.3.*");
    assert_eq!(checked.clone().exact().unwrap_err(), w);

    let (m, warnings) = checked.clone().resolve(std::iter::empty());
    assert_eq!(m.version, semver::Version::new(0, 3, 0));
    let note = warning(&warnings, "version");
    assert!(
        note.contains("\"0.3.*\"") && note.contains("published as 0.3.0"),
        "{note}"
    );
    assert_eq!(warnings.last().unwrap().field, "version");

    // Pre-releases, other lines and junk do not count (Alga's rule).
    let published = [
        "0.3.0",
        "0.3.4",
        "0.3.9-beta.1",
        "0.4.7",
        "1.3.12",
        "junk",
        "0.3.2",
    ];
    let (m, _) = checked.clone().resolve(published);
    assert_eq!(m.version, semver::Version::new(0, 3, 5));

    // A bundle published before keeps its version; another line's is not it.
    let (m, warnings) = checked
        .clone()
        .resolve_as(semver::Version::new(0, 3, 2))
        .unwrap();
    assert_eq!(m.version, semver::Version::new(0, 3, 2));
    assert!(warning(&warnings, "version").contains("published under it before"));
    assert!(
        checked
            .clone()
            .resolve_as(semver::Version::new(0, 4, 0))
            .is_none()
    );
    assert!(
        checked
            .resolve_as(semver::Version::parse("0.3.1-rc.1").unwrap())
            .is_none()
    );

    // Only `MAJOR.MINOR.*`, and only in `version`.
    for ok in ["0.0.*", "10.20.*"] {
        assert!(
            compatible(&with(json!({ "version": ok })).to_string())
                .wildcard()
                .is_some()
        );
    }
    for bad in [
        "0.*",
        "*",
        "1.2.x",
        "01.2.*",
        "1.02.*",
        "1.2.3.*",
        "^1.2.3",
        "~1.2",
        "1.2.*-beta",
        " 1.2.*",
        "1.2.*.*",
    ] {
        let err = check(
            with(json!({ "version": bad })).to_string().as_bytes(),
            Strictness::Compatible,
        )
        .expect_err(bad);
        assert_eq!(err.field, "version", "{bad}: {err}");
    }
    refuses_wildcard_elsewhere();

    // Stored manifests carry resolved versions: `parse` refuses a wildcard.
    let err = parse(ALGA_WILDCARD.as_bytes()).unwrap_err();
    assert_eq!(err.field, "version");
    assert!(
        err.message.contains("resolved only when publishing"),
        "{err}"
    );
}

fn refuses_wildcard_elsewhere() {
    let doc = with(json!({
        "api": { "endpoints": [ep("POST", "/a")] },
        "schedules": [{ "endpoint": "/a", "cron": "0 * * * *", "name": "0.3.*" }]
    }));
    // A wildcard-looking string elsewhere is just text; it never becomes a version.
    let (m, w) = compatible(&doc.to_string()).exact().unwrap();
    assert_eq!(m.version, semver::Version::new(1, 0, 0));
    assert!(w.is_empty());
}

#[test]
fn strict_mode_is_the_validator_as_it_was() {
    // Everything today's tests above refuse (via `rejects`) is refused in strict
    // mode; compatible mode accepts the same manifest minus the ignored parts.
    let doc = json!({
        "name": "com.example.x", "version": "1.0.0", "runtime": "wasm-js@1",
        "ui": { "type": "iframe", "entry": "ui/i.html", "hooks": { "appmenu": {} } }
    });
    rejects(
        &doc,
        "ui.hooks.appmenu",
        "expected only: appMenu, clientPortalMenu",
    );
    let checked = check(&serde_json::to_vec(&doc).unwrap(), Strictness::Compatible).unwrap();
    assert_eq!(warned_fields(checked.warnings()), ["ui.hooks.appmenu"]);
    // The HELLO example has nothing to warn about in either mode.
    assert!(compatible(HELLO).warnings().is_empty());
    assert!(check(HELLO.as_bytes(), Strictness::Strict).is_ok());
}
