//! UI asset settings from the environment (documented in docs/configuration.md).

use std::time::Duration;

use crate::config::ConfigError;
use crate::execute::InstallSource;
use crate::host::HostApiSettings;

/// The Content-Security-Policy of every UI file when the operator sets none
/// (ALGA-COMPAT §4).
///
/// No `sandbox` directive: inside the host's iframe the iframe's own `sandbox`
/// attribute already gives the UI an opaque origin, and a UI opened on its own
/// calls its extension's direct route same-origin with the user's credentials
/// (the example does), which an opaque origin would turn into a credential-less
/// CORS request that fails. Operators whose UIs only ever run framed can add
/// `sandbox allow-scripts` through `EXT_UI_CONTENT_SECURITY_POLICY`.
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'";

/// Settings from the environment (`EXT_UI_FRAME_ANCESTORS`, `EXT_UI_CONTENT_SECURITY_POLICY`,
/// `ALGA_UI_*`, and `ALGA_INSTALL_SOURCE` with the host API when the host app owns the
/// installs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSettings {
    /// The CSP sent with every file response (200 and 304, every content type).
    pub csp: String,
    /// How long a positive registry decision (hash belongs to an installed version of
    /// the extension) is reused.
    pub access_cache_ttl: Duration,
    /// How long a negative decision is reused; short, so a fresh install shows up fast.
    pub access_negative_ttl: Duration,
    /// Decisions kept (LRU by extension + hash).
    pub access_cache_entries: usize,
    /// Largest file served; bigger ones answer 500 `asset_too_large` (a Lambda response
    /// is at most 6 MB after base64).
    pub max_asset_bytes: usize,
    /// Longest raw request path; longer ones answer 414 `invalid_path`.
    pub max_path_bytes: usize,
    /// Time limit for each registry or blob-store call; past it 503 `backend_unavailable`.
    pub backend_timeout: Duration,
    /// Who owns the installs the access check asks about (`ALGA_INSTALL_SOURCE`, the
    /// same setting as execute's): our registry, or with `caller` the host app.
    pub install_source: InstallSource,
    /// With `caller`: the host app the check asks.
    pub host_app: Option<HostAppCheck>,
}

/// Where the host app's install check is asked (`ALGA_INSTALL_SOURCE=caller`).
#[derive(Clone, PartialEq, Eq)]
pub struct HostAppCheck {
    /// The host API (`ALGA_HOST_API_BASE` or its aliases) with the runner's key for
    /// its public API (`ALGA_HOST_API_KEY`, sent as `x-api-key`), and without the
    /// internal API's credentials, which the check's public route never gets.
    pub api: HostApiSettings,
}

impl std::fmt::Debug for HostAppCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Settings get logged; the key must not be.
        f.debug_struct("HostAppCheck")
            .field("base", &self.api.base)
            .field("api_key", &self.api.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            csp: DEFAULT_CSP.to_string(),
            access_cache_ttl: Duration::from_secs(60),
            access_negative_ttl: Duration::from_secs(5),
            access_cache_entries: 1024,
            max_asset_bytes: 4 << 20,
            max_path_bytes: 2048,
            backend_timeout: Duration::from_secs(5),
            install_source: InstallSource::Registry,
            host_app: None,
        }
    }
}

impl UiSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut s = UiSettings::default();
        let frame_ancestors = header_value(&get, "EXT_UI_FRAME_ANCESTORS")?;
        let replacement = header_value(&get, "EXT_UI_CONTENT_SECURITY_POLICY")?;
        // As the seed host does: a full policy wins over the frame-ancestors addition,
        // and a blank value counts as unset (never "no CSP at all").
        s.csp = match (replacement, frame_ancestors) {
            (Some(csp), _) => csp,
            (None, Some(fa)) => format!("{DEFAULT_CSP}; frame-ancestors {fa}"),
            (None, None) => DEFAULT_CSP.to_string(),
        };
        if let Some(v) = seconds(&get, "ALGA_UI_ACCESS_TTL_SECS", 0, 86_400)? {
            s.access_cache_ttl = v;
        }
        if let Some(v) = seconds(&get, "ALGA_UI_ACCESS_NEGATIVE_TTL_SECS", 0, 3_600)? {
            s.access_negative_ttl = v;
        }
        if let Some(v) = number(&get, "ALGA_UI_ACCESS_CACHE", 1, 1_000_000)? {
            s.access_cache_entries = v as usize;
        }
        if let Some(v) = number(&get, "ALGA_UI_MAX_ASSET_BYTES", 1, 1 << 30)? {
            s.max_asset_bytes = v as usize;
        }
        if let Some(v) = number(&get, "ALGA_UI_BACKEND_TIMEOUT_MS", 1, 900_000)? {
            s.backend_timeout = Duration::from_millis(v);
        }
        s.install_source = match get("ALGA_INSTALL_SOURCE").as_deref().map(str::trim) {
            None | Some("") | Some("registry") => InstallSource::Registry,
            Some("caller") => InstallSource::Caller,
            Some(other) => {
                return Err(ConfigError {
                    var: "ALGA_INSTALL_SOURCE",
                    value: other.to_string(),
                    expected: "registry or caller",
                });
            }
        };
        if s.install_source == InstallSource::Caller {
            // The host app's installs are not in our registry: the check asks it,
            // so a deployment that cannot reach it must not start.
            let api = crate::config::RuntimeConfig::from_lookup(&get)?.host_api;
            if api.base.is_none() {
                return Err(ConfigError {
                    var: "ALGA_INSTALL_SOURCE",
                    value: "caller".into(),
                    expected: "caller only with the host app's base URL (ALGA_HOST_API_BASE): the UI install check asks the host app",
                });
            }
            s.host_app = Some(HostAppCheck {
                api: HostApiSettings {
                    token: None,
                    bridge_token: None,
                    ..api
                },
            });
        }
        Ok(s)
    }
}

