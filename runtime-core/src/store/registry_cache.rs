//! A per-process cache of the registry reads on the request path (installs,
//! versions with their artifacts, installs by host-app id, subscriptions), so a
//! warm invocation reads nothing from the registry backend.
//!
//! Staleness has two bounds. A backend with a change signal
//! ([`Registry::generation`]: SQLite's) is asked for it before every read, and
//! the whole cache is dropped when it moved: a disable by any process bites on
//! the next request. A backend without one (DynamoDB) is bounded by the TTL
//! ([`RegistryCacheSettings::ttl`]): what was read is served for at most that
//! long, negative answers (not installed) included. Writes through the cache pass
//! through and drop it; the CLI's own admin commands use the uncached registry.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lru::LruCache;

use super::registry::{
    InstallRecord, InstallRequest, Registered, Registry, RegistryError, Subscription, VersionRecord,
};
use crate::artifact::{ArtifactRef, ContentHash};

/// How long and how much the cache keeps (`ALGA_REGISTRY_CACHE_TTL_MS`,
/// `ALGA_REGISTRY_CACHE_ENTRIES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryCacheSettings {
    /// How long an answer is served on a backend without a change signal: the
    /// bound on how long a disable, uninstall or upgrade takes to bite. Zero
    /// turns the cache off (for every backend).
    pub ttl: Duration,
    /// Answers kept (LRU).
    pub entries: usize,
}

impl Default for RegistryCacheSettings {
    fn default() -> Self {
        RegistryCacheSettings {
            ttl: Duration::from_secs(5),
            entries: 1024,
        }
    }
}

/// What a cached answer is the answer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Install { tenant: String, extension: String },
    Version { extension: String, version: String },
    ByHash(ContentHash),
    ByHostExtension(String),
    Subscriptions { tenant: String, topic: String },
}

/// A cached answer.
#[derive(Clone)]
enum Answer {
    Install(Option<InstallRecord>),
    Version(Option<VersionRecord>),
    Installs(Vec<InstallRecord>),
    Subscriptions(Vec<Subscription>),
}

struct Entry {
    answer: Answer,
    /// When the read that produced it started (the TTL counts from there).
    read_at: Instant,
}

tokio::task_local! {
    /// When the request being served arrived (see [`within_request`]).
    static ARRIVED: Instant;
}

/// Runs `f` as the serving of a request that arrived at `arrived`: the change
/// signal asked once since then answers all of its registry reads.
pub async fn within_request<F: Future>(arrived: Instant, f: F) -> F::Output {
    ARRIVED.scope(arrived, f).await
}

/// The last answer of the change signal, and when it was asked.
#[derive(Clone, Copy)]
struct Check {
    asked: Instant,
    generation: Option<u64>,
}

struct State {
    entries: LruCache<Key, Entry>,
    /// The backend's change signal when the entries were read.
    generation: Option<u64>,
    /// Moves on every drop; a read that started before a drop does not insert
    /// what it read (it may predate the change that caused the drop).
    epoch: u64,
}

impl State {
    fn drop_all(&mut self) {
        self.entries.clear();
        self.epoch += 1;
    }
}

/// A [`Registry`] that caches the request path's reads of another.
pub struct CachingRegistry {
    inner: Arc<dyn Registry>,
    ttl: Duration,
    state: Mutex<State>,
    last_check: Mutex<Option<Check>>,
}

impl CachingRegistry {
    /// A cache over `inner`.
    pub fn new(inner: Arc<dyn Registry>, settings: RegistryCacheSettings) -> Self {
        CachingRegistry {
            inner,
            ttl: settings.ttl,
            state: Mutex::new(State {
                entries: LruCache::new(NonZeroUsize::new(settings.entries.max(1)).expect(">= 1")),
                generation: None,
                epoch: 0,
            }),
            last_check: Mutex::new(None),
        }
    }

    /// `inner` behind a cache, or `inner` itself when the settings turn the cache
    /// off (a zero TTL).
    pub fn wrap(inner: Arc<dyn Registry>, settings: RegistryCacheSettings) -> Arc<dyn Registry> {
        if settings.ttl.is_zero() {
            inner
        } else {
            Arc::new(Self::new(inner, settings))
        }
    }

