//! Loading artifacts for execution, with their sha256 checked **before** Wasmtime
//! deserializes them.
//!
//! Loaded components are kept as `InstancePre`s in a bounded LRU by content hash,
//! and verified artifacts in an optional disk cache (on Lambda under /tmp) with a
//! size bound: a fetch streams from the blob store into a temporary file, hashed on
//! the way (a compressed object is verified, then decoded into the file with the
//! output hashed and bounded), renamed into place only when it matches, and
//! memory-mapped from there. A cached file this process hashed is trusted by its
//! identity afterwards ([`identity`]); any other is hashed whole first.

mod identity;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use wasmtime::component::{Component, Linker};

use crate::artifact::encoding::{DecodeError, decode_bounded};
use crate::artifact::{ArtifactError, ArtifactRef, StoredObject};
use crate::content::{ContentHash, sha256};
use crate::engine::RuntimeEngine;
use crate::host::{HostState, RunnerPre};
use crate::store::{BlobStore, FileFetch, StoreError};
use identity::FileIdentity;

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
    /// Served from the disk cache (trusted by identity or hashed).
    pub disk_hits: AtomicU64,
    /// Disk hits trusted by the identity of a file this process verified (no hash).
    pub identity_hits: AtomicU64,
    /// Disk hits on a file this process did not know (or that changed): hashed whole.
    pub disk_hashed: AtomicU64,
    /// Cached files that did not hash to the record: removed, fetched again.
    pub disk_rejected: AtomicU64,
    /// Fetched from the blob store.
    pub fetched: AtomicU64,
    /// Bytes fetched from the blob store (the stored objects, compressed or not).
    pub fetched_bytes: AtomicU64,
    /// Refused by the integrity check (a cached file, a stored object or its
    /// decoded bytes).
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
        let key = artifact.object_key();
        if artifact.key.fingerprint != self.engine.fingerprint() {
            return Err(ArtifactError::Missing(key));
        }
        match &self.disk {
            Some(disk) if artifact.size <= disk.max_bytes => {
                self.load_through_disk(disk, &key, artifact).await
            }
            _ => {
                let bytes = self.fetch_in_memory(&key, artifact).await?;
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

    /// The artifact's bytes, fetched whole (no disk cache, or an artifact larger
    /// than it): the stored object is verified, then decoded (bounded by the
    /// recorded size) and the result verified too.
    async fn fetch_in_memory(
        &self,
        key: &str,
        artifact: &ArtifactRef,
    ) -> Result<Vec<u8>, ArtifactError> {
        let object = self
            .blobs
            .get(key)
            .await?
            .ok_or_else(|| ArtifactError::Missing(key.into()))?;
        self.count_fetch(object.len() as u64);
        let Some(stored) = &artifact.stored else {
            self.verify(key, &artifact.sha256, &sha256(&object))?;
            return Ok(object);
        };
        self.verify(key, &stored.sha256, &sha256(&object))?;
        let (encoding, size) = (stored.encoding, artifact.size);
        let decoded = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(size as usize);
            decode_bounded(encoding, &object[..], &mut out, size).map(|d| (d, out))
        })
        .await
        .map_err(|e| ArtifactError::Fetch(e.to_string()))?;
        let (d, bytes) = decoded.map_err(|e| self.undecodable(key, artifact, e))?;
        self.verify(key, &artifact.sha256, &d.sha256)?;
        Ok(bytes)
    }

    /// Through the disk cache: a cached file trusted by its identity or, when this
    /// process does not know it, hashed whole; else a fresh fetch into a
    /// temporary file, verified and renamed into place. The cache's files are
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
            let found = tokio::task::spawn_blocking(move || check_cached(&cached, &expected))
                .await
                .unwrap_or(Cached::Absent);
            let counter = match found {
                Cached::Trusted => Some(&self.stats.identity_hits),
                Cached::Hashed => Some(&self.stats.disk_hashed),
                Cached::Rejected => {
                    tracing::warn!(
                        artifact = key,
                        "cached artifact does not match its record; removed, fetching again"
                    );
                    self.stats.disk_rejected.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .integrity_failures
                        .fetch_add(1, Ordering::Relaxed);
                    None
                }
                Cached::Absent => None,
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::Relaxed);
                self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
                return self.ready(key, artifact, &Source::File(path));
            }
        }
        let tmp = self.fetch_verified(disk, key, artifact).await?;
        let cache_err = |e: std::io::Error| ArtifactError::Fetch(format!("artifact cache: {e}"));
        let _files = disk.lock.lock().await;
        // Held open across the rename so the identity remembered is this very
        // inode's, as the rename left it (a rename moves its ctime).
        let placed = std::fs::File::open(&tmp)
            .and_then(|file| std::fs::rename(&tmp, &path).map(|()| file))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                cache_err(e)
            })?;
        // Not trusted yet (the rename moved its ctime just now; see `identity`):
        // remembered for eviction, hashed once more by the next load that finds it.
        if let Some(id) = placed.metadata().ok().as_ref().and_then(FileIdentity::of) {
            identity::remember(id, artifact.sha256, std::time::SystemTime::now());
        }
        let loaded = self.ready(key, artifact, &Source::File(path));
        disk.evict();
        loaded
    }

    /// Streams the stored object into a temporary file in the cache directory and
    /// returns the path of the verified `.cwasm`: its sha256, computed on the way,
    /// matches the registry's record. A compressed object is verified first and
    /// only then decoded into a second temporary file, bounded by the recorded size
    /// and hashed on the way.
    async fn fetch_verified(
        &self,
        disk: &DiskCache,
        key: &str,
        artifact: &ArtifactRef,
    ) -> Result<PathBuf, ArtifactError> {
        disk.prepare()
            .map_err(|e| ArtifactError::Fetch(format!("artifact cache: {e}")))?;
        let tmp = disk.temp_path();
        match &artifact.stored {
            None => {
                // The registry recorded the size: anything longer is not our artifact.
                let actual = self.fetch_to_file(key, &tmp, artifact.size).await?;
                self.verify(key, &artifact.sha256, &actual)
                    .inspect_err(|_| remove(&tmp))?;
            }
            Some(stored) => {
                let object = disk.temp_path();
                let actual = self.fetch_to_file(key, &object, stored.size).await?;
                // Only verified bytes reach the decoder.
                let checked = match self.verify(key, &stored.sha256, &actual) {
                    Ok(()) => self.decode_into(key, artifact, stored, &object, &tmp).await,
                    Err(e) => Err(e),
                };
                remove(&object);
                checked.inspect_err(|_| remove(&tmp))?;
            }
        }
        Ok(tmp)
    }

    /// Decodes the verified object at `object` into `dest` (off the async threads),
    /// at most the recorded size, and checks the output's sha256.
    async fn decode_into(
        &self,
        key: &str,
        artifact: &ArtifactRef,
        stored: &StoredObject,
        object: &Path,
        dest: &Path,
    ) -> Result<(), ArtifactError> {
        let (encoding, max) = (stored.encoding, artifact.size);
        let (object, dest) = (object.to_path_buf(), dest.to_path_buf());
        let decoded = tokio::task::spawn_blocking(move || {
            let input = std::fs::File::open(&object).map_err(DecodeError::Write)?;
            let out = std::fs::File::create(&dest).map_err(DecodeError::Write)?;
            decode_bounded(encoding, input, out, max)
        })
        .await
        .map_err(|e| ArtifactError::Fetch(e.to_string()))?
        .map_err(|e| self.undecodable(key, artifact, e))?;
        self.verify(key, &artifact.sha256, &decoded.sha256)
    }

    /// Streams `key` into `dest` (at most `max` bytes); the sha256 of what came, or
    /// all zeros (never a record) for an object past `max`, which leaves no file.
    async fn fetch_to_file(
        &self,
        key: &str,
        dest: &Path,
        max: u64,
    ) -> Result<[u8; 32], ArtifactError> {
        match self.blobs.get_to_file(key, dest, max).await? {
            FileFetch::Missing => Err(ArtifactError::Missing(key.into())),
            FileFetch::TooLarge { size } => {
                self.count_fetch(size);
                Ok([0u8; 32])
            }
            FileFetch::Written { sha256, len } => {
                self.count_fetch(len);
                Ok(sha256)
            }
        }
    }

    fn count_fetch(&self, bytes: u64) {
        self.stats.fetched.fetch_add(1, Ordering::Relaxed);
        self.stats.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn verify(
        &self,
        key: &str,
        expected: &[u8; 32],
        actual: &[u8; 32],
    ) -> Result<(), ArtifactError> {
        if actual != expected {
            self.stats
                .integrity_failures
                .fetch_add(1, Ordering::Relaxed);
            return Err(ArtifactError::Integrity {
                key: key.into(),
                actual: hex::encode(actual),
                expected: hex::encode(expected),
            });
        }
        Ok(())
    }

    /// A verified object that does not decode to its record (a bad publish): an
    /// integrity failure, like bytes that hash wrong.
    fn undecodable(&self, key: &str, artifact: &ArtifactRef, e: DecodeError) -> ArtifactError {
        if let DecodeError::Write(e) = e {
            return ArtifactError::Fetch(format!("artifact cache: {e}"));
        }
        self.stats
            .integrity_failures
            .fetch_add(1, Ordering::Relaxed);
        ArtifactError::Integrity {
            key: key.into(),
            actual: format!("undecodable: {e}"),
            expected: hex::encode(artifact.sha256),
        }
    }

    fn instantiate_pre(
        &self,
        key: &str,
        artifact: &ArtifactRef,
        source: &Source,
    ) -> Result<LoadedComponent, ArtifactError> {
        self.stats.deserialized.fetch_add(1, Ordering::Relaxed);
        // SAFETY: only bytes that hashed to the sha256 the registry recorded when we
        // compiled them reach `deserialize`, so only an artifact this project
        // produced does; Wasmtime checks its header (version + our engine
        // fingerprint) too. In memory they were hashed just now. A cache file was
        // either hashed whole by this load, or hashed whole by this process
        // earlier, more than a timestamp tick after its last change, and has the
        // same (device, inode, size, mtime, ctime) now: no write, truncation, time
        // or mode change and no replacement since (see `identity`). The cache
        // directory is 0700 and its files are only ever replaced by rename, never
        // written in place, so only this user could change them, and the mapped
        // bytes stay the verified ones.
        let component = match source {
            Source::Bytes(bytes) => unsafe { Component::deserialize(self.engine.engine(), bytes) },
            Source::File(path) => unsafe {
                Component::deserialize_file(self.engine.engine(), path)
            },
        }
        .map_err(|e| {
            tracing::warn!(artifact = key, error = %e, "artifact refused by the engine");
            refusal(key, &e)
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

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Why the engine refused verified bytes. A component needing more than the
/// pool allows (an initial memory larger than a slot, more memories or tables than
/// a slot holds: Wasmtime's pooling allocator says "... exceeds the ... limit") is
/// refused whatever we recompile, so it is a link failure; anything else (a header
/// from another engine under our key) is a stale artifact a recompile replaces.
/// `hostile::an_initial_memory_beyond_the_pool_slot_is_refused` and
/// `artifacts::artifact_for_another_engine_is_artifact_missing` pin both readings
/// of Wasmtime's messages across upgrades.
fn refusal(key: &str, e: &wasmtime::Error) -> ArtifactError {
    let text = format!("{e:#}");
    if text.contains("exceeds the") {
        ArtifactError::Link(format!("needs more than this runtime's limits: {text}"))
    } else {
        ArtifactError::Missing(key.into())
    }
}

/// Verified artifact bytes, ready to deserialize.
enum Source {
    /// In memory (no disk cache, or an artifact larger than it).
    Bytes(Vec<u8>),
    /// A file in the disk cache, memory-mapped by Wasmtime.
    File(PathBuf),
}

/// What the disk cache holds for an artifact.
enum Cached {
    /// No file (or not a regular one, or it changed while being hashed).
    Absent,
    /// A file this process verified, unchanged since: no hash needed.
    Trusted,
    /// A file this process did not know, hashed whole just now: a match.
    Hashed,
    /// A file that does not hash to the record: removed.
    Rejected,
}

/// Checks the cached file at `path` against `expected`: trusted by its identity
/// when this process verified it (more than a tick after its last change) and it
/// has not changed since, else hashed whole in chunks (then remembered); a
/// mismatching file is removed.
fn check_cached(path: &Path, expected: &[u8; 32]) -> Cached {
    if let Some(id) = FileIdentity::of_path(path)
        && identity::trusted(&id, expected)
    {
        return Cached::Trusted;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Cached::Absent;
    };
    // Not touched for recency: that would move its ctime (eviction uses this
    // process's last use instead).
    let before = file.metadata().ok().as_ref().and_then(FileIdentity::of);
    let started = std::time::SystemTime::now();
    match crate::store::stream::sha256_file(path) {
        Ok(actual) if actual == *expected => {
            let after = FileIdentity::of_path(path);
            match before {
                Some(id) if after == Some(id) => {
                    identity::remember(id, *expected, started);
                    Cached::Hashed
                }
                // Changed while hashed: a fresh fetch replaces it.
                Some(_) => Cached::Absent,
                // No identity on this platform: every load hashes.
                None => Cached::Hashed,
            }
        }
        Ok(_) => {
            if let Some(id) = &before {
                identity::forget(id);
            }
            remove(path);
            Cached::Rejected
        }
        Err(_) => Cached::Absent,
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

    /// Removes the least recently used files past the size bound. Recency is the
    /// later of the file's mtime (touched when a process hashes it) and this
    /// process's last use of it (trusted files are not touched: that would change
    /// their identity).
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf, Option<FileIdentity>)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                let id = FileIdentity::of(&m);
                let modified = m.modified().ok()?;
                let used = id
                    .as_ref()
                    .and_then(identity::last_used)
                    .map_or(modified, |u| u.max(modified));
                Some((used, m.len(), e.path(), id))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
        for (_, len, path, id) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                if let Some(id) = &id {
                    identity::forget(id);
                }
            }
        }
    }
}
