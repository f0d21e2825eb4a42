//! The schedule store's conformance suite: every backend (memory, SQLite,
//! DynamoDB on moto, DynamoDB mirrored to EventBridge Scheduler on moto) runs
//! exactly these assertions.

use std::sync::Arc;

use runtime_core::schedule::{MAX_PER_INSTALL, Schedule};
use runtime_core::store::{ScheduleStore, ScheduleStoreError};

/// A schedule of (tenant, install) with id `id`.
pub fn schedule(tenant: &str, install: &str, id: &str) -> Schedule {
    Schedule {
        id: id.into(),
        tenant: tenant.into(),
        install_id: install.into(),
        extension_id: "com.example.sched".into(),
        method: "POST".into(),
        path: "/api/tick".into(),
        cron: "*/15 9-17 * * 1-5".into(),
        timezone: "UTC".into(),
        name: Some(format!("{id} name")),
        payload: Some(r#"{"n":1}"#.into()),
        enabled: true,
        created_at: 1_700_000_000,
    }
}

fn ids(list: &[Schedule]) -> Vec<&str> {
    list.iter().map(|s| s.id.as_str()).collect()
}

pub async fn schedules_conformance(store: Arc<dyn ScheduleStore>) {
    // Round trip.
    let a = schedule("t1", "i1", "a");
    store.create(&a).await.unwrap();
    assert_eq!(store.get("t1", "i1", "a").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.create(&a).await.unwrap_err(),
        ScheduleStoreError::Exists("a".into())
    );
    let mut b = schedule("t1", "i1", "b");
    b.payload = None;
    b.name = None;
    store.create(&b).await.unwrap();
    assert_eq!(ids(&store.list("t1", "i1").await.unwrap()), ["a", "b"]);

    // Update replaces the whole schedule; a missing one is NotFound.
    let mut a2 = a.clone();
    a2.cron = "0 3 * * *".into();
    a2.method = "GET".into();
    a2.enabled = false;
    store.update(&a2).await.unwrap();
    assert_eq!(store.get("t1", "i1", "a").await.unwrap(), Some(a2.clone()));
    assert_eq!(
        store.update(&schedule("t1", "i1", "zz")).await.unwrap_err(),
        ScheduleStoreError::NotFound("zz".into())
    );

    // Installs (and tenants) built to collide if keys were joined naively never
    // see or touch each other's schedules.
    let x = schedule("t#x", "i", "s");
    let y = schedule("t", "x#i", "s");
    store.create(&x).await.unwrap();
    store.create(&y).await.unwrap();
    assert_eq!(store.list("t#x", "i").await.unwrap(), vec![x.clone()]);
    assert_eq!(store.list("t", "x#i").await.unwrap(), vec![y.clone()]);
    assert_eq!(store.get("t1", "i2", "a").await.unwrap(), None);
    assert_eq!(store.get("t2", "i1", "a").await.unwrap(), None);
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
    assert_eq!(store.get("t1", "i1", "a").await.unwrap(), Some(a2.clone()));

    // list_enabled: only enabled ones, across installs.
    let mut enabled: Vec<String> = store
        .list_enabled()
        .await
        .unwrap()
        .into_iter()
        .map(|s| format!("{}/{}/{}", s.tenant, s.install_id, s.id))
        .collect();
    enabled.sort();
    assert_eq!(enabled, ["t#x/i/s", "t/x#i/s", "t1/i1/b"]);
    a2.enabled = true;
    store.update(&a2).await.unwrap();
    assert_eq!(store.list_enabled().await.unwrap().len(), 4);

    // Delete one.
    store.delete("t1", "i1", "b").await.unwrap();
    assert_eq!(
        store.delete("t1", "i1", "b").await.unwrap_err(),
        ScheduleStoreError::NotFound("b".into())
    );
    assert_eq!(ids(&store.list("t1", "i1").await.unwrap()), ["a"]);

    // 50 per install, decided atomically: 60 concurrent creators, exactly 49 more
    // succeed (one exists already).
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
    // Another install of the same tenant has its own budget.
    store.create(&schedule("t1", "i2", "a")).await.unwrap();
    // Deleting frees a slot. Which 49 of the concurrent creators won is up to the
    // scheduler, so delete one that did.
    let created = store.list("t1", "i1").await.unwrap();
    let winner = created
        .iter()
        .map(|s| s.id.clone())
        .find(|id| id.starts_with('c'))
        .expect("a concurrent creator won");
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
    // The count went with them: 50 fit again.
    for n in 0..MAX_PER_INSTALL {
        store
            .create(&schedule("t1", "i1", &format!("d{n:02}")))
            .await
            .unwrap();
    }

    // The time zone round-trips as stored, through create, update, list and
    // list_enabled (the local cron reads the zone from there).
    let mut berlin = schedule("tz", "i1", "berlin");
    berlin.cron = "30 2 * * *".into();
    berlin.timezone = "Europe/Berlin".into();
    store.create(&berlin).await.unwrap();
    assert_eq!(
        store.get("tz", "i1", "berlin").await.unwrap(),
        Some(berlin.clone())
    );
    let mut moved = berlin.clone();
    moved.timezone = "America/New_York".into();
    store.update(&moved).await.unwrap();
    assert_eq!(store.list("tz", "i1").await.unwrap(), vec![moved.clone()]);
    assert!(
        store
            .list_enabled()
            .await
            .unwrap()
            .iter()
            .any(|s| s == &moved)
    );
}
