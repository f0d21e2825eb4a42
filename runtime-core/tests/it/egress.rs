//! The SSRF suite: real guests (WAT components calling `alga:extension/http.fetch`)
//! and the `wasi:http` hook try every way to an internal address; each is
//! refused, and a loopback listener standing in for the forbidden target sees
//! zero connections. Plus the positive path against a loopback server that the
//! operator explicitly allowed, and the size, time and call caps.
//!
//! Traffic only ever goes to loopback: the allowed server listens on 127.0.0.2
//! (the only allowed range, 127.0.0.2/32), the trap on 127.0.0.1.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use runtime_core::capability::{Capability, CapabilitySet};
use runtime_core::config::{EgressSettings, RuntimeConfig};
use runtime_core::host::http::resolve::FixedResolver;
use runtime_core::host::http::{Egress, EgressError, OutboundRequest};
use runtime_core::host::{HostServices, HostSetup, HostState, Invocation, Network, RequestLimits};
use serde_json::json;
use stores_local::{MemoryKvStore, MemorySecretStore};
use test_support::http_server::{Reply, TestServer};
use test_support::{Harness, guests, request};
use wasmtime_wasi_http::WasiHttpView;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn settings(allow: &[&str]) -> EgressSettings {
    EgressSettings {
        allowlist: allow.iter().map(|s| s.to_string()).collect(),
        allow_ranges: vec!["127.0.0.2/32".parse().unwrap()],
        timeout: Duration::from_secs(5),
        ..EgressSettings::default()
    }
}

/// Names the tests resolve: `allowed.test` is the allowed server's address,
/// `internal.test` resolves to loopback (the trap), `mixed.test` to a public and
/// a private address, the cloud names to the metadata / private addresses.
fn resolver() -> Arc<FixedResolver> {
    Arc::new(
        FixedResolver::default()
            .with("allowed.test", &[ip("127.0.0.2")])
            .with("localhost", &[ip("127.0.0.1"), ip("::1")])
            .with("internal.test", &[ip("127.0.0.1")])
            .with("mixed.test", &[ip("127.0.0.2"), ip("127.0.0.1")])
            .with("metadata.test", &[ip("169.254.169.254")])
            .with("private.test", &[ip("10.0.0.1")])
            .with("v6loop.test", &[ip("::1")])
            .with("mapped.test", &[ip("::ffff:127.0.0.1")]),
    )
}

fn network(settings: EgressSettings) -> Network {
    Network {
        egress: Arc::new(Egress::new(settings).with_resolver(resolver())),
        host_api: None,
    }
}

/// Every spelling of "somewhere internal" a guest might try, aimed at `trap_port`.
fn forbidden_urls(trap_port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0.0.0.0",
        "0",
        "10.0.0.1",
        "169.254.169.254",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "internal.test",
        "mixed.test",
        "metadata.test",
        "private.test",
        "v6loop.test",
        "mapped.test",
    ]
    .iter()
    .map(|h| format!("http://{h}:{trap_port}/latest/meta-data/"))
    .collect()
}

/// An allowlist naming every forbidden host, so the refusals come from the
/// address checks after resolution, not merely from the allowlist.
const EVERYTHING: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "::1",
    "0.0.0.0",
    "10.0.0.1",
    "169.254.169.254",
    "::ffff:7f00:1",
    "test",
];

async fn fetch_status(h: &Harness, content: &str, url: &str) -> (u16, Vec<u8>, Vec<String>) {
    let content = runtime_core::artifact::ContentHash::parse(content).unwrap();
    let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, url);
    let mut req = request(&content, "POST", "/", json!({"http": {"body_b64": body}}));
    req["providers"] = json!(["cap:http.fetch"]);
    let out = h.run(req).await;
    assert!(out.envelope.error.is_none(), "{url}: {:?}", out.envelope);
    let logs = out.logs.iter().map(|l| l.message.clone()).collect();
    (
        out.envelope.status,
        out.envelope.body().unwrap_or_default(),
        logs,
    )
}

