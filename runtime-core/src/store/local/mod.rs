//! Backends for one machine: in memory, and files in a directory.

mod dir;
mod memory;
mod sqlite;

pub use dir::{DirBlobStore, write_atomic};
pub use memory::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};
pub use sqlite::SqliteRegistry;
