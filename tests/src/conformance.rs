//! One conformance suite per store trait. Every backend (memory, local SQLite and
//! files, AWS on moto) runs exactly these assertions.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use runtime_core::artifact::{ArtifactKey, ArtifactRef, ContentHash, Encoding, StoredObject};
use runtime_core::capability::Capability;
use runtime_core::engine::Target;
use runtime_core::store::{
    BatchingExecutionLog, BlobStore, Claim, ExecutionLog, ExecutionRecord, IdempotencyStore,
    InstallRequest, KvError, KvScope, KvStore, QuotaCharge, QuotaDecision, QuotaKey, QuotaStore,
    QuotaWindow, Registered, Registry, RegistryError, SecretBundle, SecretStore, StoreError,
    VersionRecord,
};

fn scope(tenant: &str, install: &str) -> KvScope {
    KvScope {
        tenant: tenant.into(),
        install_id: install.into(),
    }
}

/// Every key of a namespace, following the cursor page by page.
async fn list_all(store: &dyn KvStore, s: &KvScope, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(s, ns, after.as_deref()).await.unwrap();
        assert!(page.entries.len() <= store.limits().page_size);
        out.extend(page.entries.iter().map(|e| e.key.clone()));
        if !page.more {
            return out;
        }
        after = Some(
            page.entries
                .last()
                .expect("a page with more is not empty")
                .key
                .clone(),
        );
    }
}

/// Revisions, conflicts, deletes, tenant isolation, paging, concurrent writers.
pub async fn kv_conformance(store: Arc<dyn KvStore>) {
    let a = scope("tenant-a", "install-1");
    // Revisions start at 1 and grow by 1; a stale or wrong revision is a conflict.
    let e = store.put(&a, "ns", "k", b"one", None).await.unwrap();
    assert_eq!(e.revision, 1);
    assert_eq!(
        store.put(&a, "ns", "k", b"x", Some(7)).await,
        Err(KvError::Conflict)
    );
    assert_eq!(
        store.put(&a, "ns", "k", b"x", Some(0)).await,
        Err(KvError::Conflict)
    );
    let e = store.put(&a, "ns", "k", b"two", Some(1)).await.unwrap();
    assert_eq!((e.revision, e.value.as_slice()), (2, &b"two"[..]));
    let e = store.put(&a, "ns", "k", b"three", None).await.unwrap();
    assert_eq!(e.revision, 3);
    let got = store.get(&a, "ns", "k").await.unwrap().unwrap();
    assert_eq!((got.revision, got.value), (3, b"three".to_vec()));
    assert_eq!(
        store.put(&a, "ns", "fresh", b"x", Some(1)).await,
        Err(KvError::Conflict)
    );
    assert_eq!(
        store
            .put(&a, "ns", "fresh", b"x", Some(0))
            .await
            .unwrap()
            .revision,
        1
    );
    // Binary values survive untouched; an empty value is a value.
    let bin: Vec<u8> = (0..=255u8).collect();
    store.put(&a, "ns", "bin", &bin, None).await.unwrap();
    assert_eq!(
        store.get(&a, "ns", "bin").await.unwrap().unwrap().value,
        bin
    );
    store.put(&a, "ns", "empty", b"", None).await.unwrap();
    assert_eq!(
        store.get(&a, "ns", "empty").await.unwrap().unwrap().value,
        b""
    );
    // Deletes: missing keys are fine; a deleted key starts over at revision 1.
    store.delete(&a, "ns", "fresh").await.unwrap();
    store.delete(&a, "ns", "fresh").await.unwrap();
    store.delete(&a, "other-ns", "never").await.unwrap();
    assert_eq!(store.get(&a, "ns", "fresh").await.unwrap(), None);
    assert_eq!(
        store
            .put(&a, "ns", "fresh", b"x", None)
            .await
            .unwrap()
            .revision,
        1
    );
    // Invalid names are refused.
    assert!(matches!(
        store.put(&a, "ns", "a/b", b"", None).await,
        Err(KvError::Invalid(_))
    ));
    assert!(matches!(
        store.put(&a, "", "k", b"", None).await,
        Err(KvError::Invalid(_))
    ));
    assert!(matches!(
        store
            .put(&a, "ns", "k", &vec![0; 64 * 1024 + 1], None)
            .await,
        Err(KvError::Invalid(_))
    ));
    // ALGA-COMPAT §2 to the character: namespace 1–128, key 1–256, value ≤ 64 KiB.
    let (ns128, ns129) = ("n".repeat(128), "n".repeat(129));
    let (key256, key257) = ("k".repeat(256), "k".repeat(257));
    for (ns, key) in [(ns129.as_str(), "k"), ("ns", key257.as_str()), ("ns", "")] {
        assert!(
            matches!(
                store.put(&a, ns, key, b"", None).await,
                Err(KvError::Invalid(_))
            ),
            "namespace of {} and key of {} characters accepted",
            ns.len(),
            key.len()
        );
    }
    let at_limits = store
        .put(&a, &ns128, &key256, &vec![7; 64 * 1024], None)
        .await
        .unwrap();
    assert_eq!(at_limits.value.len(), 64 * 1024);
    assert_eq!(
        store.get(&a, &ns128, &key256).await.unwrap().unwrap().value,
        vec![7; 64 * 1024]
    );
    store.delete(&a, &ns128, &key256).await.unwrap();

    // Tenant and install isolation, including ids built to collide if keys were
    // joined naively.
    let lookalikes = [
        scope("tenant-b", "install-1"),
        scope("tenant-a", "install-2"),
        scope("tenant-a#install-1", "ns"),
        scope("tenant-a", "install-1#ns"),
        scope("tenant-a%23install-1", "ns"),
    ];
    for other in &lookalikes {
        assert_eq!(
            store.get(other, "ns", "k").await.unwrap(),
            None,
            "{other:?}"
        );
        assert!(
            list_all(store.as_ref(), other, "ns").await.is_empty(),
            "{other:?}"
        );
        assert_eq!(
            store.put(other, "ns", "k", b"theirs", Some(1)).await,
            Err(KvError::Conflict),
            "{other:?}"
        );
        store.delete(other, "ns", "k").await.unwrap();
    }
    assert_eq!(
        store.get(&a, "ns", "k").await.unwrap().unwrap().value,
        b"three"
    );
    let b = scope("tenant-b", "install-1");
    store.put(&b, "ns", "only-b", b"b", None).await.unwrap();
    assert_eq!(store.get(&a, "ns", "only-b").await.unwrap(), None);
    assert!(
        !list_all(store.as_ref(), &a, "ns")
            .await
            .contains(&"only-b".to_string())
    );
    assert_eq!(list_all(store.as_ref(), &b, "ns").await, vec!["only-b"]);

    // Concurrent writers with the same revision: exactly one wins.
    let r = store.get(&a, "ns", "k").await.unwrap().unwrap().revision;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12u8 {
        let store = store.clone();
        let a = a.clone();
        tasks.spawn(async move { store.put(&a, "ns", "k", &[i], Some(r)).await });
    }
    let results: Vec<_> = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || r == &Err(KvError::Conflict))
    );
    assert_eq!(
        store.get(&a, "ns", "k").await.unwrap().unwrap().revision,
        r + 1
    );
    // ...and creators of the same new key (`Some(0)`).
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12u8 {
        let store = store.clone();
        let a = a.clone();
        tasks.spawn(async move { store.put(&a, "ns", "race-new", &[i], Some(0)).await });
    }
    let results: Vec<_> = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
}

