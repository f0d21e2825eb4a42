//! Cold: the first request for a version that is not in memory, for the JS example.
//!
//! - `compile`: what the seed runner does on every request — compile the `.wasm` with
//!   Cranelift, link, instantiate, call (same engine configuration as ours);
//! - `disk-cache-cwasm`: the path `execute` takes on Lambda, where
//!   `ALGA_ARTIFACT_CACHE_DIR` is set: a fresh loader finds the artifact in its disk
//!   cache, hashed earlier by this process (the first load after it was written
//!   hashes it once more), trusts it by its file identity (no hash) and
//!   memory-maps it (`deserialize_file`) → `InstancePre`, then instantiate + call;
//! - `disk-cache-hashed`: the same, but the file was renamed in by someone else
//!   before each load (a new inode, untimed): hashed whole once, then mapped;
//! - `local-cwasm`: no disk cache, the raw artifact in the local file blob store
//!   (read → sha256 → deserialize the bytes → `InstancePre`), then instantiate + call;
//! - `s3-cwasm` / `s3-zstd`: a fresh container's first load from S3 (a moto server
//!   on loopback, started here from `.venv/`: `scripts/setup-moto`) into an empty
//!   disk cache: the raw `.cwasm` streamed and hashed into the file, or the zstd
//!   object streamed and hashed, then decoded into the file (bounded, hashed);
//!   then mmap → `InstancePre` → call. Loopback moto is not S3's rate: the bytes
//!   moved are reported beside it.
//!
//! The artifact file is in the OS page cache after the first read (as on a Lambda
//! that has it in /tmp): "cold" means not in this process's memory. After the
//! cases, a step-by-step breakdown and the zstd levels (size, decode time).

use test_support as support;

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Samples;
use criterion::{Criterion, SamplingMode, criterion_group};
use runtime_core::artifact::encoding::{self, decode_bounded};
use runtime_core::artifact::{ArtifactRef, ContentHash, Encoding};
use runtime_core::config::CacheSettings;
use runtime_core::engine::{RuntimeEngine, Target};
use runtime_core::host::{self, HostState, RunnerPre};
use runtime_core::loader::ComponentLoader;
use runtime_core::store::BlobStore;
use stores_aws::S3BlobStore;
use stores_local::DirBlobStore;
use support::moto;
use wasmtime::component::{Component, Linker};

