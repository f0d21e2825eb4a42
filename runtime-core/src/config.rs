//! Runtime configuration: engine settings, per-request limits and caches, from the environment.
//!
//! Every variable is documented in docs/configuration.md.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::engine::EngineSettings;
pub use crate::host::HostApiSettings;
pub use crate::host::http::EgressSettings;
pub use crate::loader::CacheSettings;
pub use crate::vault::VaultSettings;

/// A configuration variable held a value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}={value:?}: {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What it held.
    pub value: String,
    /// What was expected instead.
    pub expected: &'static str,
}

/// Limits applied to every request; the request may ask for less, never for more
/// than the `*_max` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deadline when the request sends none.
    pub timeout_default: Duration,
    /// The largest deadline a request may ask for.
    pub timeout_max: Duration,
    /// Linear memory when the request sends none.
    pub memory_default_bytes: usize,
    /// Fuel when fuel is on and the request sends none.
    pub fuel_default: u64,
    /// The largest fuel budget a request may ask for.
    pub fuel_max: u64,
    /// Largest response body a guest may return.
    pub response_body_max: usize,
    /// Largest request body passed to a guest.
    pub request_body_max: usize,
    /// Log bytes (logging interface plus stdout/stderr) per request.
    pub log_bytes_max: usize,
    /// Host function calls per request.
    pub host_calls_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_default: Duration::from_secs(5),
            timeout_max: Duration::from_secs(30),
            memory_default_bytes: 128 << 20,
            fuel_default: 2_000_000_000,
            fuel_max: 20_000_000_000,
            response_body_max: 5 << 20,
            request_body_max: 5 << 20,
            log_bytes_max: 256 << 10,
            host_calls_max: 10_000,
        }
    }
}

/// Metrics in CloudWatch Embedded Metric Format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Namespace of the runner's metrics; guest metrics use `<namespace>/Extensions`.
    pub namespace: String,
    /// Guest metric values accepted per invocation; more are dropped and counted.
    pub guest_values_max: u32,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            namespace: "AlgaLambda".into(),
            guest_values_max: crate::host::DEFAULT_METRICS_MAX_VALUES,
        }
    }
}

/// Everything the runtime needs to be configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Engine shape.
    pub engine: EngineSettings,
    /// Per-request limits.
    pub limits: Limits,
    /// Component caches.
    pub cache: CacheSettings,
    /// Outbound HTTP of guests.
    pub egress: EgressSettings,
    /// The host API bridge.
    pub host_api: HostApiSettings,
    /// Vault's transit engine, for `vault-transit` secret envelopes.
    pub vault: VaultSettings,
    /// EMF metrics.
    pub metrics: MetricsSettings,
    /// Publish refuses unknown manifest keys and the other shapes Alga tolerates
    /// (`ALGA_PUBLISH_STRICT`), instead of accepting them with warnings.
    pub strict_manifests: bool,
    /// Which bundles are trusted (`ALGA_BUNDLE_TRUST`: `signature` or `host-pinned`).
    pub bundle_trust: crate::bundle::BundleTrust,
}