/// Paging through 1,000 keys returns each exactly once, in key order.
pub async fn kv_paging_conformance(store: Arc<dyn KvStore>) {
    let s = scope("tenant-page", "install-page");
    let keys: Vec<String> = (0..1000).map(|i| format!("key-{i:04}")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in keys.chunks(63) {
        let store = store.clone();
        let s = s.clone();
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for k in chunk {
                store
                    .put(&s, "paged", &k, k.as_bytes(), None)
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    let listed = list_all(store.as_ref(), &s, "paged").await;
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed, keys, "each key once, in order");
    // A cursor in the middle continues right after it.
    let page = store.list(&s, "paged", Some("key-0499")).await.unwrap();
    assert_eq!(page.entries[0].key, "key-0500");
    assert_eq!(page.entries[0].value, b"key-0500");
    let page = store.list(&s, "paged", Some("key-0999")).await.unwrap();
    assert!(page.entries.is_empty() && !page.more);
}

/// Count limits hold, also under concurrent creators. The store must have been
/// built with 2 namespaces per install and 5 keys per namespace.
pub async fn kv_limits_conformance(store: Arc<dyn KvStore>) {
    let l = store.limits();
    assert_eq!((l.namespaces_per_install, l.keys_per_namespace), (2, 5));
    let s = scope("tenant-limits", "install-limits");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let store = store.clone();
        let s = s.clone();
        tasks.spawn(async move { store.put(&s, "n1", &format!("k{i}"), b"", None).await });
    }
    let results = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        5,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(KvError::LimitReached(_))))
    );
    assert_eq!(list_all(store.as_ref(), &s, "n1").await.len(), 5);
    // Overwriting an existing key is not a new key.
    let existing = list_all(store.as_ref(), &s, "n1").await[0].clone();
    store
        .put(&s, "n1", &existing, b"again", None)
        .await
        .unwrap();
    // A delete frees a slot.
    store.delete(&s, "n1", &existing).await.unwrap();
    store.put(&s, "n1", "replacement", b"", None).await.unwrap();
    // Namespaces: concurrent creators of new namespaces, at most 2 in all.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 2..8 {
        let store = store.clone();
        let s = s.clone();
        tasks.spawn(async move {
            let ns = format!("n{i}");
            let r = store.put(&s, &ns, "k", b"", None).await;
            (ns, r)
        });
    }
    // (join_all yields in completion order: each task names its namespace.)
    let results = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|(_, r)| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|(_, r)| r.is_ok() || matches!(r, Err(KvError::LimitReached(_))))
    );
    // Emptying a namespace frees it.
    let used = results.iter().find(|(_, r)| r.is_ok()).unwrap().0.clone();
    assert!(matches!(
        store.put(&s, "brand-new", "k", b"", None).await,
        Err(KvError::LimitReached(_))
    ));
    store.delete(&s, &used, "k").await.unwrap();
    store.put(&s, "brand-new", "k", b"", None).await.unwrap();
    // Another install has its own counts.
    store
        .put(
            &scope("tenant-limits", "install-other"),
            "x",
            "k",
            b"",
            None,
        )
        .await
        .unwrap();
}

