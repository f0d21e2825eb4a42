//! Manifest v2 (`manifest.json`): parsing, validation and endpoint routing.
//!
//! [`check`] turns the bytes of a bundle's `manifest.json` into a [`Checked`]
//! manifest or the first problem found, as a [`ManifestError`] naming the JSON path
//! of the offending field (`version`, `api.endpoints[0].path`, ...) and saying what
//! was expected and what was found.
//!
//! Two modes ([`Strictness`]). **Compatible** (the default) accepts every manifest
//! Alga's own validators accept: Alga's zod schema drops keys it does not know, so an
//! unknown key anywhere (Alga's top-level `entry` and `sbom`, `api.endpoints[].schedulable`,
//! `ui.routes`, `settings`, ...) is ignored with a [`ManifestWarning`] naming its path and
//! why; so are the few value shapes Alga stores without acting on (a capability
//! without its `cap:` prefix, an `events` entry naming a bundle file instead of an
//! endpoint, a `__TEMPLATE__` placeholder). Alga's auto-increment version `"X.Y.*"`
//! is accepted in `version` (the only place Alga allows it) and resolved when
//! publishing ([`Checked::resolve`]). **Strict** refuses each of those, with the same
//! field path, exactly as this validator did before compatible mode existed.
//! Everything the runtime acts on — name, version, runtime, capabilities, ui, the
//! endpoints' method/path/handler, events, schedules — is checked the same in both.
//!
//! The document is checked in a fixed order, so the error reported for a given input
//! never changes: the size cap, JSON syntax, duplicate keys, the top level being an
//! object, then `name`, `version`, `runtime`, unknown top-level keys, and the other
//! top-level keys in the order `publisher`, `capabilities`, `ui`, `api`, `assets`,
//! `precompiled`, `events`, `schedules`. Inside a nested object, unknown keys are
//! reported before its known keys are checked (a misspelt key is the likelier cause
//! than the required key it replaces). `null` for an optional key means "absent".
//!
//! Beyond the seed runner's manifest this accepts `events[{topic, handler}]` and
//! `schedules[{endpoint, cron, timezone?, name?, payload?, enabled?}]`. A schedule must
//! name a declared GET or POST endpoint without parameters (the scheduler's rule);
//! its `endpoint` is stored normalised as `"METHOD /path"`.
//!
//! Routing ([`Manifest::match_endpoint`]) follows the gateway rule: a request runs only
//! if it matches a declared endpoint, see that method for the details.

mod route;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;

use serde::{Serialize, Serializer};

use crate::capability::{Capability, CapabilitySet};

/// Largest `manifest.json` accepted, in bytes (256 KiB).
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;

/// The HTTP methods an endpoint may declare.
pub const ENDPOINT_METHODS: [&str; 7] =
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The only `ui.type` there is.
pub const UI_KIND_IFRAME: &str = "iframe";

/// Most schedules one manifest may declare (the scheduler's per-install quota).
pub const MAX_SCHEDULES: usize = 50;

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// JSON path of the offending field (`version`, `api.endpoints[0].path`), or `""`
    /// when the problem is the whole document.
    pub field: String,
    /// What was expected and what was found.
    pub message: String,
}

impl ManifestError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "manifest.json: {}", self.message)
        } else {
            write!(f, "manifest.json: {}: {}", self.field, self.message)
        }
    }
}

/// Something compatible mode accepted but ignores: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestWarning {
    /// JSON path of the ignored field (`entry`, `api.endpoints[0].schedulable`).
    pub field: String,
    /// What is ignored and why.
    pub message: String,
}

impl fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manifest.json: {}: {}", self.field, self.message)
    }
}

/// How much of what Alga tolerates is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strictness {
    /// Accept what Alga's validators accept; warn about what is ignored.
    #[default]
    Compatible,
    /// Refuse unknown keys and every shape compatible mode warns about.
    Strict,
}

/// Alga's auto-increment version `"MAJOR.MINOR.*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionWildcard {
    pub major: u64,
    pub minor: u64,
}

impl VersionWildcard {
    /// Whether `version` is a release of this wildcard's line (pre-releases are
    /// not: Alga counts only `MAJOR.MINOR.PATCH`).
    pub fn matches(&self, version: &semver::Version) -> bool {
        version.major == self.major
            && version.minor == self.minor
            && version.pre.is_empty()
            && version.build.is_empty()
    }