/// Where a case's loader finds its disk cache.
#[derive(Clone, Copy)]
enum Disk<'a> {
    /// No disk cache.
    Off,
    /// This directory, holding the artifact this process wrote (and hashes once more).
    Warm(&'a Path),
    /// This directory, the artifact renamed in anew before each load (untimed).
    Renamed(&'a Path),
    /// A new empty directory under this one for each load (a fresh container).
    Empty(&'a Path),
}

/// A cold path: its name, the record, the blob store (none: compile), the disk cache.
type Case<'a> = (
    &'static str,
    &'a ArtifactRef,
    Option<&'a Arc<dyn BlobStore>>,
    Disk<'a>,
);

struct Setup {
    engine: Arc<RuntimeEngine>,
    linker: Arc<Linker<HostState>>,
    wasm: Vec<u8>,
    /// The raw `.cwasm`.
    cwasm: Vec<u8>,
}

/// A fresh loader (empty memory cache; the disk cache `disk`, if any) over `blobs`,
/// then one call.
async fn load_and_call(
    s: &Setup,
    artifact: &ArtifactRef,
    blobs: Arc<dyn BlobStore>,
    disk: Option<PathBuf>,
    services: &host::HostServices,
) {
    let cache = CacheSettings {
        disk_dir: disk,
        ..CacheSettings::default()
    };
    let loader = ComponentLoader::new(s.engine.clone(), s.linker.clone(), blobs, &cache);
    let loaded = loader.load(artifact).await.expect("load");
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

/// The single `.cwasm` in `dir`.
fn cache_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("a cached artifact")
}

/// Untimed preparation of one load's disk cache; the directory to use.
fn prepare(disk: Disk<'_>, cwasm: &[u8], round: usize) -> Option<PathBuf> {
    match disk {
        Disk::Off => None,
        Disk::Warm(dir) => Some(dir.to_path_buf()),
        Disk::Renamed(dir) => {
            let path = cache_file(dir);
            let tmp = dir.join("replacing");
            std::fs::write(&tmp, cwasm).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            Some(dir.to_path_buf())
        }
        Disk::Empty(base) => {
            let dir = base.join(format!("c{round}"));
            let _ = std::fs::remove_dir_all(&dir);
            Some(dir)
        }
    }
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
    // The raw record (as published before compression) and the zstd one publish
    // writes now, of the same `.cwasm`.
    let raw = rt
        .block_on(runtime_core::publish::precompile_and_store(
            local.as_ref(),
            ContentHash::of(&wasm),
            &wasm,
            &Target::host(),
            &settings,
        ))
        .unwrap();
    let cwasm = rt.block_on(local.get(&raw.object_key())).unwrap().unwrap();
    let (zstd, object) = encoding::package(raw.key.clone(), &cwasm).unwrap();
    let moto = moto::Moto::start();
    let s3: Arc<dyn BlobStore> = rt.block_on(async {
        let aws = moto::settings(&moto);
        let clients = moto::provision(&aws).await;
        let s3 = S3BlobStore::new(clients.s3.clone(), &aws.bucket);
        s3.put(&raw.object_key(), &cwasm).await.unwrap();
        s3.put(&zstd.object_key(), &object).await.unwrap();
        Arc::new(s3)
    });
    let setup = Setup {
        engine,
        linker,
        wasm,
        cwasm,
    };
    let services = common::services();

    let mut g = c.benchmark_group("cold-js");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(if common::smoke() { 1 } else { 5 }));
    // The disk caches, filled once the way a first request fills them.
    let (warm, renamed, empty) = (
        dir.path().join("cache"),
        dir.path().join("cache-renamed"),
        dir.path().join("fresh"),
    );
    for d in [&warm, &renamed] {
        rt.block_on(load_and_call(
            &setup,
            &raw,
            local.clone(),
            Some(d.clone()),
            &services,
        ));
    }
    let cases: [Case; 6] = [
        ("disk-cache-cwasm", &raw, Some(&local), Disk::Warm(&warm)),
        (
            "disk-cache-hashed",
            &raw,
            Some(&local),
            Disk::Renamed(&renamed),
        ),
        ("local-cwasm", &raw, Some(&local), Disk::Off),
        ("s3-cwasm", &raw, Some(&s3), Disk::Empty(&empty)),
        ("s3-zstd", &zstd, Some(&s3), Disk::Empty(&empty)),
        ("compile", &raw, None, Disk::Off),
    ];
    for (name, artifact, blobs, disk) in cases {
        let samples = Samples::default();
        let mut round = 0usize;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (setup, services, samples) = (&setup, &services, &samples);
                let first = round;
                round += iters as usize;
                async move {
                    let mut total = Duration::ZERO;
                    for i in 0..iters as usize {
                        total += match blobs {
                            Some(blobs) => {
                                let dir = prepare(disk, &setup.cwasm, first + i);
                                let load =
                                    load_and_call(setup, artifact, blobs.clone(), dir, services);
                                samples.time(load).await
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
    // What a first load from S3 moves: the stored object.
    save_json(
        "cold-js-bytes",
        &format!(
            "{{\"s3-cwasm\":{},\"s3-zstd\":{}}}",
            raw.size,
            zstd.stored.as_ref().map_or(zstd.size, |o| o.size)
        ),
    );
    rt.block_on(breakdown(&setup, &raw, dir.path(), &services));
    rt.block_on(zstd_levels(&setup.cwasm));
}

/// Where the time goes, step by step, each timed alone (10 rounds): read the
/// file, sha256 it, deserialize the bytes (the no-disk-cache path), map the file
/// (`deserialize_file`, the disk cache's), the identity check of a cached file (a
/// `stat`), link (`InstancePre`), the first call into a fresh instance of the
/// mapped component, and the same after touching every page of its image first
/// (whether pre-touching pays: the two sums compare).
async fn breakdown(s: &Setup, raw: &ArtifactRef, dir: &Path, services: &host::HostServices) {
    let path = dir.join("blobs").join(raw.object_key());
    let parts = [
        "read",
        "sha256",
        "deserialize",
        "deserialize_file",
        "stat",
        "instantiate_pre",
        "first_call",
        "pretouch",
        "first_call_pretouched",
    ]
    .map(|p| (p, Samples::default()));
    let rounds = if common::smoke() { 2 } else { 10 };
    let req = common::guest_request("/api/hello");
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
        parts[2]
            .1
            .time(async {
                // SAFETY: the artifact this bench compiled.
                unsafe { Component::deserialize(s.engine.engine(), &bytes) }.unwrap()
            })
            .await;
        let mut mapped = None;
        parts[3]
            .1
            .time(async {
                // SAFETY: as above.
                mapped =
                    Some(unsafe { Component::deserialize_file(s.engine.engine(), &path) }.unwrap());
            })
            .await;
        parts[4]
            .1
            .time(async { std::fs::symlink_metadata(&path).unwrap() })
            .await;
        let mapped = mapped.unwrap();
        let mut pre = None;
        parts[5]
            .1
            .time(async {
                pre = Some(RunnerPre::new(s.linker.instantiate_pre(&mapped).unwrap()).unwrap());
            })
            .await;
        let pre = pre.unwrap();
        parts[6]
            .1
            .time(common::raw_call(&s.engine, &pre, services, &req))
            .await;

        // SAFETY: as above.
        let mapped = unsafe { Component::deserialize_file(s.engine.engine(), &path) }.unwrap();
        let pre = RunnerPre::new(s.linker.instantiate_pre(&mapped).unwrap()).unwrap();
        parts[7]
            .1
            .time(async {
                let range = mapped.image_range();
                let mut sum = 0u8;
                let mut p = range.start;
                while p < range.end {
                    // SAFETY: inside the component's mapped image, which `mapped` keeps alive.
                    sum ^= unsafe { std::ptr::read_volatile(p) };
                    p = p.wrapping_add(4096);
                }
                sum
            })
            .await;
        parts[8]
            .1
            .time(common::raw_call(&s.engine, &pre, services, &req))
            .await;
    }
    for (name, samples) in &parts {
        samples.save(&format!("cold-js-parts.{name}"));
    }
}

/// The zstd levels for the `.cwasm`: compressed size, compression time (once) and
/// single-thread decode time into memory, bounded and hashed as the loader does
/// (p50 of 5).
async fn zstd_levels(cwasm: &[u8]) {
    let levels: &[i32] = if common::smoke() {
        &[1, encoding::ZSTD_LEVEL]
    } else {
        &[1, 3, encoding::ZSTD_LEVEL, 19]
    };
    let mut rows = Vec::new();
    for &level in levels {
        let t = Instant::now();
        let object = zstd::bulk::compress(cwasm, level).unwrap();
        let compress = t.elapsed();
        let decode = Samples::default();
        for _ in 0..5 {
            decode
                .time(async {
                    let mut out = Vec::with_capacity(cwasm.len());
                    let max = cwasm.len() as u64;
                    decode_bounded(Encoding::Zstd, &object[..], &mut out, max).unwrap()
                })
                .await;
        }
        decode.save(&format!("cold-zstd.l{level}"));
        rows.push(format!(
            "{{\"level\":{level},\"bytes\":{},\"compress_ns\":{}}}",
            object.len(),
            compress.as_nanos()
        ));
    }
    save_json(
        "cold-zstd",
        &format!(
            "{{\"raw_bytes\":{},\"levels\":[{}]}}",
            cwasm.len(),
            rows.join(",")
        ),
    );
}

/// Writes `json` to `$ALGA_BENCH_OUT/samples/<id>.json` beside the timings.
fn save_json(id: &str, json: &str) {
    let dir = common::out_dir().join("samples");
    std::fs::create_dir_all(&dir).expect("bench output dir");
    std::fs::write(dir.join(format!("{id}.json")), json).expect("write");
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
