//! `alga:extension/secrets`: the install's secrets.
//!
//! Values come from the request's inline secret envelope when it has one, else from
//! the [`SecretStore`] (loaded on the first call, once per request). Not granted:
//! `get` → `denied`, `list-keys` → `[]`. Past the bundle's expiry every `get`
//! answers `expired`.

use std::sync::Arc;
use std::time::SystemTime;

use super::HostState;
use super::bindings::alga::extension::secrets;
use super::bindings::alga::extension::types::SecretError;
use super::logging::LogLevel;
use crate::capability::Capability;
use crate::store::{SecretBundle, SecretStore};

/// The secrets of one request: inline, or loaded from the store when first used.
pub struct SecretsState {
    loaded: Option<Result<Option<SecretBundle>, String>>,
    store: Arc<dyn SecretStore>,
    tenant: String,
    install_id: Option<String>,
}

impl SecretsState {
    /// State for one request.
    pub fn new(
        inline: Option<SecretBundle>,
        store: Arc<dyn SecretStore>,
        tenant: String,
        install_id: Option<String>,
    ) -> Self {
        SecretsState {
            loaded: inline.map(|b| Ok(Some(b))),
            store,
            tenant,
            install_id,
        }
    }

    async fn bundle(&mut self) -> Result<Option<&SecretBundle>, String> {
        if self.loaded.is_none() {
            let loaded = match &self.install_id {
                Some(install) => self
                    .store
                    .load(&self.tenant, install)
                    .await
                    .map_err(|e| e.to_string()),
                None => Ok(None),
            };
            self.loaded = Some(loaded);
        }
        match self.loaded.as_ref().expect("loaded above") {
            Ok(b) => Ok(b.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }
}

impl SecretsState {
    /// The install's `api_key` secret for calls to the host app (ui-proxy), whatever
    /// the guest's grants: the host uses it on the extension's behalf and the guest
    /// never reads it this way. `None` when there is none or it has expired.
    pub async fn api_key(&mut self) -> Result<Option<String>, String> {
        let Some(bundle) = self.bundle().await? else {
            return Ok(None);
        };
        if bundle.expires_at.is_some_and(|t| t <= SystemTime::now()) {
            return Ok(None);
        }
        Ok(bundle.values.get(API_KEY_SECRET).cloned())
    }
}

/// The secret the host app authenticates an extension's ui-proxy calls with.
pub const API_KEY_SECRET: &str = "api_key";

impl secrets::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<String, SecretError>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::SecretsGet) {
            return Ok(Err(SecretError::Denied));
        }
        let bundle = match self.secrets.bundle().await {
            Ok(b) => b,
            Err(e) => {
                self.logs
                    .note(LogLevel::Error, format!("secrets backend failed: {e}"));
                return Ok(Err(SecretError::Internal));
            }
        };
        let Some(bundle) = bundle else {
            return Ok(Err(SecretError::Missing));
        };
        if bundle.expires_at.is_some_and(|t| t <= SystemTime::now()) {
            return Ok(Err(SecretError::Expired));
        }
        Ok(bundle.values.get(&key).cloned().ok_or(SecretError::Missing))
    }

    async fn list_keys(&mut self) -> wasmtime::Result<Vec<String>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::SecretsGet) {
            return Ok(Vec::new());
        }
        match self.secrets.bundle().await {
            Ok(Some(b)) => Ok(b.values.keys().cloned().collect()),
            Ok(None) => Ok(Vec::new()),
            Err(e) => {
                self.logs
                    .note(LogLevel::Error, format!("secrets backend failed: {e}"));
                Ok(Vec::new())
            }
        }
    }
}
