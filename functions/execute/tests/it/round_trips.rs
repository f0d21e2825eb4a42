//! How many AWS requests an invocation of the execute function costs, counted by
//! an SDK interceptor on every client (S3, DynamoDB, Secrets Manager) of the
//! function's own backends on moto, for the direct route and `/v1/execute`:
//! cold (a fresh function, as a new Lambda container), the first invocation of
//! a version in a warm function, and warm ones. The guest (WAT hello) makes no
//! storage calls, so every request counted is the runner's. The warm path must
//! cost exactly one: the quota decision. The table these tests print is the one
//! in docs/benchmarks.md ("AWS round trips per invocation").
//!
//! Each test runs in a process of its own, so that the trust bundle the
//! function reads from its environment (`SIGNING_TRUST_BUNDLE`) is set there
//! without touching this process's environment.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fn_execute::ExecuteFunction;
use lambda_http::Body;
use runtime_core::gateway::{ExecuteAuth, ExecutionRecords, GatewaySettings};
use serde_json::{Value, json};
use test_support::guests;
use test_support::lambda_emulator::event;
use test_support::moto::{AwsEnv, Moto, RequestCounter};
use test_support::signer::{Signer, endpoint_bundle, install};

const TOKEN: &str = "sample-service-token";
/// The extension every warm request calls.
const HOT: &str = "com.example.rt";
/// Another extension of the same tenant: its first request in a warm function
/// is a first-of-version.
const FRESH: &str = "com.example.rt-fresh";

fn signer() -> Signer {
    Signer::from_seed("round-trips", [7; 32])
}

/// Runs the test `name` alone in a fresh process that trusts [`signer`]'s key.
fn alone(name: &str) -> bool {
    let trust = signer().trust.to_json();
    test_support::in_own_process_with(name, &[("SIGNING_TRUST_BUNDLE", &trust)])
}

/// Requests counted, by `service Operation`.
type Counts = BTreeMap<String, u64>;

fn counts(counter: &RequestCounter) -> Counts {
    counter
        .take()
        .into_iter()
        .map(|((service, op), n)| (format!("{service} {op}"), n))
        .collect()
}

fn only(pairs: &[(&str, u64)]) -> Counts {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// A deployment on moto with HOT and FRESH published and installed for `acme`;
/// the counter starts at zero.
struct Counted {
    env: AwsEnv,
    counter: RequestCounter,
    hex: BTreeMap<&'static str, String>,
}

async fn deploy() -> Counted {
    let (env, counter) = AwsEnv::counted(Moto::shared()).await;
    let signer = signer();
    let publisher = signer.publisher(&env.backends);
    let mut hex = BTreeMap::new();
    for ext in [HOT, FRESH] {
        let bundle = endpoint_bundle(ext, "1.0.0", &guests::hello());
        let published = signer.publish(&publisher, &bundle).await;
        install(&env.backends, "acme", ext, &[], BTreeMap::new()).await;
        hex.insert(ext, published.content_hash.hex());
    }
    counter.take();
    Counted { env, counter, hex }
}

/// A fresh execute function (a new container) over the deployment, as Lambda
/// runs it (records only in the log line) unless `tweak` says otherwise.
fn function(env: &AwsEnv, tweak: impl FnOnce(&mut GatewaySettings)) -> ExecuteFunction {
    let mut settings = GatewaySettings {
        execute_auth: ExecuteAuth::Token(Some(TOKEN.into())),
        execution_records: ExecutionRecords::Log,
        ..GatewaySettings::default()
    };
    tweak(&mut settings);
    ExecuteFunction::new(env.backends.clone(), &test_support::test_config(), settings).unwrap()
}

/// `GET /api/ext/{ext}/hello` for tenant acme, as API Gateway (HTTP API) sends it.
fn direct(ext: &str) -> lambda_http::Request {
    let mut e = event("direct-v2.json", &"0".repeat(64));
    let path = format!("/api/ext/{ext}/hello");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["pathParameters"] = json!({"extensionId": ext, "proxy": "hello"});
    lambda_http::request::from_str(&e.to_string()).unwrap()
}

/// `POST /v1/execute` of acme's install of `ext`, with an idempotency key if given.
fn execute(ext: &str, hex: &str, idempotency_key: Option<&str>) -> lambda_http::Request {
    let mut e = event("execute-v2.json", hex);
    e["headers"]["x-alga-extension"] = ext.into();
    if let Some(key) = idempotency_key {
        e["headers"]["x-idempotency-key"] = key.into();
    }
    e["body"] = e["body"]
        .as_str()
        .unwrap()
        .replace("com.example.hello", ext)
        .into();
    lambda_http::request::from_str(&e.to_string()).unwrap()
}

/// Serves `req` and checks the guest answered `hello`.
async fn call(f: &ExecuteFunction, req: lambda_http::Request) {
    let response = f.handle(req).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    };
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    if let Ok(envelope) = serde_json::from_slice::<Value>(&body) {
        // /v1/execute: the guest's answer is inside the envelope.
        assert_eq!(envelope["error"], Value::Null, "{envelope}");
        assert_eq!(envelope["status"], 200, "{envelope}");
    } else {
        assert_eq!(body, b"hello");
    }
}

/// One row of the table: what an invocation cost.
struct Row {
    route: &'static str,
    phase: &'static str,
    counts: Counts,
}

fn print_table(rows: &[Row]) {
    println!("AWS round trips per invocation (guest calls: none)");
    println!(
        "{:<14} {:<26} {:>5}  requests",
        "route", "invocation", "total"
    );
    for r in rows {
        let detail: Vec<String> = r
            .counts
            .iter()
            .map(|(op, n)| format!("{op} ×{n}"))
            .collect();
        println!(
            "{:<14} {:<26} {:>5}  {}",
            r.route,
            r.phase,
            r.counts.values().sum::<u64>(),
            detail.join(", ")
        );
    }
}