/// Blobs: no overwrite with other bytes, missing = None.
pub async fn blob_conformance(store: Arc<dyn BlobStore>) {
    let key = "bundles/abc123/bundle.tar.zst";
    assert_eq!(store.get(key).await.unwrap(), None);
    assert!(!store.exists(key).await.unwrap());
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    store.put(key, &bytes).await.unwrap();
    store.put(key, &bytes).await.unwrap();
    assert_eq!(
        store.put(key, b"other bytes").await,
        Err(StoreError::Conflict(key.into()))
    );
    assert_eq!(store.get(key).await.unwrap().unwrap(), bytes);
    assert!(store.exists(key).await.unwrap());
    store.put("ui/abc123/index.html", b"").await.unwrap();
    assert_eq!(
        store.get("ui/abc123/index.html").await.unwrap().unwrap(),
        b""
    );
    blob_streaming_conformance(store.as_ref(), key, &bytes).await;
    store.delete(key).await.unwrap();
    store.delete(key).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), None);
}

/// Streamed reads into a file: the whole object with its sha256, or nothing at all
/// past the bound, or `Missing`.
async fn blob_streaming_conformance(store: &dyn BlobStore, key: &str, bytes: &[u8]) {
    use runtime_core::store::FileFetch;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let len = bytes.len() as u64;
    assert_eq!(
        store.get_to_file(key, &dest, len).await.unwrap(),
        FileFetch::Written {
            len,
            sha256: runtime_core::artifact::sha256(bytes),
        }
    );
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    // One byte over the bound: refused, and the file is gone (even the old one).
    match store.get_to_file(key, &dest, len - 1).await.unwrap() {
        FileFetch::TooLarge { size } => assert!(size >= len, "{size}"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(!dest.exists(), "a refused read leaves no file");
    assert_eq!(
        store
            .get_to_file("bundles/none/bundle.tar.zst", &dest, len)
            .await
            .unwrap(),
        FileFetch::Missing
    );
    assert!(!dest.exists());
}

/// A boxed future (the secret writer's result).
pub type BoxFut = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Secrets: one install's secrets are invisible to another; expiry survives the
/// round trip. `set` writes an install's bundle the backend's own way.
pub async fn secret_conformance(
    store: Arc<dyn SecretStore>,
    set: &(dyn Fn(String, String, SecretBundle) -> BoxFut + Sync),
) {
    let bundle = |pairs: &[(&str, &str)]| SecretBundle {
        values: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        expires_at: None,
    };
    set(
        "tenant-a".into(),
        "install-1".into(),
        bundle(&[("api_key", "a1"), ("greeting", "hi")]),
    )
    .await;
    set(
        "tenant-a".into(),
        "install-2".into(),
        bundle(&[("api_key", "a2")]),
    )
    .await;
    let expires = std::time::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    set(
        "tenant-b".into(),
        "install-1".into(),
        SecretBundle {
            expires_at: Some(expires),
            ..bundle(&[("api_key", "b1")])
        },
    )
    .await;
    let a1 = store.load("tenant-a", "install-1").await.unwrap().unwrap();
    assert_eq!(a1, bundle(&[("api_key", "a1"), ("greeting", "hi")]));
    let a2 = store.load("tenant-a", "install-2").await.unwrap().unwrap();
    assert_eq!(a2.values.get("api_key").map(String::as_str), Some("a2"));
    assert!(!a2.values.contains_key("greeting"));
    let b1 = store.load("tenant-b", "install-1").await.unwrap().unwrap();
    assert_eq!(b1.values.get("api_key").map(String::as_str), Some("b1"));
    assert_eq!(b1.expires_at, Some(expires));
    assert_eq!(store.load("tenant-b", "install-2").await.unwrap(), None);
    assert_eq!(store.load("tenant-c", "install-1").await.unwrap(), None);
}

/// Many parallel charges against a quota of N allow exactly N.
pub async fn quota_conformance(store: Arc<dyn QuotaStore>) {
    let now = std::time::SystemTime::now();
    let key = QuotaKey::at("tenant-q", "com.example.q", QuotaWindow::Minute, now);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let store = store.clone();
        let key = key.clone();
        tasks.spawn(async move { store.charge(&key, 15).await });
    }
    let results: Vec<QuotaCharge> = tasks
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut used: Vec<u64> = results
        .iter()
        .filter_map(|c| match c {
            QuotaCharge::Allowed { used } => Some(*used),
            QuotaCharge::Exhausted => None,
        })
        .collect();
    used.sort();
    assert_eq!(
        used,
        (1..=15).collect::<Vec<u64>>(),
        "each count handed out once"
    );
    assert_eq!(store.used(&key).await.unwrap(), 15);
    assert_eq!(
        store.charge(&key, 15).await.unwrap(),
        QuotaCharge::Exhausted
    );
    // A raised limit allows more; other windows, tenants and extensions are separate.
    assert_eq!(
        store.charge(&key, 16).await.unwrap(),
        QuotaCharge::Allowed { used: 16 }
    );
    let day = QuotaKey::at("tenant-q", "com.example.q", QuotaWindow::Day, now);
    assert_eq!(store.used(&day).await.unwrap(), 0);
    assert_eq!(
        store.charge(&day, 1).await.unwrap(),
        QuotaCharge::Allowed { used: 1 }
    );
    let other = QuotaKey::at("tenant-r", "com.example.q", QuotaWindow::Minute, now);
    assert_eq!(store.used(&other).await.unwrap(), 0);
    let next = QuotaKey {
        window_start: key.window_start + 60,
        ..key.clone()
    };
    assert_eq!(store.used(&next).await.unwrap(), 0);
    assert_eq!(
        store.charge(&other, 0).await.unwrap(),
        QuotaCharge::Exhausted
    );
}

/// Both windows of a request charged at once (`QuotaStore::charge_all`, as
/// `QuotaPolicy::admit` does): many parallel requests against a minute quota of
/// N are admitted exactly N times, and a refused request charges no window —
/// whether the minute or the day refused, and the refusal names it.
pub async fn quota_windows_conformance(store: Arc<dyn QuotaStore>) {
    let now = std::time::SystemTime::now();
    // (extension, minute limit, day limit, requests, admitted, refusing window)
    for (ext, per_minute, per_day, requests, admitted, refusing) in [
        ("com.example.minute", 15, 1000, 40, 15, 0),
        ("com.example.day", 1000, 7, 20, 7, 1),
    ] {
        let minute = QuotaKey::at("tenant-w", ext, QuotaWindow::Minute, now);
        let day = QuotaKey::at("tenant-w", ext, QuotaWindow::Day, now);
        let charges = vec![(minute.clone(), per_minute), (day.clone(), per_day)];
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..requests {
            let store = store.clone();
            let charges = charges.clone();
            tasks.spawn(async move { store.charge_all(&charges).await.unwrap() });
        }
        let decisions = tasks.join_all().await;
        let allowed = decisions
            .iter()
            .filter(|d| **d == QuotaDecision::Allowed)
            .count();
        assert_eq!(allowed, admitted, "{ext}: {decisions:?}");
        assert!(
            decisions.iter().all(|d| *d == QuotaDecision::Allowed
                || *d == QuotaDecision::Exhausted { index: refusing }),
            "{ext}: the refusal names its window: {decisions:?}"
        );
        assert_eq!(
            (
                store.used(&minute).await.unwrap(),
                store.used(&day).await.unwrap()
            ),
            (admitted as u64, admitted as u64),
            "{ext}: refused requests charged neither window"
        );
    }
}

/// Records queued through a [`BatchingExecutionLog`] by many concurrent requests
/// (several batches' worth) are all in `store` once the writer is flushed, as a
/// clean shutdown flushes it; `read` is how another process would read them
/// (`store` itself, or the same database opened afresh).
pub async fn batched_executions_conformance(
    store: Arc<dyn ExecutionLog>,
    read: Arc<dyn ExecutionLog>,
) {
    let batching = Arc::new(BatchingExecutionLog::new(store));
    let ttl = Duration::from_secs(3600);
    let base = 1_700_000_000_000u64;
    let n = 260u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let log = batching.clone();
        tasks.spawn(async move {
            log.record(
                &record("tenant-batch", "ext", &format!("req-{i:03}"), base + i),
                ttl,
            )
            .await
        });
    }
    for r in tasks.join_all().await {
        r.unwrap();
    }
    batching.flush().await.unwrap();
    let stored = read.recent("tenant-batch", "ext", 1000).await.unwrap();
    let ids: BTreeSet<String> = stored.into_iter().map(|r| r.request_id).collect();
    assert_eq!(ids.len() as u64, n, "every queued record is stored");
    // Reads through the batching log see its own writes without an explicit flush.
    batching
        .record(&record("tenant-batch", "ext", "req-last", base + n), ttl)
        .await
        .unwrap();
    let newest = batching.recent("tenant-batch", "ext", 1).await.unwrap();
    assert_eq!(newest[0].request_id, "req-last");
}

