//! The host app going away and coming back: every failure is typed `Unavailable`
//! (execute answers 503 `backend_unavailable`), the very same store works again once
//! the host app is back, and every acknowledged write is read back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use runtime_core::store::{
    KvError, KvScope, KvStore, ScheduleStore, ScheduleStoreError, StoreError,
};
use stores_host_api::{HostApiKvStore, HostApiScheduleStore, InternalApi};
use test_support::alga_host_stub::{AlgaHostStub, StubInstall};
use test_support::schedule_conformance::schedule;

use crate::{TOKEN, api, settings};

fn unavailable_kv(r: &Result<impl std::fmt::Debug, KvError>) -> bool {
    matches!(r, Err(KvError::Store(StoreError::Unavailable(_))))
}

#[tokio::test]
async fn an_outage_fails_typed_and_loses_no_acknowledged_write() {
    let stub = AlgaHostStub::start(TOKEN);
    stub.add_install(StubInstall::new("i", "t").endpoint("POST", "/api/tick"));
    let kv = Arc::new(HostApiKvStore::new(api(&stub)));
    let s = KvScope {
        tenant: "t".into(),
        install_id: "i".into(),
    };

    // Writers run through: before, during and after the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..3 {
        let (kv, s, stop) = (kv.clone(), s.clone(), stop.clone());
        writers.spawn(async move {
            let mut acked = BTreeMap::new();
            let mut refused = 0;
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) || n < 20 {
                let key = format!("w{w}-{n:04}");
                let value = format!("{w}:{n}").into_bytes();
                let r = kv.put(&s, "ns", &key, &value, None).await;
                match &r {
                    Ok(e) => {
                        acked.insert(key, (value, e.revision));
                    }
                    _ if unavailable_kv(&r) => refused += 1,
                    other => panic!("an outage must read as unavailable: {other:?}"),
                }
                n += 1;
                tokio::task::yield_now().await;
            }
            (acked, refused)
        });
    }
    // Let some writes land, then take the host app away.
    while stub.requests().len() < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stub.set_failing(true);
    let at_outage = stub.requests().len();
    while stub.requests().len() < at_outage + 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Reads and schedules fail the same way meanwhile.
    assert!(unavailable_kv(&kv.get(&s, "ns", "w0-0000").await));
    assert!(unavailable_kv(&kv.list(&s, "ns", None).await));
    let sched = HostApiScheduleStore::new(api(&stub));
    let e = sched
        .create(&schedule("t", "i", "during"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ScheduleStoreError::Store(StoreError::Unavailable(_))),
        "{e:?}"
    );
    assert_eq!(e.code(), "backend_unavailable");
    stub.set_failing(false);
    stop.store(true, Ordering::SeqCst);
    let results = writers.join_all().await;

    // Nothing failed for good, every acknowledged write is there, and the outage
    // refused some.
    let refused: u32 = results.iter().map(|(_, r)| r).sum();
    assert!(refused > 0, "the outage refused no write");
    for (acked, _) in &results {
        assert!(!acked.is_empty());
        for (key, (value, revision)) in acked {
            let e = kv.get(&s, "ns", key).await.unwrap().unwrap();
            assert_eq!((&e.value, e.revision), (value, *revision), "{key}");
        }
    }
    // The schedule refused during the outage was never made; now it is.
    assert!(sched.get("t", "i", "during").await.unwrap().is_none());
    sched.create(&schedule("t", "i", "during")).await.unwrap();
}

#[tokio::test]
async fn a_host_app_too_slow_to_answer_is_unavailable_too() {
    let stub = AlgaHostStub::start(TOKEN);
    stub.add_install(StubInstall::new("i", "t"));
    let mut settings = settings(&stub);
    settings.timeout = Duration::from_millis(200);
    let kv = HostApiKvStore::new(Arc::new(InternalApi::new(&settings, "tests").unwrap()));
    let s = KvScope {
        tenant: "t".into(),
        install_id: "i".into(),
    };
    kv.put(&s, "ns", "before", b"1", None).await.unwrap();
    stub.set_delay(Duration::from_secs(2));
    let r = kv.put(&s, "ns", "late", b"2", None).await;
    assert!(unavailable_kv(&r), "{r:?}");
    stub.set_delay(Duration::ZERO);
    // A write that timed out may still have landed (the caller was told it failed);
    // the acknowledged one is there, and the store works again.
    assert_eq!(
        kv.get(&s, "ns", "before").await.unwrap().unwrap().value,
        b"1"
    );
    kv.put(&s, "ns", "after", b"3", None).await.unwrap();
    assert_eq!(
        kv.get(&s, "ns", "after").await.unwrap().unwrap().value,
        b"3"
    );
}

#[tokio::test]
async fn a_host_app_that_is_not_there_is_unavailable() {
    // Nothing listens on the port of a stopped listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = runtime_core::host::HostApiSettings {
        base: Some(format!("http://127.0.0.1:{port}")),
        bridge_token: Some(TOKEN.into()),
        ..Default::default()
    };
    let api = Arc::new(InternalApi::new(&settings, "tests").unwrap());
    let s = KvScope {
        tenant: "t".into(),
        install_id: "i".into(),
    };
    let kv = HostApiKvStore::new(api.clone());
    assert!(unavailable_kv(&kv.put(&s, "ns", "k", b"", None).await));
    let e = HostApiScheduleStore::new(api)
        .list("t", "i")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "backend_unavailable");
}