#[test]
fn aws_round_trips_per_invocation_warm_is_the_quota_decision_alone() {
    if !alone("round_trips::aws_round_trips_per_invocation_warm_is_the_quota_decision_alone") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let Counted { env, counter, hex } = deploy().await;
        let quota = only(&[("dynamodb TransactWriteItems", 1)]);
        let mut rows = Vec::new();

        // The direct route, in a fresh function.
        let f = function(&env, |_| {});
        assert_eq!(
            counts(&counter),
            Counts::new(),
            "building the function calls nothing"
        );
        call(&f, direct(HOT)).await;
        rows.push(Row {
            route: "direct",
            phase: "cold",
            counts: counts(&counter),
        });
        call(&f, direct(FRESH)).await;
        rows.push(Row {
            route: "direct",
            phase: "first-of-version (warm)",
            counts: counts(&counter),
        });
        for _ in 0..3 {
            call(&f, direct(HOT)).await;
            let warm = counts(&counter);
            assert_eq!(warm, quota, "a warm direct-route invocation");
            rows.push(Row {
                route: "direct",
                phase: "warm",
                counts: warm,
            });
        }

        // /v1/execute (registry mode), in another fresh function.
        let f = function(&env, |_| {});
        call(&f, execute(HOT, &hex[HOT], None)).await;
        rows.push(Row {
            route: "/v1/execute",
            phase: "cold",
            counts: counts(&counter),
        });
        call(&f, execute(FRESH, &hex[FRESH], None)).await;
        rows.push(Row {
            route: "/v1/execute",
            phase: "first-of-version (warm)",
            counts: counts(&counter),
        });
        for _ in 0..3 {
            call(&f, execute(HOT, &hex[HOT], None)).await;
            let warm = counts(&counter);
            assert_eq!(warm, quota, "a warm /v1/execute invocation");
            rows.push(Row {
                route: "/v1/execute",
                phase: "warm",
                counts: warm,
            });
        }
        // The caller's idempotency key costs its own reads and writes (claim,
        // then the stored response), per request by design; the runner's share
        // stays the quota decision.
        call(&f, execute(HOT, &hex[HOT], Some("k-1"))).await;
        let keyed = counts(&counter);
        rows.push(Row {
            route: "/v1/execute",
            phase: "warm, x-idempotency-key",
            counts: keyed.clone(),
        });
        call(&f, execute(HOT, &hex[HOT], Some("k-1"))).await;
        let replay = counts(&counter);
        rows.push(Row {
            route: "/v1/execute",
            phase: "replay of that key",
            counts: replay.clone(),
        });

        // A table copy of the records (ALGA_EXECUTION_RECORDS=table) is written
        // by the background writer, off the request path: after a flush, the
        // warm requests' quota decisions plus at most one write per record.
        let f = function(&env, |s| s.execution_records = ExecutionRecords::Table);
        call(&f, direct(HOT)).await;
        f.gateway().flush_records().await.unwrap();
        counter.take();
        for _ in 0..3 {
            call(&f, direct(HOT)).await;
        }
        f.gateway().flush_records().await.unwrap();
        let mut table = counts(&counter);
        let writes = table.remove("dynamodb PutItem").unwrap_or(0)
            + table.remove("dynamodb BatchWriteItem").unwrap_or(0);
        assert_eq!(
            table,
            only(&[("dynamodb TransactWriteItems", 3)]),
            "records off the path"
        );
        assert!(
            (1..=3).contains(&writes),
            "{writes} record writes for 3 records"
        );
        println!("table copy: 3 warm direct invocations → {writes} background record write(s)");

        print_table(&rows);
        // The idempotency store's own calls are all the keyed request adds.
        assert_eq!(
            keyed.get("dynamodb TransactWriteItems"),
            Some(&1),
            "{keyed:?}"
        );
        assert_eq!(
            replay.get("dynamodb TransactWriteItems"),
            None,
            "a replay runs nothing: {replay:?}"
        );
    });
}

#[test]
fn a_disabled_install_stops_running_within_the_ttl_on_dynamodb() {
    if !alone("round_trips::a_disabled_install_stops_running_within_the_ttl_on_dynamodb") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let Counted { env, .. } = deploy().await;
        let ttl = Duration::from_millis(300);
        let f = function(&env, |s| s.registry_cache.ttl = ttl);
        let status = |req| {
            let f = &f;
            async move { f.handle(req).await.status().as_u16() }
        };
        assert_eq!(status(direct(HOT)).await, 200);
        // Every answer cached so far was read before this instant.
        let read_by = Instant::now();
        // The operator disables the install (the uncached registry, as the CLI's).
        env.backends
            .registry
            .set_enabled("acme", HOT, false)
            .await
            .unwrap();
        // Within the TTL the cached install may still run; nothing is asserted.
        let within = status(direct(HOT)).await;
        assert!(within == 200 || within == 403, "{within}");
        // Past it, never.
        tokio::time::sleep_until((read_by + ttl).into()).await;
        assert_eq!(status(direct(HOT)).await, 403, "disabled after the TTL");
        env.backends
            .registry
            .set_enabled("acme", HOT, true)
            .await
            .unwrap();
        let enabled_at = Instant::now();
        tokio::time::sleep_until((enabled_at + ttl).into()).await;
        assert_eq!(
            status(direct(HOT)).await,
            200,
            "enabled again after the TTL"
        );
    });
}
