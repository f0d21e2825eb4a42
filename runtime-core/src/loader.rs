//! Loading artifacts for execution, with their sha256 checked **before** Wasmtime
//! deserializes them.
//!
//! Loaded components are kept as `InstancePre`s in a bounded LRU by content hash,
//! and verified artifacts in an optional disk cache (on Lambda under /tmp) with a
//! size bound: a fetch streams from the blob store into a temporary file, hashed on
//! the way, renamed into place only when it matches, and memory-mapped from there.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use wasmtime::component::{Component, Linker};

use crate::artifact::{ArtifactError, ArtifactRef};
use crate::content::{ContentHash, sha256};
use crate::engine::RuntimeEngine;
use crate::host::{HostState, RunnerPre};
use crate::store::{BlobStore, FileFetch, StoreError};

impl From<StoreError> for ArtifactError {
    fn from(e: StoreError) -> Self {
        ArtifactError::Fetch(e.to_string())
    }
}

/// Caches of loaded components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Components kept ready to instantiate (an LRU by content hash).
    pub instance_entries: usize,
    /// Directory for verified artifacts (on Lambda: under /tmp); none disables it.
    pub disk_dir: Option<PathBuf>,
    /// Size bound of the disk cache; the least recently used files go first.
    pub disk_max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            instance_entries: 32,
            disk_dir: None,
            disk_max_bytes: 1 << 30,
        }
    }
}

/// A component ready to instantiate.
pub struct LoadedComponent {
    /// Pre-linked instance factory.
    pub pre: RunnerPre<HostState>,
    /// sha256 of the artifact it came from.
    pub artifact_sha256: [u8; 32],
}

/// Counters of the loader, for tests and metrics.
#[derive(Debug, Default)]
pub struct LoaderStats {
    /// Components deserialized (after a passed integrity check).
    pub deserialized: AtomicU64,
    /// Served from the in-memory LRU.
    pub memory_hits: AtomicU64,
    /// Served from the disk cache.
    pub disk_hits: AtomicU64,
    /// Fetched from the blob store.
    pub fetched: AtomicU64,
    /// Refused by the integrity check.
    pub integrity_failures: AtomicU64,
}

/// Loads artifacts into ready components, through the memory and disk caches.
pub struct ComponentLoader {
    engine: Arc<RuntimeEngine>,
    linker: Arc<Linker<HostState>>,
    blobs: Arc<dyn BlobStore>,
    memory: Mutex<LruCache<ContentHash, Arc<LoadedComponent>>>,
    disk: Option<DiskCache>,
    stats: LoaderStats,
}

impl ComponentLoader {
    /// A loader fetching from `blobs`.
    pub fn new(
        engine: Arc<RuntimeEngine>,
        linker: Arc<Linker<HostState>>,
        blobs: Arc<dyn BlobStore>,
        cache: &CacheSettings,
    ) -> Self {
        let cap = NonZeroUsize::new(cache.instance_entries.max(1)).expect("non-zero");
        ComponentLoader {
            engine,
            linker,
            blobs,
            memory: Mutex::new(LruCache::new(cap)),
            disk: cache
                .disk_dir
                .as_ref()
                .map(|d| DiskCache::new(d.clone(), cache.disk_max_bytes)),
            stats: LoaderStats::default(),
        }
    }

    /// The loader's counters.
    pub fn stats(&self) -> &LoaderStats {
        &self.stats
    }

