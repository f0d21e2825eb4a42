//! The per-deployment choice: `ALGA_HOST_STORES` puts the host app's storage and/or
//! schedules in place of a backend set's own, and refuses to start half-configured.

use runtime_core::backends::BackendError;
use runtime_core::host::HostApiSettings;
use runtime_core::store::KvScope;
use stores_host_api::{HostStores, apply};
use test_support::alga_host_stub::{AlgaHostStub, StubInstall};
use test_support::schedule_conformance::schedule;

use crate::{TOKEN, settings};

#[tokio::test]
async fn host_stores_replace_the_sets_own_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let stub = AlgaHostStub::start(TOKEN);
    stub.add_install(StubInstall::new("i", "t").endpoint("POST", "/api/tick"));
    let s = KvScope {
        tenant: "t".into(),
        install_id: "i".into(),
    };

    // Storage only: the schedules stay the set's own (here SQLite).
    let mut b = stores_local::backends(dir.path()).unwrap();
    let stores =
        HostStores::from_lookup(|k| (k == "ALGA_HOST_STORES").then(|| "kv".into())).unwrap();
    apply(&mut b, stores, &settings(&stub)).unwrap();
    b.kv.put(&s, "ns", "k", b"v", None).await.unwrap();
    assert_eq!(stub.stored("i", "ns", "k").unwrap()["value"], "dg==");
    b.schedules
        .create(&schedule("t", "i", "local"))
        .await
        .unwrap();
    assert!(stub.schedules("i").is_empty());
    assert_eq!(b.schedules.list_enabled().await.unwrap().len(), 1);

    // Both: schedules are the host app's, and none is listed for our firing.
    let mut b = stores_local::backends(dir.path()).unwrap();
    apply(
        &mut b,
        HostStores::parse("kv,schedules").unwrap(),
        &settings(&stub),
    )
    .unwrap();
    b.schedules
        .create(&schedule("t", "i", "hosted"))
        .await
        .unwrap();
    assert_eq!(stub.schedules("i").len(), 1);
    assert!(b.schedules.list_enabled().await.unwrap().is_empty());

    // Neither: the set is left as it was, whatever the host API says.
    let mut b = stores_local::backends(dir.path()).unwrap();
    apply(&mut b, HostStores::default(), &HostApiSettings::default()).unwrap();
    assert_eq!(b.schedules.list_enabled().await.unwrap().len(), 1);
}

#[test]
fn host_stores_refuse_to_start_without_the_host_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = stores_local::backends(dir.path()).unwrap();
    let stores = HostStores::parse("schedules").unwrap();
    let e = apply(&mut b, stores, &HostApiSettings::default())
        .err()
        .unwrap();
    assert!(
        matches!(&e, BackendError::Config(m) if m.contains("ALGA_HOST_STORES=schedules") && m.contains("ALGA_HOST_API_BASE")),
        "{e}"
    );
    let e = HostStores::parse("kv,blobs").err().unwrap();
    assert!(
        matches!(&e, BackendError::Config(m) if m.contains("blobs")),
        "{e}"
    );
}
