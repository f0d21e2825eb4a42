//! Faults, two ways of losing the backend mid-run:
//!
//! - **Killed** (connections refused): every operation fails with a typed
//!   `StoreError::Unavailable` within the SDK's bounded timeouts, execute answers 503
//!   `backend_unavailable`, the process stays up, and a moto restarted on the same
//!   port is used by the very same clients. moto keeps its state in memory, so the
//!   restarted one is empty; the test re-creates the bucket and table, as a real
//!   outage would leave them.
//! - **Frozen** (SIGSTOP: connections hang, state kept): concurrent writers through
//!   the whole execute path (registry, quota, guest storage, execution record) and
//!   straight to S3 keep going while moto is frozen and after it is thawed. Every
//!   write that was acknowledged — a 200 from the guest, an `Ok` from the blob store
//!   — is read back at the end, before, during and after the outage.
//! - **Killed under load, and recovered with its state**: the same writers while
//!   moto is SIGKILLed, stays down, and comes back on the same port. A restarted
//!   moto is empty (it keeps state in memory), which would make "no acknowledged
//!   write lost" a property of moto rather than of us; so this moto journals every
//!   request before serving it (its recorder) and the new one replays the journal,
//!   as a real backend recovers from its write-ahead log. Acknowledged then means
//!   durable, and every acknowledged write must read back from the new process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime_core::store::{
    Claim, KvError, KvScope, QuotaCharge, QuotaKey, QuotaWindow, RegistryError, StoreError,
};
use runtime_core::{ExecuteRequest, RoutingHeaders};
use stores_aws::AwsLimits;
use test_support::moto::{self, AwsEnv, Moto};
use test_support::writer::{NAMESPACE, install_writer};

/// Generous upper bound on one failing call (the settings allow 2 attempts of at
/// most 2 s, inside a 10 s operation timeout).
const FAIL_WITHIN: Duration = Duration::from_secs(30);

