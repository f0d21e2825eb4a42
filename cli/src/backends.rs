//! The CLI's composition root: which backend set a command runs on. `up` always
//! runs on the local set; the other commands follow `ALGA_BACKEND`. Either way
//! `ALGA_HOST_STORES` may put the host app's storage and/or schedules in place of
//! the set's own.

use std::path::Path;

use runtime_core::backends::{BackendError, Backends};

/// The local set under `data_dir`.
pub fn local(data_dir: &Path) -> Result<Backends, BackendError> {
    with_host_stores(stores_local::backends(data_dir)?)
}

/// The set `ALGA_BACKEND` names (`local`, the default, under `data_dir`; or `aws`).
pub async fn from_env(data_dir: &Path) -> Result<Backends, BackendError> {
    match std::env::var("ALGA_BACKEND").as_deref().map(str::trim) {
        Err(_) | Ok("") | Ok("local") => local(data_dir),
        Ok("aws") => with_host_stores(stores_aws::backends_from_env().await?),
        Ok(other) => Err(BackendError::Config(format!(
            "ALGA_BACKEND={other:?}: expected local or aws"
        ))),
    }
}

/// `backends` with the stores `ALGA_HOST_STORES` gives to the host app. With the
/// host app's schedules `up`'s cron fires nothing: the host app fires them.
fn with_host_stores(mut backends: Backends) -> Result<Backends, BackendError> {
    stores_host_api::apply_from_env(&mut backends)?;
    Ok(backends)
}