impl RuntimeConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = RuntimeConfig::default();
        let e = &mut c.engine;
        if let Some(v) = get("ALGA_FUEL") {
            e.fuel = parse_bool("ALGA_FUEL", &v)?;
        }
        if let Some(v) = get("ALGA_POOLING") {
            e.pooling = parse_bool("ALGA_POOLING", &v)?;
        }
        num(&get, "ALGA_POOL_INSTANCES", 1, 10_000, |v| {
            e.pool_instances = v as u32
        })?;
        num(&get, "ALGA_MEMORY_MAX_MB", 1, 4096, |v| {
            e.max_memory_bytes = (v as usize) << 20
        })?;
        num(&get, "ALGA_EPOCH_TICK_MS", 1, 1000, |v| {
            e.epoch_tick = Duration::from_millis(v)
        })?;
        let l = &mut c.limits;
        num(&get, "ALGA_TIMEOUT_MS", 1, 900_000, |v| {
            l.timeout_default = Duration::from_millis(v)
        })?;
        num(&get, "ALGA_TIMEOUT_MAX_MS", 1, 900_000, |v| {
            l.timeout_max = Duration::from_millis(v)
        })?;
        num(&get, "ALGA_MEMORY_MB", 1, 4096, |v| {
            l.memory_default_bytes = (v as usize) << 20
        })?;
        num(&get, "ALGA_FUEL_DEFAULT", 1, u64::MAX, |v| {
            l.fuel_default = v
        })?;
        num(&get, "ALGA_FUEL_MAX", 1, u64::MAX, |v| l.fuel_max = v)?;
        num(&get, "ALGA_RESPONSE_MAX_BYTES", 1, 1 << 30, |v| {
            l.response_body_max = v as usize
        })?;
        num(&get, "ALGA_REQUEST_MAX_BYTES", 1, 1 << 30, |v| {
            l.request_body_max = v as usize
        })?;
        num(&get, "ALGA_LOG_MAX_BYTES", 1, 1 << 30, |v| {
            l.log_bytes_max = v as usize
        })?;
        num(&get, "ALGA_HOST_CALLS_MAX", 1, u32::MAX as u64, |v| {
            l.host_calls_max = v as u32
        })?;
        let k = &mut c.cache;
        num(&get, "ALGA_INSTANCE_CACHE", 1, 100_000, |v| {
            k.instance_entries = v as usize
        })?;
        if let Some(v) = get("ALGA_ARTIFACT_CACHE_DIR").filter(|v| !v.is_empty()) {
            k.disk_dir = Some(PathBuf::from(v));
        }
        num(&get, "ALGA_ARTIFACT_CACHE_MAX_MB", 1, 1 << 40, |v| {
            k.disk_max_bytes = v << 20
        })?;
        read_egress(&get, &mut c.egress)?;
        read_host_api(&get, &mut c.host_api)?;
        read_vault(&get, &mut c.vault)?;
        if let Some(v) = get("ALGA_METRICS_NAMESPACE").filter(|v| !v.trim().is_empty()) {
            c.metrics.namespace = v.trim().to_string();
        }
        num(&get, "ALGA_METRICS_MAX_VALUES", 0, 1_000_000, |v| {
            c.metrics.guest_values_max = v as u32
        })?;
        if let Some(v) = get("ALGA_PUBLISH_STRICT") {
            c.strict_manifests = parse_bool("ALGA_PUBLISH_STRICT", &v)?;
        }
        if let Some(v) = get("ALGA_BUNDLE_TRUST").filter(|v| !v.trim().is_empty()) {
            c.bundle_trust = crate::bundle::BundleTrust::parse(&v).ok_or(ConfigError {
                var: "ALGA_BUNDLE_TRUST",
                value: v.clone(),
                expected: "signature or host-pinned",
            })?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that the values agree with each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.limits.timeout_default > self.limits.timeout_max {
            return Err(ConfigError {
                var: "ALGA_TIMEOUT_MS",
                value: self.limits.timeout_default.as_millis().to_string(),
                expected: "at most ALGA_TIMEOUT_MAX_MS",
            });
        }
        if self.limits.memory_default_bytes > self.engine.max_memory_bytes {
            return Err(ConfigError {
                var: "ALGA_MEMORY_MB",
                value: (self.limits.memory_default_bytes >> 20).to_string(),
                expected: "at most ALGA_MEMORY_MAX_MB",
            });
        }
        Ok(())
    }
}

fn read_egress(
    get: &impl Fn(&str) -> Option<String>,
    g: &mut EgressSettings,
) -> Result<(), ConfigError> {
    if let Some(v) = get("EXT_EGRESS_ALLOWLIST") {
        // A typo (a bad port, a URL) would silently allow nothing: say so.
        if !crate::host::http::policy::invalid_allowlist_entries(&v).is_empty() {
            return Err(ConfigError {
                var: "EXT_EGRESS_ALLOWLIST",
                value: v,
                expected: "comma-separated hosts, each optionally with :port (1-65535)",
            });
        }
        g.allowlist = crate::host::http::policy::parse_allowlist(&v);
    }
    if let Some(v) = get("ALGA_EGRESS_ALLOW_RANGES") {
        g.allow_ranges = v
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                r.parse::<ipnet::IpNet>()
                    .or_else(|_| r.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            })
            .collect::<Result<_, _>>()
            .map_err(|_| ConfigError {
                var: "ALGA_EGRESS_ALLOW_RANGES",
                value: v.clone(),
                expected: "comma-separated CIDRs, e.g. 127.0.0.0/8,10.1.0.0/16",
            })?;
    }
    num(get, "ALGA_EGRESS_TIMEOUT_MS", 1, 900_000, |v| {
        g.timeout = Duration::from_millis(v)
    })?;
    num(get, "ALGA_EGRESS_MAX_REDIRECTS", 0, 20, |v| {
        g.max_redirects = v as u32
    })?;
    num(get, "ALGA_EGRESS_REQUEST_MAX_BYTES", 0, 1 << 30, |v| {
        g.request_body_max = v as usize
    })?;
    num(get, "ALGA_EGRESS_RESPONSE_MAX_BYTES", 1, 1 << 30, |v| {
        g.response_body_max = v as usize
    })?;
    num(get, "ALGA_EGRESS_MAX_CALLS", 0, 10_000, |v| {
        g.max_calls = v as u32
    })?;
    Ok(())
}

