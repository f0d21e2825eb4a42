//! Resolving a request to what it may run: the artifact, the grants and the install.
//!
//! With the registry (the bundles issue) the content hash must belong to the
//! tenant's enabled install; until then [`StaticResolver`] serves artifacts
//! registered in process (the CLI's `run`, tests) and grants come from `providers`.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;

use super::error::ExecError;
use crate::artifact::{ArtifactRef, ContentHash};
use crate::capability::CapabilitySet;
use crate::engine::Target;

/// Who names the install a request runs as (`ALGA_INSTALL_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstallSource {
    /// Our registry: the content hash must be the tenant's enabled install of
    /// the extension, whose grants and configuration apply.
    #[default]
    Registry,
    /// The caller (a host app such as Alga's server, over `/v1/execute`): the
    /// request's context is authoritative, as in the Alga runner — its install
    /// id, `providers` as the grants, its configuration. The content hash need
    /// only be a bundle we published and still trust.
    Caller,
}

/// What a request names.
#[derive(Debug, Clone)]
pub struct ResolveQuery<'a> {
    /// Tenant.
    pub tenant: &'a str,
    /// Extension.
    pub extension: &'a str,
    /// Bundle content hash.
    pub content: ContentHash,
    /// Install id, when the caller sent one.
    pub install_id: Option<&'a str>,
    /// This runtime's target.
    pub target: &'a Target,
    /// This runtime's engine fingerprint.
    pub fingerprint: &'a str,
    /// Who names the install.
    pub source: InstallSource,
    /// The install the caller already read from the registry, if any.
    pub install: Option<&'a crate::store::InstallRecord>,
}

/// What the request may run, and as whom.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The artifact to load.
    pub artifact: ArtifactRef,
    /// The install's grants; `None` when there is no registry and `providers` decide.
    pub grants: Option<CapabilitySet>,
    /// The install id.
    pub install_id: Option<String>,
    /// The host app's ids the install carries (none in `caller` mode, where the
    /// request's ids already are the host app's).
    pub host_ids: HostIds,
    /// The version id.
    pub version_id: Option<String>,
    /// The install's configuration (merged under the request's).
    pub config: BTreeMap<String, String>,
}

/// The host app's ids of an install (Alga's registry UUID and install UUID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIds {
    /// The host app's extension id.
    pub extension: Option<String>,
    /// The host app's install id.
    pub install: Option<String>,
}

/// Maps a request to what it may run.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// Resolves `q`, or says why not (`not_installed`, `artifact_missing`, ...).
    async fn resolve(&self, q: &ResolveQuery<'_>) -> Result<Resolved, ExecError>;
}

/// Artifacts registered in this process, by content hash and target.
#[derive(Default)]
pub struct StaticResolver {
    artifacts: RwLock<HashMap<(ContentHash, Target), ArtifactRef>>,
}

impl StaticResolver {
    /// Registers a compiled artifact.
    pub fn register(&self, artifact: ArtifactRef) {
        self.artifacts.write().unwrap().insert(
            (artifact.key.content, artifact.key.target.clone()),
            artifact,
        );
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, q: &ResolveQuery<'_>) -> Result<Resolved, ExecError> {
        let artifacts = self.artifacts.read().unwrap();
        let artifact = artifacts
            .get(&(q.content, q.target.clone()))
            .filter(|a| a.key.fingerprint == q.fingerprint)
            .cloned()
            .ok_or_else(|| {
                ExecError::ArtifactMissing(format!(
                    "{} has no artifact for {} (engine {})",
                    q.content, q.target, q.fingerprint
                ))
            })?;
        Ok(Resolved {
            artifact,
            grants: None,
            install_id: q.install_id.map(String::from),
            host_ids: HostIds::default(),
            version_id: None,
            config: BTreeMap::new(),
        })
    }
}