/// Claim races: exactly one `Claimed`; completion replays; tenants are separate.
pub async fn idempotency_conformance(store: Arc<dyn IdempotencyStore>) {
    let ttl = Duration::from_secs(60);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move { store.claim("tenant-a", "key-1", ttl).await.unwrap() });
    }
    let claims = tasks.join_all().await;
    assert_eq!(
        claims.iter().filter(|c| **c == Claim::Claimed).count(),
        1,
        "{claims:?}"
    );
    assert!(
        claims
            .iter()
            .all(|c| *c == Claim::Claimed || *c == Claim::InProgress)
    );
    // The same key of another tenant is its own.
    assert_eq!(
        store.claim("tenant-b", "key-1", ttl).await.unwrap(),
        Claim::Claimed
    );
    store
        .complete("tenant-a", "key-1", b"{\"status\":200}", ttl)
        .await
        .unwrap();
    assert_eq!(
        store.claim("tenant-a", "key-1", ttl).await.unwrap(),
        Claim::Completed(b"{\"status\":200}".to_vec())
    );
    // Releasing a completed key keeps it; releasing a claim frees it.
    store.release("tenant-a", "key-1").await.unwrap();
    assert!(matches!(
        store.claim("tenant-a", "key-1", ttl).await.unwrap(),
        Claim::Completed(_)
    ));
    store.release("tenant-b", "key-1").await.unwrap();
    assert_eq!(
        store.claim("tenant-b", "key-1", ttl).await.unwrap(),
        Claim::Claimed
    );
    store.release("tenant-a", "never-claimed").await.unwrap();
    // A large (compressible) response, like a 1 MiB JSON envelope, round-trips.
    let big: Vec<u8> = b"{\"body_b64\":\"QUJD\"}".repeat(50_000);
    assert_eq!(
        store.claim("tenant-a", "big", ttl).await.unwrap(),
        Claim::Claimed
    );
    store.complete("tenant-a", "big", &big, ttl).await.unwrap();
    assert_eq!(
        store.claim("tenant-a", "big", ttl).await.unwrap(),
        Claim::Completed(big)
    );
    // A claim whose holder vanished lapses.
    assert_eq!(
        store
            .claim("tenant-a", "lapsing", Duration::from_millis(1))
            .await
            .unwrap(),
        Claim::Claimed
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.claim("tenant-a", "lapsing", ttl).await.unwrap(),
        Claim::Claimed
    );
}

