//! Which bundles may be served for an extension: an [`InstallCheck`] decides (our
//! registry, or the host app when it owns the installs), a bounded LRU with a TTL
//! remembers.
//!
//! [`RegistryCheck`]: a hash is served under `/ext-ui/{ext}/…` only when it is the
//! bundle of a published version of *that* extension (`{ext}` is its id, or a host-app
//! id an install of it carries, such as Alga's registry UUID) and at least one tenant
//! has an install of it (enabled or not: the files are public, immutable and cached by
//! the CDN anyway; the check keeps us from serving every bundle ever published). When
//! the URL names a tenant (`?tenant=`, as the host page's iframe src does), the install
//! must be that tenant's, as Alga's runner checks. Anything else is the same
//! `not_found`, so a URL never reveals that a bundle exists for another extension or
//! another tenant. When the host app owns the installs (`ALGA_INSTALL_SOURCE=caller`),
//! the host app's check (`stores-host-api`) takes the registry's place, behind the
//! same cache.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lru::LruCache;

use crate::content::ContentHash;
use crate::store::Registry;

use super::route;

/// The registry's answer for (extension, hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; `entry` is the SPA entry under `ui/` (the manifest's `ui.entry`).
    Allowed {
        /// The file served for an empty path and for app routes.
        entry: String,
    },
    /// Not an installed bundle of this extension.
    Denied,
}

/// The check could not answer (failure or time limit); never cached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("install check unavailable: {0}")]
pub struct Unavailable(pub String);

/// Who decides whether a bundle may be served under an extension's URL: whoever owns
/// the installs. [`AccessCache`] sits in front of it.
#[async_trait]
pub trait InstallCheck: Send + Sync {
    /// May `hash` be served under `extension_id` (to `tenant`, when the URL names
    /// one)? `Err` when the owner of the installs cannot answer now.
    async fn ask(
        &self,
        extension_id: &str,
        hash: &ContentHash,
        tenant: Option<&str>,
    ) -> Result<Decision, Unavailable>;
}

/// The check over our registry (the installs are ours: `ALGA_INSTALL_SOURCE=registry`).
pub struct RegistryCheck {
    registry: Arc<dyn Registry>,
}

impl RegistryCheck {
    /// A check reading `registry`.
    pub fn new(registry: Arc<dyn Registry>) -> Self {
        RegistryCheck { registry }
    }
}

/// Counters for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AccessStats {
    /// Decisions answered from the cache.
    pub hits: u64,
    /// Decisions that asked the check (the registry or the host app).
    pub lookups: u64,
}

/// (extension id as the URL names it, bundle, tenant if the URL names one).
type AccessKey = (String, ContentHash, Option<String>);

struct Cached {
    decision: Decision,
    expires: Instant,
}

/// An install check with its cache.
pub struct AccessCache {
    check: Arc<dyn InstallCheck>,
    entries: Mutex<LruCache<AccessKey, Cached>>,
    stats: Mutex<AccessStats>,
    positive_ttl: Duration,
    negative_ttl: Duration,
    timeout: Duration,
}

impl AccessCache {
    /// A cache of at most `capacity` decisions of `check`.
    pub fn new(
        check: Arc<dyn InstallCheck>,
        capacity: usize,
        positive_ttl: Duration,
        negative_ttl: Duration,
        timeout: Duration,
    ) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("non-zero");
        AccessCache {
            check,
            entries: Mutex::new(LruCache::new(cap)),
            stats: Mutex::default(),
            positive_ttl,
            negative_ttl,
            timeout,
        }
    }

    /// May `hash` be served under `extension_id` (to `tenant`, when the URL names one)?
    pub async fn check(
        &self,
        extension_id: &str,
        hash: &ContentHash,
        tenant: Option<&str>,
    ) -> Result<Decision, Unavailable> {
        let key = (extension_id.to_string(), *hash, tenant.map(str::to_owned));
        let now = Instant::now();
        {
            let mut entries = self.entries.lock().expect("access cache lock");
            match entries.get(&key) {
                Some(c) if c.expires > now => {
                    self.stats.lock().expect("stats lock").hits += 1;
                    return Ok(c.decision.clone());
                }
                Some(_) => {
                    entries.pop(&key);
                }
                None => {}
            }
        }
        self.stats.lock().expect("stats lock").lookups += 1;
        let decision =
            tokio::time::timeout(self.timeout, self.check.ask(extension_id, hash, tenant))
                .await
                .map_err(|_| Unavailable(format!("no answer within {:?}", self.timeout)))??;
        let ttl = match decision {
            Decision::Allowed { .. } => self.positive_ttl,
            Decision::Denied => self.negative_ttl,
        };
        if !ttl.is_zero() {
            self.entries.lock().expect("access cache lock").put(
                key,
                Cached {
                    decision: decision.clone(),
                    expires: now + ttl,
                },
            );
        }
        Ok(decision)
    }

    /// The counters so far.
    pub fn stats(&self) -> AccessStats {
        *self.stats.lock().expect("stats lock")
    }
}

#[async_trait]
impl InstallCheck for RegistryCheck {
    async fn ask(
        &self,
        extension_id: &str,
        hash: &ContentHash,
        tenant: Option<&str>,
    ) -> Result<Decision, Unavailable> {
        let unavailable = |e: crate::store::RegistryError| Unavailable(e.to_string());
        let Some(version) = self
            .registry
            .version_by_hash(hash)
            .await
            .map_err(unavailable)?
        else {
            return Ok(Decision::Denied);
        };
        // The path names the extension by our id, or by the host app's (Alga's
        // iframe URLs carry its registry UUID).
        let installs = if version.extension_id == extension_id {
            self.registry.list_installs_of(extension_id).await
        } else {
            self.registry
                .list_installs_by_host_extension(extension_id)
                .await
        }
        .map_err(unavailable)?;
        let installed = installs.iter().any(|i| {
            i.extension_id == version.extension_id
                && i.content_hash == *hash
                && tenant.is_none_or(|t| i.tenant == t)
        });
        if !installed {
            return Ok(Decision::Denied);
        }
        Ok(Decision::Allowed {
            entry: entry_of(&version.manifest_json),
        })
    }
}

/// The entry file under `ui/` named by the manifest's `ui.entry`, checked by the same
/// path rules as requests; `index.html` when absent or unusable.
pub fn entry_of(manifest_json: &str) -> String {
    let entry = serde_json::from_str::<serde_json::Value>(manifest_json)
        .ok()
        .and_then(|m| m.pointer("/ui/entry")?.as_str().map(str::to_owned));
    entry
        .as_deref()
        .and_then(|e| e.strip_prefix("ui/"))
        .and_then(|e| route::check_decoded(e).ok().flatten())
        .filter(|e| route::has_extension(e))
        .unwrap_or_else(|| "index.html".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_comes_from_the_manifest_when_safe() {
        assert_eq!(
            entry_of(r#"{"ui":{"entry":"ui/index.html"}}"#),
            "index.html"
        );
        assert_eq!(
            entry_of(r#"{"ui":{"entry":"ui/app/main.html"}}"#),
            "app/main.html"
        );
        assert_eq!(entry_of(r#"{"ui":{"entry":"ui/../x.html"}}"#), "index.html");
        assert_eq!(entry_of(r#"{"ui":{"entry":"dist/x.html"}}"#), "index.html");
        assert_eq!(entry_of(r#"{"name":"x"}"#), "index.html");
        assert_eq!(entry_of("not json"), "index.html");
    }
}