/// A trimmed, non-blank value that is safe inside a header (no control characters, so
/// no header injection through a misconfigured variable).
fn header_value(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(raw) = get(var) else { return Ok(None) };
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(ConfigError {
            var,
            value: raw,
            expected: "a header value without control characters or line breaks",
        });
    }
    Ok(Some(v.to_string()))
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(raw) = get(var) else { return Ok(None) };
    match raw.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(ConfigError {
            var,
            value: raw,
            expected: "a whole number in the documented range",
        }),
    }
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<Duration>, ConfigError> {
    Ok(number(get, var, min, max)?.map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<UiSettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        UiSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn default_csp_is_the_seed_policy() {
        assert_eq!(from(&[]).unwrap(), UiSettings::default());
        assert_eq!(UiSettings::default().csp, DEFAULT_CSP);
    }

    #[test]
    fn frame_ancestors_appends_and_a_full_policy_replaces() {
        let s = from(&[("EXT_UI_FRAME_ANCESTORS", " https://app.example.com ")]).unwrap();
        assert_eq!(
            s.csp,
            format!("{DEFAULT_CSP}; frame-ancestors https://app.example.com")
        );
        let s = from(&[
            ("EXT_UI_FRAME_ANCESTORS", "'self'"),
            ("EXT_UI_CONTENT_SECURITY_POLICY", "default-src 'none'"),
        ])
        .unwrap();
        assert_eq!(s.csp, "default-src 'none'");
        let s = from(&[("EXT_UI_CONTENT_SECURITY_POLICY", "   ")]).unwrap();
        assert_eq!(s.csp, DEFAULT_CSP);
    }

    #[test]
    fn refuses_header_injection_and_bad_numbers() {
        let e = from(&[("EXT_UI_FRAME_ANCESTORS", "'self'\r\nSet-Cookie: x=1")]).unwrap_err();
        assert_eq!(e.var, "EXT_UI_FRAME_ANCESTORS");
        let e = from(&[("ALGA_UI_MAX_ASSET_BYTES", "big")]).unwrap_err();
        assert_eq!(e.var, "ALGA_UI_MAX_ASSET_BYTES");
        let s = from(&[
            ("ALGA_UI_ACCESS_TTL_SECS", "0"),
            ("ALGA_UI_ACCESS_NEGATIVE_TTL_SECS", "1"),
            ("ALGA_UI_ACCESS_CACHE", "7"),
            ("ALGA_UI_BACKEND_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        assert_eq!(s.access_cache_ttl, Duration::ZERO);
        assert_eq!(s.access_negative_ttl, Duration::from_secs(1));
        assert_eq!(s.access_cache_entries, 7);
        assert_eq!(s.backend_timeout, Duration::from_millis(250));
    }

    #[test]
    fn caller_installs_are_checked_by_the_host_app_which_must_be_configured() {
        assert_eq!(from(&[]).unwrap().install_source, InstallSource::Registry);
        assert_eq!(from(&[]).unwrap().host_app, None);
        let e = from(&[("ALGA_INSTALL_SOURCE", "caller")]).unwrap_err();
        assert_eq!(e.var, "ALGA_INSTALL_SOURCE");
        assert!(e.expected.contains("ALGA_HOST_API_BASE"));
        let e = from(&[("ALGA_INSTALL_SOURCE", "headers")]).unwrap_err();
        assert_eq!(e.var, "ALGA_INSTALL_SOURCE");
        let s = from(&[
            ("ALGA_INSTALL_SOURCE", " caller "),
            ("ALGA_HOST_API_BASE", "http://alga.internal:3000"),
            ("ALGA_AUTH_KEY", "k-123"),
            ("ALGA_HOST_API_BRIDGE_TOKEN", "internal"),
        ])
        .unwrap();
        assert_eq!(s.install_source, InstallSource::Caller);
        let host = s.host_app.unwrap();
        assert_eq!(host.api.base.as_deref(), Some("http://alga.internal:3000"));
        assert_eq!(host.api.api_key.as_deref(), Some("k-123"));
        assert_eq!(host.api.bridge_token, None);
        assert!(!format!("{host:?}").contains("k-123"));
    }
}
