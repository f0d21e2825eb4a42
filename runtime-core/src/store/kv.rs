//! The key-value store behind the guest's `alga:extension/storage`: its trait, its
//! limits and the validation every backend shares.

use async_trait::async_trait;

use super::StoreError;

/// The isolation unit of storage: one tenant's install. Keys never cross it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvScope {
    /// Tenant id.
    pub tenant: String,
    /// Install id.
    pub install_id: String,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Starts at 1, +1 on every put.
    pub revision: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPage {
    /// Entries in key order.
    pub entries: Vec<KvEntry>,
    /// Whether more entries follow the last one.
    pub more: bool,
}

/// Limits of ALGA-COMPAT §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest namespace, in characters.
    pub namespace_max_chars: usize,
    /// Longest key, in characters.
    pub key_max_chars: usize,
    /// Largest value, in bytes.
    pub value_max_bytes: usize,
    /// Namespaces per install.
    pub namespaces_per_install: usize,
    /// Keys per namespace.
    pub keys_per_namespace: usize,
    /// Entries per listing page.
    pub page_size: usize,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            namespace_max_chars: 128,
            key_max_chars: 256,
            value_max_bytes: 64 << 10,
            namespaces_per_install: 32,
            keys_per_namespace: 5120,
            page_size: 100,
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KvError {
    /// The expected revision did not match.
    #[error("revision conflict")]
    Conflict,
    /// A name or value broke a limit.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A count limit (namespaces, keys) would be exceeded.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage for guests, scoped by [`KvScope`]. Implementations must make a
/// conditional put atomic: of concurrent writers with the same revision, one wins.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// Whether installs are named by the host app's ids here (a store the host app
    /// keeps, such as Alga's ext-storage, looks installs up by its own install id).
    fn keyed_by_host_app_ids(&self) -> bool {
        false
    }
    /// The entry, or `None`.
    async fn get(&self, scope: &KvScope, ns: &str, key: &str) -> Result<Option<KvEntry>, KvError>;
    /// Writes `value`. With `expected = Some(r)` the stored revision must be `r`
    /// (`Some(0)`: the key must not exist); with `None` the write is unconditional.
    async fn put(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<KvEntry, KvError>;
    /// Deletes the entry; deleting a missing key succeeds.
    async fn delete(&self, scope: &KvScope, ns: &str, key: &str) -> Result<(), KvError>;
    /// Up to one page of entries with keys strictly after `after`, in key order.
    async fn list(&self, scope: &KvScope, ns: &str, after: Option<&str>)
    -> Result<KvPage, KvError>;
    /// The limits this store enforces.
    fn limits(&self) -> KvLimits;
}

/// Checks a namespace against the limits.
pub fn validate_namespace(limits: &KvLimits, ns: &str) -> Result<(), KvError> {
    let n = ns.chars().count();
    if n == 0 || n > limits.namespace_max_chars {
        return Err(KvError::Invalid(format!(
            "namespace must be 1-{} characters, got {n}",
            limits.namespace_max_chars
        )));
    }
    if ns.chars().any(char::is_control) {
        return Err(KvError::Invalid(
            "namespace must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Checks a key against the limits.
pub fn validate_key(limits: &KvLimits, key: &str) -> Result<(), KvError> {
    let n = key.chars().count();
    if n == 0 || n > limits.key_max_chars {
        return Err(KvError::Invalid(format!(
            "key must be 1-{} characters, got {n}",
            limits.key_max_chars
        )));
    }
    if key.contains('/') || key.chars().any(char::is_control) {
        return Err(KvError::Invalid(
            "key must not contain '/' or control characters".into(),
        ));
    }
    Ok(())
}

/// Checks a value against the limits.
pub fn validate_value(limits: &KvLimits, value: &[u8]) -> Result<(), KvError> {
    if value.len() > limits.value_max_bytes {
        return Err(KvError::Invalid(format!(
            "value is {} bytes, the limit is {}",
            value.len(),
            limits.value_max_bytes
        )));
    }
    Ok(())
}