fn unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_down_is_unavailable_and_recovery_needs_no_rebuild() {
    let mut moto = Moto::start();
    let env = AwsEnv::on(&moto).await;
    let b = &env.backends;
    let scope = KvScope {
        tenant: "tenant-a".into(),
        install_id: "install-1".into(),
    };
    let quota = QuotaKey::at(
        "tenant-a",
        "ext",
        QuotaWindow::Minute,
        std::time::SystemTime::now(),
    );

    // Acknowledged writes...
    let mut acked = Vec::new();
    for i in 0..20 {
        let k = format!("k{i}");
        b.kv.put(&scope, "ns", &k, k.as_bytes(), None)
            .await
            .unwrap();
        acked.push(k);
    }
    b.blobs
        .put("bundles/aa/bundle.tar.zst", b"bundle")
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            b.quotas.charge(&quota, 10).await.unwrap(),
            QuotaCharge::Allowed { .. }
        ));
    }
    // ...are all readable right before the stop.
    for k in &acked {
        assert_eq!(
            b.kv.get(&scope, "ns", k).await.unwrap().unwrap().value,
            k.as_bytes()
        );
    }
    assert_eq!(
        b.blobs
            .get("bundles/aa/bundle.tar.zst")
            .await
            .unwrap()
            .unwrap(),
        b"bundle"
    );
    assert_eq!(b.quotas.used(&quota).await.unwrap(), 3);

    moto.stop();

    let t = Instant::now();
    match b.kv.get(&scope, "ns", "k0").await {
        Err(KvError::Store(e)) => assert!(unavailable(&e), "{e:?}"),
        other => panic!("kv get with moto down: {other:?}"),
    }
    match b.kv.put(&scope, "ns", "k0", b"x", None).await {
        Err(KvError::Store(e)) => assert!(unavailable(&e), "{e:?}"),
        other => panic!("kv put with moto down: {other:?}"),
    }
    let e = b.blobs.get("bundles/aa/bundle.tar.zst").await.unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b
        .blobs
        .put("bundles/bb/bundle.tar.zst", b"x")
        .await
        .unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b.quotas.charge(&quota, 10).await.unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b
        .idempotency
        .claim("tenant-a", "key", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    let e = b.secrets.load("tenant-a", "install-9").await.unwrap_err();
    assert!(unavailable(&e), "{e:?}");
    match b.registry.get_install("tenant-a", "ext").await {
        Err(RegistryError::Store(e)) => assert!(unavailable(&e), "{e:?}"),
        other => panic!("registry with moto down: {other:?}"),
    }
    // The execute path answers 503 backend_unavailable (and keeps serving).
    let executor = b.executor(&test_support::test_config()).unwrap();
    let request = ExecuteRequest::from_json(
        serde_json::json!({
            "context": {"tenant_id": "tenant-a", "extension_id": "ext",
                        "content_hash": format!("sha256:{}", "ab".repeat(32))},
            "http": {"method": "GET", "path": "/"},
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let routing = RoutingHeaders {
        tenant: Some("tenant-a".into()),
        extension: Some("ext".into()),
        request_id: None,
    };
    let down = executor.execute(&routing, &request).await.envelope;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(
        down.error
            .as_deref()
            .is_some_and(|e| e.starts_with("backend_unavailable")),
        "{down:?}"
    );
    assert!(
        t.elapsed() < FAIL_WITHIN * 8,
        "eight failing calls took {:?}",
        t.elapsed()
    );

    // A fresh moto on the same port (empty: moto keeps state in memory).
    moto.restart();
    env.clients
        .s3
        .create_bucket()
        .bucket(&env.settings.bucket)
        .send()
        .await
        .unwrap();
    stores_aws::create_table(&env.clients.dynamodb, &env.settings.table)
        .await
        .unwrap();
    // The same executor answers from the registry again: no install, not a 503.
    let back = executor.execute(&routing, &request).await.envelope;
    assert_eq!(back.status, 404, "{back:?}");
    // The same Backends, not rebuilt, works again.
    b.kv.put(&scope, "ns", "after", b"back", None)
        .await
        .unwrap();
    assert_eq!(
        b.kv.get(&scope, "ns", "after")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"back"
    );
    b.blobs
        .put("bundles/aa/bundle.tar.zst", b"bundle")
        .await
        .unwrap();
    assert_eq!(
        b.blobs
            .get("bundles/aa/bundle.tar.zst")
            .await
            .unwrap()
            .unwrap(),
        b"bundle"
    );
    assert_eq!(
        b.quotas.charge(&quota, 10).await.unwrap(),
        QuotaCharge::Allowed { used: 1 }
    );
    assert_eq!(
        b.idempotency
            .claim("tenant-a", "key", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        b.registry.get_install("tenant-a", "ext").await.unwrap(),
        None
    );
}

/// Phases of the frozen-moto run, as each writer saw them.
const RUNNING: u8 = 0;
const FROZEN: u8 = 1;
const THAWED: u8 = 2;

/// One write attempt: its key, the phases it started and ended in, and whether it
/// was acknowledged (else what it answered).
#[derive(Debug)]
struct Attempt {
    key: String,
    phases: (u8, u8),
    result: Result<(), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_frozen_mid_run_loses_no_acknowledged_write() {
    let moto = Moto::start();
    let mut settings = moto::settings(&moto);
    // Short, so a frozen moto turns into errors quickly (each attempt hangs until
    // its timeout: the kernel still accepts the connection).
    settings.limits = AwsLimits {
        max_attempts: 2,
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_millis(2500),
        s3_attempt_timeout: Duration::from_millis(1500),
        s3_operation_timeout: Duration::from_secs(3),
    };
    moto::provision(&settings).await;
    let b = stores_aws::backends(&settings).await;
    let writer = Arc::new(install_writer(&b).await);

    let phase = Arc::new(AtomicU8::new(RUNNING));
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (writer, phase, done) = (writer.clone(), phase.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            for n in 0.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("w{w}-{n}");
                let start = phase.load(Ordering::SeqCst);
                let result = writer.write(&key).await;
                let phases = (start, phase.load(Ordering::SeqCst));
                attempts.push(Attempt {
                    key,
                    phases,
                    result,
                });
            }
            attempts
        }));
    }
    {
        let (blobs, phase, done) = (b.blobs.clone(), phase.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            for n in 0.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("blobs/b-{n}");
                let start = phase.load(Ordering::SeqCst);
                let result = blobs
                    .put(&key, key.as_bytes())
                    .await
                    .map_err(|e| format!("{e:?}"));
                let phases = (start, phase.load(Ordering::SeqCst));
                attempts.push(Attempt {
                    key,
                    phases,
                    result,
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            attempts
        }));
    }

    // Let every writer get going, freeze moto mid-run, thaw it, let them go on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    moto.pause();
    phase.store(FROZEN, Ordering::SeqCst);
    // Long enough that, after an attempt caught by the freeze times out, every
    // writer starts and finishes at least one more attempt while moto is frozen.
    tokio::time::sleep(Duration::from_secs(10)).await;
    phase.store(THAWED, Ordering::SeqCst);
    moto.resume();
    tokio::time::sleep(Duration::from_secs(5)).await;
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for w in writers {
        all.push(w.await.expect("a writer panicked"));
    }

    let (execs, blobs) = all.split_at(3);
    for (w, attempts) in execs.iter().chain(blobs).enumerate() {
        assert_typed_outage(
            w,
            attempts,
            |a: &Attempt| (a.phases, &a.result),
            (RUNNING, FROZEN, THAWED),
        );
    }
    // Every acknowledged write is there, whenever it was acknowledged.
    let mut checked = 0;
    for a in execs.iter().flatten().filter(|a| a.result.is_ok()) {
        let entry = b.kv.get(&writer.scope, NAMESPACE, &a.key).await.unwrap();
        assert_eq!(
            entry.map(|e| e.value),
            Some(a.key.as_bytes().to_vec()),
            "acknowledged {a:?} is lost"
        );
        checked += 1;
    }
    for a in blobs.iter().flatten().filter(|a| a.result.is_ok()) {
        assert_eq!(
            b.blobs.get(&a.key).await.unwrap().as_deref(),
            Some(a.key.as_bytes()),
            "acknowledged {a:?} is lost"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} acknowledged writes");
    let frozen_failures = all
        .iter()
        .flatten()
        .filter(|a| a.phases == (FROZEN, FROZEN))
        .count();
    eprintln!(
        "frozen-moto run: {checked} acknowledged writes read back, {frozen_failures} \
         attempts refused while frozen"
    );
}

/// Writer `w` was acknowledged before and after the outage, made attempts wholly
/// inside it, and every one of those failed with a typed answer.
fn assert_typed_outage<A: std::fmt::Debug>(
    w: usize,
    attempts: &[A],
    view: impl Fn(&A) -> ((u8, u8), &Result<(), String>),
    (before, during, after): (u8, u8, u8),
) {
    let acked = |p: u8| {
        attempts
            .iter()
            .filter(|a| view(a).0 == (p, p) && view(a).1.is_ok())
            .count()
    };
    assert!(acked(before) > 0, "writer {w} before: {attempts:?}");
    assert!(acked(after) > 0, "writer {w} never recovered: {attempts:?}");
    let inside: Vec<_> = attempts
        .iter()
        .filter(|a| view(a).0 == (during, during))
        .collect();
    assert!(
        !inside.is_empty(),
        "writer {w} made no attempt during the outage"
    );
    for a in inside {
        let e = view(a)
            .1
            .as_ref()
            .expect_err("acknowledged during the outage");
        assert!(
            e.starts_with("503 Some(\"backend_unavailable")
                || e == "403 None" // the guest saw storage-error::internal
                || e.starts_with("Unavailable("),
            "writer {w}: {a:?}"
        );
    }
}

/// Phases of the killed-moto run.
const UP: u8 = 0;
const DOWN: u8 = 1;
const RECOVERING: u8 = 2;
const BACK: u8 = 3;

/// One attempt of the killed-moto run, with how long it took.
#[derive(Debug)]
struct Timed {
    key: String,
    phases: (u8, u8),
    took: Duration,
    result: Result<(), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_killed_under_load_answers_503_and_recovers_every_acknowledged_write() {
    let journal = tempfile::tempdir().unwrap();
    let mut moto = Moto::start_journaled(&journal.path().join("moto.jsonl"));
    let mut settings = moto::settings(&moto);
    // The frozen test's short limits: an attempt is bounded even when a connection
    // caught by the kill hangs instead of being refused.
    settings.limits = AwsLimits {
        max_attempts: 2,
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_millis(2500),
        s3_attempt_timeout: Duration::from_millis(1500),
        s3_operation_timeout: Duration::from_secs(3),
    };
    moto::provision(&settings).await;
    let b = stores_aws::backends(&settings).await;
    let writer = Arc::new(install_writer(&b).await);

    let phase = Arc::new(AtomicU8::new(UP));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // Three writers through the execute path and one straight to S3.
    for w in 0..4 {
        let (writer, blobs) = (writer.clone(), b.blobs.clone());
        let (phase, in_flight, done) = (phase.clone(), in_flight.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            for n in 0.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                // Clients hold off while the new moto replays its journal (its port
                // answers before its state is back; a real backend would not).
                if phase.load(Ordering::SeqCst) == RECOVERING {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                in_flight.fetch_add(1, Ordering::SeqCst);
                let start = phase.load(Ordering::SeqCst);
                let t = Instant::now();
                let (key, result) = if w < 3 {
                    let key = format!("w{w}-{n}");
                    let r = writer.write(&key).await;
                    (key, r)
                } else {
                    let key = format!("blobs/b-{n}");
                    let r = blobs.put(&key, key.as_bytes()).await;
                    (key, r.map_err(|e| format!("{e:?}")))
                };
                let phases = (start, phase.load(Ordering::SeqCst));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                attempts.push(Timed {
                    key,
                    phases,
                    took: t.elapsed(),
                    result,
                });
                // Paced, so this run leaves CPU to the conformance suites sharing
                // the machine (moto is single-threaded Python).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            attempts
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    phase.store(DOWN, Ordering::SeqCst);
    moto.kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    phase.store(RECOVERING, Ordering::SeqCst);
    while in_flight.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::block_in_place(|| moto.recover());
    phase.store(BACK, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("a writer panicked"));
    }

    for (w, attempts) in all.iter().enumerate() {
        assert_typed_outage(
            w,
            attempts,
            |a: &Timed| (a.phases, &a.result),
            (UP, DOWN, BACK),
        );
        // None hangs: every attempt, whatever the phase, ends within its bound.
        for a in attempts {
            assert!(a.took < FAIL_WITHIN, "writer {w}: {a:?}");
        }
    }
    // Every acknowledged write is in the recovered moto, whenever it was acknowledged.
    let mut checked = 0;
    let (execs, blobs) = all.split_at(3);
    for a in execs.iter().flatten().filter(|a| a.result.is_ok()) {
        let entry = b.kv.get(&writer.scope, NAMESPACE, &a.key).await.unwrap();
        assert_eq!(
            entry.map(|e| e.value),
            Some(a.key.as_bytes().to_vec()),
            "acknowledged {a:?} is lost"
        );
        checked += 1;
    }
    for a in blobs.iter().flatten().filter(|a| a.result.is_ok()) {
        assert_eq!(
            b.blobs.get(&a.key).await.unwrap().as_deref(),
            Some(a.key.as_bytes()),
            "acknowledged {a:?} is lost"
        );
        checked += 1;
    }
    let refused = all
        .iter()
        .flatten()
        .filter(|a| a.phases == (DOWN, DOWN))
        .count();
    assert!(checked > 20, "only {checked} acknowledged writes");
    eprintln!(
        "killed-moto run: {checked} acknowledged writes read back after recovery, \
         {refused} attempts refused while down"
    );
}
