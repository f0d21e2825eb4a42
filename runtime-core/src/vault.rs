//! Vault's transit engine: decrypts the ciphertext of `vault-transit:v1` secret
//! envelopes (what Alga's server sends when it keeps install secrets in Vault).
//!
//! One call, `POST {addr}/v1/{mount}/decrypt/{key}` with `{"ciphertext": …}` and
//! `X-Vault-Token` (plus `X-Vault-Namespace` when configured), answered by
//! `{"data": {"plaintext": "<base64>"}}`, as Vault documents it. The address is
//! operator configuration, so the call skips the tenant allowlist, but it has
//! the egress client's size cap and its own time limit. Mount and key come from
//! the request's envelope: they are checked to be plain path segments first, so
//! an envelope cannot steer our token to another Vault endpoint.
//!
//! Plaintexts are cached per process (bounded LRU keyed by a digest of mount, key
//! and ciphertext) for at most the configured TTL and never past the envelope's
//! `expires_at`. Neither the token nor a ciphertext nor a plaintext appears in an
//! error or a log line.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::host::http::{HttpClient, operator};

/// Where Vault is and how to call it (`ALGA_VAULT_*`, Alga's `VAULT_*` names).
#[derive(Clone, PartialEq, Eq)]
pub struct VaultSettings {
    /// Vault's address, e.g. `https://vault.internal:8200`; none: `vault-transit`
    /// envelopes are refused (`secret_decrypt_failed`).
    pub addr: Option<String>,
    /// The token sent as `X-Vault-Token`.
    pub token: Option<String>,
    /// Sent as `X-Vault-Namespace` (Vault Enterprise).
    pub namespace: Option<String>,
    /// The transit mount when the envelope names none.
    pub mount: String,
    /// Time allowed per decrypt.
    pub timeout: Duration,
    /// How long a plaintext is reused, at most (and never past `expires_at`).
    pub cache_ttl: Duration,
    /// Plaintexts cached, at most.
    pub cache_entries: usize,
    /// Largest response read.
    pub response_max: usize,
}

impl Default for VaultSettings {
    fn default() -> Self {
        VaultSettings {
            addr: None,
            token: None,
            namespace: None,
            mount: "transit".into(),
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(30),
            cache_entries: 1024,
            response_max: 1 << 20,
        }
    }
}

// The token stays out of `{:?}` (configuration is printed by tests and tools).
impl std::fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSettings")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_entries", &self.cache_entries)
            .field("response_max", &self.response_max)
            .finish()
    }
}

/// Why a decrypt gave no plaintext. The messages carry no secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Vault did not answer usefully: unreachable, too slow, 5xx, 429. Retryable.
    #[error("vault unavailable: {0}")]
    Unavailable(String),
    /// Vault refused the decrypt (4xx: wrong key, bad ciphertext, no permission),
    /// or the envelope named a mount or key that is not a plain path.
    #[error("vault refused the decrypt: {0}")]
    Refused(String),
}

impl VaultError {
    /// A stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Unavailable(_) => "vault_unavailable",
            VaultError::Refused(_) => "vault_refused",
        }
    }
}

struct Cached {
    plaintext: Vec<u8>,
    until: Instant,
}

/// Counters for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VaultStats {
    /// Decrypts answered from the cache.
    pub hits: u64,
    /// Decrypts that called Vault.
    pub calls: u64,
}

/// A configured transit client with its plaintext cache.
pub struct VaultTransit {
    settings: VaultSettings,
    addr: url::Url,
    client: HttpClient,
    cache: Mutex<LruCache<[u8; 32], Cached>>,
    stats: Mutex<VaultStats>,
}