    /// Drops every cached answer.
    pub fn invalidate(&self) {
        self.state.lock().unwrap().drop_all();
    }

    /// The cached answer for `key`, else `fetch`'s (kept unless the cache was
    /// dropped while it ran).
    async fn read(
        &self,
        key: Key,
        fetch: impl Future<Output = Result<Answer, RegistryError>>,
    ) -> Result<Answer, RegistryError> {
        // A backend that cannot say whether it changed is not trusted for the
        // cache's contents either: drop them and read through.
        let generation = match self.signal_since_arrival().await {
            Ok(g) => g,
            Err(e) => {
                self.invalidate();
                tracing::warn!(error = %e, "registry change signal unavailable; cache dropped");
                return fetch.await;
            }
        };
        let epoch = {
            let mut state = self.state.lock().unwrap();
            if state.generation != generation {
                state.drop_all();
                state.generation = generation;
            }
            if let Some(entry) = state.entries.get(&key) {
                // With a change signal an entry is good until the signal moves.
                if generation.is_some() || entry.read_at.elapsed() < self.ttl {
                    return Ok(entry.answer.clone());
                }
                state.entries.pop(&key);
            }
            state.epoch
        };
        let read_at = Instant::now();
        let answer = fetch.await?;
        let mut state = self.state.lock().unwrap();
        if state.epoch == epoch {
            state.entries.put(
                key,
                Entry {
                    answer: answer.clone(),
                    read_at,
                },
            );
        }
        Ok(answer)
    }

    /// The backend's change signal as of no earlier than the current request's
    /// arrival (the read's own start outside a request): an answer asked since
    /// then saw every change committed before the request arrived.
    async fn signal_since_arrival(&self) -> Result<Option<u64>, RegistryError> {
        let arrived = ARRIVED.try_with(|t| *t).unwrap_or_else(|_| Instant::now());
        if let Some(check) = *self.last_check.lock().unwrap()
            && check.asked > arrived
        {
            return Ok(check.generation);
        }
        let asked = Instant::now();
        let generation = self.inner.generation().await?;
        let mut last = self.last_check.lock().unwrap();
        if last.is_none_or(|c| c.asked <= asked) {
            *last = Some(Check { asked, generation });
        }
        Ok(generation)
    }

    /// Runs a write on the backend, then drops the cache (also when the write
    /// failed: it may have happened all the same, e.g. after a timeout).
    async fn write<T>(&self, result: impl Future<Output = T>) -> T {
        let out = result.await;
        self.invalidate();
        out
    }
}

/// The cache never answers with another key's kind of answer.
fn mismatch() -> RegistryError {
    RegistryError::Store(crate::store::StoreError::Internal(
        "registry cache: answer of another kind".into(),
    ))
}

#[async_trait]
impl Registry for CachingRegistry {
    async fn register_version(&self, v: &VersionRecord) -> Result<Registered, RegistryError> {
        self.write(self.inner.register_version(v)).await
    }

    async fn get_version(
        &self,
        extension_id: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        let key = Key::Version {
            extension: extension_id.into(),
            version: version.into(),
        };
        let fetch = async {
            Ok(Answer::Version(
                self.inner.get_version(extension_id, version).await?,
            ))
        };
        match self.read(key, fetch).await? {
            Answer::Version(v) => Ok(v),
            _ => Err(mismatch()),
        }
    }

    async fn version_by_hash(
        &self,
        content: &ContentHash,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        let fetch = async { Ok(Answer::Version(self.inner.version_by_hash(content).await?)) };
        match self.read(Key::ByHash(*content), fetch).await? {
            Answer::Version(v) => Ok(v),
            _ => Err(mismatch()),
        }
    }

    async fn list_versions(&self, extension_id: &str) -> Result<Vec<VersionRecord>, RegistryError> {
        self.inner.list_versions(extension_id).await
    }

    async fn list_extensions(&self) -> Result<Vec<String>, RegistryError> {
        self.inner.list_extensions().await
    }

    async fn put_artifact(
        &self,
        content: &ContentHash,
        artifact: &ArtifactRef,
    ) -> Result<(), RegistryError> {
        self.write(self.inner.put_artifact(content, artifact)).await
    }

