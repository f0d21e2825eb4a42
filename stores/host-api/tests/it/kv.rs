//! Guest storage kept by the host app: the shared paging and limits suites as they
//! are, and the rest of `kv_conformance` case by case, with what Alga's API cannot
//! express (create-only puts, values over 49,149 bytes, the tenant) refused.

use std::sync::Arc;

use runtime_core::store::{KvError, KvLimits, KvScope, KvStore, StoreError};
use serde_json::json;
use stores_host_api::{HostApiKvStore, InternalApi, VALUE_MAX_BYTES};
use test_support::alga_host_stub::{AlgaHostStub, StubInstall, StubQuota};
use test_support::conformance::{kv_limits_conformance, kv_paging_conformance};

use crate::{TOKEN, api, settings};

fn scope(tenant: &str, install: &str) -> KvScope {
    KvScope {
        tenant: tenant.into(),
        install_id: install.into(),
    }
}

fn stub_with(installs: &[(&str, &str)]) -> AlgaHostStub {
    let stub = AlgaHostStub::start(TOKEN);
    for (install, tenant) in installs {
        stub.add_install(StubInstall::new(install, tenant));
    }
    stub
}

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
        after = Some(page.entries.last().unwrap().key.clone());
    }
}

#[tokio::test]
async fn the_shared_paging_suite_holds_over_algas_storage() {
    let stub = stub_with(&[("install-page", "tenant-page")]);
    kv_paging_conformance(Arc::new(HostApiKvStore::new(api(&stub)))).await;
}

#[tokio::test]
async fn the_shared_limits_suite_holds_over_algas_storage() {
    let stub = stub_with(&[
        ("install-limits", "tenant-limits"),
        ("install-other", "tenant-limits"),
    ]);
    // The count limits are Alga's to decide; the store reports the same ones.
    stub.set_quota(StubQuota {
        namespaces: 2,
        keys_per_namespace: 5,
        ..StubQuota::default()
    });
    let store = HostApiKvStore::with_limits(
        api(&stub),
        KvLimits {
            namespaces_per_install: 2,
            keys_per_namespace: 5,
            ..KvLimits::default()
        },
    );
    kv_limits_conformance(Arc::new(store)).await;
}

