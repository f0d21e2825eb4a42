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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::execute::{QuotaLimits, QuotaPolicy};
use runtime_core::store::{
    Claim, KvError, KvScope, QuotaCharge, QuotaKey, QuotaWindow, RegistryError, StoreError,
};
use runtime_core::{ExecuteRequest, Executor, RoutingHeaders};
use stores_aws::AwsLimits;
use test_support::moto::{self, AwsEnv, Moto};
use test_support::signer::{Signer, install};

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

/// `storage.put("ns", key = body, value = body)`; 200 only when the put succeeded,
/// else 400 + the `storage-error` index.
fn durable_writer() -> Vec<u8> {
    test_support::guests::result_caller(
        "alga:extension/storage",
        "put",
        "i32 i32 i32 i32 i32 i32 i32 i64",
        "(i32.const 1024) (i32.const 2)
         (i32.load offset=80 (local.get 0)) (i32.load offset=84 (local.get 0))
         (i32.load offset=80 (local.get 0)) (i32.load offset=84 (local.get 0))
         (i32.const 0) (i64.const 0)",
        8,
        false,
        r#"(data (i32.const 1024) "ns")"#,
    )
}

/// Publishes and installs the durable writer for `acme` on `b`; the executor and
/// the install's kv scope.
async fn install_writer(b: &Backends) -> (Executor, KvScope, ContentHash) {
    let signer = Signer::new("faults");
    let dir = tempfile::tempdir().unwrap();
    let manifest = serde_json::json!({
        "name": "com.example.writer", "version": "1.0.0", "runtime": "wasm-js@1",
        "capabilities": ["cap:storage.kv"],
        "api": {"endpoints": [{"method": "POST", "path": "/", "handler": "dist/main.wasm"}]}
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/main.wasm"), durable_writer()).unwrap();
    let bundle = archive::pack_dir(dir.path(), &ArchiveLimits::default()).unwrap();
    let published = signer.publish(&signer.publisher(b), &bundle).await;
    let grants = ["cap:storage.kv"];
    let install = install(b, "acme", "com.example.writer", &grants, BTreeMap::new()).await;
    // With quotas on, so every request also takes a DynamoDB counter.
    let executor = signer.executor(b).with_quotas(QuotaPolicy::new(
        b.quotas.clone(),
        QuotaLimits {
            per_minute: 1_000_000,
            per_day: 1_000_000,
        },
    ));
    let scope = KvScope {
        tenant: "acme".into(),
        install_id: install.install_id,
    };
    (executor, scope, published.content_hash)
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

async fn execute_write(ex: &Executor, content: &ContentHash, key: &str) -> Result<(), String> {
    let req = serde_json::json!({
        "context": {"tenant_id": "acme", "extension_id": "com.example.writer",
                    "content_hash": content.to_string()},
        "http": {"method": "POST", "path": "/",
                 "body_b64": base64::engine::general_purpose::STANDARD.encode(key)}
    });
    let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).unwrap()).unwrap();
    let routing = RoutingHeaders {
        tenant: Some("acme".into()),
        extension: Some("com.example.writer".into()),
        request_id: None,
    };
    let env = ex.execute(&routing, &req).await.envelope;
    match (env.status, &env.error) {
        (200, None) => Ok(()),
        (status, error) => Err(format!("{status} {error:?}")),
    }
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
    let (executor, scope, content) = install_writer(&b).await;
    let executor = Arc::new(executor);

    let phase = Arc::new(AtomicU8::new(RUNNING));
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (ex, phase, done) = (executor.clone(), phase.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            for n in 0.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("w{w}-{n}");
                let start = phase.load(Ordering::SeqCst);
                let result = execute_write(&ex, &content, &key).await;
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
        let acked = |p: (u8, u8)| {
            attempts
                .iter()
                .filter(|a| a.phases == p && a.result.is_ok())
                .count()
        };
        assert!(
            acked((RUNNING, RUNNING)) > 0,
            "writer {w} before: {attempts:?}"
        );
        assert!(
            acked((THAWED, THAWED)) > 0,
            "writer {w} never recovered: {attempts:?}"
        );
        // Frozen the whole time: nothing is acknowledged, and each failure is typed.
        let frozen: Vec<_> = attempts
            .iter()
            .filter(|a| a.phases == (FROZEN, FROZEN))
            .collect();
        assert!(
            !frozen.is_empty(),
            "writer {w} made no attempt while frozen"
        );
        for a in frozen {
            let e = a
                .result
                .as_ref()
                .expect_err("acknowledged while moto was frozen");
            assert!(
                e.starts_with("503 Some(\"backend_unavailable")
                    || e == "403 None" // the guest saw storage-error::internal
                    || e.starts_with("Unavailable("),
                "writer {w}: {a:?}"
            );
        }
    }
    // Every acknowledged write is there, whenever it was acknowledged.
    let mut checked = 0;
    for a in execs.iter().flatten().filter(|a| a.result.is_ok()) {
        let entry = b.kv.get(&scope, "ns", &a.key).await.unwrap();
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