    async fn install(&self, req: &InstallRequest) -> Result<InstallRecord, RegistryError> {
        self.write(self.inner.install(req)).await
    }

    async fn uninstall(&self, tenant: &str, extension_id: &str) -> Result<(), RegistryError> {
        self.write(self.inner.uninstall(tenant, extension_id)).await
    }

    async fn set_enabled(
        &self,
        tenant: &str,
        extension_id: &str,
        enabled: bool,
    ) -> Result<InstallRecord, RegistryError> {
        self.write(self.inner.set_enabled(tenant, extension_id, enabled))
            .await
    }

    async fn get_install(
        &self,
        tenant: &str,
        extension_id: &str,
    ) -> Result<Option<InstallRecord>, RegistryError> {
        let key = Key::Install {
            tenant: tenant.into(),
            extension: extension_id.into(),
        };
        let fetch = async {
            Ok(Answer::Install(
                self.inner.get_install(tenant, extension_id).await?,
            ))
        };
        match self.read(key, fetch).await? {
            Answer::Install(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }

    async fn list_installs(&self, tenant: &str) -> Result<Vec<InstallRecord>, RegistryError> {
        self.inner.list_installs(tenant).await
    }

    async fn list_installs_by_host_extension(
        &self,
        host_extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        let fetch = async {
            Ok(Answer::Installs(
                self.inner
                    .list_installs_by_host_extension(host_extension_id)
                    .await?,
            ))
        };
        match self
            .read(Key::ByHostExtension(host_extension_id.into()), fetch)
            .await?
        {
            Answer::Installs(i) => Ok(i),
            _ => Err(mismatch()),
        }
    }

    async fn list_installs_of(
        &self,
        extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        self.inner.list_installs_of(extension_id).await
    }

    async fn subscriptions(
        &self,
        tenant: &str,
        topic: &str,
    ) -> Result<Vec<Subscription>, RegistryError> {
        let key = Key::Subscriptions {
            tenant: tenant.into(),
            topic: topic.into(),
        };
        let fetch = async {
            Ok(Answer::Subscriptions(
                self.inner.subscriptions(tenant, topic).await?,
            ))
        };
        match self.read(key, fetch).await? {
            Answer::Subscriptions(s) => Ok(s),
            _ => Err(mismatch()),
        }
    }

    async fn generation(&self) -> Result<Option<u64>, RegistryError> {
        self.inner.generation().await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::capability::CapabilitySet;

    /// Installs in a map, counting the reads that reach it; `signal` says
    /// whether it offers a change signal (a counter bumped by every write).
    #[derive(Default)]
    struct Counted {
        installs: Mutex<HashMap<(String, String), InstallRecord>>,
        reads: AtomicU64,
        changes: AtomicU64,
        signal: bool,
        /// Times the change signal was asked.
        asked: AtomicU64,
    }

    impl Counted {
        fn put(&self, tenant: &str, ext: &str, enabled: bool) {
            let record = InstallRecord {
                install_id: format!("{tenant}-{ext}"),
                tenant: tenant.into(),
                extension_id: ext.into(),
                version: "1.0.0".into(),
                content_hash: ContentHash::of(ext.as_bytes()),
                operator_grants: Vec::new(),
                granted: CapabilitySet::minimal(),
                config: Default::default(),
                secret_ref: None,
                enabled,
                host_extension_id: None,
                host_install_id: None,
            };
            self.installs
                .lock()
                .unwrap()
                .insert((tenant.into(), ext.into()), record);
            // Another process's write: the cache does not see it happen.
            self.changes.fetch_add(1, Ordering::SeqCst);
        }

        fn reads(&self) -> u64 {
            self.reads.load(Ordering::SeqCst)
        }

        fn asked(&self) -> u64 {
            self.asked.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Registry for Counted {
        async fn register_version(&self, _: &VersionRecord) -> Result<Registered, RegistryError> {
            Ok(Registered::Created)
        }
        async fn get_version(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<VersionRecord>, RegistryError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
        async fn version_by_hash(
            &self,
            _: &ContentHash,
        ) -> Result<Option<VersionRecord>, RegistryError> {
            Ok(None)
        }
        async fn list_versions(&self, _: &str) -> Result<Vec<VersionRecord>, RegistryError> {
            Ok(Vec::new())
        }
        async fn list_extensions(&self) -> Result<Vec<String>, RegistryError> {
            Ok(Vec::new())
        }
        async fn put_artifact(
            &self,
            _: &ContentHash,
            _: &ArtifactRef,
        ) -> Result<(), RegistryError> {
            Ok(())
        }
        async fn install(&self, req: &InstallRequest) -> Result<InstallRecord, RegistryError> {
            self.put(&req.tenant, &req.extension_id, true);
            Ok(
                self.installs.lock().unwrap()[&(req.tenant.clone(), req.extension_id.clone())]
                    .clone(),
            )
        }
        async fn uninstall(&self, tenant: &str, ext: &str) -> Result<(), RegistryError> {
            self.installs
                .lock()
                .unwrap()
                .remove(&(tenant.into(), ext.into()));
            self.changes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn set_enabled(
            &self,
            tenant: &str,
            ext: &str,
            enabled: bool,
        ) -> Result<InstallRecord, RegistryError> {
            self.put(tenant, ext, enabled);
            Ok(self.installs.lock().unwrap()[&(tenant.into(), ext.into())].clone())
        }
        async fn get_install(
            &self,
            tenant: &str,
            ext: &str,
        ) -> Result<Option<InstallRecord>, RegistryError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .installs
                .lock()
                .unwrap()
                .get(&(tenant.into(), ext.into()))
                .cloned())
        }
        async fn list_installs(&self, _: &str) -> Result<Vec<InstallRecord>, RegistryError> {
            Ok(Vec::new())
        }
        async fn list_installs_by_host_extension(
            &self,
            _: &str,
        ) -> Result<Vec<InstallRecord>, RegistryError> {
            Ok(Vec::new())
        }
        async fn list_installs_of(&self, _: &str) -> Result<Vec<InstallRecord>, RegistryError> {
            Ok(Vec::new())
        }
        async fn subscriptions(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Vec<Subscription>, RegistryError> {
            Ok(Vec::new())
        }
        async fn generation(&self) -> Result<Option<u64>, RegistryError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(self.signal.then(|| self.changes.load(Ordering::SeqCst)))
        }
    }

    fn enabled(i: Option<InstallRecord>) -> Option<bool> {
        i.map(|i| i.enabled)
    }

    fn settings(ttl: Duration) -> RegistryCacheSettings {
        RegistryCacheSettings { ttl, entries: 16 }
    }

    #[tokio::test]
    async fn with_a_change_signal_another_processs_disable_bites_on_the_next_read() {
        let backend = Arc::new(Counted {
            signal: true,
            ..Counted::default()
        });
        backend.put("acme", "x", true);
        // A long TTL: only the signal can make the change visible.
        let cache = CachingRegistry::new(backend.clone(), settings(Duration::from_secs(3600)));
        for _ in 0..3 {
            assert_eq!(
                enabled(cache.get_install("acme", "x").await.unwrap()),
                Some(true)
            );
        }
        assert_eq!(backend.reads(), 1, "warm reads stay in the process");
        backend.put("acme", "x", false);
        assert_eq!(
            enabled(cache.get_install("acme", "x").await.unwrap()),
            Some(false)
        );
        assert_eq!(backend.reads(), 2);
        // A negative answer is cached, and an install elsewhere shows at once.
        assert_eq!(cache.get_install("acme", "y").await.unwrap(), None);
        assert_eq!(cache.get_install("acme", "y").await.unwrap(), None);
        assert_eq!(backend.reads(), 3);
        backend.put("acme", "y", true);
        assert_eq!(
            enabled(cache.get_install("acme", "y").await.unwrap()),
            Some(true)
        );
    }

    #[tokio::test]
    async fn a_request_asks_the_signal_once_and_sees_every_change_made_before_it_arrived() {
        let backend = Arc::new(Counted {
            signal: true,
            ..Counted::default()
        });
        backend.put("acme", "x", true);
        let cache = CachingRegistry::new(backend.clone(), settings(Duration::from_secs(3600)));
        cache.get_install("acme", "x").await.unwrap();
        let before = backend.asked();
        // A request that arrives after that read, and reads six times.
        let arrived = Instant::now();
        while Instant::now() <= arrived {}
        within_request(arrived, async {
            for _ in 0..3 {
                cache.get_install("acme", "x").await.unwrap();
                cache.get_version("x", "1.0.0").await.unwrap();
            }
        })
        .await;
        assert_eq!(backend.asked(), before + 1, "one signal per request");

        // The answer just asked is recent, but older than the next request: a
        // change committed in between is seen.
        backend.put("acme", "x", false);
        let seen = within_request(Instant::now(), cache.get_install("acme", "x")).await;
        assert_eq!(enabled(seen.unwrap()), Some(false));
        assert_eq!(backend.asked(), before + 2);

        // A request that arrived before that answer was asked shares it.
        let shared = within_request(arrived, cache.get_install("acme", "x")).await;
        assert_eq!(enabled(shared.unwrap()), Some(false));
        assert_eq!(backend.asked(), before + 2, "shared with the later request");

        // Outside a request every read asks.
        cache.get_install("acme", "x").await.unwrap();
        cache.get_install("acme", "x").await.unwrap();
        assert_eq!(backend.asked(), before + 4);
    }

    #[tokio::test]
    async fn without_a_signal_answers_last_the_ttl_negative_ones_too() {
        let backend = Arc::new(Counted::default());
        backend.put("acme", "x", true);
        let ttl = Duration::from_millis(200);
        let cache = CachingRegistry::new(backend.clone(), settings(ttl));
        assert_eq!(
            enabled(cache.get_install("acme", "x").await.unwrap()),
            Some(true)
        );
        assert_eq!(cache.get_install("acme", "y").await.unwrap(), None);
        backend.put("acme", "x", false);
        backend.put("acme", "y", true);
        // Within the TTL the old answers may still be served (nothing asserted
        // about timing); past it, never.
        tokio::time::sleep(ttl + Duration::from_millis(20)).await;
        assert_eq!(
            enabled(cache.get_install("acme", "x").await.unwrap()),
            Some(false)
        );
        assert_eq!(
            enabled(cache.get_install("acme", "y").await.unwrap()),
            Some(true)
        );
    }

    #[tokio::test]
    async fn writes_through_the_cache_drop_it_and_a_zero_ttl_turns_it_off() {
        let backend = Arc::new(Counted::default());
        backend.put("acme", "x", true);
        let cache = CachingRegistry::new(backend.clone(), settings(Duration::from_secs(3600)));
        assert_eq!(
            enabled(cache.get_install("acme", "x").await.unwrap()),
            Some(true)
        );
        cache.set_enabled("acme", "x", false).await.unwrap();
        assert_eq!(
            enabled(cache.get_install("acme", "x").await.unwrap()),
            Some(false)
        );
        cache.uninstall("acme", "x").await.unwrap();
        assert_eq!(cache.get_install("acme", "x").await.unwrap(), None);

        let off = CachingRegistry::wrap(backend.clone(), settings(Duration::ZERO));
        let before = backend.reads();
        off.get_install("acme", "x").await.unwrap();
        off.get_install("acme", "x").await.unwrap();
        assert_eq!(backend.reads(), before + 2, "no cache at all");
    }

    #[tokio::test]
    async fn a_read_that_raced_a_drop_is_not_kept() {
        let backend = Arc::new(Counted {
            signal: true,
            ..Counted::default()
        });
        backend.put("acme", "x", true);
        let cache = CachingRegistry::new(backend.clone(), settings(Duration::from_secs(3600)));
        // A read that started before the drop answers what it read but does not
        // put it in the cache.
        let stale = cache
            .read(
                Key::Install {
                    tenant: "acme".into(),
                    extension: "x".into(),
                },
                async {
                    cache.invalidate();
                    Ok(Answer::Install(None))
                },
            )
            .await
            .unwrap();
        assert!(matches!(stale, Answer::Install(None)));
        assert_eq!(
            enabled(cache.get_install("acme", "x").await.unwrap()),
            Some(true)
        );
    }
}
