//! Backends for one machine: in memory, and files in a directory.

mod dir;
mod memory;
mod memory_ops;
mod sqlite;

pub use dir::{DirBlobStore, write_atomic};
pub use memory::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};
pub use memory_ops::{MemoryExecutionLog, MemoryIdempotencyStore, MemoryQuotaStore};
pub use sqlite::SqliteRegistry;
