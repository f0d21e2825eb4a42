//! `alga:extension/storage`: per-install key-value storage with revisions.
//!
//! Not granted, or no install in the request → `denied`. A name or value that breaks
//! a limit, or a namespace/key count at its cap, is also `denied` (the WIT has no
//! "invalid" case); the reason goes to the request's log. `list-entries` pages: the
//! cursor is the last key of the previous page, an empty page ends the listing.

use super::HostState;
use super::bindings::alga::extension::storage;
use super::bindings::alga::extension::types::{StorageEntry, StorageError};
use super::logging::LogLevel;
use crate::capability::Capability;
use crate::store::{KvEntry, KvError, KvScope, KvStore};

fn to_wit(e: KvEntry) -> StorageEntry {
    StorageEntry {
        namespace: e.namespace,
        key: e.key,
        value: e.value,
        revision: Some(e.revision),
    }
}

/// The store and scope a granted storage call works on.
type ScopedKv = (std::sync::Arc<dyn KvStore>, KvScope);

impl HostState {
    /// Gate and scope of every storage call.
    fn kv(&mut self) -> wasmtime::Result<Result<ScopedKv, StorageError>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::StorageKv) {
            return Ok(Err(StorageError::Denied));
        }
        Ok(self.kv.clone().ok_or(StorageError::Denied))
    }

    fn storage_error(&self, op: &str, e: KvError) -> StorageError {
        let (level, code) = match &e {
            KvError::Conflict => return StorageError::Conflict,
            KvError::Invalid(_) | KvError::LimitReached(_) => {
                (LogLevel::Warn, StorageError::Denied)
            }
            KvError::Store(_) => (LogLevel::Error, StorageError::Internal),
        };
        self.logs.note(level, format!("storage {op} refused: {e}"));
        code
    }
}

impl storage::Host for HostState {
    async fn get(
        &mut self,
        namespace: String,
        key: String,
    ) -> wasmtime::Result<Result<StorageEntry, StorageError>> {
        let (kv, scope) = match self.kv()? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match kv.get(&scope, &namespace, &key).await {
            Ok(Some(e)) => Ok(to_wit(e)),
            Ok(None) => Err(StorageError::Missing),
            Err(e) => Err(self.storage_error("get", e)),
        })
    }

    async fn put(
        &mut self,
        entry: StorageEntry,
    ) -> wasmtime::Result<Result<StorageEntry, StorageError>> {
        let (kv, scope) = match self.kv()? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        Ok(
            match kv
                .put(
                    &scope,
                    &entry.namespace,
                    &entry.key,
                    &entry.value,
                    entry.revision,
                )
                .await
            {
                Ok(e) => Ok(to_wit(e)),
                Err(e) => Err(self.storage_error("put", e)),
            },
        )
    }

    async fn delete(
        &mut self,
        namespace: String,
        key: String,
    ) -> wasmtime::Result<Result<(), StorageError>> {
        let (kv, scope) = match self.kv()? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        Ok(kv
            .delete(&scope, &namespace, &key)
            .await
            .map_err(|e| self.storage_error("delete", e)))
    }

    async fn list_entries(
        &mut self,
        namespace: String,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<Vec<StorageEntry>, StorageError>> {
        let (kv, scope) = match self.kv()? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let after = cursor.as_deref().filter(|c| !c.is_empty());
        Ok(match kv.list(&scope, &namespace, after).await {
            Ok(page) => Ok(page.entries.into_iter().map(to_wit).collect()),
            Err(e) => Err(self.storage_error("list", e)),
        })
    }
}
