//! Schedules kept by the host app: `schedules_conformance`'s cases over what Alga's
//! API expresses (ids ride in Alga's names; the extension id, the creation time and
//! the firing are Alga's), and Alga's own refusals as typed errors.

use std::sync::Arc;

use runtime_core::schedule::{MAX_PER_INSTALL, Schedule};
use runtime_core::store::{ScheduleStore, ScheduleStoreError, StoreError};
use stores_host_api::HostApiScheduleStore;
use test_support::alga_host_stub::{AlgaHostStub, StubInstall};
use test_support::schedule_conformance::schedule;

use crate::{TOKEN, api};

fn install(id: &str, tenant: &str) -> StubInstall {
    StubInstall::new(id, tenant)
        .endpoint("POST", "/api/tick")
        .endpoint("GET", "/api/status")
        .endpoint("GET", "/api/items/:id")
}

fn stub() -> (AlgaHostStub, Arc<HostApiScheduleStore>) {
    let stub = AlgaHostStub::start(TOKEN);
    for (i, t) in [("i1", "t1"), ("i2", "t1"), ("i", "t#x"), ("x#i", "t")] {
        stub.add_install(install(i, t));
    }
    let store = Arc::new(HostApiScheduleStore::new(api(&stub)));
    (stub, store)
}

/// What Alga gives back of what we stored: everything but the extension id (kept
/// with Alga's install, not its schedule) and the creation time (Alga's own).
fn as_kept(s: &Schedule, created_at: i64) -> Schedule {
    Schedule {
        extension_id: String::new(),
        created_at,
        ..s.clone()
    }
}

fn ids(list: &[Schedule]) -> Vec<&str> {
    list.iter().map(|s| s.id.as_str()).collect()
}

#[tokio::test]
async fn schedules_round_trip_by_our_ids_as_our_stores_keep_them() {
    let (stub, store) = stub();
    // Round trip.
    let a = schedule("t1", "i1", "a");
    store.create(&a).await.unwrap();
    let got = store.get("t1", "i1", "a").await.unwrap().unwrap();
    assert!(got.created_at >= 1_735_689_600, "Alga's creation time");
    assert_eq!(got, as_kept(&a, got.created_at));
    assert_eq!(
        store.create(&a).await.unwrap_err(),
        ScheduleStoreError::Exists("a".into())
    );
    let mut b = schedule("t1", "i1", "b");
    b.payload = None;
    b.name = None;
    store.create(&b).await.unwrap();
    assert_eq!(ids(&store.list("t1", "i1").await.unwrap()), ["a", "b"]);
    // In Alga the id rides in the name.
    let names: Vec<_> = stub
        .schedules("i1")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a name [alga-lambda:a]", "[alga-lambda:b]"]);

    // Update replaces the whole schedule; a missing one is NotFound.
    let mut a2 = a.clone();
    a2.cron = "0 3 * * *".into();
    a2.method = "GET".into();
    a2.path = "/api/status".into();
    a2.enabled = false;
    a2.payload = None;
    a2.name = Some("renamed".into());
    store.update(&a2).await.unwrap();
    let got = store.get("t1", "i1", "a").await.unwrap().unwrap();
    assert_eq!(got, as_kept(&a2, got.created_at));
    assert_eq!(
        store.update(&schedule("t1", "i1", "zz")).await.unwrap_err(),
        ScheduleStoreError::NotFound("zz".into())
    );

    // Installs never see or touch each other's schedules.
    let x = schedule("t#x", "i", "s");
    let y = schedule("t", "x#i", "s");
    store.create(&x).await.unwrap();
    store.create(&y).await.unwrap();
    assert_eq!(ids(&store.list("t#x", "i").await.unwrap()), ["s"]);
    assert_eq!(store.list("t", "x#i").await.unwrap()[0].install_id, "x#i");
    assert_eq!(store.get("t1", "i2", "a").await.unwrap(), None);
    assert_eq!(
        store.delete("t1", "i2", "a").await.unwrap_err(),
        ScheduleStoreError::NotFound("a".into())
    );
    let mut foreign = a.clone();
    foreign.install_id = "i2".into();
    assert_eq!(
        store.update(&foreign).await.unwrap_err(),
        ScheduleStoreError::NotFound("a".into())
    );

    // The host app fires them: nothing here lists any for firing.
    assert!(store.list_enabled().await.unwrap().is_empty());

    // Delete one.
    store.delete("t1", "i1", "b").await.unwrap();
    assert_eq!(
        store.delete("t1", "i1", "b").await.unwrap_err(),
        ScheduleStoreError::NotFound("b".into())
    );
    assert_eq!(ids(&store.list("t1", "i1").await.unwrap()), ["a"]);

    // 50 per install: 60 concurrent creators, exactly 49 more succeed.
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create(&schedule("t1", "i1", &format!("c{n:02}")))
                .await
        }));
    }
    let (mut ok, mut quota) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(ScheduleStoreError::QuotaExceeded) => quota += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(
        (ok, quota),
        (MAX_PER_INSTALL - 1, 60 - (MAX_PER_INSTALL - 1))
    );
    assert_eq!(store.list("t1", "i1").await.unwrap().len(), MAX_PER_INSTALL);
    store.create(&schedule("t1", "i2", "a")).await.unwrap();
    let winner = store.list("t1", "i1").await.unwrap()[1].id.clone();
    assert!(winner.starts_with('c'));
    store.delete("t1", "i1", &winner).await.unwrap();
    store.create(&schedule("t1", "i1", "again")).await.unwrap();
    assert_eq!(
        store
            .create(&schedule("t1", "i1", "one-more"))
            .await
            .unwrap_err(),
        ScheduleStoreError::QuotaExceeded
    );

    // Deleting an install's schedules takes exactly those.
    let gone = store.delete_install("t1", "i1").await.unwrap();
    assert_eq!(gone.len(), MAX_PER_INSTALL);
    assert!(store.list("t1", "i1").await.unwrap().is_empty());
    assert_eq!(ids(&store.list("t1", "i2").await.unwrap()), ["a"]);
    assert!(store.delete_install("t1", "i1").await.unwrap().is_empty());
}