#[tokio::test]
async fn guests_cannot_reach_internal_addresses_by_any_spelling() {
    let trap = TestServer::start("127.0.0.1", |_| Reply::new(200, "trapped"));
    // The same port on ::1, where IPv6 exists, so `[::1]` would land in a trap too.
    let trap6 = TestServer::start_at(
        std::net::SocketAddr::new(ip("::1"), trap.addr.port()),
        |_| Reply::new(200, "trapped"),
    );
    let h = Harness::with_network(
        test_support::test_config(),
        Some(network(settings(EVERYTHING))),
    );
    let (content, _) = h.publish(&guests::fetcher()).await;
    let content = content.to_string();
    for url in forbidden_urls(trap.addr.port()) {
        let (status, _, logs) = fetch_status(&h, &content, &url).await;
        assert_eq!(status, 461, "{url} must be not-allowed");
        assert!(
            logs.iter().any(|l| l.contains("forbidden_address")),
            "{url}: {logs:?}"
        );
    }
    assert_eq!(trap.connections(), 0, "the trap saw a connection");
    if let Some(t6) = trap6 {
        assert_eq!(t6.connections(), 0);
    }
}

#[tokio::test]
async fn refusals_without_the_capability_or_allowlist_entry() {
    let trap = TestServer::start("127.0.0.2", |_| Reply::new(200, "trapped"));
    // Allowed range, but the host is not on the (empty) allowlist.
    let h = Harness::with_network(test_support::test_config(), Some(network(settings(&[]))));
    let (content, _) = h.publish(&guests::fetcher()).await;
    let url = format!("http://allowed.test:{}/", trap.addr.port());
    let (status, _, logs) = fetch_status(&h, &content.to_string(), &url).await;
    assert_eq!(status, 461);
    assert!(
        logs.iter().any(|l| l.contains("not_allowlisted")),
        "{logs:?}"
    );
    // Allowlisted, but cap:http.fetch not granted.
    let h = Harness::with_network(
        test_support::test_config(),
        Some(network(settings(&["allowed.test"]))),
    );
    let (content, _) = h.publish(&guests::fetcher()).await;
    let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &url);
    let out = h
        .run(request(
            &content,
            "POST",
            "/",
            json!({"http": {"body_b64": body}, "providers": []}),
        ))
        .await;
    assert_eq!(out.envelope.status, 461);
    // Not a URL at all.
    let (status, _, _) = fetch_status(&h, &content.to_string(), "::not a url").await;
    assert_eq!(status, 460);
    assert_eq!(trap.connections(), 0);
}

#[tokio::test]
async fn allowed_fetch_returns_status_headers_and_body() {
    let server = TestServer::start("127.0.0.2", |seen| {
        Reply::new(201, format!("hello from {}", seen.path)).header("x-test", "yes")
    });
    let h = Harness::with_network(
        test_support::test_config(),
        Some(network(settings(&["allowed.test"]))),
    );
    let (content, _) = h.publish(&guests::fetcher()).await;
    let url = format!("http://allowed.test:{}/path?q=1", server.addr.port());
    let out = {
        let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &url);
        let mut req = request(&content, "POST", "/", json!({"http": {"body_b64": body}}));
        req["providers"] = json!(["cap:http.fetch"]);
        h.run(req).await
    };
    assert!(out.envelope.error.is_none(), "{:?}", out.envelope);
    assert_eq!(out.envelope.status, 201);
    assert_eq!(out.envelope.body().unwrap(), b"hello from /path?q=1");
    assert_eq!(
        out.envelope
            .headers
            .as_ref()
            .unwrap()
            .get("x-test")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(out.metrics.egress_calls, 1);
    assert_eq!(
        out.metrics.egress_bytes,
        b"hello from /path?q=1".len() as u64
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("host"),
        Some(format!("allowed.test:{}", server.addr.port()).as_str())
    );
}

