//! Shared by the benches: the raw-Wasmtime floor (instantiate + call, nothing else),
//! per-request samples, and where results go.
//!
//! Criterion reports its own estimates under `$CRITERION_HOME` (or
//! `target/criterion`); each bench also writes the individual request times it
//! measured to `$ALGA_BENCH_OUT/samples/<group>.<case>.json`, from which
//! `scripts/bench_report.py` takes p50 / p99 and the ratios.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_core::capability::CapabilitySet;
use runtime_core::engine::RuntimeEngine;
use runtime_core::host::bindings::alga::extension::types as wit;
use runtime_core::host::{
    HostServices, HostSetup, HostState, Invocation, RequestLimits, RunnerPre,
};
use stores_local::{MemoryKvStore, MemorySecretStore};

/// The JS example component (`scripts/build-example` builds it).
pub fn js_example() -> Option<Vec<u8>> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello/dist/main.wasm"
    ))
    .ok()
}

/// In-memory host services (the guests benchmarked use none).
pub fn services() -> HostServices {
    HostServices {
        kv: Arc::new(MemoryKvStore::default()),
        secrets: Arc::new(MemorySecretStore::default()),
    }
}

/// The guest-side request the pipeline would build for `GET path`.
pub fn guest_request(path: &str) -> wit::ExecuteRequest {
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

/// The floor: a fresh Store with the minimum host state, instantiate, call. No
/// resolver, limiter, deadline bookkeeping, request parsing or envelope.
pub async fn raw_call(
    engine: &RuntimeEngine,
    pre: &RunnerPre<HostState>,
    services: &HostServices,
    req: &wit::ExecuteRequest,
) -> u16 {
    let state = HostState::new(HostSetup::new(
        Arc::new(Invocation {
            tenant_id: "tenant-a".into(),
            extension_id: "com.example.test".into(),
            install_id: Some("install-1".into()),
            ..Default::default()
        }),
        CapabilitySet::minimal(),
        services,
        RequestLimits {
            memory_bytes: 128 << 20,
            host_calls: 10_000,
            log_bytes: 1 << 20,
        },
    ));
    let mut store = wasmtime::Store::new(engine.engine(), state);
    store.set_epoch_deadline(1_000_000);
    let runner = pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiate");
    runner
        .call_handler(&mut store, req)
        .await
        .expect("call")
        .status
}

/// Individual request times of one benchmark case, collected while criterion runs it.
#[derive(Default)]
pub struct Samples(RefCell<Vec<Duration>>);

impl Samples {
    /// Times `f` once and keeps the duration.
    pub async fn time<T>(&self, f: impl std::future::Future<Output = T>) -> Duration {
        let t = Instant::now();
        std::hint::black_box(f.await);
        let d = t.elapsed();
        self.0.borrow_mut().push(d);
        d
    }

    /// Writes p50 / p99 / mean / count to `$ALGA_BENCH_OUT/samples/<id>.json`.
    pub fn save(&self, id: &str) {
        let mut v = self.0.borrow().clone();
        if v.is_empty() {
            return;
        }
        v.sort();
        let q = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_nanos() as u64;
        let mean = v.iter().map(|d| d.as_nanos()).sum::<u128>() / v.len() as u128;
        let json = format!(
            "{{\"id\":\"{id}\",\"n\":{},\"p50_ns\":{},\"p99_ns\":{},\"mean_ns\":{mean},\"min_ns\":{}}}\n",
            v.len(),
            q(0.50),
            q(0.99),
            v[0].as_nanos()
        );
        let dir = out_dir().join("samples");
        std::fs::create_dir_all(&dir).expect("bench output dir");
        std::fs::write(dir.join(format!("{id}.json")), json).expect("write samples");
    }
}

/// `$ALGA_BENCH_OUT`, else `target/bench` at the workspace root.
pub fn out_dir() -> PathBuf {
    std::env::var_os("ALGA_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench")))
}

/// `ALGA_BENCH_SMOKE=1`: tiny counts (a check that the benches run, not a measurement).
pub fn smoke() -> bool {
    std::env::var("ALGA_BENCH_SMOKE").is_ok_and(|v| v == "1")
}
