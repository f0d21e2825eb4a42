//! Artifact integrity, engine fingerprints, compressed objects and the disk cache
//! (files trusted by the identity of what this process verified).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use runtime_core::Executor;
use runtime_core::artifact::{self, ArtifactRef, Encoding, StoredObject};
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
    let key = art.object_key();
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

    // Even when such bytes sit under this engine's key with a matching sha256
    // (a raw record, as published before compression), Wasmtime's header check
    // (our fingerprint) refuses them.
    let cwasm = h.blobs.get(&foreign.object_key()).await.unwrap().unwrap();
    let mut key = foreign.key.clone();
    key.fingerprint = h.executor.engine().fingerprint();
    h.blobs.put(&key.blob_key(), &cwasm).await.unwrap();
    h.resolver.register(ArtifactRef {
        key,
        sha256: artifact::sha256(&cwasm),
        size: cwasm.len() as u64,
        stored: None,
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

/// The tests' hello, published as publish does: its request, its record, the
/// stored (zstd) object and the raw `.cwasm` it decodes to.
struct Published {
    req: serde_json::Value,
    art: ArtifactRef,
    object: Vec<u8>,
    cwasm: Vec<u8>,
}

impl Published {
    async fn hello() -> Self {
        let wasm = guests::hello();
        let content = artifact::ContentHash::of(&wasm);
        let blobs = MemoryBlobStore::default();
        let art = runtime_core::publish::precompile_and_store_compressed(
            &blobs,
            content,
            &wasm,
            &Target::host(),
            &test_support::test_config().engine,
        )
        .await
        .unwrap();
        let object = blobs.get(&art.object_key()).await.unwrap().unwrap();
        let cwasm = zstd::decode_all(&object[..]).unwrap();
        Published {
            req: request(&content, "GET", "/", json!({})),
            art,
            object,
            cwasm,
        }
    }

    /// A blob store holding `object` under `art`'s object key.
    async fn store(art: &ArtifactRef, object: &[u8]) -> Arc<MemoryBlobStore> {
        let blobs = Arc::new(MemoryBlobStore::default());
        blobs.put(&art.object_key(), object).await.unwrap();
        blobs
    }

    /// A fresh executor (a new loader: empty memory cache) resolving to `art`,
    /// with the disk cache `dir` if any.
    fn executor(
        art: &ArtifactRef,
        blobs: Arc<MemoryBlobStore>,
        dir: Option<&std::path::Path>,
    ) -> Executor {
        let resolver = Arc::new(StaticResolver::default());
        resolver.register(art.clone());
        let mut config = test_support::test_config();
        config.cache.disk_dir = dir.map(std::path::Path::to_path_buf);
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

    /// Runs the request on a fresh executor over a store holding the genuine
    /// object; its status and the loader's counters.
    async fn run_fresh(&self, dir: &std::path::Path) -> (u16, Counts) {
        let ex = Self::executor(
            &self.art,
            Self::store(&self.art, &self.object).await,
            Some(dir),
        );
        let status = run_on(&ex, self.req.clone()).await.envelope.status;
        (status, Counts::of(&ex))
    }
}

/// The loader's counters that tell where a load was served from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    fetched: u64,
    disk_hits: u64,
    identity_hits: u64,
    disk_hashed: u64,
    disk_rejected: u64,
    integrity_failures: u64,
    deserialized: u64,
}

impl Counts {
    fn of(ex: &Executor) -> Self {
        let s = ex.loader().stats();
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            fetched: get(&s.fetched),
            disk_hits: get(&s.disk_hits),
            identity_hits: get(&s.identity_hits),
            disk_hashed: get(&s.disk_hashed),
            disk_rejected: get(&s.disk_rejected),
            integrity_failures: get(&s.integrity_failures),
            deserialized: get(&s.deserialized),
        }
    }
}

/// The one `.cwasm` in the cache directory.
fn cache_file(dir: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Everything in `dir` (temporary files included).
fn listing(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

/// Waits longer than the timestamp tick the loader allows for (20 ms): a file is
/// trusted by identity only when a hash of it began more than that after its
/// last change (loader/identity.rs), so a file written just now is hashed once
/// more first.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(60));
}

/// Puts `bytes` at `path` the way a cache writer does: a new file renamed over it
/// (a new inode).
fn replace_by_rename(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("replacing");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn disk_cache_serves_a_fresh_loader_by_identity_and_drops_rewritten_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = Published::hello().await;

    // A first loader fetches from the store and fills the disk cache.
    let fetched = Counts {
        fetched: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(p.run_fresh(dir.path()).await, (200, fetched));

    // Fresh loaders in this process find it on disk, even with the store
    // emptied: the first hashes it once more (written just now), the next ones
    // trust it without hashing.
    settle();
    let hashed = Counts {
        disk_hits: 1,
        disk_hashed: 1,
        deserialized: 1,
        ..Counts::default()
    };
    let trusted = Counts {
        disk_hits: 1,
        identity_hits: 1,
        deserialized: 1,
        ..Counts::default()
    };
    for expected in [hashed, trusted] {
        let empty = Arc::new(MemoryBlobStore::default());
        let ex = Published::executor(&p.art, empty, Some(dir.path()));
        assert_eq!(run_on(&ex, p.req.clone()).await.envelope.status, 200);
        assert_eq!(Counts::of(&ex), expected);
    }

    // Rewritten (truncated and written again, one byte different): hashed,
    // refused, removed, and the artifact fetched again.
    let path = cache_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let refetched = Counts {
        fetched: 1,
        disk_rejected: 1,
        integrity_failures: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(p.run_fresh(dir.path()).await, (200, refetched));
    assert_eq!(std::fs::read(cache_file(dir.path())).unwrap(), p.cwasm);
}

/// Flips one byte of `path` in place (same inode, same length) and puts its
/// modification and access times back, as someone hiding a change would; returns
/// once the file's ctime shows the change.
#[cfg(unix)]
fn modify_in_place_keeping_mtime(path: &std::path::Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let before = std::fs::metadata(path).unwrap();
    let ctime = |m: &std::fs::Metadata| (m.ctime(), m.ctime_nsec());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mid = before.len() / 2;
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(mid)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(mid)).unwrap();
    f.write_all(&[byte[0] ^ 0x01]).unwrap();
    std::fs::set_permissions(path, before.permissions()).unwrap();
    let times = std::fs::FileTimes::new()
        .set_modified(before.modified().unwrap())
        .set_accessed(before.accessed().unwrap());
    f.set_times(times).unwrap();
    // File times come from the kernel's coarse clock: a change within the tick
    // of the verification keeps the same ctime, which no identity check can see
    // (loader/identity.rs says so). Wait for the next tick and touch again.
    let mut after = std::fs::metadata(path).unwrap();
    for _ in 0..1000 {
        if ctime(&after) != ctime(&before) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        f.set_times(times).unwrap();
        after = std::fs::metadata(path).unwrap();
    }
    assert_eq!(
        (after.ino(), after.len(), after.modified().unwrap()),
        (before.ino(), before.len(), before.modified().unwrap()),
        "the same file, length and mtime"
    );
    assert_ne!(ctime(&after), ctime(&before), "only the ctime moved");
}

#[cfg(unix)]
#[tokio::test]
async fn a_cached_artifact_modified_in_place_after_verification_is_never_deserialized() {
    let dir = tempfile::tempdir().unwrap();
    let p = Published::hello().await;
    assert_eq!(p.run_fresh(dir.path()).await.0, 200);
    settle();
    let hashed = Counts {
        disk_hits: 1,
        disk_hashed: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(p.run_fresh(dir.path()).await, (200, hashed));
    let trusted = Counts {
        disk_hits: 1,
        identity_hits: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(p.run_fresh(dir.path()).await, (200, trusted));

    // Modified after this process verified and trusted it: the identity check sees the
    // change, hashes, refuses and removes it; the load succeeds from the store.
    // (A deserialization of the cache file happens only on a disk hit: none.)
    modify_in_place_keeping_mtime(&cache_file(dir.path()));
    let refetched = Counts {
        fetched: 1,
        disk_rejected: 1,
        integrity_failures: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(p.run_fresh(dir.path()).await, (200, refetched));
    assert_eq!(std::fs::read(cache_file(dir.path())).unwrap(), p.cwasm);

    // Again, with the store's copy bad too: the typed integrity error, nothing
    // deserialized, nothing left in the cache.
    modify_in_place_keeping_mtime(&cache_file(dir.path()));
    let mut bad = p.object.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    let ex = Published::executor(
        &p.art,
        Published::store(&p.art, &bad).await,
        Some(dir.path()),
    );
    let out = run_on(&ex, p.req.clone()).await;
    assert_eq!(
        (out.metrics.outcome, out.envelope.status),
        ("artifact_integrity", 503),
        "{:?}",
        out.envelope
    );
    let refused = Counts {
        fetched: 1,
        disk_rejected: 1,
        integrity_failures: 2,
        ..Counts::default()
    };
    assert_eq!(Counts::of(&ex), refused);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[tokio::test]
async fn a_replaced_cache_file_is_hashed_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = Published::hello().await;
    assert_eq!(p.run_fresh(dir.path()).await.0, 200);
    let path = cache_file(dir.path());
    let hashed = Counts {
        disk_hits: 1,
        disk_hashed: 1,
        deserialized: 1,
        ..Counts::default()
    };
    let trusted = Counts {
        disk_hits: 1,
        identity_hits: 1,
        deserialized: 1,
        ..Counts::default()
    };
    settle();
    assert_eq!(p.run_fresh(dir.path()).await, (200, hashed));
    assert_eq!(p.run_fresh(dir.path()).await, (200, trusted));

    // The same bytes in a new inode: not the file this process verified, so
    // hashed again (a match, no fetch), then trusted.
    replace_by_rename(&path, &p.cwasm);
    settle();
    assert_eq!(p.run_fresh(dir.path()).await, (200, hashed));
    assert_eq!(p.run_fresh(dir.path()).await, (200, trusted));

    // Other bytes of the same length renamed in: refused and fetched again.
    let mut other = p.cwasm.clone();
    other[200] ^= 0x10;
    replace_by_rename(&path, &other);
    let refetched = Counts {
        fetched: 1,
        disk_rejected: 1,
        integrity_failures: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(p.run_fresh(dir.path()).await, (200, refetched));
    assert_eq!(std::fs::read(&path).unwrap(), p.cwasm);
}

#[tokio::test]
async fn a_cache_file_left_by_another_process_is_hashed_once_then_trusted() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = Published::hello().await;
    assert_eq!(p.run_fresh(first.path()).await.0, 200);
    // Another process's cache: the same file name, written by someone else.
    let name = cache_file(first.path()).file_name().unwrap().to_owned();
    std::fs::write(second.path().join(&name), &p.cwasm).unwrap();
    settle();

    let empty = || Arc::new(MemoryBlobStore::default());
    let ex = Published::executor(&p.art, empty(), Some(second.path()));
    assert_eq!(run_on(&ex, p.req.clone()).await.envelope.status, 200);
    let hashed = Counts {
        disk_hits: 1,
        disk_hashed: 1,
        deserialized: 1,
        ..Counts::default()
    };
    assert_eq!(Counts::of(&ex), hashed);
    for _ in 0..2 {
        let ex = Published::executor(&p.art, empty(), Some(second.path()));
        assert_eq!(run_on(&ex, p.req.clone()).await.envelope.status, 200);
        let trusted = Counts {
            disk_hits: 1,
            identity_hits: 1,
            deserialized: 1,
            ..Counts::default()
        };
        assert_eq!(Counts::of(&ex), trusted);
    }
}

#[tokio::test]
async fn a_streamed_fetch_keeps_and_maps_only_verified_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    // Not there yet: the loader creates it.
    let cache = tmp.path().join("cache");
    let p = Published::hello().await;
    // A record whose stored object is `object` (its sha256 and size recorded as
    // a faulty publish would have), the decoded artifact's record unchanged.
    let recorded_as = |object: &[u8]| {
        let mut art = p.art.clone();
        art.stored = Some(StoredObject {
            encoding: Encoding::Zstd,
            sha256: artifact::sha256(object),
            size: object.len() as u64,
        });
        (art, object.to_vec())
    };
    let mut flipped = p.object.clone();
    flipped[p.object.len() / 2] ^= 0x01;
    let mut longer = p.object.clone();
    longer.extend_from_slice(b"appended");
    let mut flipped_cwasm = p.cwasm.clone();
    flipped_cwasm[p.cwasm.len() / 2] ^= 0x01;
    let mut longer_cwasm = p.cwasm.clone();
    longer_cwasm.extend_from_slice(&[0u8; 4096]);
    let cases = [
        // The stored object: one bit flipped, or more bytes after it (cut off at
        // the recorded size, never read to the end).
        (p.art.clone(), flipped),
        (p.art.clone(), longer),
        // An object matching its record that decodes to other bytes, to more than
        // the recorded size, or does not decode at all.
        recorded_as(&zstd::encode_all(&flipped_cwasm[..], 3).unwrap()),
        recorded_as(&zstd::encode_all(&longer_cwasm[..], 3).unwrap()),
        recorded_as(b"not a zstd stream"),
    ];
    for (i, (art, bad)) in cases.into_iter().enumerate() {
        for dir in [Some(cache.as_path()), None] {
            let ex = Published::executor(&art, Published::store(&art, &bad).await, dir);
            let out = run_on(&ex, p.req.clone()).await;
            assert_eq!(
                out.metrics.outcome, "artifact_integrity",
                "case {i}, cache {dir:?}: {:?}",
                out.envelope
            );
            let refused = Counts {
                fetched: 1,
                integrity_failures: 1,
                ..Counts::default()
            };
            assert_eq!(Counts::of(&ex), refused, "case {i}, cache {dir:?}");
            if dir.is_some() {
                let left = listing(&cache);
                assert!(
                    left.is_empty(),
                    "nothing unverified stays on disk: {left:?}"
                );
            }
        }
    }
    // The genuine object: fetched once, decoded, kept and served from the file.
    assert_eq!(p.run_fresh(&cache).await.0, 200);
    let file = cache_file(&cache);
    assert_eq!(listing(&cache).len(), 1, "no temporary file left");
    assert_eq!(std::fs::read(&file).unwrap(), p.cwasm);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the cache directory is private: {mode:o}");
    }
}

#[tokio::test]
async fn compressed_objects_move_fewer_bytes_and_raw_records_still_load() {
    let p = Published::hello().await;
    let stored = p.art.stored.clone().expect("publish compresses");
    assert_eq!(stored.size, p.object.len() as u64);
    assert!(
        stored.size < p.art.size,
        "{} vs {}",
        stored.size,
        p.art.size
    );
    assert!(p.art.object_key().ends_with(".cwasm.zst"));

    // A record from before compression: the raw `.cwasm` under the raw key.
    let mut raw = p.art.clone();
    raw.stored = None;
    assert_eq!(raw.object_key(), raw.key.blob_key());
    for (art, object) in [(&p.art, &p.object), (&raw, &p.cwasm)] {
        for with_cache in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let dir = with_cache.then_some(dir.path());
            let ex = Published::executor(art, Published::store(art, object).await, dir);
            let out = run_on(&ex, p.req.clone()).await;
            assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
            let moved = ex.loader().stats().fetched_bytes.load(Ordering::Relaxed);
            assert_eq!(moved, object.len() as u64, "{art:?}, cache {with_cache}");
        }
    }
}
