//! Publishing signed test bundles onto any `Backends` and running them from there:
//! one signing key, the trust bundle that holds it, and the publisher, installs and
//! executor the tests build around them.

use std::collections::BTreeMap;
use std::sync::Arc;

use runtime_core::Executor;
use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::engine::Target;
use runtime_core::execute::RegistryResolver;
use runtime_core::publish::{Published, Publisher};
use runtime_core::store::{InstallRecord, InstallRequest};

/// A signing key and the trust bundle holding it.
pub struct Signer {
    pub key: SigningKey,
    pub trust: TrustBundle,
}

impl Signer {
    /// A fresh key named `name`, trusted.
    pub fn new(name: &str) -> Self {
        let key = SigningKey::generate(name).unwrap();
        let trust = TrustBundle::default().with_key(key.public());
        Signer { key, trust }
    }

    /// The key named `name` derived from `seed`, trusted: the same in every
    /// process (a test run in its own process gets the trust bundle from its
    /// parent's environment).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        let key = SigningKey::from_seed(name, &seed).unwrap();
        let trust = TrustBundle::default().with_key(key.public());
        Signer { key, trust }
    }

    /// The sidecar signature of `bundle`.
    pub fn sign(&self, bundle: &[u8]) -> String {
        Signature::sign(&ContentHash::of(bundle), &self.key).to_json()
    }

    /// A publisher onto `b`, compiling for this machine only.
    pub fn publisher(&self, b: &Backends) -> Publisher {
        Publisher::new(
            b.blobs.clone(),
            b.registry.clone(),
            self.trust.clone(),
            crate::test_config().engine,
        )
        .with_targets(vec![Target::host()])
    }

    /// Signs and publishes `bundle` with `publisher`.
    pub async fn publish(&self, publisher: &Publisher, bundle: &[u8]) -> Published {
        publisher
            .publish(bundle, Some(self.sign(bundle).as_bytes()), &|_| {})
            .await
            .unwrap()
    }

    /// An executor over `b` resolving installs through its registry, trusting this key.
    pub fn executor(&self, b: &Backends) -> Executor {
        Executor::new(
            &crate::test_config(),
            b.blobs.clone(),
            Arc::new(RegistryResolver::new(
                b.registry.clone(),
                self.trust.clone(),
            )),
            b.host_services(),
        )
        .unwrap()
    }
}

/// Installs the newest version of `extension` for `tenant`.
pub async fn install(
    b: &Backends,
    tenant: &str,
    extension: &str,
    grants: &[&str],
    config: BTreeMap<String, String>,
) -> InstallRecord {
    b.registry
        .install(&InstallRequest {
            tenant: tenant.into(),
            extension_id: extension.into(),
            version: None,
            grants: grants.iter().map(|g| g.to_string()).collect(),
            config,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// A bundle of `wasm` as extension `name` at `version`, declaring one endpoint
/// (`GET /hello`) and no capabilities: what the direct route can call.
pub fn endpoint_bundle(name: &str, version: &str, wasm: &[u8]) -> Vec<u8> {
    use runtime_core::bundle::archive::{self, ArchiveLimits};
    let dir = tempfile::tempdir().unwrap();
    let manifest = serde_json::json!({
        "name": name,
        "version": version,
        "runtime": "wasm-js@1",
        "capabilities": [],
        "api": {"endpoints": [{"method": "GET", "path": "/hello", "handler": "dist/main.wasm"}]}
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/main.wasm"), wasm).unwrap();
    archive::pack_dir(dir.path(), &ArchiveLimits::default()).unwrap()
}