/// The first of `names` that is set to something other than blanks: ours first,
/// then the host app's aliases (Alga's runner's names), so ours win when both are set.
fn first_set(
    get: &impl Fn(&str) -> Option<String>,
    names: &[&'static str],
) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| {
        get(n)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (*n, v))
    })
}

/// The internal API's base and its aliases, in precedence order.
pub const HOST_API_BASE_VARS: &[&str] = &[
    "ALGA_HOST_API_BASE",
    "STORAGE_API_BASE_URL",
    "REGISTRY_BASE_URL",
];
/// The ui-proxy base and its alias.
pub const UI_PROXY_BASE_VARS: &[&str] = &["ALGA_UI_PROXY_BASE", "UI_PROXY_BASE_URL"];
/// The bridge credential and its aliases.
pub const BRIDGE_TOKEN_VARS: &[&str] = &[
    "ALGA_HOST_API_BRIDGE_TOKEN",
    "RUNNER_STORAGE_API_TOKEN",
    "RUNNER_SERVICE_TOKEN",
];
/// The runner's API key for the host app's public API and its alias.
pub const HOST_API_KEY_VARS: &[&str] = &["ALGA_HOST_API_KEY", "ALGA_AUTH_KEY"];
/// The host API time limit and its alias.
pub const HOST_API_TIMEOUT_VARS: &[&str] = &["ALGA_HOST_API_TIMEOUT_MS", "UI_PROXY_TIMEOUT_MS"];

fn http_url(var: &'static str, v: &str) -> Result<String, ConfigError> {
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(v.trim_end_matches('/').to_string())
        }
        _ => Err(ConfigError {
            var,
            value: v.to_string(),
            expected: "an http(s) URL",
        }),
    }
}

/// A file's content, trimmed, as a secret's value; a missing file is a
/// configuration error (the operator named it).
fn secret_file(var: &'static str, path: &str) -> Result<Option<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|_| ConfigError {
        var,
        value: path.to_string(),
        expected: "a readable file holding the secret",
    })?;
    Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()))
}

fn read_host_api(
    get: &impl Fn(&str) -> Option<String>,
    h: &mut HostApiSettings,
) -> Result<(), ConfigError> {
    if let Some((var, v)) = first_set(get, HOST_API_BASE_VARS) {
        let mut base = http_url(var, &v)?;
        // Alga's runner strips a terminal `/api` from its names' values (it builds
        // `/api/internal/...` itself); so do we, for the same values to work.
        if var != "ALGA_HOST_API_BASE"
            && let Some(origin) = base.strip_suffix("/api")
            && !origin.ends_with(':')
            && !origin.ends_with('/')
        {
            base = origin.to_string();
        }
        h.base = Some(base);
    }
    if let Some((var, v)) = first_set(get, UI_PROXY_BASE_VARS) {
        h.ui_proxy_base = Some(http_url(var, &v)?);
    }
    h.token = first_set(get, &["ALGA_HOST_API_TOKEN"]).map(|(_, v)| v);
    h.bridge_token = first_set(get, BRIDGE_TOKEN_VARS).map(|(_, v)| v);
    h.api_key = match first_set(get, HOST_API_KEY_VARS) {
        Some((_, v)) => Some(v),
        None => match first_set(get, &["ALGA_AUTH_KEY_FILE"]) {
            Some((var, path)) => secret_file(var, &path)?,
            None => None,
        },
    };
    if let Some(v) = get("ALGA_UI_PROXY_ROUTES") {
        h.ui_proxy_routes = crate::host::ui_proxy::parse_route_prefixes(&v).ok_or(ConfigError {
            var: "ALGA_UI_PROXY_ROUTES",
            value: v.clone(),
            expected: "comma-separated path prefixes under api/ (e.g. api/v1), never api/internal",
        })?;
    }
    if let Some((var, _)) = first_set(get, HOST_API_TIMEOUT_VARS) {
        num(get, var, 1, 900_000, |v| {
            h.timeout = Duration::from_millis(v)
        })?;
    }
    num(get, "ALGA_HOST_API_MAX_BYTES", 1, 1 << 30, |v| {
        h.request_body_max = v as usize;
        h.response_body_max = v as usize;
    })?;
    Ok(())
}