#[tokio::test]
async fn redirects_are_followed_only_to_allowed_targets() {
    let trap = TestServer::start("127.0.0.1", |_| Reply::new(200, "trapped"));
    let tp = trap.addr.port();
    let server = TestServer::start("127.0.0.2", move |seen| match seen.path.as_str() {
        "/to-loopback" => {
            Reply::new(302, "").header("location", &format!("http://127.0.0.1:{tp}/"))
        }
        "/to-internal-name" => {
            Reply::new(307, "").header("location", &format!("http://internal.test:{tp}/"))
        }
        "/to-decimal" => {
            Reply::new(301, "").header("location", &format!("http://2130706433:{tp}/"))
        }
        "/to-other-host" => Reply::new(302, "").header("location", "http://example.com/"),
        "/loop" => Reply::new(302, "").header("location", "/loop"),
        "/hop" => Reply::new(303, "").header("location", "/final"),
        _ => Reply::new(200, "final"),
    });
    let h = Harness::with_network(
        test_support::test_config(),
        Some(network(settings(&[
            "allowed.test",
            "127.0.0.1",
            "internal.test",
        ]))),
    );
    let (content, _) = h.publish(&guests::fetcher()).await;
    let content = content.to_string();
    let base = format!("http://allowed.test:{}", server.addr.port());
    for path in [
        "/to-loopback",
        "/to-internal-name",
        "/to-decimal",
        "/to-other-host",
    ] {
        let (status, _, logs) = fetch_status(&h, &content, &format!("{base}{path}")).await;
        assert_eq!(status, 461, "{path}: {logs:?}");
    }
    // Too many redirects is a transport error, not an endless loop.
    let (status, _, logs) = fetch_status(&h, &content, &format!("{base}/loop")).await;
    assert_eq!(status, 462);
    assert!(
        logs.iter().any(|l| l.contains("too_many_redirects")),
        "{logs:?}"
    );
    // A redirect within the allowed host is followed.
    let (status, body, _) = fetch_status(&h, &content, &format!("{base}/hop")).await;
    assert_eq!((status, body.as_slice()), (200, &b"final"[..]));
    assert_eq!(trap.connections(), 0);
}

#[tokio::test]
async fn response_size_timeout_and_call_count_are_capped() {
    let server = TestServer::start("127.0.0.2", |seen| match seen.path.as_str() {
        "/big" => Reply::new(200, vec![b'x'; 4096]),
        "/slow" => Reply {
            delay: Duration::from_secs(3),
            ..Reply::new(200, "late")
        },
        _ => Reply::new(200, "ok"),
    });
    let mut s = settings(&["allowed.test"]);
    s.response_body_max = 1024;
    s.timeout = Duration::from_millis(300);
    s.max_calls = 2;
    let net = network(s);
    let base = format!("http://allowed.test:{}", server.addr.port());
    let session = net.egress.session(true, None, None);
    let get = |path: &str| OutboundRequest {
        method: http::Method::GET,
        url: format!("{base}{path}"),
        headers: vec![],
        body: None,
    };
    assert!(matches!(
        session.send(get("/big"), true).await,
        Err(EgressError::ResponseTooLarge { limit: 1024 })
    ));
    assert!(matches!(
        session.send(get("/slow"), true).await,
        Err(EgressError::Timeout { .. })
    ));
    assert!(matches!(
        session.send(get("/"), true).await,
        Err(EgressError::TooManyCalls { limit: 2 })
    ));
    // The deadline of the invocation bounds the timeout too.
    let session = net
        .egress
        .session(true, None, Some(std::time::Instant::now()));
    assert!(matches!(
        session.send(get("/"), true).await,
        Err(EgressError::Timeout { ms: 0 })
    ));
    // Request bodies are capped.
    let session = net.egress.session(true, None, None);
    let mut big = get("/");
    big.method = http::Method::POST;
    big.body = Some(vec![0u8; (2 << 20) + 1].into());
    assert!(matches!(
        session.send(big, true).await,
        Err(EgressError::RequestTooLarge { .. })
    ));
}

#[tokio::test]
async fn the_install_allowlist_is_merged_with_the_global_one() {
    let server = TestServer::start("127.0.0.2", |_| Reply::new(200, "ok"));
    let net = network(settings(&["global.test"]));
    let url = format!("http://allowed.test:{}/", server.addr.port());
    let req = || OutboundRequest {
        method: http::Method::GET,
        url: url.clone(),
        headers: vec![],
        body: None,
    };
    let without = net.egress.session(true, None, None);
    assert!(matches!(
        without.send(req(), true).await,
        Err(EgressError::NotAllowlisted(_))
    ));
    let with = net
        .egress
        .session(true, Some("other.test, Allowed.Test"), None);
    assert_eq!(with.send(req(), true).await.unwrap().status, 200);
    assert_eq!(
        with.policy().allowlist(),
        ["global.test", "other.test", "allowed.test"]
    );
}

