//! Artifact integrity, engine fingerprints and the disk cache.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use runtime_core::Executor;
use runtime_core::artifact::{self, ArtifactRef};
use runtime_core::config::EngineSettings;
use runtime_core::engine::Target;
use runtime_core::execute::StaticResolver;
use runtime_core::host::HostServices;
use runtime_core::store::BlobStore;
use serde_json::json;
use stores_local::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};
use test_support::{Harness, guests, request, run_on};

#[tokio::test]
async fn tampered_artifact_is_refused_before_deserialize() {
    let h = Harness::new();
    let (content, art) = h.publish(&guests::hello()).await;
    let key = art.key.blob_key();
    let mut bytes = h.blobs.get(&key).await.unwrap().unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    h.blobs.delete(&key).await.unwrap();
    h.blobs.put(&key, &bytes).await.unwrap();

    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    assert_eq!(
        out.metrics.outcome, "artifact_integrity",
        "{:?}",
        out.envelope
    );
    assert_eq!(out.envelope.status, 503);
    let stats = h.executor.loader().stats();
    assert_eq!(
        stats.deserialized.load(Ordering::Relaxed),
        0,
        "never deserialized"
    );
    assert_eq!(stats.integrity_failures.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn artifact_for_another_engine_is_artifact_missing() {
    let h = Harness::new();
    let wasm = guests::hello();
    let content = artifact::ContentHash::of(&wasm);
    // Compiled with fuel metering: another fingerprint, so another key.
    let other = EngineSettings {
        fuel: true,
        ..h.config.engine.clone()
    };
    let foreign = runtime_core::publish::precompile_and_store(
        h.blobs.as_ref(),
        content,
        &wasm,
        &Target::host(),
        &other,
    )
    .await
    .unwrap();
    h.resolver.register(foreign.clone());
    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    assert_eq!(
        out.metrics.outcome, "artifact_missing",
        "{:?}",
        out.envelope
    );
    assert_eq!(out.envelope.status, 503);

    // Even when such bytes sit under this engine's key with a matching sha256,
    // Wasmtime's header check (our fingerprint) refuses them.
    let cwasm = h.blobs.get(&foreign.key.blob_key()).await.unwrap().unwrap();
    let mut key = foreign.key.clone();
    key.fingerprint = h.executor.engine().fingerprint();
    h.blobs.put(&key.blob_key(), &cwasm).await.unwrap();
    h.resolver.register(ArtifactRef {
        key,
        sha256: artifact::sha256(&cwasm),
        size: cwasm.len() as u64,
    });
    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    assert_eq!(
        out.metrics.outcome, "artifact_missing",
        "{:?}",
        out.envelope
    );
}

#[tokio::test]
async fn a_core_module_is_not_precompiled() {
    let core = wat::parse_str("(module)").unwrap();
    let err = artifact::precompile(&core, &Target::host(), &EngineSettings::default()).unwrap_err();
    assert!(
        err.to_string().contains("not a WebAssembly component"),
        "{err}"
    );
}

#[tokio::test]
async fn cross_compiles_for_both_lambda_architectures() {
    let wasm = guests::hello();
    for target in Target::lambda_targets() {
        let cwasm = artifact::precompile(&wasm, &target, &EngineSettings::default()).unwrap();
        assert!(cwasm.starts_with(b"\x7fELF"), "{target}: an ELF object");
    }
}

fn executor_with(
    blobs: Arc<MemoryBlobStore>,
    resolver: Arc<StaticResolver>,
    dir: &std::path::Path,
) -> Executor {
    let mut config = test_support::test_config();
    config.cache.disk_dir = Some(dir.to_path_buf());
    Executor::new(
        &config,
        blobs,
        resolver,
        HostServices {
            kv: Arc::new(MemoryKvStore::default()),
            secrets: Arc::new(MemorySecretStore::default()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn disk_cache_serves_a_fresh_process_and_drops_tampered_files() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new();
    let (content, art) = h.publish(&guests::hello()).await;

    // Process 1 fetches from the store and fills the disk cache.
    let blobs = Arc::new(MemoryBlobStore::default());
    let cwasm = h.blobs.get(&art.key.blob_key()).await.unwrap().unwrap();
    blobs.put(&art.key.blob_key(), &cwasm).await.unwrap();
    let resolver = Arc::new(StaticResolver::default());
    resolver.register(art.clone());
    let ex1 = executor_with(blobs.clone(), resolver.clone(), dir.path());
    let req = request(&content, "GET", "/", json!({}));
    assert_eq!(run_on(&ex1, req.clone()).await.envelope.status, 200);
    assert_eq!(ex1.loader().stats().fetched.load(Ordering::Relaxed), 1);

    // Process 2 finds it on disk, even with the store emptied.
    blobs.delete(&art.key.blob_key()).await.unwrap();
    let ex2 = executor_with(blobs.clone(), resolver.clone(), dir.path());
    assert_eq!(run_on(&ex2, req.clone()).await.envelope.status, 200);
    assert_eq!(ex2.loader().stats().disk_hits.load(Ordering::Relaxed), 1);
    assert_eq!(ex2.loader().stats().fetched.load(Ordering::Relaxed), 0);

    // A tampered cache file is dropped and the artifact fetched again.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let mut b = std::fs::read(&p).unwrap();
        b[100] ^= 0xff;
        std::fs::write(&p, b).unwrap();
    }
    blobs.put(&art.key.blob_key(), &cwasm).await.unwrap();
    let ex3 = executor_with(blobs, resolver, dir.path());
    assert_eq!(run_on(&ex3, req.clone()).await.envelope.status, 200);
    assert_eq!(ex3.loader().stats().disk_hits.load(Ordering::Relaxed), 0);
    assert_eq!(ex3.loader().stats().fetched.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_streamed_fetch_keeps_and_maps_only_verified_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    // Not there yet: the loader creates it.
    let cache = tmp.path().join("cache");
    let h = Harness::new();
    let (content, art) = h.publish(&guests::hello()).await;
    let key = art.key.blob_key();
    let cwasm = h.blobs.get(&key).await.unwrap().unwrap();
    let req = request(&content, "GET", "/", json!({}));
    let resolver = Arc::new(StaticResolver::default());
    resolver.register(art.clone());
    let mut flipped = cwasm.clone();
    flipped[cwasm.len() / 2] ^= 0x01;
    let mut longer = cwasm.clone();
    longer.extend_from_slice(b"appended");
    // The same length with one bit flipped, and the right bytes with more after
    // them (cut off at the recorded size, never read to the end).
    for bad in [flipped, longer] {
        let blobs = Arc::new(MemoryBlobStore::default());
        blobs.put(&key, &bad).await.unwrap();
        let ex = executor_with(blobs, resolver.clone(), &cache);
        let out = run_on(&ex, req.clone()).await;
        assert_eq!(
            out.metrics.outcome, "artifact_integrity",
            "{:?}",
            out.envelope
        );
        let stats = ex.loader().stats();
        assert_eq!(stats.deserialized.load(Ordering::Relaxed), 0);
        assert_eq!(stats.integrity_failures.load(Ordering::Relaxed), 1);
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "nothing unverified stays on disk: {left:?}"
        );
    }
    // The genuine bytes: fetched once, kept, and served from the file.
    let blobs = Arc::new(MemoryBlobStore::default());
    blobs.put(&key, &cwasm).await.unwrap();
    let ex = executor_with(blobs, resolver, &cache);
    assert_eq!(run_on(&ex, req.clone()).await.envelope.status, 200);
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), cwasm);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the cache directory is private: {mode:o}");
    }
}