/// Vault's address and its aliases (ours first, then the names Alga's runner reads).
pub const VAULT_ADDR_VARS: &[&str] = &["ALGA_VAULT_ADDR", "VAULT_ADDR"];
/// The Vault token and its alias (Vault's own CLI name).
pub const VAULT_TOKEN_VARS: &[&str] = &["ALGA_VAULT_TOKEN", "VAULT_TOKEN"];
/// The Vault namespace and its alias.
pub const VAULT_NAMESPACE_VARS: &[&str] = &["ALGA_VAULT_NAMESPACE", "VAULT_NAMESPACE"];

fn read_vault(
    get: &impl Fn(&str) -> Option<String>,
    v: &mut VaultSettings,
) -> Result<(), ConfigError> {
    if let Some((var, addr)) = first_set(get, VAULT_ADDR_VARS) {
        v.addr = Some(http_url(var, &addr)?);
    }
    v.token = match first_set(get, VAULT_TOKEN_VARS) {
        Some((_, t)) => Some(t),
        // Alga's runner reads its token from a file a Vault agent writes.
        None => match first_set(get, &["ALGA_VAULT_TOKEN_FILE"]) {
            Some((var, path)) => secret_file(var, &path)?,
            None => None,
        },
    };
    v.namespace = first_set(get, VAULT_NAMESPACE_VARS).map(|(_, n)| n);
    if let Some((_, m)) = first_set(get, &["ALGA_VAULT_TRANSIT_MOUNT"]) {
        v.mount = m.trim_matches('/').to_string();
    }
    num(get, "ALGA_VAULT_TIMEOUT_MS", 1, 60_000, |ms| {
        v.timeout = Duration::from_millis(ms)
    })?;
    num(get, "ALGA_VAULT_CACHE_TTL_MS", 0, 3_600_000, |ms| {
        v.cache_ttl = Duration::from_millis(ms)
    })?;
    Ok(())
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(ConfigError {
            var,
            value: v.to_string(),
            expected: "one of true/false, on/off, 1/0",
        }),
    }
}

