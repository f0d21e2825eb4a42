//! Warm execute through the full pipeline vs raw Wasmtime instantiate + call of the
//! same component (the floor), and precompile vs load of the JS example.
//!
//! `cargo bench -p runtime-core --bench execute` (build the JS example first:
//! `scripts/build-example`). Prints each case and, at the end, the overhead ratios
//! measured in this run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use runtime_core::artifact::{self, ContentHash};
use runtime_core::capability::CapabilitySet;
use runtime_core::config::EngineSettings;
use runtime_core::engine::{RuntimeEngine, Target};
use runtime_core::execute::{ExecuteRequest, RoutingHeaders};
use runtime_core::host::bindings::alga::extension::types as wit;
use runtime_core::host::{self, HostServices, HostState, Invocation, RequestLimits, RunnerPre};
use runtime_core::store::local::{MemoryKvStore, MemorySecretStore};
use serde_json::json;
use support::{Harness, guests, request};

fn js_example() -> Option<Vec<u8>> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello/dist/main.wasm"
    ))
    .ok()
}

/// The floor: deserialize once, then per iteration a Store, instantiate and call.
struct Floor {
    engine: Arc<RuntimeEngine>,
    pre: RunnerPre<HostState>,
    services: HostServices,
}

impl Floor {
    fn new(wasm: &[u8]) -> Self {
        let settings = support::test_config().engine;
        let engine = Arc::new(RuntimeEngine::new(&settings).unwrap());
        let cwasm = artifact::precompile(wasm, &Target::host(), &settings).unwrap();
        let component =
            unsafe { wasmtime::component::Component::deserialize(engine.engine(), &cwasm) }
                .unwrap();
        let linker = host::link(engine.engine()).unwrap();
        let pre = RunnerPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Floor {
            engine,
            pre,
            services: HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
        }
    }

    async fn call(&self, req: &wit::ExecuteRequest) -> u16 {
        let state = HostState::prepare(
            Arc::new(Invocation {
                tenant_id: "tenant-a".into(),
                extension_id: "com.example.test".into(),
                install_id: Some("install-1".into()),
                ..Default::default()
            }),
            CapabilitySet::minimal(),
            &self.services,
            None,
            RequestLimits {
                memory_bytes: 128 << 20,
                host_calls: 10_000,
                log_bytes: 1 << 20,
            },
        );
        let mut store = wasmtime::Store::new(self.engine.engine(), state);
        store.set_epoch_deadline(1_000_000);
        let runner = self.pre.instantiate_async(&mut store).await.unwrap();
        runner.call_handler(&mut store, req).await.unwrap().status
    }
}

fn guest_request(path: &str) -> wit::ExecuteRequest {
    wit::ExecuteRequest {
        context: wit::ContextData {
            request_id: None,
            tenant_id: "tenant-a".into(),
            extension_id: "com.example.test".into(),
            install_id: Some("install-1".into()),
            version_id: None,
        },
        http: wit::HttpRequest {
            method: "GET".into(),
            url: path.into(),
            headers: vec![],
            body: None,
        },
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (p(0.50), p(0.99))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = Harness::new();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![("wat-hello", guests::hello(), "/")];
    if let Some(js) = js_example() {
        cases.push(("js-hello", js, "/api/hello"));
    } else {
        eprintln!(
            "examples/hello/dist/main.wasm missing: run scripts/build-example for the JS case"
        );
    }
    let mut summary = Vec::new();
    for (name, wasm, path) in &cases {
        let (content, _) = rt.block_on(h.publish(wasm));
        let req = ExecuteRequest::from_json(
            &serde_json::to_vec(&request(&content, "GET", path, json!({}))).unwrap(),
        )
        .unwrap();
        let routing = RoutingHeaders {
            tenant: Some("tenant-a".into()),
            extension: Some("com.example.test".into()),
            request_id: None,
        };
        let floor = Floor::new(wasm);
        let greq = guest_request(path);
        let mut g = c.benchmark_group(*name);
        g.bench_function("pipeline", |b| {
            b.to_async(&rt).iter(|| async {
                assert_eq!(
                    h.executor.execute(&routing, &req).await.envelope.status,
                    200
                )
            })
        });
        g.bench_function("floor", |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(floor.call(&greq).await, 200) })
        });
        g.finish();

        // p50/p99 over individual requests, interleaved so both see the same machine.
        let (mut pipe, mut raw) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for _ in 0..2000 {
                let t = Instant::now();
                h.executor.execute(&routing, &req).await;
                pipe.push(t.elapsed());
                let t = Instant::now();
                floor.call(&greq).await;
                raw.push(t.elapsed());
            }
        });
        summary.push((name.to_string(), percentiles(pipe), percentiles(raw)));
    }

    if let Some(js) = js_example() {
        let settings = EngineSettings::default();
        let t = Instant::now();
        let cwasm = artifact::precompile(&js, &Target::host(), &settings).unwrap();
        let compile = t.elapsed();
        let engine = RuntimeEngine::new(&settings).unwrap();
        let mut loads = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let sum = artifact::sha256(&cwasm);
            std::hint::black_box(sum);
            let c = unsafe { wasmtime::component::Component::deserialize(engine.engine(), &cwasm) }
                .unwrap();
            std::hint::black_box(c);
            loads.push(t.elapsed());
        }
        let (load_p50, _) = percentiles(loads);
        println!(
            "\nJS example: precompile {:.2} s, load (sha256 + deserialize) p50 {:.2} ms → load is {:.0}x faster; cwasm {} MiB, component {} MiB, content {}",
            compile.as_secs_f64(),
            load_p50.as_secs_f64() * 1e3,
            compile.as_secs_f64() / load_p50.as_secs_f64(),
            cwasm.len() >> 20,
            js.len() >> 20,
            ContentHash::of(&js)
        );
    }
    println!(
        "\n{:<10} {:>14} {:>14} {:>14} {:>14} {:>10}",
        "case", "pipeline p50", "pipeline p99", "floor p50", "floor p99", "p50 ratio"
    );
    for (name, (pp50, pp99), (fp50, fp99)) in summary {
        println!(
            "{name:<10} {:>11.1} µs {:>11.1} µs {:>11.1} µs {:>11.1} µs {:>9.2}x   (+{:.1} µs)",
            us(pp50),
            us(pp99),
            us(fp50),
            us(fp99),
            us(pp50) / us(fp50),
            us(pp50) - us(fp50)
        );
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