fn record(tenant: &str, ext: &str, request_id: &str, started_at_ms: u64) -> ExecutionRecord {
    ExecutionRecord {
        request_id: request_id.into(),
        tenant: tenant.into(),
        extension: ext.into(),
        install_id: Some("install-1".into()),
        version: Some("1.0.0".into()),
        content_hash: None,
        started_at_ms,
        duration_ms: 12,
        status: 200,
        outcome: "ok".into(),
        error: None,
    }
}

/// Records come back newest first, per tenant and extension.
pub async fn executions_conformance(store: Arc<dyn ExecutionLog>) {
    let ttl = Duration::from_secs(3600);
    let base = 1_700_000_000_000u64;
    for i in 0..5 {
        store
            .record(
                &record("tenant-a", "ext", &format!("req-{i}"), base + i),
                ttl,
            )
            .await
            .unwrap();
    }
    let mut failed = record("tenant-a", "ext", "req-failed", base + 10);
    failed.status = 504;
    failed.outcome = "timeout".into();
    failed.error = Some("timeout: deadline".into());
    failed.install_id = None;
    store.record(&failed, ttl).await.unwrap();
    store
        .record(&record("tenant-b", "ext", "req-b", base + 20), ttl)
        .await
        .unwrap();
    store
        .record(&record("tenant-a", "other-ext", "req-o", base + 30), ttl)
        .await
        .unwrap();
    let recent = store.recent("tenant-a", "ext", 3).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["req-failed", "req-4", "req-3"]);
    assert_eq!(recent[0], failed);
    assert_eq!(store.recent("tenant-a", "ext", 100).await.unwrap().len(), 6);
    assert_eq!(store.recent("tenant-c", "ext", 100).await.unwrap(), vec![]);
}

/// A version of `ext` (no capabilities beyond storage and secrets, one artifact)
/// for tests of registry behaviour outside the conformance suite.
pub fn sample_version(ext: &str, v: &str) -> VersionRecord {
    version(ext, v, &format!("{ext}@{v}"))
}

fn version(ext: &str, version: &str, seed: &str) -> VersionRecord {
    let content = ContentHash::of(seed.as_bytes());
    VersionRecord {
        extension_id: ext.into(),
        version: version.into(),
        publisher: Some("Example".into()),
        content_hash: content,
        manifest_json: format!(
            r#"{{"name":"{ext}","version":"{version}","runtime":"wasm-js@1","capabilities":["cap:storage.kv","cap:secrets.get"]}}"#
        ),
        bundle_size: 1234,
        signer_key_id: "key-1".into(),
        signature_json: "{}".into(),
        artifacts: vec![ArtifactRef {
            key: ArtifactKey {
                content,
                target: Target::host(),
                fingerprint: "fp1".into(),
            },
            sha256: [7; 32],
            size: 99,
            stored: Some(StoredObject {
                encoding: Encoding::Zstd,
                sha256: [8; 32],
                size: 33,
            }),
        }],
        published_at: 1_700_000_000,
    }
}

