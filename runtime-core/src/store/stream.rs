//! Streaming a blob into a local file: bounded in size and hashed on the way, so a
//! large object never sits in memory and a too-large one is cut off early.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::StoreError;

/// What a streamed read into a file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFetch {
    /// No such key; no file was left.
    Missing,
    /// The object is larger than allowed; no file was left.
    TooLarge {
        /// Its size, or how far the read got before stopping.
        size: u64,
    },
    /// The whole object is in the file.
    Written {
        /// Bytes written.
        len: u64,
        /// sha256 of those bytes.
        sha256: [u8; 32],
    },
}

/// A file being filled chunk by chunk, with a size bound and a running sha256.
struct FileSink {
    file: tokio::fs::File,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
    max: u64,
}

fn local(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("{}: {e}", path.display()))
}

/// A failed local write (a full disk): the partial file is removed before the
/// error is returned, so nothing half-written outlives the fetch. Callers write
/// into temporary names that no eviction ever looks at; a file left there would
/// keep its space until the process ended.
async fn failed_write(path: &Path, e: std::io::Error) -> StoreError {
    let _ = tokio::fs::remove_file(path).await;
    local(path, e)
}

impl FileSink {
    /// Creates (or truncates) `path`, accepting at most `max` bytes.
    async fn create(path: &Path, max: u64) -> Result<Self, StoreError> {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| local(path, e))?;
        Ok(FileSink {
            file,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            len: 0,
            max,
        })
    }

    /// Appends a chunk; past the bound the file is removed and `TooLarge` returned.
    async fn write(&mut self, chunk: &[u8]) -> Result<Option<FileFetch>, StoreError> {
        self.len += chunk.len() as u64;
        if self.len > self.max {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Ok(Some(FileFetch::TooLarge { size: self.len }));
        }
        self.hasher.update(chunk);
        if let Err(e) = self.file.write_all(chunk).await {
            return Err(failed_write(&self.path, e).await);
        }
        Ok(None)
    }

    /// Flushes the file; its length and sha256.
    async fn finish(mut self) -> Result<FileFetch, StoreError> {
        // tokio writes in the background: a write's error may surface only here.
        if let Err(e) = self.file.flush().await {
            return Err(failed_write(&self.path, e).await);
        }
        Ok(FileFetch::Written {
            len: self.len,
            sha256: self.hasher.finalize().into(),
        })
    }

    /// Gives up (a failed read): the partial file is removed.
    async fn abandon(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

/// Copies `reader` into the file `dest` in 1 MiB chunks, hashing on the way and
/// stopping past `max` bytes. A read error (`source` names what was read) removes
/// the partial file and is `Unavailable`: the backend may answer next time. A
/// write error (a full disk) removes it too and is `Internal`.
pub async fn read_into_file(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    source: &str,
    dest: &Path,
    max: u64,
) -> Result<FileFetch, StoreError> {
    use tokio::io::AsyncReadExt;
    let mut sink = FileSink::create(dest, max).await?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                sink.abandon().await;
                return Err(StoreError::Unavailable(format!("reading {source}: {e}")));
            }
        };
        if n == 0 {
            return sink.finish().await;
        }
        if let Some(too_large) = sink.write(&buf[..n]).await? {
            return Ok(too_large);
        }
    }
}

/// A name in `dir` no other writer in this process or another uses, for a file
/// that is written first and renamed or removed after (`.`-prefixed, so never
/// taken for a finished one).
pub fn temp_path_in(dir: &Path, purpose: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    dir.join(format!(
        ".{purpose}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
}

/// `outcome` (`Missing` or `TooLarge`) with no file left at `dest`, whatever was
/// there before.
pub async fn left_nothing(dest: &Path, outcome: FileFetch) -> Result<FileFetch, StoreError> {
    match tokio::fs::remove_file(dest).await {
        Ok(()) => Ok(outcome),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(outcome),
        Err(e) => Err(local(dest, e)),
    }
}

/// The sha256 of a local file, read in chunks (never whole into memory).
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}
