//! The registry: the source of truth for what a tenant may run — extensions,
//! versions, bundles with their artifacts, and installs with their grants.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::artifact::{ArtifactRef, ContentHash};
use crate::capability::CapabilitySet;
use crate::store::StoreError;

/// A published version, with its bundle and compiled artifacts.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    /// Extension id (the manifest's `name`).
    pub extension_id: String,
    /// Semver version.
    pub version: String,
    /// `publisher` of the manifest.
    pub publisher: Option<String>,
    /// The bundle's content hash.
    pub content_hash: ContentHash,
    /// The manifest as published (JSON text).
    pub manifest_json: String,
    /// Size of the compressed bundle.
    pub bundle_size: u64,
    /// Key id that signed the bundle.
    pub signer_key_id: String,
    /// The signature sidecar (JSON text), re-checked against the trust bundle on load.
    pub signature_json: String,
    /// Compiled artifacts, one per target.
    pub artifacts: Vec<ArtifactRef>,
    /// Unix seconds.
    pub published_at: i64,
}

/// An install of an extension version for a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallRecord {
    /// Install id.
    pub install_id: String,
    /// Tenant.
    pub tenant: String,
    /// Extension.
    pub extension_id: String,
    /// Installed version.
    pub version: String,
    /// Its bundle.
    pub content_hash: ContentHash,
    /// What the operator granted (may include capabilities the manifest lacks).
    pub operator_grants: Vec<String>,
    /// Effective grants: the manifest's capabilities ∩ the operator's grants.
    pub granted: CapabilitySet,
    /// Install configuration.
    pub config: BTreeMap<String, String>,
    /// Name of the install's secret in the secret store, if any.
    pub secret_ref: Option<String>,
    /// Disabled installs do not run.
    pub enabled: bool,
    /// The host app's id of the extension (Alga's registry UUID), when the install carries one.
    pub host_extension_id: Option<String>,
    /// The host app's id of this install (Alga's install UUID), when it carries one.
    pub host_install_id: Option<String>,
}

impl InstallRecord {
    /// Whether `id` names this install: our install id or the host app's.
    pub fn answers_to(&self, id: &str) -> bool {
        self.install_id == id || self.host_install_id.as_deref() == Some(id)
    }
}

/// An install's subscription to an event topic, from its manifest's `events`.
/// Only enabled installs have subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subscription {
    /// Tenant of the install.
    pub tenant: String,
    /// The subscribed extension (one install per tenant and extension).
    pub extension_id: String,
    /// Topic.
    pub topic: String,
    /// Endpoint path the event is POSTed to.
    pub handler: String,
}

/// What to record when an install is made or changed.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// Tenant.
    pub tenant: String,
    /// Extension.
    pub extension_id: String,
    /// Version to install; `None` = the newest published.
    pub version: Option<String>,
    /// Capabilities the operator grants.
    pub grants: Vec<String>,
    /// Configuration.
    pub config: BTreeMap<String, String>,
    /// The host app's id of the extension (Alga's registry UUID); `None` keeps
    /// what the install has. Unique per tenant.
    pub host_extension_id: Option<String>,
    /// The host app's id of the install (Alga's install UUID); `None` keeps what
    /// the install has.
    pub host_install_id: Option<String>,
}

/// Outcome of registering a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new version.
    Created,
    /// The same bytes were already registered under this name and version.
    Unchanged,
}

