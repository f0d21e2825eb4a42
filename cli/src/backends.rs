//! The CLI's composition root: which backend set a command runs on. `up` always
//! runs on the local set; the other commands follow `ALGA_BACKEND`.

use std::path::Path;

use runtime_core::backends::{BackendError, Backends};

/// The local set under `data_dir`.
pub fn local(data_dir: &Path) -> Result<Backends, BackendError> {
    stores_local::backends(data_dir)
}

/// The set `ALGA_BACKEND` names (`local`, the default, under `data_dir`; or `aws`).
pub async fn from_env(data_dir: &Path) -> Result<Backends, BackendError> {
    match std::env::var("ALGA_BACKEND").as_deref().map(str::trim) {
        Err(_) | Ok("") | Ok("local") => local(data_dir),
        Ok("aws") => stores_aws::backends_from_env().await,
        Ok(other) => Err(BackendError::Config(format!(
            "ALGA_BACKEND={other:?}: expected local or aws"
        ))),
    }
}
