//! Registry installs that carry Alga's ids: the host-kept stores name the install by
//! Alga's install UUID (where Alga's ext-storage and ext-scheduler look it up), both
//! for a guest's storage calls and for the manifest's schedules at install time.

use std::collections::BTreeMap;
use std::sync::Arc;

use runtime_core::capability::{Capability, CapabilitySet};
use runtime_core::content::ContentHash;
use runtime_core::host::bindings::alga::extension as ext;
use runtime_core::host::bindings::alga::extension::types::StorageEntry;
use runtime_core::host::{HostServices, HostSetup, HostState, Invocation, RequestLimits};
use runtime_core::manifest::Manifest;
use runtime_core::store::{InstallRecord, ScheduleStore};
use stores_host_api::{HostApiKvStore, HostApiScheduleStore};
use stores_local::MemorySecretStore;
use test_support::alga_host_stub::{AlgaHostStub, StubInstall};

use crate::{TOKEN, api};

const ALGA_INSTALL: &str = "9a7c0d2e-1b3f-4c5d-8e6f-0a1b2c3d4e5f";

#[tokio::test]
async fn guest_storage_reaches_alga_by_its_install_uuid() {
    let stub = AlgaHostStub::start(TOKEN);
    stub.add_install(StubInstall::new(ALGA_INSTALL, "acme"));
    let kv = Arc::new(HostApiKvStore::new(api(&stub)));
    let mut state = HostState::new(HostSetup::new(
        Arc::new(Invocation {
            tenant_id: "acme".into(),
            extension_id: "com.example.ext".into(),
            install_id: Some("inst_ours".into()),
            host_install_id: Some(ALGA_INSTALL.into()),
            ..Invocation::default()
        }),
        CapabilitySet::with([Capability::StorageKv]),
        &HostServices {
            kv,
            secrets: Arc::new(MemorySecretStore::default()),
        },
        RequestLimits {
            memory_bytes: 1 << 20,
            host_calls: 100,
            log_bytes: 10_000,
        },
    ));
    let stored = ext::storage::Host::put(
        &mut state,
        StorageEntry {
            namespace: "prefs".into(),
            key: "theme".into(),
            value: b"\"dark\"".to_vec(),
            revision: None,
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(stored.revision, Some(1));
    assert!(stub.stored(ALGA_INSTALL, "prefs", "theme").is_some());
    let paths: Vec<String> = stub.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths
            .iter()
            .all(|p| p == &format!("/api/internal/ext-storage/install/{ALGA_INSTALL}")),
        "{paths:?}"
    );
    let got = ext::storage::Host::get(&mut state, "prefs".into(), "theme".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.value, b"\"dark\"");
}

#[tokio::test]
async fn manifest_schedules_are_kept_under_algas_install_uuid() {
    let stub = AlgaHostStub::start(TOKEN);
    stub.add_install(StubInstall::new(ALGA_INSTALL, "acme").endpoint("POST", "/api/tick"));
    let store = HostApiScheduleStore::new(api(&stub));
    assert!(store.keyed_by_host_app_ids());
    let manifest = Manifest::parse(
        br#"{"name":"com.example.ext","version":"1.0.0","runtime":"wasm-js@1",
            "api":{"endpoints":[{"method":"POST","path":"/api/tick","handler":"dist/main.wasm"}]},
            "schedules":[{"endpoint":"/api/tick","cron":"*/15 * * * *","timezone":"Europe/Berlin"}]}"#,
    )
    .unwrap();
    let install = InstallRecord {
        install_id: "inst_ours".into(),
        tenant: "acme".into(),
        extension_id: "com.example.ext".into(),
        version: "1.0.0".into(),
        content_hash: ContentHash::of(b"bundle"),
        operator_grants: vec![],
        granted: CapabilitySet::with([]),
        config: BTreeMap::new(),
        secret_ref: None,
        enabled: true,
        host_extension_id: Some("3f2b8c1e-7d4a-4b9e-9c1d-2a6f0e5b7c11".into()),
        host_install_id: Some(ALGA_INSTALL.into()),
    };
    let report = runtime_core::schedule::sync_for_install(&store, &install, &manifest)
        .await
        .unwrap();
    assert_eq!(report.created.len(), 1, "{report:?}");
    assert!(report.refused.is_empty(), "{report:?}");
    let kept = stub.schedules(ALGA_INSTALL);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        runtime_core::schedule::install_key(&store, &install),
        ALGA_INSTALL
    );
    let removed = runtime_core::schedule::remove_for_install(&store, "acme", ALGA_INSTALL)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(stub.schedules(ALGA_INSTALL).is_empty());
}
