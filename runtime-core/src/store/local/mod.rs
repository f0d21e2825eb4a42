//! Backends for one machine: in memory, and files in a directory.

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