    /// The next patch after the newest published release of this line, or
    /// `MAJOR.MINOR.0` when there is none (Alga's rule).
    pub fn next<'a>(&self, published: impl IntoIterator<Item = &'a str>) -> semver::Version {
        let patch = published
            .into_iter()
            .filter_map(|v| semver::Version::parse(v).ok())
            .filter(|v| self.matches(v))
            .map(|v| v.patch.saturating_add(1))
            .max()
            .unwrap_or(0);
        semver::Version::new(self.major, self.minor, patch)
    }
}

impl fmt::Display for VersionWildcard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.*", self.major, self.minor)
    }
}

/// A validated manifest whose version may still be a wildcard, with the warnings
/// of compatible mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// With a wildcard, its version is `MAJOR.MINOR.0` until resolved.
    manifest: Manifest,
    wildcard: Option<VersionWildcard>,
    warnings: Vec<ManifestWarning>,
}

impl Checked {
    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The wildcard `version`, if it is one.
    pub fn wildcard(&self) -> Option<VersionWildcard> {
        self.wildcard
    }

    /// What compatible mode ignored, in document order.
    pub fn warnings(&self) -> &[ManifestWarning] {
        &self.warnings
    }

    /// The manifest, when its version is exact (else the wildcard).
    pub fn exact(self) -> Result<(Manifest, Vec<ManifestWarning>), VersionWildcard> {
        match self.wildcard {
            None => Ok((self.manifest, self.warnings)),
            Some(w) => Err(w),
        }
    }

    /// The manifest with a wildcard version resolved against the versions already
    /// published for this name (an exact version is kept). The resolution is
    /// reported as a warning on `version`.
    pub fn resolve<'a>(
        self,
        published: impl IntoIterator<Item = &'a str>,
    ) -> (Manifest, Vec<ManifestWarning>) {
        match self.wildcard {
            None => (self.manifest, self.warnings),
            Some(w) => {
                let version = w.next(published);
                let why = if version.patch == 0 {
                    format!("no {w} release is published yet")
                } else {
                    format!("the next patch after the newest published {w} release")
                };
                self.with_version(w, version, why)
            }
        }
    }

    /// The manifest with a wildcard version set to `version`, which this bundle
    /// was published as earlier (a retried publish is answered with that version
    /// instead of a new one). `None` when `version` is not of the wildcard's line.
    pub fn resolve_as(self, version: semver::Version) -> Option<(Manifest, Vec<ManifestWarning>)> {
        match self.wildcard {
            None => (self.manifest.version == version).then_some((self.manifest, self.warnings)),
            Some(w) if w.matches(&version) => Some(self.with_version(
                w,
                version,
                "this bundle was published under it before".into(),
            )),
            Some(_) => None,
        }
    }

    fn with_version(
        mut self,
        w: VersionWildcard,
        version: semver::Version,
        why: String,
    ) -> (Manifest, Vec<ManifestWarning>) {
        self.warnings.push(ManifestWarning {
            field: "version".into(),
            message: format!(
                "\"{w}\" is Alga's auto-increment version; published as {version}: {why}"
            ),
        });
        self.manifest.version = version;
        (self.manifest, self.warnings)
    }
}

/// A validated Manifest v2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub name: String,
    #[serde(serialize_with = "serialize_display")]
    pub version: semver::Version,
    pub runtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Normalised, without duplicates, in the order first written.
    #[serde(serialize_with = "serialize_capabilities")]
    pub capabilities: Vec<Capability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<UiSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assets: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precompiled: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSubscription>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
}

/// `ui`: the extension's iframe UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiSpec {
    /// Always `"iframe"` (JSON key `type`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Relative path of the entry document inside the bundle, e.g. `ui/index.html`.
    pub entry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<UiHooks>,
}

/// `ui.hooks`: where the host shows the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UiHooks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_menu: Option<MenuHook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_portal_menu: Option<MenuHook>,
}

/// A menu entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MenuHook {
    pub label: String,
}

/// `api`: the endpoints the gateway may route to the handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiSpec {
    pub endpoints: Vec<Endpoint>,
}