fn host_state(caps: &[Capability], net: &Network) -> HostState {
    HostState::new(HostSetup {
        network: Some(net),
        ..HostSetup::new(
            Arc::new(Invocation {
                tenant_id: "t1".into(),
                extension_id: "e1".into(),
                install_id: Some("i1".into()),
                config: BTreeMap::new(),
                ..Invocation::default()
            }),
            CapabilitySet::with(caps.iter().copied()),
            &HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
            RequestLimits {
                memory_bytes: 1 << 20,
                host_calls: 1000,
                log_bytes: 100_000,
            },
        )
    })
}

async fn wasi_send(
    state: &mut HostState,
    method: http::Method,
    url: &str,
) -> Result<(u16, Vec<u8>), wasmtime_wasi_http::Error> {
    let body: wasmtime_wasi_http::WasiBody =
        http_body_util::Full::new(bytes::Bytes::from_static(b"payload"))
            .map_err(
                |never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} },
            )
            .boxed_unsync();
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .unwrap();
    let fut = state
        .http()
        .hooks
        .send_request(req, None, Box::new(async { Ok(()) }));
    let (resp, _io) = Box::into_pin(fut).await?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

#[tokio::test]
async fn wasi_http_goes_through_the_same_policy() {
    let trap = TestServer::start("127.0.0.1", |_| Reply::new(200, "trapped"));
    let server = TestServer::start("127.0.0.2", |seen| {
        if seen.path == "/redirect" {
            return Reply::new(302, "").header("location", "http://127.0.0.1/");
        }
        Reply::new(
            200,
            format!("{} {}", seen.method, String::from_utf8_lossy(&seen.body)),
        )
    });
    let net = network(settings(&["allowed.test", "127.0.0.1", "internal.test"]));

    // Without the capability: denied, nothing sent.
    let mut s = host_state(&[], &net);
    let allowed = format!("http://allowed.test:{}/", server.addr.port());
    assert!(matches!(
        wasi_send(&mut s, http::Method::GET, &allowed).await,
        Err(wasmtime_wasi_http::Error::HttpRequestDenied)
    ));
    assert_eq!(server.connections(), 0);

    let mut s = host_state(&[Capability::HttpFetch], &net);
    for url in forbidden_urls(trap.addr.port()) {
        let r = wasi_send(&mut s, http::Method::GET, &url).await;
        assert!(
            matches!(
                r,
                Err(wasmtime_wasi_http::Error::DestinationIpProhibited
                    | wasmtime_wasi_http::Error::HttpRequestDenied
                    | wasmtime_wasi_http::Error::DnsError { .. })
            ),
            "{url}: {r:?}"
        );
    }
    assert_eq!(trap.connections(), 0, "the trap saw a connection");
    assert!(
        s.logs()
            .lines()
            .iter()
            .any(|l| l.message.starts_with("wasi:http GET"))
    );

    // Allowed: the request (with its body) arrives, the answer comes back.
    let (status, body) = wasi_send(&mut s, http::Method::POST, &allowed)
        .await
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"POST payload"[..]));
    // Redirects are handed to the guest, not followed.
    let redirect = format!("http://allowed.test:{}/redirect", server.addr.port());
    let (status, _) = wasi_send(&mut s, http::Method::GET, &redirect)
        .await
        .unwrap();
    assert_eq!(status, 302);
    assert_eq!(trap.connections(), 0);
    // Two exchanges plus the lookup of `internal.test` (refused after DNS): every
    // attempt that reaches DNS counts against the per-invocation budget.
    assert_eq!(s.egress_calls(), 3);
}

#[tokio::test]
async fn the_system_resolver_is_checked_too() {
    let trap = TestServer::start("127.0.0.1", |_| Reply::new(200, "trapped"));
    // Real getaddrinfo: `localhost` comes from /etc/hosts, no traffic leaves the box.
    let egress = Arc::new(Egress::new(settings(&["localhost"])));
    let session = egress.session(true, None, None);
    let r = session
        .send(
            OutboundRequest {
                method: http::Method::GET,
                url: format!("http://localhost:{}/", trap.addr.port()),
                headers: vec![],
                body: None,
            },
            true,
        )
        .await;
    assert!(
        matches!(r, Err(EgressError::ForbiddenAddress { .. })),
        "{r:?}"
    );
    assert_eq!(trap.connections(), 0);
}

