//! The scheduler as the host functions see it: every operation is scoped to one
//! install (tenant + install id, taken from the invocation, never from the
//! guest), validated against that install's manifest, and stored in the
//! [`ScheduleStore`].

use std::sync::Arc;

use super::{Schedule, ScheduleError, ScheduleInput, validate};
use crate::manifest::{Endpoint, Manifest};
use crate::store::{Registry, ScheduleStore, ScheduleStoreError};

/// Longest schedule id a caller may name (ids we make are far shorter).
const ID_MAX: usize = 128;

/// The install a call is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallScope {
    /// Tenant.
    pub tenant: String,
    /// Install id.
    pub install_id: String,
    /// The installed extension.
    pub extension_id: String,
    /// The bundle the install runs, when known: its manifest is read by hash, so a
    /// guest whose install our registry does not hold (`caller` install mode) is
    /// validated against the bundle it runs.
    pub content_hash: Option<crate::content::ContentHash>,
}

/// Changes to a schedule; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulePatch {
    /// `"[METHOD ]/path"`.
    pub endpoint: Option<String>,
    /// 5-field cron.
    pub cron: Option<String>,
    /// IANA time zone (`Europe/Berlin`); `""` or `UTC` is UTC.
    pub timezone: Option<String>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Name.
    pub name: Option<String>,
    /// JSON text; `Some("")` clears it.
    pub payload: Option<String>,
}

/// Why a scheduler call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerFailure {
    /// The input breaks a rule; the field is named.
    #[error("validation failed: {0}")]
    Invalid(ScheduleError),
    /// The install has its 50 schedules.
    #[error(
        "quota exceeded: at most {} schedules per install",
        super::MAX_PER_INSTALL
    )]
    QuotaExceeded,
    /// No such schedule in this install.
    #[error("schedule not found")]
    NotFound,
    /// The install (or its version) is gone.
    #[error("install not found: {0}")]
    NotInstalled(String),
    /// A backend failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ScheduleStoreError> for SchedulerFailure {
    fn from(e: ScheduleStoreError) -> Self {
        match e {
            ScheduleStoreError::QuotaExceeded => SchedulerFailure::QuotaExceeded,
            ScheduleStoreError::NotFound(_) => SchedulerFailure::NotFound,
            ScheduleStoreError::Invalid { field, message } => {
                SchedulerFailure::Invalid(ScheduleError { field, message })
            }
            other => SchedulerFailure::Internal(other.to_string()),
        }
    }
}

/// A fresh guest schedule id: `sch_` + 24 hex digits.
pub fn new_schedule_id() -> String {
    let mut b = [0u8; 12];
    // A failing OS random source would only make ids collide, which the store refuses.
    let _ = getrandom::fill(&mut b);
    format!("sch_{}", hex::encode(b))
}

/// Validates `input` against `manifest` and builds the schedule `id` of `scope`.
pub fn build(
    scope: &InstallScope,
    id: &str,
    input: &ScheduleInput,
    manifest: &Manifest,
    created_at: i64,
) -> Result<Schedule, ScheduleError> {
    let valid = validate(input, manifest)?;
    Ok(Schedule {
        id: id.to_string(),
        tenant: scope.tenant.clone(),
        install_id: scope.install_id.clone(),
        extension_id: scope.extension_id.clone(),
        method: valid.method,
        path: valid.path,
        cron: valid.cron,
        timezone: valid.timezone,
        name: input.name.clone().filter(|n| !n.is_empty()),
        payload: input.payload.clone().filter(|p| !p.is_empty()),
        enabled: input.enabled.unwrap_or(true),
        created_at,
    })
}

/// Scheduler operations over a store and the registry.
pub struct Scheduler {
    store: Arc<dyn ScheduleStore>,
    registry: Arc<dyn Registry>,
}

impl Scheduler {
    /// A scheduler over `store`, reading manifests from `registry`.
    pub fn new(store: Arc<dyn ScheduleStore>, registry: Arc<dyn Registry>) -> Self {
        Scheduler { store, registry }
    }