/// Registry round trips, conflicts and installs.
pub async fn registry_conformance(reg: Arc<dyn Registry>) {
    let v1 = version("com.example.a", "1.0.0", "a-1");
    let v2 = version("com.example.a", "1.10.0", "a-2");
    let v3 = version("com.example.a", "1.2.0", "a-3");
    let b1 = version("com.example.b", "0.1.0", "b-1");
    for v in [&v1, &v2, &v3, &b1] {
        assert_eq!(reg.register_version(v).await.unwrap(), Registered::Created);
    }
    assert_eq!(
        reg.register_version(&v1).await.unwrap(),
        Registered::Unchanged
    );
    let taken = version("com.example.a", "1.0.0", "other bytes");
    assert!(matches!(
        reg.register_version(&taken).await,
        Err(RegistryError::VersionConflict { .. })
    ));
    let reused = version("com.example.c", "1.0.0", "a-1");
    assert!(matches!(
        reg.register_version(&reused).await,
        Err(RegistryError::Invalid(_))
    ));
    assert_eq!(
        reg.get_version("com.example.a", "1.0.0").await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        reg.get_version("com.example.a", "9.9.9").await.unwrap(),
        None
    );
    assert_eq!(
        reg.version_by_hash(&v2.content_hash).await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        reg.version_by_hash(&ContentHash::of(b"unknown"))
            .await
            .unwrap(),
        None
    );
    let order: Vec<String> = reg
        .list_versions("com.example.a")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(
        order,
        ["1.10.0", "1.2.0", "1.0.0"],
        "newest first, by semver"
    );
    let exts: BTreeSet<String> = reg.list_extensions().await.unwrap().into_iter().collect();
    assert!(exts.contains("com.example.a") && exts.contains("com.example.b"));
    assert!(!exts.contains("com.example.c"));

    // Recompiles replace the artifact of a (target, fingerprint); new ones add.
    let mut art = v1.artifacts[0].clone();
    art.sha256 = [9; 32];
    // Replaced by a raw one (no encoding: as recorded before compression) and
    // back: the stored object's fields follow each record.
    art.stored = None;
    reg.put_artifact(&v1.content_hash, &art).await.unwrap();
    let got = reg.get_version("com.example.a", "1.0.0").await.unwrap();
    assert_eq!(got.unwrap().artifacts, vec![art.clone()]);
    art.stored = Some(StoredObject {
        encoding: Encoding::Zstd,
        sha256: [10; 32],
        size: 44,
    });
    reg.put_artifact(&v1.content_hash, &art).await.unwrap();
    let mut art2 = art.clone();
    art2.key.fingerprint = "fp2".into();
    art2.stored = None;
    reg.put_artifact(&v1.content_hash, &art2).await.unwrap();
    let got = reg
        .get_version("com.example.a", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.artifacts, vec![art.clone(), art2.clone()]);
    let mut stray = art.clone();
    stray.key.content = ContentHash::of(b"unknown");
    assert!(matches!(
        reg.put_artifact(&stray.key.content.clone(), &stray).await,
        Err(RegistryError::NotFound(_))
    ));

    // Installs: newest by default, effective grants, upgrade keeps the id.
    let install = reg
        .install(&InstallRequest {
            tenant: "tenant-a".into(),
            extension_id: "com.example.a".into(),
            version: None,
            grants: vec!["cap:storage.kv".into(), "cap:http.fetch".into()],
            config: BTreeMap::from([("mode".into(), "test".into())]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(install.version, "1.10.0");
    assert_eq!(install.content_hash, v2.content_hash);
    assert!(install.enabled);
    assert!(install.granted.has(Capability::StorageKv));
    assert!(
        !install.granted.has(Capability::HttpFetch),
        "not requested by the manifest"
    );
    assert!(
        !install.granted.has(Capability::SecretsGet),
        "not granted by the operator"
    );
    assert_eq!(install.config.get("mode").map(String::as_str), Some("test"));
    assert_eq!(
        reg.get_install("tenant-a", "com.example.a").await.unwrap(),
        Some(install.clone())
    );
    let disabled = reg
        .set_enabled("tenant-a", "com.example.a", false)
        .await
        .unwrap();
    assert!(!disabled.enabled);
    let upgraded = reg
        .install(&InstallRequest {
            tenant: "tenant-a".into(),
            extension_id: "com.example.a".into(),
            version: Some("1.0.0".into()),
            grants: vec!["cap:secrets.get".into()],
            config: BTreeMap::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(upgraded.install_id, install.install_id);
    assert_eq!(upgraded.version, "1.0.0");
    assert!(!upgraded.enabled, "re-installing keeps the enabled flag");
    assert!(upgraded.granted.has(Capability::SecretsGet));
    assert!(!upgraded.granted.has(Capability::StorageKv));
    assert!(matches!(
        reg.install(&InstallRequest {
            tenant: "tenant-a".into(),
            extension_id: "com.example.a".into(),
            version: Some("7.0.0".into()),
            ..Default::default()
        })
        .await,
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        reg.install(&InstallRequest {
            tenant: "tenant-a".into(),
            extension_id: "com.example.b".into(),
            grants: vec!["cap:made.up".into()],
            ..Default::default()
        })
        .await,
        Err(RegistryError::Invalid(_))
    ));
    // A quota override that is not a number is refused, not silently ignored.
    for (key, value) in [("quota.per_minute", "lots"), ("quota.per_day", "-1")] {
        match reg
            .install(&InstallRequest {
                tenant: "tenant-a".into(),
                extension_id: "com.example.b".into(),
                config: [(key.to_string(), value.to_string())].into(),
                ..Default::default()
            })
            .await
        {
            Err(RegistryError::Invalid(m)) => assert!(m.contains(key), "{m}"),
            other => panic!("{key}={value} accepted: {other:?}"),
        }
    }
    assert_eq!(
        reg.get_install("tenant-a", "com.example.b").await.unwrap(),
        None
    );
    let ib = reg
        .install(&InstallRequest {
            tenant: "tenant-a".into(),
            extension_id: "com.example.b".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_ne!(ib.install_id, install.install_id);
    let ob = reg
        .install(&InstallRequest {
            tenant: "tenant-b".into(),
            extension_id: "com.example.a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mine: Vec<String> = reg
        .list_installs("tenant-a")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.extension_id)
        .collect();
    assert_eq!(mine, ["com.example.a", "com.example.b"]);
    let of_a: Vec<String> = reg
        .list_installs_of("com.example.a")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.tenant)
        .collect();
    assert_eq!(of_a, ["tenant-a", "tenant-b"]);
    assert_eq!(
        reg.get_install("tenant-b", "com.example.b").await.unwrap(),
        None
    );
    reg.uninstall("tenant-b", "com.example.a").await.unwrap();
    assert!(matches!(
        reg.uninstall("tenant-b", "com.example.a").await,
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        reg.set_enabled("tenant-b", "com.example.a", true).await,
        Err(RegistryError::NotFound(_))
    ));
    assert_eq!(
        reg.get_install("tenant-b", "com.example.a").await.unwrap(),
        None
    );
    let _ = ob;
}

fn subscribing_version(ext: &str, version: &str, events: &str) -> VersionRecord {
    let mut v = self::version(ext, version, &format!("{ext}-{version}"));
    v.manifest_json = format!(
        r#"{{"name":"{ext}","version":"{version}","runtime":"wasm-js@1","events":{events}}}"#
    );
    v
}

async fn topic_subscribers(reg: &dyn Registry, tenant: &str, topic: &str) -> Vec<String> {
    reg.subscriptions(tenant, topic)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!((s.tenant.as_str(), s.topic.as_str()), (tenant, topic));
            format!("{} {}", s.extension_id, s.handler)
        })
        .collect()
}

/// Event subscriptions follow installs: written from the manifest on install,
/// replaced on upgrade, hidden while disabled, gone on uninstall; never another
/// tenant's.
pub async fn subscription_conformance(reg: Arc<dyn Registry>) {
    let x1 = subscribing_version(
        "com.example.subs-x",
        "1.0.0",
        r#"[{"topic":"ticket.created","handler":"/api/on-ticket"},
            {"topic":"ticket.created","handler":"/api/audit"},
            {"topic":"invoice.paid","handler":"/api/on-paid"}]"#,
    );
    let x2 = subscribing_version(
        "com.example.subs-x",
        "2.0.0",
        r#"[{"topic":"invoice.paid","handler":"/api/paid-v2"}]"#,
    );
    let y1 = subscribing_version(
        "com.example.subs-y",
        "1.0.0",
        r#"[{"topic":"ticket.created","handler":"/api/y"}]"#,
    );
    for v in [&x1, &x2, &y1] {
        reg.register_version(v).await.unwrap();
    }
    let install = |tenant: &str, ext: &str, version: &str| InstallRequest {
        tenant: tenant.into(),
        extension_id: ext.into(),
        version: Some(version.into()),
        ..Default::default()
    };
    let r = reg.as_ref();
    assert!(
        topic_subscribers(r, "sub-t1", "ticket.created")
            .await
            .is_empty()
    );
    reg.install(&install("sub-t1", "com.example.subs-x", "1.0.0"))
        .await
        .unwrap();
    reg.install(&install("sub-t1", "com.example.subs-y", "1.0.0"))
        .await
        .unwrap();
    reg.install(&install("sub-t2", "com.example.subs-y", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(
        topic_subscribers(r, "sub-t1", "ticket.created").await,
        [
            "com.example.subs-x /api/audit",
            "com.example.subs-x /api/on-ticket",
            "com.example.subs-y /api/y"
        ]
    );
    assert_eq!(
        topic_subscribers(r, "sub-t2", "ticket.created").await,
        ["com.example.subs-y /api/y"],
        "only the tenant's own installs"
    );
    assert!(
        topic_subscribers(r, "sub-t2", "invoice.paid")
            .await
            .is_empty()
    );
    assert!(
        topic_subscribers(r, "sub-t1", "Ticket.Created")
            .await
            .is_empty()
    );

    // Upgrading replaces the pairs with the new manifest's.
    reg.install(&install("sub-t1", "com.example.subs-x", "2.0.0"))
        .await
        .unwrap();
    assert_eq!(
        topic_subscribers(r, "sub-t1", "invoice.paid").await,
        ["com.example.subs-x /api/paid-v2"]
    );
    assert_eq!(
        topic_subscribers(r, "sub-t1", "ticket.created").await,
        ["com.example.subs-y /api/y"]
    );

    // Disabled installs receive nothing; enabling restores them.
    reg.set_enabled("sub-t1", "com.example.subs-x", false)
        .await
        .unwrap();
    assert!(
        topic_subscribers(r, "sub-t1", "invoice.paid")
            .await
            .is_empty()
    );
    reg.set_enabled("sub-t1", "com.example.subs-x", true)
        .await
        .unwrap();
    assert_eq!(
        topic_subscribers(r, "sub-t1", "invoice.paid").await,
        ["com.example.subs-x /api/paid-v2"]
    );

    reg.uninstall("sub-t1", "com.example.subs-x").await.unwrap();
    assert!(
        topic_subscribers(r, "sub-t1", "invoice.paid")
            .await
            .is_empty()
    );
    reg.uninstall("sub-t2", "com.example.subs-y").await.unwrap();
    assert!(
        topic_subscribers(r, "sub-t2", "ticket.created")
            .await
            .is_empty()
    );
    assert_eq!(
        topic_subscribers(r, "sub-t1", "ticket.created").await,
        ["com.example.subs-y /api/y"],
        "the other tenant's uninstall leaves this one alone"
    );
}

/// Host-app ids on installs (Alga's registry UUID and install UUID): kept,
/// found by the host extension id across tenants, unique per tenant, kept when an
/// upgrade names none, released on uninstall.
pub async fn host_id_conformance(reg: Arc<dyn Registry>) {
    let x = version("com.example.hostx", "1.0.0", "hx-1");
    let y = version("com.example.hosty", "1.0.0", "hy-1");
    for v in [&x, &y] {
        reg.register_version(v).await.unwrap();
    }
    let uuid = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a";
    let install = |tenant: &str, ext: &str, host_ext: Option<&str>, host_install: Option<&str>| {
        InstallRequest {
            tenant: tenant.into(),
            extension_id: ext.into(),
            host_extension_id: host_ext.map(String::from),
            host_install_id: host_install.map(String::from),
            ..Default::default()
        }
    };
    let a = reg
        .install(&install(
            "tenant-h1",
            "com.example.hostx",
            Some(uuid),
            Some("inst-1"),
        ))
        .await
        .unwrap();
    assert_eq!(a.host_extension_id.as_deref(), Some(uuid));
    assert_eq!(a.host_install_id.as_deref(), Some("inst-1"));
    assert!(a.answers_to("inst-1") && a.answers_to(&a.install_id) && !a.answers_to("inst-2"));
    assert_eq!(
        reg.get_install("tenant-h1", "com.example.hostx")
            .await
            .unwrap(),
        Some(a.clone())
    );
    // Another tenant may use the same host extension id (Alga's registry is global).
    let b = reg
        .install(&install(
            "tenant-h2",
            "com.example.hostx",
            Some(uuid),
            Some("inst-2"),
        ))
        .await
        .unwrap();
    let found: BTreeSet<String> = reg
        .list_installs_by_host_extension(uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.tenant)
        .collect();
    assert_eq!(
        found,
        BTreeSet::from(["tenant-h1".into(), "tenant-h2".into()])
    );
    assert!(
        reg.list_installs_by_host_extension("unknown")
            .await
            .unwrap()
            .is_empty()
    );
    // Within a tenant it names one extension only.
    assert!(matches!(
        reg.install(&install("tenant-h1", "com.example.hosty", Some(uuid), None))
            .await,
        Err(RegistryError::Invalid(_))
    ));
    assert!(
        reg.get_install("tenant-h1", "com.example.hosty")
            .await
            .unwrap()
            .is_none()
    );
    // An upgrade or re-grant that names no host ids keeps them.
    let kept = reg
        .install(&install("tenant-h1", "com.example.hostx", None, None))
        .await
        .unwrap();
    assert_eq!(kept.host_extension_id.as_deref(), Some(uuid));
    assert_eq!(kept.host_install_id.as_deref(), Some("inst-1"));
    assert_eq!(kept.install_id, a.install_id);
    // Ids that are not ids are refused before anything is written.
    assert!(matches!(
        reg.install(&install(
            "tenant-h3",
            "com.example.hostx",
            Some("a b"),
            None
        ))
        .await,
        Err(RegistryError::Invalid(_))
    ));
    // Uninstalling releases the id: the tenant may give it to another extension.
    reg.uninstall("tenant-h1", "com.example.hostx")
        .await
        .unwrap();
    let found: Vec<String> = reg
        .list_installs_by_host_extension(uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.tenant)
        .collect();
    assert_eq!(found, vec![b.tenant.clone()]);
    let y_install = reg
        .install(&install("tenant-h1", "com.example.hosty", Some(uuid), None))
        .await
        .unwrap();
    assert_eq!(y_install.host_extension_id.as_deref(), Some(uuid));
}