#[test]
fn runtime_config_reads_the_egress_variables() {
    let vars = [
        ("EXT_EGRESS_ALLOWLIST", "a.test,b.test"),
        ("ALGA_EGRESS_ALLOW_RANGES", "127.0.0.0/8"),
        ("ALGA_EGRESS_TIMEOUT_MS", "1500"),
        ("ALGA_EGRESS_MAX_REDIRECTS", "2"),
        ("ALGA_EGRESS_RESPONSE_MAX_BYTES", "100"),
    ];
    let c = RuntimeConfig::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    assert_eq!(c.egress.allowlist, ["a.test", "b.test"]);
    assert_eq!(c.egress.timeout, Duration::from_millis(1500));
    assert_eq!(c.egress.max_redirects, 2);
    assert_eq!(c.egress.response_body_max, 100);
}

/// A redirect to another origin (same host, other port) must not carry
/// the guest's credentials or custom headers; a same-origin redirect keeps them.
#[tokio::test]
async fn sec_14_redirects_to_another_origin_drop_secret_headers() {
    let second = TestServer::start("127.0.0.2", |_| Reply::new(200, "second"));
    let sp = second.addr.port();
    let first = TestServer::start("127.0.0.2", move |seen| match seen.path.as_str() {
        "/found" => {
            Reply::new(302, "").header("location", &format!("http://allowed.test:{sp}/landing"))
        }
        "/temporary" => {
            Reply::new(307, "").header("location", &format!("http://ALLOWED.test.:{sp}/landing"))
        }
        "/same-origin" => Reply::new(302, "").header("location", "/final"),
        _ => Reply::new(200, "first"),
    });
    let net = network(settings(&["allowed.test"]));
    let session = net.egress.session(true, None, None);
    let base = format!("http://allowed.test:{}", first.addr.port());
    let secrets = ["authorization", "x-api-key", "cookie", "x-custom-secret"];
    let req = |path: &str, method: http::Method| OutboundRequest {
        method,
        url: format!("{base}{path}"),
        headers: [
            ("Authorization", "Bearer s3cret"),
            ("X-Api-Key", "k-123"),
            ("Cookie", "session=1"),
            ("x-custom-secret", "hush"),
            ("Accept", "application/json"),
            ("User-Agent", "guest/1"),
            ("Content-Type", "application/json"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        body: Some(bytes::Bytes::from_static(b"{}")),
    };
    for (path, method) in [
        ("/found", http::Method::GET),
        ("/temporary", http::Method::POST),
    ] {
        let r = session.send(req(path, method), true).await.unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"second"[..]), "{path}");
    }
    let seen = second.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        for h in secrets {
            assert_eq!(s.header(h), None, "{h} crossed origins: {s:?}");
        }
        assert_eq!(s.header("accept"), Some("application/json"));
        assert_eq!(s.header("user-agent"), Some("guest/1"));
    }
    // 307 keeps method and body (to a safelisted content type).
    assert_eq!(
        (seen[1].method.as_str(), &seen[1].body[..]),
        ("POST", &b"{}"[..])
    );
    // Within one origin the headers stay.
    let r = session
        .send(req("/same-origin", http::Method::GET), true)
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"first");
    let last = first.seen().pop().unwrap();
    assert_eq!(last.path, "/final");
    for h in secrets {
        assert!(last.header(h).is_some(), "{h} dropped within one origin");
    }
}