/// Registry failures.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The name + version is taken by other bytes.
    #[error("{extension} {version} is already published with bundle {existing}")]
    VersionConflict {
        /// Extension.
        extension: String,
        /// Version.
        version: String,
        /// The bundle it has.
        existing: String,
    },
    /// No such extension, version or install.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is inconsistent (e.g. an unknown capability).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The registry's operations; implementations make each one atomic.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Records a version (extension, version, bundle, artifacts) in one step.
    async fn register_version(&self, v: &VersionRecord) -> Result<Registered, RegistryError>;
    /// One version.
    async fn get_version(
        &self,
        extension_id: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, RegistryError>;
    /// The version holding a bundle.
    async fn version_by_hash(
        &self,
        content: &ContentHash,
    ) -> Result<Option<VersionRecord>, RegistryError>;
    /// Versions of an extension, newest first.
    async fn list_versions(&self, extension_id: &str) -> Result<Vec<VersionRecord>, RegistryError>;
    /// All extension ids.
    async fn list_extensions(&self) -> Result<Vec<String>, RegistryError>;
    /// Replaces the artifact of a bundle for its (target, fingerprint) — recompiles.
    async fn put_artifact(
        &self,
        content: &ContentHash,
        artifact: &ArtifactRef,
    ) -> Result<(), RegistryError>;
    /// Installs (or upgrades, or re-grants) an extension for a tenant.
    async fn install(&self, req: &InstallRequest) -> Result<InstallRecord, RegistryError>;
    /// Removes a tenant's install.
    async fn uninstall(&self, tenant: &str, extension_id: &str) -> Result<(), RegistryError>;
    /// Enables or disables a tenant's install.
    async fn set_enabled(
        &self,
        tenant: &str,
        extension_id: &str,
        enabled: bool,
    ) -> Result<InstallRecord, RegistryError>;
    /// A tenant's install of an extension.
    async fn get_install(
        &self,
        tenant: &str,
        extension_id: &str,
    ) -> Result<Option<InstallRecord>, RegistryError>;
    /// A tenant's installs.
    async fn list_installs(&self, tenant: &str) -> Result<Vec<InstallRecord>, RegistryError>;
    /// Every tenant's install that carries this host-app extension id (Alga's
    /// registry UUID); at most one per tenant.
    async fn list_installs_by_host_extension(
        &self,
        host_extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError>;
    /// Every tenant's install of an extension (UI checks, event fan-out).
    async fn list_installs_of(
        &self,
        extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError>;
    /// The enabled installs of `tenant` subscribed to `topic`, in a stable order.
    /// Installing writes them from the manifest's `events`; uninstalling and
    /// disabling remove them.
    async fn subscriptions(
        &self,
        tenant: &str,
        topic: &str,
    ) -> Result<Vec<Subscription>, RegistryError>;
    /// A cheap change signal: a value that differs after any committed write by
    /// any process, so a cache can tell at once that what it holds may be stale.
    /// `None` (the default): the backend has none (DynamoDB), and caches fall
    /// back to a time bound ([`crate::store::registry_cache`]).
    async fn generation(&self) -> Result<Option<u64>, RegistryError> {
        Ok(None)
    }
}

/// The `(topic, handler)` pairs a stored manifest subscribes to (its `events`),
/// deduplicated and sorted.
pub fn manifest_subscriptions(manifest_json: &str) -> Vec<(String, String)> {
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(manifest_json) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = manifest
        .get("events")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("topic")?.as_str()?.to_string(),
                e.get("handler")?.as_str()?.to_string(),
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Checks an install request against the version's manifest before anything is
/// written: the grants must be known capabilities and the quota overrides numbers.
pub fn check_install_request(
    manifest_json: &str,
    req: &InstallRequest,
) -> Result<(), RegistryError> {
    effective_grants(manifest_json, &req.grants)?;
    for (what, id) in [
        ("host extension id", &req.host_extension_id),
        ("host install id", &req.host_install_id),
    ] {
        if let Some(id) = id
            && !valid_host_id(id)
        {
            return Err(RegistryError::Invalid(format!(
                "{what} {id:?}: 1 to 128 letters, digits, '.', '_', ':' or '-'"
            )));
        }
    }
    super::quota::check_overrides(&req.config).map_err(RegistryError::Invalid)
}

/// A host-app id as Alga writes them (UUIDs) or any similar opaque id.
fn valid_host_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Effective grants: the capabilities the manifest requests ∩ what the operator grants.
pub fn effective_grants(
    manifest_json: &str,
    operator_grants: &[String],
) -> Result<CapabilitySet, RegistryError> {
    let granted = CapabilitySet::parse(operator_grants).map_err(|unknown| {
        RegistryError::Invalid(format!("unknown capabilities: {}", unknown.join(", ")))
    })?;
    let manifest: serde_json::Value = serde_json::from_str(manifest_json)
        .map_err(|e| RegistryError::Invalid(format!("stored manifest: {e}")))?;
    let requested: Vec<String> = manifest
        .get("capabilities")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let requested = CapabilitySet::parse(&requested).map_err(|unknown| {
        RegistryError::Invalid(format!(
            "manifest requests unknown capabilities: {}",
            unknown.join(", ")
        ))
    })?;
    Ok(requested.intersect(&granted))
}