    /// The component for `artifact`: from memory, the disk cache, or the blob store.
    pub async fn load(
        &self,
        artifact: &ArtifactRef,
    ) -> Result<Arc<LoadedComponent>, ArtifactError> {
        let content = artifact.key.content;
        if let Some(hit) = self.memory.lock().unwrap().get(&content)
            && hit.artifact_sha256 == artifact.sha256
        {
            self.stats.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit.clone());
        }
        let key = artifact.key.blob_key();
        if artifact.key.fingerprint != self.engine.fingerprint() {
            return Err(ArtifactError::Missing(key));
        }
        match &self.disk {
            Some(disk) if artifact.size <= disk.max_bytes => {
                self.load_through_disk(disk, &key, artifact).await
            }
            _ => {
                let bytes = self
                    .blobs
                    .get(&key)
                    .await?
                    .ok_or_else(|| ArtifactError::Missing(key.clone()))?;
                self.stats.fetched.fetch_add(1, Ordering::Relaxed);
                self.verify(&key, artifact, &sha256(&bytes))?;
                self.ready(&key, artifact, &Source::Bytes(bytes))
            }
        }
    }

    /// Deserializes verified bytes, links them and keeps the result in memory.
    fn ready(
        &self,
        key: &str,
        artifact: &ArtifactRef,
        source: &Source,
    ) -> Result<Arc<LoadedComponent>, ArtifactError> {
        let loaded = Arc::new(self.instantiate_pre(key, artifact, source)?);
        self.memory
            .lock()
            .unwrap()
            .put(artifact.key.content, loaded.clone());
        Ok(loaded)
    }

    /// Through the disk cache: a cached file whose sha256 still matches (hashed in
    /// chunks), else a fresh fetch, streamed into a temporary file, hashed on the
    /// way and renamed into place only when it matches. The cache's files are
    /// checked, renamed, mapped and evicted only under its lock, so no file can
    /// vanish between its check and its mapping; the fetch itself runs outside it.
    async fn load_through_disk(
        &self,
        disk: &DiskCache,
        key: &str,
        artifact: &ArtifactRef,
    ) -> Result<Arc<LoadedComponent>, ArtifactError> {
        let path = disk.path(artifact);
        {
            let _files = disk.lock.lock().await;
            let (cached, expected) = (path.clone(), artifact.sha256);
            let hit = tokio::task::spawn_blocking(move || disk_hit(&cached, &expected))
                .await
                .unwrap_or(false);
            if hit {
                self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
                return self.ready(key, artifact, &Source::File(path));
            }
        }
        let tmp = self.fetch_verified(disk, key, artifact).await?;
        let _files = disk.lock.lock().await;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ArtifactError::Fetch(StoreError::Internal(format!("artifact cache: {e}")).to_string())
        })?;
        let loaded = self.ready(key, artifact, &Source::File(path));
        disk.evict();
        loaded
    }

    /// Streams the artifact into a temporary file in the cache directory and returns
    /// it once its sha256, computed on the way, matches the registry's record.
    async fn fetch_verified(
        &self,
        disk: &DiskCache,
        key: &str,
        artifact: &ArtifactRef,
    ) -> Result<PathBuf, ArtifactError> {
        disk.prepare().map_err(|e| {
            ArtifactError::Fetch(StoreError::Internal(format!("artifact cache: {e}")).to_string())
        })?;
        let tmp = disk.temp_path();
        // The registry recorded the size: anything longer is not our artifact.
        let fetched = self.blobs.get_to_file(key, &tmp, artifact.size).await?;
        self.stats.fetched.fetch_add(1, Ordering::Relaxed);
        let actual = match fetched {
            FileFetch::Missing => return Err(ArtifactError::Missing(key.into())),
            FileFetch::TooLarge { .. } => [0u8; 32],
            FileFetch::Written { sha256, .. } => sha256,
        };
        if let Err(e) = self.verify(key, artifact, &actual) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(tmp)
    }

    fn verify(
        &self,
        key: &str,
        artifact: &ArtifactRef,
        actual: &[u8; 32],
    ) -> Result<(), ArtifactError> {
        if *actual != artifact.sha256 {
            self.stats
                .integrity_failures
                .fetch_add(1, Ordering::Relaxed);
            return Err(ArtifactError::Integrity {
                key: key.into(),
                actual: hex::encode(actual),
                expected: hex::encode(artifact.sha256),
            });
        }
        Ok(())
    }

    fn instantiate_pre(
        &self,
        key: &str,
        artifact: &ArtifactRef,
        source: &Source,
    ) -> Result<LoadedComponent, ArtifactError> {
        self.stats.deserialized.fetch_add(1, Ordering::Relaxed);
        // SAFETY: callers verified the bytes (in memory, or the file's whole content)
        // against the sha256 the registry recorded when we compiled them, so only an
        // artifact this project produced reaches `deserialize`; Wasmtime checks its
        // header (version + our engine fingerprint) too. A cache file is only ever
        // replaced by rename, never written in place, so the mapped bytes stay the
        // verified ones; the cache directory is private to this process's user.
        let component = match source {
            Source::Bytes(bytes) => unsafe { Component::deserialize(self.engine.engine(), bytes) },
            Source::File(path) => unsafe {
                Component::deserialize_file(self.engine.engine(), path)
            },
        }
        .map_err(|e| {
            tracing::warn!(artifact = key, error = %e, "artifact refused by the engine");
            ArtifactError::Missing(key.into())
        })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| ArtifactError::Link(format!("{e:#}")))?;
        let pre = RunnerPre::new(pre).map_err(|e| ArtifactError::Link(format!("{e:#}")))?;
        Ok(LoadedComponent {
            pre,
            artifact_sha256: artifact.sha256,
        })
    }
}

/// Verified artifact bytes, ready to deserialize.
enum Source {
    /// In memory (no disk cache, or an artifact larger than it).
    Bytes(Vec<u8>),
    /// A file in the disk cache, memory-mapped by Wasmtime.
    File(PathBuf),
}

/// Whether the cached file at `path` holds exactly the bytes hashing to `expected`
/// (hashed in chunks; a mismatching file is removed).
fn disk_hit(path: &std::path::Path, expected: &[u8; 32]) -> bool {
    match crate::store::stream::sha256_file(path) {
        Ok(actual) if actual == *expected => {
            // Mark as recently used for eviction.
            if let Ok(f) = std::fs::File::options().append(true).open(path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            true
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
            false
        }
        Err(_) => false,
    }
}

/// Verified artifacts on local disk, bounded in size (least recently used out first).
struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    /// Held while files are checked, renamed into place, mapped or evicted.
    lock: tokio::sync::Mutex<()>,
}

impl DiskCache {
    fn new(dir: PathBuf, max_bytes: u64) -> Self {
        DiskCache {
            dir,
            max_bytes,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn path(&self, a: &ArtifactRef) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{}.cwasm",
            a.key.content.hex(),
            a.key.target,
            a.key.fingerprint
        ))
    }

    /// A fresh name for a download in progress (not a `.cwasm`, so never evicted
    /// or mistaken for a verified file).
    fn temp_path(&self) -> PathBuf {
        crate::store::stream::temp_path_in(&self.dir, "fetch")
    }

    /// Creates the directory, readable and writable by this user only.
    fn prepare(&self) -> std::io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir)
    }

    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}
