//! Backends over the host app's own API, for deployments where the host app (Alga)
//! keeps extension storage and schedules in its database, as Alga's own runner does,
//! so an operator can switch runners without moving data:
//!
//! - [`HostApiKvStore`]: guest storage over `/api/internal/ext-storage/install/{id}`;
//! - [`HostApiScheduleStore`]: schedules over `/api/internal/ext-scheduler/install/{id}`
//!   (the host app fires them, so nothing here does);
//! - [`HostAppInstallCheck`]: the ext-ui install check over `/api/installs/validate`,
//!   for `ALGA_INSTALL_SOURCE=caller`.
//!
//! Chosen per deployment: `ALGA_HOST_STORES` ([`HostStores`], applied by the
//! composition roots through [`apply_from_env`]) and `ALGA_INSTALL_SOURCE`
//! ([`ui_install_check`]). What Alga's API cannot express, and how each case is
//! refused, is in docs/backends.md ("Host app stores").

mod client;
mod install_check;
mod kv;
mod schedules;

use std::sync::Arc;

use runtime_core::backends::{BackendError, Backends};
use runtime_core::execute::InstallSource;
use runtime_core::host::HostApiSettings;
use runtime_core::store::Registry;
use runtime_core::ui::{Decision, InstallCheck, RegistryCheck, UiSettings, Unavailable};

pub use client::InternalApi;
pub use install_check::HostAppInstallCheck;
pub use kv::{HostApiKvStore, VALUE_MAX_BYTES, cursor_after, decode_value, host_limits};
pub use schedules::{HostApiScheduleStore, NAME_MAX_UNITS, split_name, tagged_name};

/// The setting naming the stores the host app keeps.
pub const HOST_STORES_VAR: &str = "ALGA_HOST_STORES";

/// Which stores the host app keeps (`ALGA_HOST_STORES`: a comma-separated list of
/// `kv` and `schedules`; empty or `none`: neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStores {
    /// Guest storage (`kv`).
    pub kv: bool,
    /// Schedules (`schedules`).
    pub schedules: bool,
}

impl HostStores {
    /// Parses a value of `ALGA_HOST_STORES`.
    pub fn parse(value: &str) -> Result<Self, BackendError> {
        let mut s = HostStores::default();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "kv" => s.kv = true,
                "schedules" => s.schedules = true,
                "none" => {}
                other => {
                    return Err(BackendError::Config(format!(
                        "{HOST_STORES_VAR}: {other:?} is not a store the host app can keep \
                         (expected kv, schedules, or both comma-separated)"
                    )));
                }
            }
        }
        Ok(s)
    }

    /// The setting read through `get` (unset: neither).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, BackendError> {
        get(HOST_STORES_VAR).map_or(Ok(HostStores::default()), |v| Self::parse(&v))
    }

    /// The setting from the process environment.
    pub fn from_env() -> Result<Self, BackendError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Whether the host app keeps any store.
    pub fn any(self) -> bool {
        self.kv || self.schedules
    }
}

impl std::fmt::Display for HostStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [(self.kv, "kv"), (self.schedules, "schedules")]
            .into_iter()
            .filter_map(|(on, n)| on.then_some(n))
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Puts the host app's stores in place of `backends`' guest storage and/or schedules.
/// Refuses (a configuration error, so the process does not start) when the host
/// API's base URL or the runner's credential for its internal API is missing.
pub fn apply(
    backends: &mut Backends,
    stores: HostStores,
    api: &HostApiSettings,
) -> Result<(), BackendError> {
    if !stores.any() {
        return Ok(());
    }
    let api = Arc::new(InternalApi::new(
        api,
        &format!("{HOST_STORES_VAR}={stores}"),
    )?);
    if stores.kv {
        backends.kv = Arc::new(HostApiKvStore::new(api.clone()));
    }
    if stores.schedules {
        // In place of whatever the backend set built (on AWS possibly the
        // EventBridge Scheduler mirror): the host app fires these schedules.
        backends.schedules = Arc::new(HostApiScheduleStore::new(api));
    }
    Ok(())
}

/// [`apply`] as the environment says: `ALGA_HOST_STORES`, and the host API of the
/// runtime configuration (`ALGA_HOST_API_BASE`, `ALGA_HOST_API_BRIDGE_TOKEN`, ...).
/// Returns what it applied.
pub fn apply_from_env(backends: &mut Backends) -> Result<HostStores, BackendError> {
    let stores = HostStores::from_env()?;
    if stores.any() {
        let config = runtime_core::RuntimeConfig::from_env()
            .map_err(|e| BackendError::Config(e.to_string()))?;
        apply(backends, stores, &config.host_api)?;
    }
    Ok(stores)
}

/// The ext-ui install check `settings` ask for: our registry's, or with
/// `ALGA_INSTALL_SOURCE=caller` the host app's. A host app check that cannot be
/// built (no base URL; `UiSettings::from_env` refuses that at start) answers every
/// request 503, never serving a bundle it could not check.
pub fn ui_install_check(
    settings: &UiSettings,
    registry: Arc<dyn Registry>,
) -> Arc<dyn InstallCheck> {
    if settings.install_source != InstallSource::Caller {
        return Arc::new(RegistryCheck::new(registry));
    }
    let built = match &settings.host_app {
        Some(host) => HostAppInstallCheck::new(&host.api, registry),
        None => Err(BackendError::Config(
            "ALGA_INSTALL_SOURCE=caller: no host app is configured for the UI install check".into(),
        )),
    };
    match built {
        Ok(check) => Arc::new(check),
        Err(e) => {
            tracing::error!(error = %e, "ui: the install check cannot ask the host app; every UI request answers 503");
            Arc::new(Unconfigured(e.to_string()))
        }
    }
}

/// A check that cannot ask anyone: fails closed.
struct Unconfigured(String);

#[async_trait::async_trait]
impl InstallCheck for Unconfigured {
    async fn ask(
        &self,
        _extension_id: &str,
        _hash: &runtime_core::content::ContentHash,
        _tenant: Option<&str>,
    ) -> Result<Decision, Unavailable> {
        Err(Unavailable(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_stores_name_kv_and_schedules_and_nothing_else() {
        let p = |v: &str| HostStores::parse(v).map(|s| s.to_string());
        assert_eq!(p("").unwrap(), "none");
        assert_eq!(p("none").unwrap(), "none");
        assert_eq!(p("kv").unwrap(), "kv");
        assert_eq!(p(" schedules , kv ").unwrap(), "kv,schedules");
        let e = HostStores::parse("kv,secrets").unwrap_err().to_string();
        assert!(
            e.contains("ALGA_HOST_STORES") && e.contains("secrets"),
            "{e}"
        );
        assert_eq!(
            HostStores::from_lookup(|_| None).unwrap(),
            HostStores::default()
        );
    }

    #[test]
    fn the_host_stores_refuse_to_start_without_base_or_credential() {
        let mut settings = HostApiSettings::default();
        let err = InternalApi::new(&settings, "ALGA_HOST_STORES=kv")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ALGA_HOST_API_BASE"), "{err}");
        settings.base = Some("http://127.0.0.1:9".into());
        let err = InternalApi::new(&settings, "ALGA_HOST_STORES=kv")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ALGA_HOST_API_BRIDGE_TOKEN"), "{err}");
        settings.bridge_token = Some("t".into());
        assert!(InternalApi::new(&settings, "ALGA_HOST_STORES=kv").is_ok());
    }
}
