//! Cold: the first request for a version that is not in memory, for the JS example.
//!
//! - `compile`: what the seed runner does on every request — compile the `.wasm` with
//!   Cranelift, link, instantiate, call (same engine configuration as ours);
//! - `local-cwasm`: our path with the artifact on local disk (a fresh loader over the
//!   local file blob store: read → sha256 → deserialize → `InstancePre`), then
//!   instantiate + call;
//! - `s3-cwasm`: the same with the artifact fetched from S3 (a moto server on
//!   loopback, started here from `.venv/`: `scripts/setup-moto`);
//! - `disk-cache-cwasm`: the path `execute` takes on Lambda, where
//!   `ALGA_ARTIFACT_CACHE_DIR` is set: a fresh loader finds the verified artifact in
//!   its disk cache, re-hashes the file in chunks and memory-maps it
//!   (`deserialize_file`) → `InstancePre`, then instantiate + call.
//!
//! The artifact file is in the OS page cache after the first read (as on a Lambda
//! that has it in /tmp): "cold" means not in this process's memory.

use test_support as support;

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Samples;
use criterion::{Criterion, SamplingMode, criterion_group};
use runtime_core::artifact::{ArtifactRef, ContentHash};
use runtime_core::config::CacheSettings;
use runtime_core::engine::{RuntimeEngine, Target};
use runtime_core::host::{self, HostState, RunnerPre};
use runtime_core::loader::ComponentLoader;
use runtime_core::store::BlobStore;
use stores_aws::S3BlobStore;
use stores_local::DirBlobStore;
use support::moto;
use wasmtime::component::{Component, Linker};

/// A cold path: its name, the blob store (none: compile), the disk cache (if any).
type Case<'a> = (
    &'static str,
    Option<&'a Arc<dyn BlobStore>>,
    Option<&'a std::path::Path>,
);

struct Setup {
    engine: Arc<RuntimeEngine>,
    linker: Arc<Linker<HostState>>,
    artifact: ArtifactRef,
    wasm: Vec<u8>,
}

/// A fresh loader (empty memory cache; the disk cache `disk`, if any) over `blobs`,
/// then one call.
async fn load_and_call(
    s: &Setup,
    blobs: Arc<dyn BlobStore>,
    disk: Option<&std::path::Path>,
    services: &host::HostServices,
) {
    let cache = CacheSettings {
        disk_dir: disk.map(std::path::Path::to_path_buf),
        ..CacheSettings::default()
    };
    let loader = ComponentLoader::new(s.engine.clone(), s.linker.clone(), blobs, &cache);
    let loaded = loader.load(&s.artifact).await.expect("load");
    let status = common::raw_call(
        &s.engine,
        &loaded.pre,
        services,
        &common::guest_request("/api/hello"),
    )
    .await;
    assert_eq!(status, 200);
}

/// The seed runner's way: compile from .wasm, link, instantiate, call.
async fn compile_and_call(s: &Setup, services: &host::HostServices) {
    let component = Component::new(s.engine.engine(), &s.wasm).expect("compile");
    let pre = RunnerPre::new(s.linker.instantiate_pre(&component).expect("link")).expect("pre");
    let status = common::raw_call(
        &s.engine,
        &pre,
        services,
        &common::guest_request("/api/hello"),
    )
    .await;
    assert_eq!(status, 200);
}

fn bench(c: &mut Criterion) {
    let Some(wasm) = common::js_example() else {
        eprintln!("examples/hello/dist/main.wasm missing: run scripts/build-example");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let settings = support::test_config().engine;
    let engine = Arc::new(RuntimeEngine::new(&settings).unwrap());
    let linker = Arc::new(host::link(engine.engine()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn BlobStore> = Arc::new(DirBlobStore::new(dir.path().join("blobs")));
    let artifact = rt
        .block_on(runtime_core::publish::precompile_and_store(
            local.as_ref(),
            ContentHash::of(&wasm),
            &wasm,
            &Target::host(),
            &settings,
        ))
        .unwrap();
    let moto = moto::Moto::start();
    let s3: Arc<dyn BlobStore> = rt.block_on(async {
        let aws = moto::settings(&moto);
        let clients = moto::provision(&aws).await;
        let s3 = S3BlobStore::new(clients.s3.clone(), &aws.bucket);
        let bytes = local.get(&artifact.key.blob_key()).await.unwrap().unwrap();
        s3.put(&artifact.key.blob_key(), &bytes).await.unwrap();
        Arc::new(s3)
    });
    let setup = Setup {
        engine,
        linker,
        artifact,
        wasm,
    };
    let services = common::services();

    let mut g = c.benchmark_group("cold-js");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(if common::smoke() { 1 } else { 5 }));
    // The disk cache, filled once the way a first request fills it.
    let disk = dir.path().join("cache");
    rt.block_on(load_and_call(&setup, local.clone(), Some(&disk), &services));
    let cases: [Case; 4] = [
        ("disk-cache-cwasm", Some(&local), Some(&disk)),
        ("local-cwasm", Some(&local), None),
        ("s3-cwasm", Some(&s3), None),
        ("compile", None, None),
    ];
    for (name, blobs, disk) in cases {
        let samples = Samples::default();
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (setup, services, samples) = (&setup, &services, &samples);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += match blobs {
                            Some(blobs) => {
                                samples
                                    .time(load_and_call(setup, blobs.clone(), disk, services))
                                    .await
                            }
                            None => samples.time(compile_and_call(setup, services)).await,
                        };
                    }
                    total
                }
            })
        });
        samples.save(&format!("cold-js.{name}"));
    }
    g.finish();
    drop(moto);
    rt.block_on(breakdown(&setup, dir.path(), &services));
}

/// Where the local-cwasm time goes, step by step, each timed alone (10 rounds):
/// read the file, sha256 it, deserialize the bytes (what the loader does), the
/// alternative of deserializing straight from the file (mmap, no copy), link
/// (`InstancePre`), and the first call into a fresh instance.
async fn breakdown(s: &Setup, dir: &std::path::Path, services: &host::HostServices) {
    let path = dir.join("blobs").join(s.artifact.key.blob_key());
    let parts = [
        "read",
        "sha256",
        "deserialize",
        "deserialize_file",
        "instantiate_pre",
        "first_call",
    ]
    .map(|p| (p, Samples::default()));
    let rounds = if common::smoke() { 2 } else { 10 };
    for _ in 0..rounds {
        parts[0]
            .1
            .time(async { std::fs::read(&path).unwrap() })
            .await;
        let bytes = std::fs::read(&path).unwrap();
        parts[1]
            .1
            .time(async { runtime_core::artifact::sha256(&bytes) })
            .await;
        let mut component = None;
        parts[2]
            .1
            .time(async {
                // SAFETY: the artifact this bench compiled.
                component =
                    Some(unsafe { Component::deserialize(s.engine.engine(), &bytes) }.unwrap());
            })
            .await;
        parts[3]
            .1
            .time(async {
                // SAFETY: as above.
                unsafe { Component::deserialize_file(s.engine.engine(), &path) }.unwrap()
            })
            .await;
        let component = component.unwrap();
        let mut pre = None;
        parts[4]
            .1
            .time(async {
                pre = Some(RunnerPre::new(s.linker.instantiate_pre(&component).unwrap()).unwrap());
            })
            .await;
        let pre = pre.unwrap();
        parts[5]
            .1
            .time(common::raw_call(
                &s.engine,
                &pre,
                services,
                &common::guest_request("/api/hello"),
            ))
            .await;
    }
    for (name, samples) in &parts {
        samples.save(&format!("cold-js-parts.{name}"));
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
