//! The ext-ui install check when the host app owns the installs
//! (`ALGA_INSTALL_SOURCE=caller`): Alga's `GET /api/installs/validate?tenant=&extension=&hash=`
//! with the runner's API key (`x-api-key`), answering `{"valid": bool}`, as Alga's
//! own runner asks before serving a UI file.

use std::sync::Arc;

use async_trait::async_trait;
use runtime_core::backends::BackendError;
use runtime_core::content::ContentHash;
use runtime_core::host::HostApiSettings;
use runtime_core::host::host_api::{Credential, HostApi};
use runtime_core::store::Registry;
use runtime_core::ui::access::entry_of;
use runtime_core::ui::{Decision, InstallCheck, Unavailable};
use serde_json::Value;

/// [`InstallCheck`] asking the host app. The bundle itself must still be one we
/// published (its files are ours to serve); whether the tenant's install of the
/// extension runs it is the host app's word. Failures are [`Unavailable`] (503,
/// never cached), never a refusal and never an admission.
pub struct HostAppInstallCheck {
    api: HostApi,
    api_key: Option<String>,
    registry: Arc<dyn Registry>,
}

impl HostAppInstallCheck {
    /// A check asking the host app at `settings.base` with `settings.api_key` as
    /// `x-api-key`, and `registry` for the bundle's manifest. Refuses settings
    /// without a base URL.
    pub fn new(
        settings: &HostApiSettings,
        registry: Arc<dyn Registry>,
    ) -> Result<Self, BackendError> {
        let unconfigured = || {
            BackendError::Config(
                "ALGA_INSTALL_SOURCE=caller: the UI install check asks the host app, which \
                 needs its base URL (ALGA_HOST_API_BASE)"
                    .into(),
            )
        };
        if settings.base.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Err(unconfigured());
        }
        // The validate route is public API: it takes the runner's API key, and the
        // internal routes' credential (`x-runner-auth`) is not sent there.
        let public = HostApiSettings {
            token: None,
            bridge_token: None,
            ..settings.clone()
        };
        let api = HostApi::new(public).ok_or_else(unconfigured)?;
        Ok(HostAppInstallCheck {
            api,
            api_key: settings.api_key.clone().filter(|k| !k.trim().is_empty()),
            registry,
        })
    }
}

#[async_trait]
impl InstallCheck for HostAppInstallCheck {
    async fn ask(
        &self,
        extension_id: &str,
        hash: &ContentHash,
        tenant: Option<&str>,
    ) -> Result<Decision, Unavailable> {
        // Alga validates (tenant, extension, hash): without a tenant in the URL there
        // is nothing to ask, and Alga's runner refuses too.
        let Some(tenant) = tenant.filter(|t| !t.is_empty()) else {
            return Ok(Decision::Denied);
        };
        let Some(version) = self
            .registry
            .version_by_hash(hash)
            .await
            .map_err(|e| Unavailable(e.to_string()))?
        else {
            return Ok(Decision::Denied);
        };
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("tenant", tenant)
            .append_pair("extension", extension_id)
            .append_pair("hash", &hash.to_string())
            .finish();
        let headers: Vec<(&str, String)> = self
            .api_key
            .iter()
            .map(|k| ("x-api-key", k.clone()))
            .collect();
        let r = self
            .api
            .call(
                Credential::Bridge,
                http::Method::GET,
                &format!("/api/installs/validate?{query}"),
                &headers,
                None,
                None,
            )
            .await
            .map_err(|e| Unavailable(format!("host app installs/validate: {}: {e}", e.code())))?;
        match r.status {
            200..=299 => {}
            // A refused key is the operator's to fix: answered 503, never a cached 404.
            401 | 403 => {
                return Err(Unavailable(format!(
                    "host app installs/validate answered {} (the runner's API key, ALGA_HOST_API_KEY)",
                    r.status
                )));
            }
            // Alga's "missing or invalid parameters".
            400 => return Ok(Decision::Denied),
            s => {
                return Err(Unavailable(format!(
                    "host app installs/validate answered {s}"
                )));
            }
        }
        let valid = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|j| j.get("valid").and_then(Value::as_bool))
            .ok_or_else(|| Unavailable("host app installs/validate: unreadable answer".into()))?;
        Ok(if valid {
            Decision::Allowed {
                entry: entry_of(&version.manifest_json),
            }
        } else {
            Decision::Denied
        })
    }
}