/// `kv_conformance`'s cases, in its order, over what Alga's API expresses.
#[tokio::test]
async fn revisions_conflicts_values_and_deletes_as_our_stores_have_them() {
    let stub = stub_with(&[("install-1", "tenant-a"), ("install-2", "tenant-a")]);
    let store = HostApiKvStore::new(api(&stub));
    let a = scope("tenant-a", "install-1");

    // Revisions start at 1 and grow by 1; a stale or wrong revision is a conflict.
    assert_eq!(
        store
            .put(&a, "ns", "k", b"one", None)
            .await
            .unwrap()
            .revision,
        1
    );
    assert_eq!(
        store.put(&a, "ns", "k", b"x", Some(7)).await,
        Err(KvError::Conflict)
    );
    let e = store.put(&a, "ns", "k", b"two", Some(1)).await.unwrap();
    assert_eq!((e.revision, e.value.as_slice()), (2, &b"two"[..]));
    assert_eq!(
        store
            .put(&a, "ns", "k", b"three", None)
            .await
            .unwrap()
            .revision,
        3
    );
    let got = store.get(&a, "ns", "k").await.unwrap().unwrap();
    assert_eq!((got.revision, got.value), (3, b"three".to_vec()));
    assert_eq!(
        store.put(&a, "ns", "fresh", b"x", Some(1)).await,
        Err(KvError::Conflict)
    );

    // Create-only (`Some(0)`) has no atomic form in Alga's API: refused, unsent,
    // on an existing key and on a missing one alike.
    let sent = stub.requests().len();
    for key in ["k", "fresh"] {
        assert!(matches!(
            store.put(&a, "ns", key, b"x", Some(0)).await,
            Err(KvError::Invalid(m)) if m.contains("revision 0")
        ));
    }
    assert_eq!(stub.requests().len(), sent);
    assert_eq!(store.get(&a, "ns", "fresh").await.unwrap(), None);

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
    store.put(&a, "ns", "fresh", b"x", None).await.unwrap();
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

    // Invalid names are refused before anything is sent.
    let sent = stub.requests().len();
    for (ns, key) in [
        ("ns", "a/b"),
        ("", "k"),
        (&*"n".repeat(129), "k"),
        ("ns", &*"k".repeat(257)),
        ("ns", ""),
    ] {
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
    // Values: at most what fits Alga's 64 KiB of JSON as base64.
    assert!(matches!(
        store
            .put(&a, "ns", "k", &vec![0; VALUE_MAX_BYTES + 1], None)
            .await,
        Err(KvError::Invalid(_))
    ));
    assert_eq!(stub.requests().len(), sent);
    assert_eq!(store.limits().value_max_bytes, VALUE_MAX_BYTES);
    let (ns128, key256) = ("n".repeat(128), "k".repeat(256));
    let big = vec![7; VALUE_MAX_BYTES];
    assert_eq!(
        store
            .put(&a, &ns128, &key256, &big, None)
            .await
            .unwrap()
            .value
            .len(),
        VALUE_MAX_BYTES
    );
    assert_eq!(
        store.get(&a, &ns128, &key256).await.unwrap().unwrap().value,
        big
    );
    store.delete(&a, &ns128, &key256).await.unwrap();

    // Another install (of the same tenant) sees nothing of this one's.
    let other = scope("tenant-a", "install-2");
    assert_eq!(store.get(&other, "ns", "k").await.unwrap(), None);
    assert!(list_all(&store, &other, "ns").await.is_empty());
    assert_eq!(
        store.put(&other, "ns", "k", b"theirs", Some(1)).await,
        Err(KvError::Conflict)
    );
    store.delete(&other, "ns", "k").await.unwrap();
    store.put(&other, "ns", "only-2", b"2", None).await.unwrap();
    assert_eq!(store.get(&a, "ns", "only-2").await.unwrap(), None);
    assert_eq!(list_all(&store, &other, "ns").await, vec!["only-2"]);
    assert_eq!(
        store.get(&a, "ns", "k").await.unwrap().unwrap().value,
        b"three"
    );
    assert_eq!(
        list_all(&store, &a, "ns").await,
        vec!["bin", "empty", "fresh", "k"]
    );

    // Concurrent writers with the same revision: exactly one wins.
    let store = Arc::new(store);
    let r = store.get(&a, "ns", "k").await.unwrap().unwrap().revision;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12u8 {
        let (store, a) = (store.clone(), a.clone());
        tasks.spawn(async move { store.put(&a, "ns", "k", &[i], Some(r)).await });
    }
    let results = tasks.join_all().await;
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
}

#[tokio::test]
async fn values_are_stored_as_algas_runner_stores_them_and_read_by_its_rules() {
    let stub = stub_with(&[("5ca1ab1e-0000-4000-8000-0000000000aa", "t")]);
    let install = "5ca1ab1e-0000-4000-8000-0000000000aa";
    let store = HostApiKvStore::new(api(&stub));
    let s = scope("t", install);
    store
        .put(&s, "ns", "bytes", &[0, 1, 255], None)
        .await
        .unwrap();
    assert_eq!(
        stub.stored(install, "ns", "bytes").unwrap(),
        json!({"value": "AAH/", "metadata": {"encoding": "base64-bytes"}, "revision": 1})
    );
    // The internal route names Alga's install, and carries the runner's credential.
    let seen = stub.requests().pop().unwrap();
    assert_eq!(
        seen.path,
        format!("/api/internal/ext-storage/install/{install}")
    );
    assert_eq!(seen.header("x-runner-auth"), Some(TOKEN));

    // What other writers left (Alga's UI, its public API) reads as Alga's runner reads it.
    for (key, value, metadata, bytes) in [
        (
            "plain",
            json!("hello world"),
            json!({}),
            &b"hello world"[..],
        ),
        ("b64-looking", json!("aGk="), json!({}), b"hi"),
        ("wrapped", json!({"_bytes_b64": "aGk="}), json!({}), b"hi"),
        (
            "object",
            json!({"a": 1}),
            json!({"tag": "x"}),
            br#"{"a":1}"#,
        ),
        ("number", json!(42), json!({}), b"42"),
    ] {
        stub.put_raw(install, "ns", key, value, metadata);
        let e = store.get(&s, "ns", key).await.unwrap().unwrap();
        assert_eq!(e.value, bytes, "{key}");
    }
    let listed = store.list(&s, "ns", None).await.unwrap();
    assert_eq!(listed.entries.len(), 6);
    assert!(!listed.more);
    // A value marked base64 that is not base64 is an error, never guessed bytes.
    stub.put_raw(
        install,
        "ns",
        "broken",
        json!("%%%"),
        json!({"encoding": "base64-bytes"}),
    );
    assert!(matches!(
        store.get(&s, "ns", "broken").await,
        Err(KvError::Store(StoreError::Internal(_)))
    ));
}

#[tokio::test]
async fn pages_of_large_values_fit_the_response_cap() {
    let stub = stub_with(&[("i", "t")]);
    let mut settings = settings(&stub);
    // Four values at the limit fit, a full page does not.
    settings.response_body_max = 300_000;
    let store = HostApiKvStore::new(Arc::new(InternalApi::new(&settings, "tests").unwrap()));
    let s = scope("t", "i");
    let keys: Vec<String> = (0..10).map(|i| format!("big-{i:02}")).collect();
    for k in &keys {
        store
            .put(&s, "ns", k, &vec![b'x'; VALUE_MAX_BYTES], None)
            .await
            .unwrap();
    }
    let page = store.list(&s, "ns", None).await.unwrap();
    assert!(page.more && !page.entries.is_empty() && page.entries.len() < 10);
    assert!(
        page.entries
            .iter()
            .all(|e| e.value.len() == VALUE_MAX_BYTES)
    );
    assert_eq!(list_all(&store, &s, "ns").await, keys);
}

#[tokio::test]
async fn refusals_of_the_host_app_are_typed_and_name_their_cause() {
    let stub = stub_with(&[("i", "t")]);
    stub.add_install(StubInstall::new("off", "t").disabled());
    let store = HostApiKvStore::new(api(&stub));
    // An install the host app does not know: not "no entry", an error naming it.
    let e = store
        .get(&scope("t", "inst_0123"), "ns", "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, KvError::Store(StoreError::Internal(m)) if m.contains("inst_0123")),
        "{e:?}"
    );
    let e = store
        .put(&scope("t", "off"), "ns", "k", b"", None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, KvError::Store(StoreError::Internal(_))),
        "{e:?}"
    );
    // A wrong credential.
    let mut wrong = settings(&stub);
    wrong.bridge_token = Some("nope".into());
    let store = HostApiKvStore::new(Arc::new(InternalApi::new(&wrong, "tests").unwrap()));
    let e = store
        .put(&scope("t", "i"), "ns", "k", b"", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, KvError::Store(StoreError::Internal(m)) if m.contains("401")),
        "{e:?}"
    );
    assert!(stub.stored("i", "ns", "k").is_none());
}