    /// Whether its store names installs by the host app's ids.
    pub fn keyed_by_host_app_ids(&self) -> bool {
        self.store.keyed_by_host_app_ids()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ScheduleStore> {
        &self.store
    }

    /// The manifest of the install `scope` names; the install id must still be
    /// the tenant's install of that extension.
    async fn manifest(&self, scope: &InstallScope) -> Result<Manifest, SchedulerFailure> {
        let gone = || SchedulerFailure::NotInstalled(scope.install_id.clone());
        if let Some(hash) = &scope.content_hash {
            let version = self
                .registry
                .version_by_hash(hash)
                .await
                .map_err(|e| SchedulerFailure::Internal(e.to_string()))?
                .ok_or_else(gone)?;
            return Manifest::parse(version.manifest_json.as_bytes())
                .map_err(|e| SchedulerFailure::Internal(format!("stored manifest: {e}")));
        }
        let install = self
            .registry
            .get_install(&scope.tenant, &scope.extension_id)
            .await
            .map_err(|e| SchedulerFailure::Internal(e.to_string()))?
            .filter(|i| i.install_id == scope.install_id)
            .ok_or_else(gone)?;
        let version = self
            .registry
            .get_version(&install.extension_id, &install.version)
            .await
            .map_err(|e| SchedulerFailure::Internal(e.to_string()))?
            .ok_or_else(gone)?;
        Manifest::parse(version.manifest_json.as_bytes())
            .map_err(|e| SchedulerFailure::Internal(format!("stored manifest: {e}")))
    }

    /// The install's schedules.
    pub async fn list(&self, scope: &InstallScope) -> Result<Vec<Schedule>, SchedulerFailure> {
        Ok(self.store.list(&scope.tenant, &scope.install_id).await?)
    }

    /// One schedule of the install.
    pub async fn get(
        &self,
        scope: &InstallScope,
        id: &str,
    ) -> Result<Option<Schedule>, SchedulerFailure> {
        if id.is_empty() || id.len() > ID_MAX {
            return Ok(None);
        }
        Ok(self.store.get(&scope.tenant, &scope.install_id, id).await?)
    }

    /// Creates a schedule for the install.
    pub async fn create(
        &self,
        scope: &InstallScope,
        input: &ScheduleInput,
    ) -> Result<Schedule, SchedulerFailure> {
        let manifest = self.manifest(scope).await?;
        let schedule = build(
            scope,
            &new_schedule_id(),
            input,
            &manifest,
            crate::clock::unix_secs() as i64,
        )
        .map_err(SchedulerFailure::Invalid)?;
        self.store.create(&schedule).await?;
        Ok(schedule)
    }

    /// Applies `patch` to one of the install's schedules (re-validated as a whole).
    pub async fn update(
        &self,
        scope: &InstallScope,
        id: &str,
        patch: &SchedulePatch,
    ) -> Result<Schedule, SchedulerFailure> {
        let current = self
            .get(scope, id)
            .await?
            .ok_or(SchedulerFailure::NotFound)?;
        let manifest = self.manifest(scope).await?;
        let input = ScheduleInput {
            endpoint: patch
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("{} {}", current.method, current.path)),
            cron: patch.cron.clone().unwrap_or_else(|| current.cron.clone()),
            timezone: patch
                .timezone
                .clone()
                .or_else(|| Some(current.timezone.clone())),
            name: patch.name.clone().or_else(|| current.name.clone()),
            payload: match &patch.payload {
                Some(p) => Some(p.clone()),
                None => current.payload.clone(),
            },
            enabled: Some(patch.enabled.unwrap_or(current.enabled)),
        };
        let schedule = build(scope, id, &input, &manifest, current.created_at)
            .map_err(SchedulerFailure::Invalid)?;
        self.store.update(&schedule).await?;
        Ok(schedule)
    }

    /// Deletes one of the install's schedules.
    pub async fn delete(&self, scope: &InstallScope, id: &str) -> Result<(), SchedulerFailure> {
        if id.is_empty() || id.len() > ID_MAX {
            return Err(SchedulerFailure::NotFound);
        }
        Ok(self
            .store
            .delete(&scope.tenant, &scope.install_id, id)
            .await?)
    }

    /// The endpoints the install's manifest declares.
    pub async fn endpoints(&self, scope: &InstallScope) -> Result<Vec<Endpoint>, SchedulerFailure> {
        Ok(self.manifest(scope).await?.endpoints().to_vec())
    }
}