#[tokio::test]
async fn schedules_made_by_algas_own_runner_keep_their_ids() {
    let (stub, store) = stub();
    let uuid = stub.add_raw_schedule("i1", ("POST", "/api/tick"), "0 * * * *", Some("Hourly"));
    let listed = store.list("t1", "i1").await.unwrap();
    assert_eq!(ids(&listed), [uuid.as_str()]);
    assert_eq!(listed[0].name.as_deref(), Some("Hourly"));
    assert_eq!(
        (listed[0].method.as_str(), listed[0].path.as_str()),
        ("POST", "/api/tick")
    );
    // Read, changed and deleted by that id, as on Alga's runner.
    let mut s = store.get("t1", "i1", &uuid).await.unwrap().unwrap();
    s.cron = "30 * * * *".into();
    s.name = Some("Half past".into());
    store.update(&s).await.unwrap();
    // Changed here, it carries its id in its name from now on: the same id.
    let got = store.get("t1", "i1", &uuid).await.unwrap().unwrap();
    assert_eq!(
        (got.cron.as_str(), got.name.as_deref()),
        ("30 * * * *", Some("Half past"))
    );
    store.delete("t1", "i1", &uuid).await.unwrap();
    assert!(stub.schedules("i1").is_empty());
}

#[tokio::test]
async fn what_alga_refuses_comes_back_typed() {
    let (stub, store) = stub();
    let refused = |field: &'static str| move |e: ScheduleStoreError| matches!(e, ScheduleStoreError::Invalid { field: f, .. } if f == field);
    // Alga's rules, stricter than ours in places: both day fields, scalar payloads.
    let mut s = schedule("t1", "i1", "days");
    s.cron = "0 3 1 * 1".into();
    assert!(refused("cron")(store.create(&s).await.unwrap_err()));
    let mut s = schedule("t1", "i1", "zone");
    s.timezone = "Mars/Olympus_Mons".into();
    assert!(refused("timezone")(store.create(&s).await.unwrap_err()));
    let mut s = schedule("t1", "i1", "scalar");
    s.payload = Some("7".into());
    assert!(refused("payload")(store.create(&s).await.unwrap_err()));
    let mut s = schedule("t1", "i1", "params");
    s.method = "GET".into();
    s.path = "/api/items/:id".into();
    assert!(refused("endpoint")(store.create(&s).await.unwrap_err()));
    // A time zone Alga knows is kept.
    let mut s = schedule("t1", "i1", "berlin");
    s.timezone = "Europe/Berlin".into();
    store.create(&s).await.unwrap();
    assert_eq!(
        store
            .get("t1", "i1", "berlin")
            .await
            .unwrap()
            .unwrap()
            .timezone,
        "Europe/Berlin"
    );

    // Names: the tag takes room of Alga's 128; checked before sending.
    let sent = stub.requests().len();
    let mut s = schedule("t1", "i1", "long");
    s.name = Some("n".repeat(120));
    assert!(refused("name")(store.create(&s).await.unwrap_err()));
    // Ids we could not find again in a name.
    let s = schedule("t1", "i1", "with space");
    assert!(refused("id")(store.create(&s).await.unwrap_err()));
    assert_eq!(stub.requests().len(), sent);

    // Alga's rate limit on schedule changes: retry later.
    stub.set_schedule_rate_limit(Some(1));
    store.create(&schedule("t1", "i2", "first")).await.unwrap();
    let e = store
        .create(&schedule("t1", "i2", "second"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ScheduleStoreError::Store(StoreError::Unavailable(_))),
        "{e:?}"
    );
    assert_eq!(e.code(), "backend_unavailable");
    stub.set_schedule_rate_limit(None);

    // An install the host app does not know.
    let e = store.list("t1", "inst_0123").await.unwrap_err();
    assert!(
        matches!(&e, ScheduleStoreError::Store(StoreError::Internal(m)) if m.contains("inst_0123")),
        "{e:?}"
    );
}