impl VaultTransit {
    /// The client, or `None` when no usable address is configured.
    pub fn new(settings: VaultSettings) -> Option<Self> {
        let addr = url::Url::parse(settings.addr.as_deref()?).ok()?;
        let cap = NonZeroUsize::new(settings.cache_entries.max(1)).expect("non-zero");
        Some(VaultTransit {
            settings,
            addr,
            client: HttpClient::default(),
            cache: Mutex::new(LruCache::new(cap)),
            stats: Mutex::default(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> VaultStats {
        *self.stats.lock().expect("vault stats lock")
    }

    /// The plaintext bytes of `ciphertext` under transit key `key` (mount `mount`,
    /// else the configured one), reused from the cache until the earlier of the
    /// TTL and `not_after`.
    pub async fn decrypt(
        &self,
        mount: Option<&str>,
        key: &str,
        ciphertext: &str,
        not_after: Option<SystemTime>,
    ) -> Result<Vec<u8>, VaultError> {
        let mount = mount
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or(&self.settings.mount)
            .trim_matches('/');
        let key = key.trim().trim_matches('/');
        if !plain_path(mount, true) || !plain_path(key, false) {
            return Err(VaultError::Refused(
                "the envelope's mount or key_path is not a plain Vault path".into(),
            ));
        }
        let digest: [u8; 32] = Sha256::new()
            .chain_update(mount)
            .chain_update([0])
            .chain_update(key)
            .chain_update([0])
            .chain_update(ciphertext.trim())
            .finalize()
            .into();
        let now = Instant::now();
        if let Some(hit) = self.cached(&digest, now) {
            return Ok(hit);
        }
        self.stats.lock().expect("vault stats lock").calls += 1;
        let plaintext = tokio::time::timeout(
            self.settings.timeout,
            self.call(mount, key, ciphertext.trim()),
        )
        .await
        .map_err(|_| {
            VaultError::Unavailable(format!("no answer within {:?}", self.settings.timeout))
        })??;
        let mut ttl = self.settings.cache_ttl;
        if let Some(t) = not_after {
            ttl = ttl.min(t.duration_since(SystemTime::now()).unwrap_or_default());
        }
        if !ttl.is_zero() {
            self.cache.lock().expect("vault cache lock").put(
                digest,
                Cached {
                    plaintext: plaintext.clone(),
                    until: now + ttl,
                },
            );
        }
        Ok(plaintext)
    }

    fn cached(&self, digest: &[u8; 32], now: Instant) -> Option<Vec<u8>> {
        let mut cache = self.cache.lock().expect("vault cache lock");
        match cache.get(digest) {
            Some(c) if c.until > now => {
                let hit = c.plaintext.clone();
                drop(cache);
                self.stats.lock().expect("vault stats lock").hits += 1;
                Some(hit)
            }
            Some(_) => {
                cache.pop(digest);
                None
            }
            None => None,
        }
    }

    async fn call(&self, mount: &str, key: &str, ciphertext: &str) -> Result<Vec<u8>, VaultError> {
        let base = self.addr.as_str().trim_end_matches('/');
        let url = url::Url::parse(&format!("{base}/v1/{mount}/decrypt/{key}"))
            .map_err(|e| VaultError::Refused(format!("decrypt URL: {e}")))?;
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(token) = &self.settings.token {
            headers.push(("x-vault-token", token.clone()));
        }
        if let Some(ns) = &self.settings.namespace {
            headers.push(("x-vault-namespace", ns.clone()));
        }
        let body = serde_json::to_vec(&serde_json::json!({ "ciphertext": ciphertext }))
            .unwrap_or_default();
        let r = operator::send(
            &self.client,
            &url,
            http::Method::POST,
            &headers,
            Some(Bytes::from(body)),
            self.settings.response_max,
        )
        .await
        .map_err(|e| VaultError::Unavailable(e.code().to_string()))?;
        match r.status {
            200..=299 => {}
            429 | 500..=599 => {
                return Err(VaultError::Unavailable(format!("status {}", r.status)));
            }
            other => return Err(VaultError::Refused(format!("status {other}"))),
        }
        let answer: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|_| VaultError::Refused("the answer is not JSON".into()))?;
        let b64 = answer
            .pointer("/data/plaintext")
            .and_then(|p| p.as_str())
            .ok_or_else(|| VaultError::Refused("the answer has no data.plaintext".into()))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| VaultError::Refused("data.plaintext is not base64".into()))
    }
}

/// A mount (segments joined by `/`) or a key (one segment): letters, digits and
/// `_ - .`, no `.`/`..` segment.
fn plain_path(p: &str, segments: bool) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if segments {
        p.split('/').all(ok)
    } else {
        ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_mounts_and_keys() {
        assert!(plain_path("transit", true));
        assert!(plain_path("team-a/transit", true));
        assert!(plain_path("alga_ext.secrets", false));
        for bad in ["", "..", "a/../b", "a//b", "a b", "a%2f", "a?b", "a#b"] {
            assert!(!plain_path(bad, true), "{bad}");
        }
        assert!(!plain_path("a/b", false));
    }

    #[test]
    fn debug_never_prints_the_token() {
        let s = VaultSettings {
            token: Some("s.supersecret".into()),
            ..VaultSettings::default()
        };
        let printed = format!("{s:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
    }
}
