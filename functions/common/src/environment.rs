//! The functions' configuration source: the process environment, with the
//! operator credentials an operator keeps in Secrets Manager filled in at cold start
//! (`X_SECRET_ID` names the secret when `X` itself is unset), so every settings
//! reader sees them under their own names and no secret sits in the function's
//! plain environment.

use std::collections::BTreeMap;

use runtime_core::store::StoreError;

/// Credentials that may come from Secrets Manager: `<name>_SECRET_ID` names the secret.
pub const FROM_SECRETS_MANAGER: &[&str] = &[
    "ALGA_HOST_API_BRIDGE_TOKEN",
    "ALGA_HOST_API_KEY",
    "ALGA_VAULT_TOKEN",
];

/// The environment with the credentials read from Secrets Manager.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    resolved: BTreeMap<String, String>,
}

impl Environment {
    /// Reads each credential of [`FROM_SECRETS_MANAGER`] that is unset but has a
    /// `_SECRET_ID` (one Secrets Manager call each, once per container).
    pub async fn load() -> Result<Self, StoreError> {
        let mut resolved = BTreeMap::new();
        for var in FROM_SECRETS_MANAGER {
            if let Some(value) = crate::token_from_env(var, &format!("{var}_SECRET_ID")).await? {
                resolved.insert((*var).to_string(), value);
            }
        }
        Ok(Environment { resolved })
    }

    /// The value of `var`: the process environment's, else the resolved secret's.
    pub fn get(&self, var: &str) -> Option<String> {
        std::env::var(var)
            .ok()
            .or_else(|| self.resolved.get(var).cloned())
    }
}
