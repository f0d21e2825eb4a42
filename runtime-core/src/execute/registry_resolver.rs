//! Resolving through the registry (the production resolver).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::error::ExecError;
use super::resolve::{ResolveQuery, Resolved, Resolver};
use crate::artifact::ContentHash;
use crate::bundle::signature::Signature;
use crate::bundle::trust::TrustBundle;
use crate::store::{Registry, RegistryError, VersionRecord};

/// Resolves through the registry: the content hash must be the one the tenant's
/// enabled install runs, and its signature must still verify against the trust
/// bundle (a revoked key stops its bundles at once). Grants and configuration come
/// from the install.
pub struct RegistryResolver {
    registry: Arc<dyn Registry>,
    trust: TrustBundle,
    trusted: RwLock<HashSet<ContentHash>>,
}

impl RegistryResolver {
    /// A resolver over `registry`, checking signatures against `trust`.
    pub fn new(registry: Arc<dyn Registry>, trust: TrustBundle) -> Self {
        RegistryResolver {
            registry,
            trust,
            trusted: RwLock::default(),
        }
    }

    fn check_trust(&self, v: &VersionRecord) -> Result<(), ExecError> {
        if self.trusted.read().unwrap().contains(&v.content_hash) {
            return Ok(());
        }
        let sig = Signature::from_json(v.signature_json.as_bytes())
            .map_err(|e| ExecError::BundleUntrusted(e.to_string()))?;
        self.trust
            .verify(&v.content_hash, &sig)
            .map_err(|e| ExecError::BundleUntrusted(e.to_string()))?;
        self.trusted.write().unwrap().insert(v.content_hash);
        Ok(())
    }
}

fn unavailable(e: RegistryError) -> ExecError {
    ExecError::BackendUnavailable(format!("registry: {e}"))
}

#[async_trait]
impl Resolver for RegistryResolver {
    async fn resolve(&self, q: &ResolveQuery<'_>) -> Result<Resolved, ExecError> {
        let install = self
            .registry
            .get_install(q.tenant, q.extension)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ExecError::NotInstalled(format!(
                    "tenant {} has no install of {}",
                    q.tenant, q.extension
                ))
            })?;
        if !install.enabled {
            return Err(ExecError::InstallDisabled(format!(
                "the install of {} for tenant {} is disabled",
                q.extension, q.tenant
            )));
        }
        if install.content_hash != q.content {
            return Err(ExecError::NotInstalled(format!(
                "bundle {} is not the installed version of {} ({} is)",
                q.content, q.extension, install.version
            )));
        }
        if let Some(id) = q.install_id
            && id != install.install_id
        {
            return Err(ExecError::NotInstalled(format!(
                "install {id} is not this tenant's install of {}",
                q.extension
            )));
        }
        let version = self
            .registry
            .get_version(&install.extension_id, &install.version)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ExecError::NotInstalled(format!("{} {}", q.extension, install.version))
            })?;
        self.check_trust(&version)?;
        let artifact = version
            .artifacts
            .into_iter()
            .find(|a| &a.key.target == q.target && a.key.fingerprint == q.fingerprint)
            .ok_or_else(|| {
                ExecError::ArtifactMissing(format!(
                    "{} {} has no artifact for {} (engine {}); recompile it",
                    q.extension, install.version, q.target, q.fingerprint
                ))
            })?;
        Ok(Resolved {
            artifact,
            grants: Some(install.granted),
            install_id: Some(install.install_id),
            version_id: Some(install.version),
            config: install.config,
        })
    }
}
