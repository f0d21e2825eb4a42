//! Backend traits: where blobs, key-value entries and secrets live.
//!
//! Only the traits live here. The implementations are crates of their own
//! (`stores/local`, `stores/aws`) that depend on this one; each binary chooses
//! its set, never a `cfg` in logic.

pub mod execution_writer;
pub mod executions;
pub mod idempotency;
pub mod kv;
pub mod quota;
pub mod registry;
pub mod registry_cache;
pub mod schedules;
pub mod stream;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;

pub use execution_writer::BatchingExecutionLog;
pub use executions::{ExecutionLog, ExecutionRecord};
pub use idempotency::{Claim, IdempotencyStore};
pub use kv::{KvEntry, KvError, KvLimits, KvPage, KvScope, KvStore};
pub use quota::{QuotaCharge, QuotaDecision, QuotaKey, QuotaStore, QuotaWindow};
pub use registry::{
    InstallRecord, InstallRequest, Registered, Registry, RegistryError, Subscription, VersionRecord,
};
pub use registry_cache::{CachingRegistry, RegistryCacheSettings, within_request};
pub use schedules::{ScheduleStore, ScheduleStoreError};
pub use stream::FileFetch;

/// A backend could not serve a request.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The backend is down or unreachable; retrying later may work.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A key already holds other bytes (content-addressed stores never overwrite).
    #[error("key {0:?} already holds different bytes")]
    Conflict(String),
    /// Anything else.
    #[error("backend error: {0}")]
    Internal(String),
}

/// What a size-bounded read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundedGet {
    /// No such key.
    Missing,
    /// The object is larger than allowed; its bytes were not read whole.
    TooLarge {
        /// Its size, or how far the read got before stopping.
        size: u64,
    },
    /// The whole object.
    Found(Vec<u8>),
}

/// Whether a [`BlobStore::put_created`] wrote the object or found it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// This call created the object.
    Created,
    /// The same bytes were already stored (by anyone, at any time).
    AlreadyStored,
}

/// Immutable, content-addressed blobs: bundles, UI files, compiled artifacts.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// The bytes under `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The bytes under `key` if there are at most `max_bytes` of them. Stores
    /// that know an object's size first (files, S3) refuse a larger one without
    /// reading it; this default reads it whole, then checks.
    async fn get_bounded(&self, key: &str, max_bytes: u64) -> Result<BoundedGet, StoreError> {
        Ok(match self.get(key).await? {
            None => BoundedGet::Missing,
            Some(b) if b.len() as u64 > max_bytes => BoundedGet::TooLarge {
                size: b.len() as u64,
            },
            Some(b) => BoundedGet::Found(b),
        })
    }
    /// Stores `bytes` under `key`; storing the same bytes again succeeds, other bytes
    /// under an existing key are a `Conflict`.
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// [`put`](Self::put) that says whether this call created the object, so a
    /// caller undoing its own work deletes only what it made. Stores with an
    /// atomic create (S3's `If-None-Match: *`, a hard link, a lock) answer
    /// exactly; this default checks first and may claim `Created` when a
    /// concurrent writer stored the same bytes in between.
    async fn put_created(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let existed = self.exists(key).await?;
        self.put(key, bytes).await?;
        Ok(if existed {
            PutOutcome::AlreadyStored
        } else {
            PutOutcome::Created
        })
    }
    /// Removes `key` (missing is fine).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.get(key).await?.is_some())
    }
    /// Streams the bytes under `key` into the file `dest` (created or truncated),
    /// hashing them on the way and stopping past `max_bytes`; after `Missing`,
    /// `TooLarge` or an error there is no file at `dest`. Stores that can
    /// stream (S3, files) never hold the object in memory; this default reads it
    /// whole first.
    async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<FileFetch, StoreError> {
        match self.get(key).await? {
            Some(bytes) => stream::read_into_file(&bytes[..], key, dest, max_bytes).await,
            None => stream::left_nothing(dest, FileFetch::Missing).await,
        }
    }
}

/// An install's secrets as the guest sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretBundle {
    /// Name to value.
    pub values: BTreeMap<String, String>,
    /// After this instant every `get` answers `expired`.
    pub expires_at: Option<SystemTime>,
}

/// Where an install's secrets are kept (Secrets Manager on AWS).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secrets of `(tenant, install)`, or `None` when it has none.
    async fn load(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Option<SecretBundle>, StoreError>;
}