/// An allowlist entry with a port allows that port only, also after a
/// redirect; an entry without a port keeps allowing any port.
#[tokio::test]
async fn sec_15_allowlist_entries_with_a_port_allow_only_that_port() {
    let other = TestServer::start("127.0.0.2", |_| Reply::new(200, "other port"));
    let op = other.addr.port();
    let allowed = TestServer::start("127.0.0.2", move |seen| match seen.path.as_str() {
        "/hop" => Reply::new(302, "").header("location", &format!("http://allowed.test:{op}/")),
        _ => Reply::new(200, "allowed port"),
    });
    let entry = format!("allowed.test:{}", allowed.addr.port());
    let net = network(settings(&[entry.as_str()]));
    let session = net.egress.session(true, None, None);
    let get = |url: String| OutboundRequest {
        method: http::Method::GET,
        url,
        headers: vec![],
        body: None,
    };
    let ok = session
        .send(
            get(format!("http://allowed.test:{}/", allowed.addr.port())),
            true,
        )
        .await
        .unwrap();
    assert_eq!(&ok.body[..], b"allowed port");
    for url in [
        format!("http://allowed.test:{op}/"),
        format!("http://allowed.test:{}/hop", allowed.addr.port()),
        "http://allowed.test/".to_string(),
        format!("http://sub.allowed.test:{op}/"),
    ] {
        let r = session.send(get(url.clone()), true).await;
        assert!(
            matches!(r, Err(EgressError::NotAllowlisted(_))),
            "{url}: {r:?}"
        );
    }
    assert_eq!(other.connections(), 0);
    // The install's list can carry ports too, and a bare host still means any port.
    let session = net
        .egress
        .session(true, Some(&format!("x.test, allowed.test:{op}")), None);
    let r = session
        .send(get(format!("http://allowed.test:{op}/")), true)
        .await;
    assert_eq!(&r.unwrap().body[..], b"other port");
    let net = network(settings(&["allowed.test"]));
    let session = net.egress.session(true, None, None);
    let r = session
        .send(get(format!("http://allowed.test:{op}/")), true)
        .await;
    assert_eq!(&r.unwrap().body[..], b"other port");
}

#[tokio::test]
async fn sec_02_refused_wasi_http_requests_are_charged_and_noted_briefly() {
    use wasmtime_wasi_http::p2::types::HostOutgoingRequest;
    let net = network(settings(&[]));
    // Without the capability: every `outgoing-handler.handle` is a host call, so
    // the budget (1000 here) ends a loop of refused requests with a typed limit.
    let mut s = host_state(&[], &net);
    // Near the longest URI `http` accepts (64 KiB).
    let long_host = format!("{}.example", "a".repeat(60_000));
    let mut refused = 0;
    let trap = loop {
        let request = s
            .http()
            .table
            .push(HostOutgoingRequest {
                method: wasmtime_wasi_http::p2::bindings::http::types::Method::Get,
                scheme: Some(wasmtime_wasi_http::p2::bindings::http::types::Scheme::Https),
                authority: Some("example.com".into()),
                path_with_query: Some("/".into()),
                headers: Default::default(),
                body: None,
            })
            .unwrap();
        match runtime_core::host::http::handle_charged(&mut s, request, None) {
            Ok(Ok(future)) => {
                refused += 1;
                s.http().table.delete(future).unwrap();
            }
            Ok(Err(code)) => panic!("{code:?}"),
            Err(trap) => break trap,
        }
        assert!(refused <= 1000, "never charged");
    };
    assert_eq!(refused, 1000);
    assert!(
        matches!(
            trap.downcast_ref::<runtime_core::host::limits::LimitExceeded>(),
            Some(runtime_core::host::limits::LimitExceeded::HostCalls { .. })
        ),
        "{trap:?}"
    );

    // The refusal notes of a 60 KB URL are clipped.
    let mut s = host_state(&[Capability::HttpFetch], &net);
    for _ in 0..20 {
        let r = wasi_send(&mut s, http::Method::GET, &format!("https://{long_host}/")).await;
        assert!(
            matches!(r, Err(wasmtime_wasi_http::Error::HttpRequestDenied)),
            "{r:?}"
        );
    }
    let lines = s.logs().lines();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.message.len() <= 1024,
            "a note of {} bytes",
            l.message.len()
        );
    }
    assert!(lines[0].message.contains('…'), "{:.300}", lines[0].message);
}

#[tokio::test]
async fn sec_20_outgoing_bodies_share_one_buffer_budget() {
    let net = network(settings(&[]));
    let mut s = host_state(&[Capability::HttpFetch], &net);
    // A guest creating (and never sending) an outgoing body per resource handle:
    // each body may buffer `chunk size × buffer chunks` bytes before it is sent.
    let mut pinned = 0usize;
    for _ in 0..1024 {
        let http = s.http();
        let chunks = http.hooks.p2_outgoing_body_buffer_chunks();
        pinned += chunks * http.hooks.p2_outgoing_body_chunk_size();
    }
    assert!(
        pinned <= 32 << 20,
        "1,024 unsent bodies may buffer {} MiB",
        pinned >> 20
    );
    // The first ones still get wasmtime's full 1 MiB chunk (the egress body cap).
    let mut s = host_state(&[Capability::HttpFetch], &net);
    assert_eq!(s.http().hooks.p2_outgoing_body_chunk_size(), 1 << 20);
}