fn num(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    min: u64,
    max: u64,
    mut set: impl FnMut(u64),
) -> Result<(), ConfigError> {
    let Some(raw) = get(var) else { return Ok(()) };
    match raw.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => {
            set(v);
            Ok(())
        }
        _ => Err(ConfigError {
            var,
            value: raw,
            expected: "a whole number in the documented range",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<RuntimeConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RuntimeConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_hold_without_variables() {
        assert_eq!(from(&[]).unwrap(), RuntimeConfig::default());
    }

    #[test]
    fn reads_values_and_names_the_bad_variable() {
        let c = from(&[("ALGA_TIMEOUT_MS", "250"), ("ALGA_FUEL", "on")]).unwrap();
        assert_eq!(c.limits.timeout_default, Duration::from_millis(250));
        assert!(c.engine.fuel);
        let err = from(&[("ALGA_MEMORY_MB", "lots")]).unwrap_err();
        assert_eq!(err.var, "ALGA_MEMORY_MB");
        let err = from(&[("ALGA_TIMEOUT_MS", "60000")]).unwrap_err();
        assert_eq!(err.var, "ALGA_TIMEOUT_MS");
        assert!(!from(&[]).unwrap().strict_manifests);
        assert!(
            from(&[("ALGA_PUBLISH_STRICT", "1")])
                .unwrap()
                .strict_manifests
        );
        let err = from(&[("ALGA_PUBLISH_STRICT", "strict")]).unwrap_err();
        assert_eq!(err.var, "ALGA_PUBLISH_STRICT");
        assert_eq!(
            from(&[]).unwrap().bundle_trust,
            crate::bundle::BundleTrust::Signature
        );
        assert_eq!(
            from(&[("ALGA_BUNDLE_TRUST", "host-pinned")])
                .unwrap()
                .bundle_trust,
            crate::bundle::BundleTrust::HostPinned
        );
        let err = from(&[("ALGA_BUNDLE_TRUST", "none")]).unwrap_err();
        assert_eq!(err.var, "ALGA_BUNDLE_TRUST");
    }

    #[test]
    fn egress_and_host_api_settings() {
        let c = from(&[
            ("EXT_EGRESS_ALLOWLIST", " API.example.com, *.svc.test ,"),
            ("ALGA_EGRESS_ALLOW_RANGES", "127.0.0.0/8, ::1, 10.1.0.0/16"),
            ("ALGA_EGRESS_MAX_CALLS", "3"),
            ("ALGA_HOST_API_BASE", "http://127.0.0.1:9/"),
            ("ALGA_HOST_API_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(c.egress.allowlist, vec!["api.example.com", "svc.test"]);
        assert_eq!(c.egress.allow_ranges.len(), 3);
        assert_eq!(c.egress.max_calls, 3);
        assert_eq!(c.host_api.base.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(c.host_api.token.as_deref(), Some("t"));
        let err = from(&[("ALGA_EGRESS_ALLOW_RANGES", "localhost")]).unwrap_err();
        assert_eq!(err.var, "ALGA_EGRESS_ALLOW_RANGES");
        let err = from(&[("ALGA_HOST_API_BASE", "ftp://x")]).unwrap_err();
        assert_eq!(err.var, "ALGA_HOST_API_BASE");
    }

    #[test]
    fn sec_03_ui_proxy_routes_and_bridge_token() {
        let c = from(&[]).unwrap();
        assert_eq!(c.host_api.ui_proxy_routes, ["api"]);
        assert_eq!(c.host_api.bridge_token, None);
        let c = from(&[
            ("ALGA_UI_PROXY_ROUTES", " /api/v1/ , api/reports"),
            ("ALGA_HOST_API_BRIDGE_TOKEN", "b"),
        ])
        .unwrap();
        assert_eq!(c.host_api.ui_proxy_routes, ["api/v1", "api/reports"]);
        assert_eq!(c.host_api.bridge_token.as_deref(), Some("b"));
        // Empty: only the extension's own routes.
        let c = from(&[("ALGA_UI_PROXY_ROUTES", "")]).unwrap();
        assert!(c.host_api.ui_proxy_routes.is_empty());
        for bad in [
            "api/internal",
            "/API/Internal/ext-invoicing",
            "api//internal",
            "api/%69nternal",
            "api/./internal",
            "api/../x",
            "other/x",
            "api/x?y",
        ] {
            let err = from(&[("ALGA_UI_PROXY_ROUTES", bad)]).unwrap_err();
            assert_eq!(err.var, "ALGA_UI_PROXY_ROUTES", "{bad}");
        }
    }

    #[test]
    fn sec_15_egress_allowlist_ports() {
        let c = from(&[("EXT_EGRESS_ALLOWLIST", "a.test:8443, [::1]:80, b.test")]).unwrap();
        assert_eq!(c.egress.allowlist, ["a.test:8443", "[::1]:80", "b.test"]);
        for bad in ["a.test:0", "a.test:99999", "https://a.test", "a.test:x"] {
            let err = from(&[("EXT_EGRESS_ALLOWLIST", bad)]).unwrap_err();
            assert_eq!(err.var, "EXT_EGRESS_ALLOWLIST", "{bad}");
        }
    }

    /// `alias` alone configures what `ours` does with `value`, and `ours` wins when
    /// both are set.
    fn alias_acts_as_ours(ours: &str, alias: &str, value: &str, other: &str) {
        let by_ours = from(&[(ours, value)]).unwrap();
        let by_alias = from(&[(alias, value)]).unwrap();
        assert_eq!(by_alias, by_ours, "{alias} alone");
        assert_ne!(
            by_ours,
            RuntimeConfig::default(),
            "{ours} changes something"
        );
        let both = from(&[(ours, value), (alias, other)]).unwrap();
        assert_eq!(both, by_ours, "{ours} wins over {alias}");
    }

    #[test]
    fn alias_group_host_api_base() {
        for alias in ["STORAGE_API_BASE_URL", "REGISTRY_BASE_URL"] {
            alias_acts_as_ours(
                "ALGA_HOST_API_BASE",
                alias,
                "http://alga.test:3000",
                "http://x.test",
            );
        }
        // STORAGE_API_BASE_URL wins over REGISTRY_BASE_URL, as in Alga's runner.
        let c = from(&[
            ("STORAGE_API_BASE_URL", "http://storage.test"),
            ("REGISTRY_BASE_URL", "http://registry.test"),
        ])
        .unwrap();
        assert_eq!(c.host_api.base.as_deref(), Some("http://storage.test"));
        // Alga's runner strips a terminal /api from its names; ours is taken as given.
        let c = from(&[("STORAGE_API_BASE_URL", "http://alga.test:3000/api/")]).unwrap();
        assert_eq!(c.host_api.base.as_deref(), Some("http://alga.test:3000"));
        let err = from(&[("REGISTRY_BASE_URL", "not a url")]).unwrap_err();
        assert_eq!(err.var, "REGISTRY_BASE_URL");
    }

    #[test]
    fn alias_group_ui_proxy_base() {
        alias_acts_as_ours(
            "ALGA_UI_PROXY_BASE",
            "UI_PROXY_BASE_URL",
            "http://alga.test:3000",
            "http://x.test",
        );
    }

    #[test]
    fn alias_group_bridge_token() {
        for alias in ["RUNNER_STORAGE_API_TOKEN", "RUNNER_SERVICE_TOKEN"] {
            alias_acts_as_ours("ALGA_HOST_API_BRIDGE_TOKEN", alias, "b1", "b2");
        }
        let c = from(&[
            ("RUNNER_STORAGE_API_TOKEN", "storage"),
            ("RUNNER_SERVICE_TOKEN", "service"),
        ])
        .unwrap();
        assert_eq!(c.host_api.bridge_token.as_deref(), Some("storage"));
    }

    #[test]
    fn alias_group_host_api_key() {
        alias_acts_as_ours("ALGA_HOST_API_KEY", "ALGA_AUTH_KEY", "k1", "k2");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alga_auth_key");
        std::fs::write(&file, "k1\n").unwrap();
        let by_file = from(&[("ALGA_AUTH_KEY_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(by_file, from(&[("ALGA_HOST_API_KEY", "k1")]).unwrap());
        let err = from(&[("ALGA_AUTH_KEY_FILE", "/nonexistent/key")]).unwrap_err();
        assert_eq!(err.var, "ALGA_AUTH_KEY_FILE");
    }

    #[test]
    fn alias_group_host_api_timeout() {
        alias_acts_as_ours(
            "ALGA_HOST_API_TIMEOUT_MS",
            "UI_PROXY_TIMEOUT_MS",
            "1234",
            "99",
        );
        let err = from(&[("UI_PROXY_TIMEOUT_MS", "0")]).unwrap_err();
        assert_eq!(err.var, "UI_PROXY_TIMEOUT_MS");
    }

    #[test]
    fn alias_group_vault_addr() {
        alias_acts_as_ours(
            "ALGA_VAULT_ADDR",
            "VAULT_ADDR",
            "https://vault.test:8200",
            "http://x.test",
        );
    }

    #[test]
    fn alias_group_vault_token() {
        alias_acts_as_ours("ALGA_VAULT_TOKEN", "VAULT_TOKEN", "hvs.one", "hvs.two");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alga_vault_token");
        std::fs::write(&file, " hvs.one \n").unwrap();
        let by_file = from(&[("ALGA_VAULT_TOKEN_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(by_file, from(&[("ALGA_VAULT_TOKEN", "hvs.one")]).unwrap());
    }

    #[test]
    fn alias_group_vault_namespace() {
        alias_acts_as_ours(
            "ALGA_VAULT_NAMESPACE",
            "VAULT_NAMESPACE",
            "team-a",
            "team-b",
        );
    }

    #[test]
    fn vault_settings_and_their_bounds() {
        let c = from(&[
            ("ALGA_VAULT_TRANSIT_MOUNT", "/alga-transit/"),
            ("ALGA_VAULT_TIMEOUT_MS", "750"),
            ("ALGA_VAULT_CACHE_TTL_MS", "0"),
        ])
        .unwrap();
        assert_eq!(c.vault.mount, "alga-transit");
        assert_eq!(c.vault.timeout, Duration::from_millis(750));
        assert_eq!(c.vault.cache_ttl, Duration::ZERO);
        let err = from(&[("ALGA_VAULT_TIMEOUT_MS", "0")]).unwrap_err();
        assert_eq!(err.var, "ALGA_VAULT_TIMEOUT_MS");
        let err = from(&[("VAULT_ADDR", "vault:8200")]).unwrap_err();
        assert_eq!(err.var, "VAULT_ADDR");
    }
}
