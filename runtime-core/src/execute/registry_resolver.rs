//! Resolving through the registry (the production resolver).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::error::ExecError;
use super::resolve::{HostIds, InstallSource, ResolveQuery, Resolved, Resolver};
use crate::bundle::provenance::{self, BundleTrust};
use crate::bundle::trust::TrustBundle;
use crate::content::ContentHash;
use crate::store::{InstallRecord, Registry, RegistryError, VersionRecord};

/// Resolves through the registry: the content hash must be the one the tenant's
/// enabled install runs, and its signature must still verify against the trust
/// bundle (a revoked key stops its bundles at once). Grants and configuration come
/// from the install.
pub struct RegistryResolver {
    registry: Arc<dyn Registry>,
    trust: TrustBundle,
    policy: BundleTrust,
    trusted: RwLock<HashSet<ContentHash>>,
}

impl RegistryResolver {
    /// A resolver over `registry`, checking signatures against `trust`.
    pub fn new(registry: Arc<dyn Registry>, trust: TrustBundle) -> Self {
        RegistryResolver {
            registry,
            trust,
            policy: BundleTrust::Signature,
            trusted: RwLock::default(),
        }
    }

    /// Trusts what `policy` trusts (host-pinned bundles too, under `host-pinned`).
    pub fn with_bundle_trust(mut self, policy: BundleTrust) -> Self {
        self.policy = policy;
        self
    }

    fn check_trust(&self, v: &VersionRecord) -> Result<(), ExecError> {
        if self.trusted.read().unwrap().contains(&v.content_hash) {
            return Ok(());
        }
        provenance::verify_recorded(
            &self.trust,
            self.policy,
            &v.content_hash,
            v.signature_json.as_bytes(),
        )
        .map_err(|e| ExecError::BundleUntrusted(e.to_string()))?;
        self.trusted.write().unwrap().insert(v.content_hash);
        Ok(())
    }

    /// The tenant's install of the extension `name` names: by our extension id,
    /// else by the host app's (Alga's registry UUID).
    async fn install_named(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<InstallRecord>, ExecError> {
        if let Some(install) = self
            .registry
            .get_install(tenant, name)
            .await
            .map_err(unavailable)?
        {
            return Ok(Some(install));
        }
        Ok(self
            .registry
            .list_installs_by_host_extension(name)
            .await
            .map_err(unavailable)?
            .into_iter()
            .find(|i| i.tenant == tenant))
    }

    /// The caller names the install: the hash must be a bundle we published and
    /// still trust, with an artifact for this runtime; grants come from the
    /// request's `providers`, the install id and configuration from its context.
    async fn resolve_for_caller(&self, q: &ResolveQuery<'_>) -> Result<Resolved, ExecError> {
        let version = self
            .registry
            .version_by_hash(&q.content)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ExecError::ArtifactMissing(format!(
                    "no published bundle has content hash {}; publish it",
                    q.content
                ))
            })?;
        self.check_trust(&version)?;
        let artifact = find_artifact(version.artifacts, q, &version.version)?;
        Ok(Resolved {
            artifact,
            grants: None,
            install_id: q.install_id.map(String::from),
            host_ids: HostIds::default(),
            version_id: None,
            config: Default::default(),
        })
    }
}

/// The version's artifact for this runtime's target and engine.
fn find_artifact(
    artifacts: Vec<crate::artifact::ArtifactRef>,
    q: &ResolveQuery<'_>,
    version: &str,
) -> Result<crate::artifact::ArtifactRef, ExecError> {
    artifacts
        .into_iter()
        .find(|a| &a.key.target == q.target && a.key.fingerprint == q.fingerprint)
        .ok_or_else(|| {
            ExecError::ArtifactMissing(format!(
                "{} {version} has no artifact for {} (engine {}); recompile it",
                q.extension, q.target, q.fingerprint
            ))
        })
}

/// Why a request names no install this tenant runs, the same words for every
/// case: no install, another bundle, another install id, a version gone. The
/// caller learns neither the installed version nor its hash (nor whether there is
/// an install at all); the log line has the case.
fn not_installed(q: &ResolveQuery<'_>, case: &str) -> ExecError {
    tracing::info!(
        tenant = q.tenant,
        extension = q.extension,
        requested = %q.content,
        case,
        "not_installed"
    );
    ExecError::NotInstalled(format!(
        "tenant {} runs no install of {} with this bundle",
        q.tenant, q.extension
    ))
}

fn unavailable(e: RegistryError) -> ExecError {
    ExecError::BackendUnavailable(format!("registry: {e}"))
}

#[async_trait]
impl Resolver for RegistryResolver {
    async fn resolve(&self, q: &ResolveQuery<'_>) -> Result<Resolved, ExecError> {
        if q.source == InstallSource::Caller {
            return self.resolve_for_caller(q).await;
        }
        let install = match q.install {
            // Read by the caller moments ago (the direct route, an event, a schedule).
            Some(install) if install.tenant == q.tenant && install.extension_id == q.extension => {
                install.clone()
            }
            Some(_) => return Err(not_installed(q, "the caller's install is another's")),
            None => self
                .install_named(q.tenant, q.extension)
                .await?
                .ok_or_else(|| not_installed(q, "no install"))?,
        };
        if !install.enabled {
            return Err(ExecError::InstallDisabled(format!(
                "the install of {} for tenant {} is disabled",
                q.extension, q.tenant
            )));
        }
        if install.content_hash != q.content {
            return Err(not_installed(q, "another bundle is installed"));
        }
        if let Some(id) = q.install_id
            && !install.answers_to(id)
        {
            return Err(not_installed(q, "another install id"));
        }
        let version = self
            .registry
            .get_version(&install.extension_id, &install.version)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| not_installed(q, "the installed version is not published"))?;
        self.check_trust(&version)?;
        let artifact = find_artifact(version.artifacts, q, &install.version)?;
        Ok(Resolved {
            artifact,
            grants: Some(install.granted),
            install_id: Some(install.install_id),
            host_ids: HostIds {
                extension: install.host_extension_id,
                install: install.host_install_id,
            },
            version_id: Some(install.version),
            config: install.config,
        })
    }
}
