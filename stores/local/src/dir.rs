//! Blobs as files under a directory, written atomically (temp file + rename).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use runtime_core::store::stream::{left_nothing, read_into_file};
use runtime_core::store::{BlobStore, BoundedGet, FileFetch, PutOutcome, StoreError};

/// Blobs as files; keys are relative paths of safe segments.
pub struct DirBlobStore {
    root: PathBuf,
}

impl DirBlobStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirBlobStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let safe = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            });
        if !safe {
            return Err(StoreError::Internal(format!("unsafe blob key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Creates `path` with `bytes` unless it exists: a temp file hard-linked into
/// place, which fails atomically when another writer got there first. Answers
/// whether this call created it.
fn create_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = runtime_core::store::stream::temp_path_in(dir, "tmp");
    std::fs::write(&tmp, bytes)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = runtime_core::store::stream::temp_path_in(dir, "tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Reads `path` when it is a file of at most `max_bytes`, checking the size before a
/// byte is read.
fn read_bounded(path: &Path, max_bytes: u64) -> Result<BoundedGet, StoreError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BoundedGet::Missing),
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Ok(BoundedGet::Missing);
    }
    if meta.len() > max_bytes {
        return Ok(BoundedGet::TooLarge { size: meta.len() });
    }
    // The file may grow after the check: read at most one byte past the bound.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > max_bytes {
        return Ok(BoundedGet::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(BoundedGet::Found(bytes))
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // A key this store could never have written holds nothing: readers of
        // client-chosen names (UI files) get a miss, as S3 would answer.
        let Ok(path) = self.path(key) else {
            return Ok(None);
        };
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(b)),
            // A directory, or a file used as one, is not a blob either.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    async fn get_bounded(&self, key: &str, max_bytes: u64) -> Result<BoundedGet, StoreError> {
        let Ok(path) = self.path(key) else {
            return Ok(BoundedGet::Missing);
        };
        // One blocking hop for open, size check and read: each tokio::fs call is a hop of
        // its own, and for the small files the UI serves the hops cost more than the read.
        tokio::task::spawn_blocking(move || read_bounded(&path, max_bytes))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_created(key, bytes).await.map(|_| ())
    }

    async fn put_created(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let path = self.path(key)?;
        if let Some(existing) = self.get(key).await? {
            return if existing == bytes {
                Ok(PutOutcome::AlreadyStored)
            } else {
                Err(StoreError::Conflict(key.into()))
            };
        }
        let owned = bytes.to_vec();
        let created = tokio::task::spawn_blocking(move || create_atomic(&path, &owned))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
            .map_err(io_err)?;
        if created {
            return Ok(PutOutcome::Created);
        }
        // Another writer created it between the check and the link: the same
        // bytes are fine, other bytes a conflict, as for any existing key.
        match self.get(key).await? {
            Some(existing) if existing == bytes => Ok(PutOutcome::AlreadyStored),
            _ => Err(StoreError::Conflict(key.into())),
        }
    }

    async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<FileFetch, StoreError> {
        let Ok(path) = self.path(key) else {
            return left_nothing(dest, FileFetch::Missing).await;
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return left_nothing(dest, FileFetch::Missing).await;
            }
            Err(e) => return Err(io_err(e)),
        };
        let meta = file.metadata().await.map_err(io_err)?;
        if !meta.is_file() {
            return left_nothing(dest, FileFetch::Missing).await;
        }
        if meta.len() > max_bytes {
            return left_nothing(dest, FileFetch::TooLarge { size: meta.len() }).await;
        }
        read_into_file(file, key, dest, max_bytes).await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_no_overwrite_and_no_traversal() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirBlobStore::new(dir.path());
        s.put("a/b.cwasm", b"one").await.unwrap();
        s.put("a/b.cwasm", b"one").await.unwrap();
        assert_eq!(
            s.put("a/b.cwasm", b"two").await,
            Err(StoreError::Conflict("a/b.cwasm".into()))
        );
        assert_eq!(s.get("a/b.cwasm").await.unwrap().unwrap(), b"one");
        for bad in ["../x", "/etc/passwd", "a/../../x", "a//b", ".hidden", ""] {
            assert!(s.put(bad, b"x").await.is_err(), "{bad}");
            // Reading a name that cannot exist is a miss, never a file outside the root.
            assert_eq!(s.get(bad).await.unwrap(), None, "{bad}");
        }
        assert_eq!(s.get("a").await.unwrap(), None, "a directory is not a blob");
        assert_eq!(s.get("a/b.cwasm/c").await.unwrap(), None);
        s.delete("a/b.cwasm").await.unwrap();
        assert_eq!(s.get("a/b.cwasm").await.unwrap(), None);
    }

    #[tokio::test]
    async fn put_created_says_who_created_and_get_bounded_checks_the_size_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirBlobStore::new(dir.path());
        assert_eq!(
            s.put_created("k/v", b"12345").await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            s.put_created("k/v", b"12345").await.unwrap(),
            PutOutcome::AlreadyStored
        );
        assert_eq!(
            s.put_created("k/v", b"other").await,
            Err(StoreError::Conflict("k/v".into()))
        );
        assert_eq!(
            s.get_bounded("k/v", 4).await.unwrap(),
            BoundedGet::TooLarge { size: 5 }
        );
        assert_eq!(
            s.get_bounded("k/v", 5).await.unwrap(),
            BoundedGet::Found(b"12345".to_vec())
        );
        assert_eq!(s.get_bounded("k/w", 5).await.unwrap(), BoundedGet::Missing);
        assert_eq!(s.get_bounded("k", 5).await.unwrap(), BoundedGet::Missing);
        assert_eq!(s.get_bounded("../x", 5).await.unwrap(), BoundedGet::Missing);
        // No temp files are left beside the blob.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("k"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["v"]);
    }
}
