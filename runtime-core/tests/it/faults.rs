//! Faults under the executor, with real parts: a full disk under the artifact
//! cache (a tmpfs of our own, in a private mount namespace), an artifact deleted
//! from the blob store under load, a cache file corrupted on disk, and secret
//! envelopes whose issuer's clock is skewed against ours. Each ends in a typed
//! outcome, and the next request after the fault is gone works. Asserted through
//! public behaviour only (outcomes, the loader's counters, the cache directory's
//! files), so the loader may change how it checks its cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use runtime_core::Executor;
use runtime_core::artifact::ContentHash;
use runtime_core::engine::Target;
use runtime_core::execute::{Outcome, StaticResolver};
use runtime_core::host::HostServices;
use runtime_core::store::BlobStore;
use serde_json::json;
use stores_local::{DirBlobStore, MemoryKvStore, MemorySecretStore};
use test_support::vault_stub::VaultStub;
use test_support::{Harness, guests, request, run_on, test_config};

/// Artifacts published into a files blob store (`up`'s), found afterwards by
/// walking its directory, so the tests name no storage layout: whatever publish
/// stores under `artifacts/` is "the artifact".
struct Site {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    blobs: Arc<DirBlobStore>,
    resolver: Arc<StaticResolver>,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        Site {
            blobs: Arc::new(DirBlobStore::new(&root)),
            root,
            _dir: dir,
            resolver: Arc::new(StaticResolver::default()),
        }
    }

    /// Precompiles `wasm` for this host as publish does, stores and registers it.
    async fn publish(&self, wasm: &[u8]) -> ContentHash {
        let content = ContentHash::of(wasm);
        let before = self.artifact_objects();
        let art = runtime_core::publish::precompile_and_store(
            self.blobs.as_ref(),
            content,
            wasm,
            &Target::host(),
            &test_config().engine,
        )
        .await
        .unwrap();
        self.resolver.register(art);
        assert!(self.artifact_objects().len() > before.len());
        content
    }

    /// Every stored object under `artifacts/`: its blob key and bytes.
    fn artifact_objects(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![self.root.join("artifacts")];
        while let Some(d) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    let key = p.strip_prefix(&self.root).unwrap();
                    out.push((
                        key.to_str().unwrap().to_string(),
                        std::fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// An executor over this store: `instances` components kept in memory, and
    /// its disk cache in `cache`, if any.
    fn executor(&self, instances: usize, cache: Option<&std::path::Path>) -> Executor {
        let mut config = test_config();
        config.cache.instance_entries = instances;
        config.cache.disk_dir = cache.map(|c| c.to_path_buf());
        Executor::new(
            &config,
            self.blobs.clone(),
            self.resolver.clone(),
            HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
        )
        .unwrap()
    }
}

/// Names of the files in `dir` (hidden ones included: a download in progress).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn counter(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// A full disk during an artifact download.

/// Set in the re-executed test process that runs inside its own user and mount
/// namespaces (`unshare -rm`), where it may mount a tmpfs that vanishes with it.
const IN_NAMESPACE: &str = "ALGA_TEST_MOUNT_NAMESPACE";

/// Runs `test` again in a fresh process of this test binary under `unshare -rm`
/// (an unprivileged user namespace with a private mount namespace): `true` in that
/// process, `false` in the caller once it passed. A mount made there is invisible
/// to the machine and gone when the process exits, whatever happens to it.
fn in_mount_namespace(test: &str) -> bool {
    if std::env::var(IN_NAMESPACE).as_deref() == Ok(test) {
        return true;
    }
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(IN_NAMESPACE, test)
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own mount namespace (needs unprivileged user namespaces, \
         `unshare -rm true` must work):\n{stdout}\n{stderr}"
    );
    print!("{stdout}");
    false
}

/// Mounts a tmpfs of `bytes` at `dir` (inside the namespace).
fn mount_tmpfs(dir: &std::path::Path, bytes: u64) {
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size={bytes},mode=0700"))
        .arg("tmpfs")
        .arg(dir)
        .status()
        .expect("mount runs");
    assert!(status.success(), "mount -t tmpfs: {status}");
}

/// Fills the filesystem under `dir` to the last byte, then frees `leave` bytes:
/// the returned file holds the rest.
fn fill_leaving(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_an_artifact_download_is_typed_leaves_nothing_and_recovers() {
    if !in_mount_namespace(
        "faults::a_full_disk_during_an_artifact_download_is_typed_leaves_nothing_and_recovers",
    ) {
        return;
    }
    let site = Site::new();
    let content = site.publish(&guests::hello()).await;
    // Less room than the smallest thing a download could write.
    let smallest = site
        .artifact_objects()
        .iter()
        .map(|(_, bytes)| bytes.len() as u64)
        .min()
        .unwrap();

    // A filesystem of its own for the cache (Lambda's /tmp is one), full but for
    // half of that.
    let mnt = tempfile::tempdir().unwrap();
    mount_tmpfs(mnt.path(), (smallest * 8).max(1 << 20));
    let cache = mnt.path().join("cache");
    let filler = fill_leaving(mnt.path(), smallest / 2);

    let ex = Arc::new(site.executor(8, Some(&cache)));
    let req = request(&content, "GET", "/", json!({}));
    // Several at once, as a cold instance sees its first burst.
    let mut burst = Vec::new();
    for _ in 0..4 {
        let (ex, req) = (ex.clone(), req.clone());
        burst.push(tokio::spawn(async move { run_on(&ex, req).await }));
    }
    for b in burst {
        let out: Outcome = b.await.unwrap();
        let error = out.error.as_ref().expect("no guest ran on a full disk");
        assert_eq!(
            (out.envelope.status, error.code()),
            (502, "bundle_fetch_failed"),
            "{:?}",
            out.envelope
        );
        assert!(error.is_retryable(), "{error:?}");
        assert!(
            out.envelope
                .error
                .as_deref()
                .is_some_and(|e| e.contains("No space left")),
            "{:?}",
            out.envelope
        );
    }
    assert_eq!(
        files_in(&cache),
        Vec::<String>::new(),
        "no partial download stays in the cache"
    );
    assert_eq!(counter(&ex.loader().stats().deserialized), 0);

    // Space back: the very next request fetches, keeps and serves the artifact.
    std::fs::remove_file(&filler).unwrap();
    let out = run_on(&ex, req.clone()).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    let kept = files_in(&cache);
    assert_eq!(kept.len(), 1, "one verified file: {kept:?}");
    assert!(
        !kept[0].starts_with('.'),
        "not a download in progress: {kept:?}"
    );
    assert_eq!(counter(&ex.loader().stats().deserialized), 1);
    // And a cold start is served from it.
    let cold = site.executor(8, Some(&cache));
    assert_eq!(run_on(&cold, req).await.envelope.status, 200);
    assert_eq!(counter(&cold.loader().stats().disk_hits), 1);
}

// ---------------------------------------------------------------------------
// An artifact deleted from the blob store under load.

const RUNNING: u8 = 0;
const DELETED: u8 = 1;
const REPUBLISHED: u8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_deleted_under_load_is_artifact_missing_until_republished() {
    // One component kept in memory and no disk cache (a cold Lambda's position):
    // two extensions taking turns make every load go to the blob store.
    let site = Site::new();
    let other = site.publish(&guests::echo()).await;
    let before = site.artifact_objects();
    let victim = site.publish(&guests::hello()).await;
    let objects: Vec<_> = site
        .artifact_objects()
        .into_iter()
        .filter(|o| !before.contains(o))
        .collect();
    assert!(!objects.is_empty());
    let ex = Arc::new(site.executor(1, None));

    let phase = Arc::new(AtomicU8::new(RUNNING));
    let done = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4 {
        let (ex, phase, done) = (ex.clone(), phase.clone(), done.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let content = if w % 2 == 0 { victim } else { other };
            while !done.load(Ordering::SeqCst) {
                let start = phase.load(Ordering::SeqCst);
                let out = run_on(&ex, request(&content, "GET", "/", json!({}))).await;
                let end = phase.load(Ordering::SeqCst);
                seen.push((
                    content,
                    start,
                    end,
                    out.envelope.status,
                    out.metrics.outcome,
                ));
            }
            seen
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    for (key, _) in &objects {
        site.blobs.delete(key).await.unwrap();
    }
    phase.store(DELETED, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Republished as publish writes it: the same bytes under the same keys.
    for (key, bytes) in &objects {
        site.blobs.put(key, bytes).await.unwrap();
    }
    phase.store(REPUBLISHED, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for l in load {
        seen.extend(l.await.expect("a load task panicked"));
    }

    let count = |c: ContentHash, p: (u8, u8), outcome: &str| {
        seen.iter()
            .filter(|s| s.0 == c && (s.1, s.2) == p && s.4 == outcome)
            .count()
    };
    for s in &seen {
        match (s.0 == victim, s.1, s.2) {
            // The other extension never notices.
            (false, ..) => assert_eq!((s.3, s.4), (200, "ok"), "{s:?}"),
            // While deleted: served from memory if still there, else missing.
            (true, DELETED, DELETED) => assert!(
                matches!((s.3, s.4), (200, "ok") | (503, "artifact_missing")),
                "{s:?}"
            ),
            (true, RUNNING, RUNNING) | (true, REPUBLISHED, REPUBLISHED) => {
                assert_eq!((s.3, s.4), (200, "ok"), "{s:?}")
            }
            // Straddling a change: either answer.
            (true, ..) => assert!(
                matches!((s.3, s.4), (200, "ok") | (503, "artifact_missing")),
                "{s:?}"
            ),
        }
    }
    assert!(count(victim, (RUNNING, RUNNING), "ok") > 0, "{seen:?}");
    assert!(
        count(victim, (DELETED, DELETED), "artifact_missing") > 0,
        "the deletion was never noticed: {seen:?}"
    );
    assert!(
        count(victim, (REPUBLISHED, REPUBLISHED), "ok") > 0,
        "no recovery after republishing: {seen:?}"
    );
    assert!(count(other, (DELETED, DELETED), "ok") > 0, "{seen:?}");
    let missing = seen.iter().filter(|s| s.4 == "artifact_missing").count();
    eprintln!(
        "artifact deleted under load: {} requests, {missing} artifact_missing while deleted",
        seen.len()
    );
}

// ---------------------------------------------------------------------------
// A corrupted file in the disk cache.

/// Ways a cache file goes bad on disk. The first keeps size and mtime, so only
/// the bytes tell.
const CORRUPTIONS: [&str; 3] = ["bit flipped, mtime kept", "truncated", "bytes appended"];

fn corrupt(path: &std::path::Path, how: &str) {
    let meta = std::fs::metadata(path).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    match how {
        "bit flipped, mtime kept" => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x10;
        }
        "truncated" => bytes.truncate(bytes.len() / 2),
        "bytes appended" => bytes.extend_from_slice(&[0u8; 64]),
        other => unreachable!("{other}"),
    }
    // In place, as a disk or another process would (not the loader's rename).
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&bytes)?;
            f.set_modified(meta.modified()?)
        })
        .unwrap();
}

#[tokio::test]
async fn a_corrupted_cache_file_is_refused_refetched_and_never_deserialized() {
    let site = Site::new();
    let content = site.publish(&guests::hello()).await;
    let objects = site.artifact_objects();
    let req = request(&content, "GET", "/", json!({}));

    for how in CORRUPTIONS {
        let dir = tempfile::tempdir().unwrap();
        // A first process fills the cache.
        let first = site.executor(8, Some(dir.path()));
        assert_eq!(run_on(&first, req.clone()).await.envelope.status, 200);
        let cached = files_in(dir.path());
        assert_eq!(cached.len(), 1, "{how}: {cached:?}");
        let file = dir.path().join(&cached[0]);
        let genuine = std::fs::read(&file).unwrap();
        corrupt(&file, how);

        // A fresh process (a cold start) with the artifact gone from the store: the
        // corrupted file is all it has, and it must refuse it rather than load it.
        for (key, _) in &objects {
            site.blobs.delete(key).await.unwrap();
        }
        let cold = site.executor(8, Some(dir.path()));
        let out = run_on(&cold, req.clone()).await;
        assert_eq!(
            (out.envelope.status, out.metrics.outcome),
            (503, "artifact_missing"),
            "{how}: {:?}",
            out.envelope
        );
        let stats = cold.loader().stats();
        assert_eq!(counter(&stats.deserialized), 0, "{how}: never deserialized");
        assert_eq!(counter(&stats.disk_hits), 0, "{how}");

        // With the artifact back in the store, the next request refetches it and
        // the cache holds the genuine bytes again.
        for (key, bytes) in &objects {
            site.blobs.put(key, bytes).await.unwrap();
        }
        let out = run_on(&cold, req.clone()).await;
        assert_eq!(out.envelope.status, 200, "{how}: {:?}", out.envelope);
        assert_eq!(counter(&stats.deserialized), 1, "{how}");
        assert_eq!(counter(&stats.disk_hits), 0, "{how}");
        assert!(counter(&stats.fetched) >= 1, "{how}");
        let cached = files_in(dir.path());
        assert_eq!(cached.len(), 1, "{how}: {cached:?}");
        assert_eq!(
            std::fs::read(dir.path().join(&cached[0])).unwrap(),
            genuine,
            "{how}"
        );
        // And a later cold start is served from the repaired file.
        let later = site.executor(8, Some(dir.path()));
        assert_eq!(run_on(&later, req.clone()).await.envelope.status, 200);
        assert_eq!(counter(&later.loader().stats().disk_hits), 1, "{how}");
    }
}

// ---------------------------------------------------------------------------
// Clock skew between the envelope's issuer and this host.

/// A guest that answers 200 with `secrets.get("k")`, else 400 + the error's index
/// (missing 0, denied 1, expired 2, internal 3).
fn secrets_guest() -> Vec<u8> {
    guests::result_caller(
        "alga:extension/secrets",
        "get",
        "i32 i32",
        "(i32.const 1024) (i32.const 1)",
        4,
        true,
        r#"(data (i32.const 1024) "k")"#,
    )
}

const EXPIRED: u16 = 402;

/// RFC 3339 (UTC) of `now + offset_secs` on this host's clock.
fn at(offset_secs: i64) -> String {
    let now = SystemTime::now();
    let t = if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs as u64)
    } else {
        now - Duration::from_secs(offset_secs.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What an issuer whose clock reads `skew_secs` ahead of ours writes for a
/// lifetime of `ttl_secs`: its `now + ttl`, read on our clock.
fn issued(skew_secs: i64, ttl_secs: i64) -> String {
    at(skew_secs + ttl_secs)
}

fn inline(expires_at: &str) -> serde_json::Value {
    json!({
        "providers": ["cap:secrets.get"],
        "secret_envelope": {
            "ciphertext_b64": base64::engine::general_purpose::STANDARD.encode(r#"{"k":"v"}"#),
            "algorithm": "inline/base64",
            "expires_at": expires_at,
        }
    })
}

fn answer(out: &Outcome) -> (u16, Option<&'static str>) {
    (out.envelope.status, out.error.as_ref().map(|e| e.code()))
}

#[tokio::test]
async fn clock_skew_on_expiring_secrets_is_decided_by_this_hosts_clock_with_no_leeway() {
    let h = Harness::new();
    let (content, _) = h.publish(&secrets_guest()).await;
    let run = |expires_at: String| {
        let h = &h;
        async move {
            h.run(request(&content, "GET", "/", inline(&expires_at)))
                .await
        }
    };
    // The tolerance is zero: usable while our clock is before `expires_at`. An
    // issuer ahead of us lengthens the lifetime we see, one behind shortens it,
    // by exactly the skew. (Skew is only relative: moving the issuer's clock is
    // moving ours, so the system clock is left alone.)
    let ttl = 300;
    for (skew, usable) in [
        (0, true),
        (600, true),       // issuer 10 min ahead: 15 min left here
        (-240, true),      // 4 min behind: 1 min left
        (-600, false),     // 10 min behind: expired 5 min ago here
        (-ttl - 2, false), // just past: 2 s
        (-ttl + 60, true), // just before: 1 min left
    ] {
        let out = run(issued(skew, ttl)).await;
        let want = if usable { 200 } else { EXPIRED };
        assert_eq!(
            answer(&out),
            (want, None),
            "skew {skew} s: {:?}",
            out.envelope
        );
        if usable {
            assert_eq!(out.envelope.body(), Some(b"v".to_vec()));
        }
    }
    // Recovery: once the issuer's clock is right, the next request has its secret.
    assert_eq!(answer(&run(issued(0, ttl)).await), (200, None));

    // A timestamp in another offset names the same instant (RFC 3339 allows it).
    let in_offset = |offset_secs: i64, zone: &str| {
        let shift: i64 = match zone {
            "+05:30" => 5 * 3600 + 1800,
            "-08:00" => -8 * 3600,
            _ => unreachable!(),
        };
        let utc = at(offset_secs + shift);
        format!("{}{zone}", utc.trim_end_matches('Z'))
    };
    for (expires_at, want) in [
        (in_offset(300, "+05:30"), 200),
        (in_offset(-300, "+05:30"), EXPIRED),
        (in_offset(300, "-08:00"), 200),
        (in_offset(-300, "-08:00"), EXPIRED),
    ] {
        let out = run(expires_at.clone()).await;
        assert_eq!(
            answer(&out),
            (want, None),
            "{expires_at}: {:?}",
            out.envelope
        );
    }
    // Not a timestamp at all: refused with a code, no guest call made with it.
    let out = run("in five minutes".into()).await;
    assert_eq!(answer(&out), (500, Some("secret_decrypt_failed")));
    assert_eq!(answer(&run(issued(0, ttl)).await), (200, None));
}

#[tokio::test]
async fn a_skewed_vault_envelope_is_expired_unsent_and_not_served_from_the_cache() {
    const TOKEN: &str = "hvs.skew-token";
    const KEY: &str = "alga-ext-secrets";
    let vault = VaultStub::start(TOKEN, &[KEY]);
    let mut config = test_config();
    config.vault.addr = Some(vault.addr());
    config.vault.token = Some(TOKEN.into());
    let h = Harness::with_config(config);
    let (content, _) = h.publish(&secrets_guest()).await;
    let ct = vault.encrypt(KEY, br#"{"k":"from-vault"}"#);
    let env = |expires_at: String| {
        json!({
            "providers": ["cap:secrets.get"],
            "secret_envelope": {
                "ciphertext_b64": ct, "algorithm": "vault-transit:v1",
                "key_path": KEY, "expires_at": expires_at,
            }
        })
    };
    // A good envelope: decrypted once, and its plaintext cached.
    let out = h
        .run(request(&content, "GET", "/", env(issued(0, 300))))
        .await;
    assert_eq!(answer(&out), (200, None), "{:?}", out.envelope);
    assert_eq!(vault.decrypts(), 1);
    // The same ciphertext from an issuer 10 min behind: expired here, and the
    // cached plaintext does not outlive the envelope that carries it.
    let out = h
        .run(request(&content, "GET", "/", env(issued(-600, 300))))
        .await;
    assert_eq!(answer(&out), (EXPIRED, None), "{:?}", out.envelope);
    assert_eq!(
        vault.decrypts(),
        1,
        "an expired envelope is not sent to Vault"
    );
    // Recovery: the issuer's next envelope is served (from the cache).
    let out = h
        .run(request(&content, "GET", "/", env(issued(0, 300))))
        .await;
    assert_eq!(answer(&out), (200, None));
    assert_eq!(out.envelope.body(), Some(b"from-vault".to_vec()));
}
