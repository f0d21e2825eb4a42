//! Warm execute: the full pipeline (request JSON → resolve → cached `InstancePre` →
//! fresh Store + limits → instantiate → call → envelope JSON) next to the floor, raw
//! Wasmtime instantiate + call of the same component, for the WAT hello guest and the
//! JS example.
//!
//! `cargo bench -p runtime-core --bench execute` (the JS case needs
//! `scripts/build-example` first); `scripts/bench` runs it and prints the ratios.

use test_support as support;

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Samples;
use criterion::{Criterion, criterion_group};
use runtime_core::artifact;
use runtime_core::engine::{RuntimeEngine, Target};
use runtime_core::execute::{ExecuteRequest, RoutingHeaders};
use runtime_core::host::{self, RunnerPre};
use serde_json::json;
use support::{Harness, guests, request};

/// The floor's engine and pre-linked component: deserialized once, like the pipeline's.
struct Floor {
    engine: Arc<RuntimeEngine>,
    pre: RunnerPre<runtime_core::host::HostState>,
}

impl Floor {
    fn new(wasm: &[u8]) -> Self {
        let settings = support::test_config().engine;
        let engine = Arc::new(RuntimeEngine::new(&settings).unwrap());
        let cwasm = artifact::precompile(wasm, &Target::host(), &settings).unwrap();
        // SAFETY: bytes we just compiled with the same configuration.
        let component =
            unsafe { wasmtime::component::Component::deserialize(engine.engine(), &cwasm) }
                .unwrap();
        let linker = host::link(engine.engine()).unwrap();
        let pre = RunnerPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Floor { engine, pre }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = Harness::new();
    let services = common::services();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![("wat-hello", guests::hello(), "/")];
    match common::js_example() {
        Some(js) => cases.push(("js-hello", js, "/api/hello")),
        None => eprintln!("examples/hello/dist/main.wasm missing: run scripts/build-example"),
    }
    for (name, wasm, path) in &cases {
        let (content, _) = rt.block_on(h.publish(wasm));
        let body = serde_json::to_vec(&request(&content, "GET", path, json!({}))).unwrap();
        let routing = RoutingHeaders {
            tenant: Some("tenant-a".into()),
            extension: Some("com.example.test".into()),
            request_id: None,
        };
        let floor = Floor::new(wasm);
        let greq = common::guest_request(path);
        // Loads the component into the pipeline's cache: every measured request is warm.
        let first = rt.block_on(
            h.executor
                .execute(&routing, &ExecuteRequest::from_json(&body).unwrap()),
        );
        assert_eq!(first.envelope.status, 200, "{:?}", first.envelope.error);

        let group_name = format!("warm-{name}");
        let (pipe, raw) = (Samples::default(), Samples::default());
        let mut g = c.benchmark_group(&group_name);
        g.bench_function("pipeline", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (h, body, routing, pipe) = (&h, &body, &routing, &pipe);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += pipe
                            .time(async {
                                let req = ExecuteRequest::from_json(body).unwrap();
                                let out = h.executor.execute(routing, &req).await;
                                assert_eq!(out.envelope.status, 200);
                                serde_json::to_vec(&out.envelope).unwrap()
                            })
                            .await;
                    }
                    total
                }
            })
        });
        g.bench_function("floor", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (floor, services, greq, raw) = (&floor, &services, &greq, &raw);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += raw
                            .time(async {
                                let s = common::raw_call(&floor.engine, &floor.pre, services, greq)
                                    .await;
                                assert_eq!(s, 200);
                            })
                            .await;
                    }
                    total
                }
            })
        });
        g.finish();
        pipe.save(&format!("{group_name}.pipeline"));
        raw.save(&format!("{group_name}.floor"));
    }
}

fn config() -> Criterion {
    let (samples, secs) = if common::smoke() { (10, 1) } else { (50, 4) };
    Criterion::default()
        .sample_size(samples)
        .measurement_time(Duration::from_secs(secs))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
