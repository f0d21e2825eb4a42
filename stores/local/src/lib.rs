//! Backends for one machine: in memory, and files and SQLite in a data directory.
//! [`backends`] assembles the set `up` and the CLI run on by default.

mod dir;
mod file_secrets;
mod memory;
mod memory_ops;
mod memory_schedules;
mod sqlite;
mod sqlite_schedules;
mod sqlite_state;

pub use dir::{DirBlobStore, write_atomic};
pub use file_secrets::FileSecretStore;
pub use memory::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};
pub use memory_ops::{MemoryExecutionLog, MemoryIdempotencyStore, MemoryQuotaStore};
pub use memory_schedules::MemoryScheduleStore;
pub use sqlite::SqliteRegistry;
pub use sqlite_schedules::SqliteScheduleStore;
pub use sqlite_state::SqliteStateStore;

use std::path::Path;
use std::sync::Arc;

use runtime_core::backends::{BackendError, BackendKind, Backends};
use runtime_core::events::{FileDeadLetters, LocalBus};
use runtime_core::store::{BatchingExecutionLog, RegistryError};

/// How long the local execution-record writer waits for more records after a
/// batch's first: a crash (not a clean shutdown) loses at most this much.
pub const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// The local set: everything under one data directory (created if needed).
pub fn backends(data_dir: &Path) -> Result<Backends, BackendError> {
    // Storage, quotas, idempotency and execution records persist across restarts.
    let state = SqliteStateStore::open(&data_dir.join("state.db")).map_err(RegistryError::from)?;
    let bus = Arc::new(LocalBus::default());
    Ok(Backends {
        kind: BackendKind::Local(data_dir.to_path_buf()),
        blobs: Arc::new(DirBlobStore::new(data_dir.join("blobs"))),
        uploads: Arc::new(DirBlobStore::new(data_dir.join("uploads"))),
        registry: Arc::new(SqliteRegistry::open(&data_dir.join("registry.db"))?),
        kv: Arc::new(state.clone()),
        secrets: Arc::new(FileSecretStore::new(data_dir.join("secrets.json"))),
        quotas: Arc::new(state.clone()),
        idempotency: Arc::new(state.clone()),
        // Records leave the request path: a background writer stores them in
        // batches (one transaction each), lingering so that a steady stream of
        // requests is a transaction per linger, not per request. A clean
        // shutdown and every read flush first.
        executions: Arc::new(BatchingExecutionLog::new(Arc::new(state)).with_linger(RECORD_LINGER)),
        schedules: Arc::new(
            SqliteScheduleStore::open(&data_dir.join("registry.db"))
                .map_err(|e| BackendError::Config(format!("schedules: {e}")))?,
        ),
        events: bus.clone(),
        dead_letters: Arc::new(FileDeadLetters::new(data_dir.join("dead-letters.jsonl"))),
        local_bus: Some(bus),
    })
}
