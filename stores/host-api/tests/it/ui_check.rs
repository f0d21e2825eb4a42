//! The ext-ui install check in `caller` mode: Alga's installs are not in our
//! registry, so Alga's installs/validate decides, behind the same access cache;
//! a host app that cannot answer is 503 `backend_unavailable`, never cached.

use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::execute::InstallSource;
use runtime_core::host::HostApiSettings;
use runtime_core::store::VersionRecord;
use runtime_core::ui::{
    Decision, HostAppCheck, InstallCheck, UiRequest, UiResponse, UiServer, UiSettings, asset_key,
};
use stores_host_api::{HostAppInstallCheck, ui_install_check};
use test_support::alga_host_stub::{AlgaHostStub, StubInstall};

use crate::{TOKEN, settings};

const REG: &str = "8d2f6c7e-1111-4222-8333-444455556666";
const KEY: &str = "alga-auth-key";
const INDEX: &str = "<!doctype html><title>ext</title>";

struct Fixture {
    _dir: tempfile::TempDir,
    backends: Backends,
    stub: AlgaHostStub,
    hash: ContentHash,
}

/// A bundle we published (its version and UI file in the local backends), and a
/// stub whose tenant `t1` runs it as the install of extension `REG`.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(dir.path()).unwrap();
    let hash = ContentHash::of(b"the bundle");
    backends
        .registry
        .register_version(&VersionRecord {
            extension_id: "com.example.caller".into(),
            version: "1.0.0".into(),
            publisher: None,
            content_hash: hash,
            manifest_json: r#"{"name":"com.example.caller","version":"1.0.0","ui":{"type":"iframe","entry":"ui/app.html"}}"#.into(),
            bundle_size: 10,
            signer_key_id: "k".into(),
            signature_json: "{}".into(),
            artifacts: vec![],
            published_at: 0,
        })
        .await
        .unwrap();
    backends
        .blobs
        .put(&asset_key(&hash, "app.html"), INDEX.as_bytes())
        .await
        .unwrap();
    let stub = AlgaHostStub::start(TOKEN);
    stub.set_api_key(KEY);
    stub.add_install(
        StubInstall::new("5ca1ab1e-0000-4000-8000-0000000000c1", "t1")
            .registry_id(REG)
            .bundle(&hash.to_string()),
    );
    Fixture {
        _dir: dir,
        backends,
        stub,
        hash,
    }
}

impl Fixture {
    /// The host API as the check gets it: with the runner's internal-API token
    /// too, which it must not send to the public route.
    fn api(&self, key: &str) -> HostApiSettings {
        HostApiSettings {
            api_key: Some(key.into()),
            ..settings(&self.stub)
        }
    }

    fn check(&self, key: &str) -> HostAppInstallCheck {
        HostAppInstallCheck::new(&self.api(key), self.backends.registry.clone()).unwrap()
    }

    fn server(&self) -> UiServer {
        let settings = UiSettings {
            install_source: InstallSource::Caller,
            host_app: Some(HostAppCheck { api: self.api(KEY) }),
            ..UiSettings::default()
        };
        let check = ui_install_check(&settings, self.backends.registry.clone());
        UiServer::with_check(self.backends.blobs.clone(), check, settings)
    }
}

async fn get(server: &UiServer, path: &str) -> UiResponse {
    server
        .serve(&UiRequest {
            method: "GET",
            raw_path: path,
            if_none_match: None,
        })
        .await
}

#[tokio::test]
async fn the_host_app_decides_which_tenant_runs_which_bundle() {
    let f = fixture().await;
    let check = f.check(KEY);
    assert_eq!(
        check.ask(REG, &f.hash, Some("t1")).await.unwrap(),
        Decision::Allowed {
            entry: "app.html".into()
        }
    );
    // What Alga was asked, and with which credential: the API key, never the
    // internal routes' runner token.
    let seen = f.stub.requests().pop().unwrap();
    assert_eq!(seen.method, "GET");
    assert!(
        seen.path.starts_with("/api/installs/validate?"),
        "{}",
        seen.path
    );
    for part in [
        "tenant=t1",
        &format!("extension={REG}"),
        &format!("hash=sha256%3A{}", f.hash.hex()),
    ] {
        assert!(seen.path.contains(part), "{} lacks {part}", seen.path);
    }
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("x-runner-auth"), None);

    // Another tenant, another extension: refused by Alga.
    for (ext, tenant) in [(REG, "t2"), ("00000000-0000-4000-8000-000000000000", "t1")] {
        assert_eq!(
            check.ask(ext, &f.hash, Some(tenant)).await.unwrap(),
            Decision::Denied
        );
    }
    // No tenant in the URL, or a bundle we never published: refused without asking.
    let asked = f.stub.requests().len();
    assert_eq!(
        check.ask(REG, &f.hash, None).await.unwrap(),
        Decision::Denied
    );
    assert_eq!(
        check
            .ask(REG, &ContentHash::of(b"not ours"), Some("t1"))
            .await
            .unwrap(),
        Decision::Denied
    );
    assert_eq!(f.stub.requests().len(), asked);
    // A key Alga refuses is the operator's to fix: unavailable, not a refusal.
    assert!(
        f.check("wrong")
            .ask(REG, &f.hash, Some("t1"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_alga_iframe_is_served_and_an_outage_is_a_503_never_cached() {
    let f = fixture().await;
    let server = f.server();
    let url = format!("/ext-ui/{REG}/{}/?tenant=t1", f.hash);
    let other = format!("/ext-ui/{REG}/{}/?tenant=t2", f.hash);

    f.stub.set_failing(true);
    let r = get(&server, &url).await;
    assert_eq!((r.status, r.code), (503, Some("backend_unavailable")));
    f.stub.set_failing(false);
    // The failure was not remembered: the next request asks again and is served.
    let r = get(&server, &url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, INDEX.as_bytes());
    assert_eq!(get(&server, &other).await.status, 404);
    // Decisions are cached as the registry's are: an outage now changes nothing
    // for the one already made.
    f.stub.set_failing(true);
    assert_eq!(get(&server, &url).await.status, 200);
    assert_eq!(server.access_stats().hits, 1);
}

#[tokio::test]
async fn caller_mode_without_a_host_app_fails_closed() {
    let f = fixture().await;
    let settings = UiSettings {
        install_source: InstallSource::Caller,
        host_app: None,
        ..UiSettings::default()
    };
    let check = ui_install_check(&settings, f.backends.registry.clone());
    let server = UiServer::with_check(f.backends.blobs.clone(), check, settings);
    let r = get(&server, &format!("/ext-ui/{REG}/{}/?tenant=t1", f.hash)).await;
    assert_eq!((r.status, r.code), (503, Some("backend_unavailable")));
    assert!(f.stub.requests().is_empty());
}