/// One declared endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Upper case, one of [`ENDPOINT_METHODS`].
    pub method: String,
    /// `/`-separated; segments are literals or `:name` parameters.
    pub path: String,
    pub handler: String,
}

impl Endpoint {
    /// Whether the path has `:param` segments.
    pub fn has_params(&self) -> bool {
        route::pattern_segments(&self.path).any(|s| s.is_param())
    }

    /// Whether the scheduler may call it: GET or POST, and no path parameters.
    pub fn is_schedulable(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "POST") && !self.has_params()
    }
}

/// `events[i]`: deliver events of `topic` to the endpoint path `handler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSubscription {
    pub topic: String,
    pub handler: String,
}

/// `schedules[i]`: call a schedulable endpoint on a cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleSpec {
    /// The declared endpoint, normalised to `"METHOD /path"`.
    pub endpoint: String,
    /// Five fields, separated by single spaces (only the shape is checked here).
    pub cron: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A JSON object or array, sent as the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A request matched to a declared endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMatch<'a> {
    pub endpoint: &'a Endpoint,
    /// `(name, value)` for each `:name` segment, in path order; values are the raw
    /// (still percent-encoded) request segments.
    pub params: Vec<(String, String)>,
}

/// Validates `manifest.json` in either mode.
pub fn check(bytes: &[u8], strictness: Strictness) -> Result<Checked, ManifestError> {
    validate::check(bytes, strictness)
}

/// Parses and validates `manifest.json` in compatible mode, dropping the warnings;
/// the version must be exact. This reads the manifests the registry stores (which
/// publish normalised, with any wildcard resolved), so nothing publish accepted is
/// refused when it is loaded.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    check(bytes, Strictness::Compatible)?
        .exact()
        .map(|(manifest, _)| manifest)
        .map_err(|w| {
            ManifestError::new(
                "version",
                format!(
                    "expected a semantic version like \"1.2.3\", found \"{w}\" (a wildcard is resolved only when publishing)"
                ),
            )
        })
}

impl Manifest {
    /// Same as [`parse`].
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        parse(bytes)
    }

    /// The declared endpoints (none without `api`).
    pub fn endpoints(&self) -> &[Endpoint] {
        self.api
            .as_ref()
            .map_or(&[], |api| api.endpoints.as_slice())
    }

    /// The declared endpoint a request runs, if any.
    ///
    /// The method is compared case-insensitively; a HEAD request runs a HEAD endpoint,
    /// else the GET endpoint of the same path. Anything after `?` or `#` in `path` is
    /// ignored. The path must start with `/` and have as many segments as the
    /// endpoint's; a literal segment must be equal (case-sensitive, no decoding), a
    /// `:param` takes exactly one non-empty segment that is not `.` or `..` (also
    /// percent-encoded) and holds no `/` or `\` (also as `%2F` / `%5C`), so a guest
    /// never receives a traversal as a parameter. A trailing slash is not ignored:
    /// `/a/` has an empty last segment, so it matches neither `/a` nor `/a/:x`.
    /// When several endpoints match, the most specific wins (comparing segment by
    /// segment, a literal beats a parameter), then the first declared.
    pub fn match_endpoint(&self, method: &str, path: &str) -> Option<EndpointMatch<'_>> {
        let method = method.trim().to_ascii_uppercase();
        let segments = route::request_segments(path)?;
        let endpoints = self.endpoints();
        route::best_match(endpoints, &method, &segments).or_else(|| {
            (method == "HEAD")
                .then(|| route::best_match(endpoints, "GET", &segments))
                .flatten()
        })
    }

    /// The capabilities the manifest asks for, plus the always-granted ones.
    pub fn requested_capabilities(&self) -> CapabilitySet {
        CapabilitySet::with(self.capabilities.iter().copied())
    }

    /// The endpoints a schedule may call: GET or POST without path parameters.
    pub fn schedulable_endpoints(&self) -> impl Iterator<Item = &Endpoint> + '_ {
        self.endpoints().iter().filter(|e| e.is_schedulable())
    }

    /// The manifest as JSON, in the form [`parse`] accepts (normalised values).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a manifest always serializes")
    }
}

fn serialize_display<S: Serializer, T: fmt::Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn serialize_capabilities<S: Serializer>(
    caps: &[Capability],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(caps.iter().map(|c| c.as_str()))
}
