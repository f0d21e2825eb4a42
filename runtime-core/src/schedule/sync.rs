//! A manifest's `schedules[]` made real for an install, and an install's
//! schedules removed with it. Called where installs happen (the CLI's
//! `install`/`uninstall`, `up`'s dev publish), after the registry's install.

use super::service::{InstallScope, build};
use super::{Schedule, ScheduleInput};
use crate::manifest::Manifest;
use crate::store::{InstallRecord, ScheduleStore, ScheduleStoreError};

/// Id prefix of the schedules a manifest declares (`manifest-<index>`).
pub const MANIFEST_PREFIX: &str = "manifest-";

/// What [`sync_for_install`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SyncReport {
    /// Schedules created from the manifest.
    pub created: Vec<Schedule>,
    /// Manifest schedules of an earlier version that were replaced.
    pub removed: usize,
    /// `(index in schedules[], why)` for the ones refused (e.g. a time zone the
    /// IANA database does not know, the 50 limit): the install stands, those
    /// schedules do not exist.
    pub refused: Vec<(usize, String)>,
}

/// The id `store` names `install` by: the host app's when the store is the host
/// app's and the install carries one, else ours.
pub fn install_key<'a>(store: &dyn ScheduleStore, install: &'a InstallRecord) -> &'a str {
    match &install.host_install_id {
        Some(host) if store.keyed_by_host_app_ids() => host,
        _ => &install.install_id,
    }
}

/// Replaces the install's manifest-declared schedules with those of `manifest`
/// (guest-created schedules are kept). Ids are `manifest-<index>`, so running it
/// again (a reinstall, an upgrade, `up --watch`) never duplicates them.
pub async fn sync_for_install(
    store: &dyn ScheduleStore,
    install: &InstallRecord,
    manifest: &Manifest,
) -> Result<SyncReport, ScheduleStoreError> {
    let mut report = SyncReport::default();
    let install_id = install_key(store, install);
    for old in store.list(&install.tenant, install_id).await? {
        if old.id.starts_with(MANIFEST_PREFIX) {
            match store.delete(&old.tenant, &old.install_id, &old.id).await {
                Ok(()) | Err(ScheduleStoreError::NotFound(_)) => report.removed += 1,
                Err(e) => return Err(e),
            }
        }
    }
    let scope = InstallScope {
        tenant: install.tenant.clone(),
        install_id: install_id.to_string(),
        extension_id: install.extension_id.clone(),
        content_hash: Some(install.content_hash),
    };
    let now = crate::clock::unix_secs() as i64;
    for (i, spec) in manifest.schedules.iter().enumerate() {
        let input = ScheduleInput {
            endpoint: spec.endpoint.clone(),
            cron: spec.cron.clone(),
            timezone: spec.timezone.clone(),
            name: spec.name.clone(),
            payload: spec.payload.as_ref().map(|p| p.to_string()),
            enabled: spec.enabled,
        };
        let schedule = match build(
            &scope,
            &format!("{MANIFEST_PREFIX}{i}"),
            &input,
            manifest,
            now,
        ) {
            Ok(s) => s,
            Err(e) => {
                report.refused.push((i, e.to_string()));
                continue;
            }
        };
        match store.create(&schedule).await {
            Ok(()) => report.created.push(schedule),
            Err(
                e @ (ScheduleStoreError::QuotaExceeded
                | ScheduleStoreError::Exists(_)
                | ScheduleStoreError::Invalid { .. }),
            ) => report.refused.push((i, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Deletes every schedule of an install (on uninstall); returns how many. `install_id`
/// is what the store names it by ([`install_key`]).
pub async fn remove_for_install(
    store: &dyn ScheduleStore,
    tenant: &str,
    install_id: &str,
) -> Result<usize, ScheduleStoreError> {
    Ok(store.delete_install(tenant, install_id).await?.len())
}

/// [`sync_for_install`] with the manifest of the installed version read from
/// `registry` (what install commands call right after `Registry::install`).
pub async fn sync_installed(
    registry: &dyn crate::store::Registry,
    store: &dyn ScheduleStore,
    install: &InstallRecord,
) -> Result<SyncReport, ScheduleStoreError> {
    let as_store = |e: crate::store::RegistryError| match e {
        crate::store::RegistryError::Store(s) => ScheduleStoreError::Store(s),
        other => crate::store::StoreError::Internal(other.to_string()).into(),
    };
    let version = registry
        .get_version(&install.extension_id, &install.version)
        .await
        .map_err(as_store)?
        .ok_or_else(|| {
            crate::store::StoreError::Internal(format!(
                "{} {} is not published",
                install.extension_id, install.version
            ))
        })?;
    let manifest = Manifest::parse(version.manifest_json.as_bytes())
        .map_err(|e| crate::store::StoreError::Internal(format!("stored manifest: {e}")))?;
    sync_for_install(store, install, &manifest).await
}
