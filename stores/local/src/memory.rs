//! In-memory backends: for `alga-lambda run`, tests, and single-process use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use runtime_core::store::kv::{self, KvEntry, KvError, KvLimits, KvPage, KvScope, KvStore};
use runtime_core::store::{BlobStore, PutOutcome, SecretBundle, SecretStore, StoreError};

/// Blobs in a map.
#[derive(Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.lock().unwrap().get(key).cloned())
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_created(key, bytes).await.map(|_| ())
    }

    async fn put_created(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let mut blobs = self.blobs.lock().unwrap();
        match blobs.get(key) {
            Some(existing) if existing != bytes => Err(StoreError::Conflict(key.into())),
            Some(_) => Ok(PutOutcome::AlreadyStored),
            None => {
                blobs.insert(key.into(), bytes.to_vec());
                Ok(PutOutcome::Created)
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.blobs.lock().unwrap().remove(key);
        Ok(())
    }
}

type Namespaces = BTreeMap<String, BTreeMap<String, (Vec<u8>, u64)>>;

/// Key-value entries in a map, one per scope.
#[derive(Default)]
pub struct MemoryKvStore {
    scopes: Mutex<HashMap<KvScope, Namespaces>>,
    limits: KvLimits,
}

impl MemoryKvStore {
    /// An empty store with custom limits.
    pub fn with_limits(limits: KvLimits) -> Self {
        MemoryKvStore {
            scopes: Mutex::default(),
            limits,
        }
    }
}

#[async_trait]
impl KvStore for MemoryKvStore {
    async fn get(&self, scope: &KvScope, ns: &str, key: &str) -> Result<Option<KvEntry>, KvError> {
        let scopes = self.scopes.lock().unwrap();
        Ok(scopes
            .get(scope)
            .and_then(|n| n.get(ns))
            .and_then(|k| k.get(key))
            .map(|(value, revision)| KvEntry {
                namespace: ns.into(),
                key: key.into(),
                value: value.clone(),
                revision: *revision,
            }))
    }

    async fn put(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<KvEntry, KvError> {
        kv::validate_namespace(&self.limits, ns)?;
        kv::validate_key(&self.limits, key)?;
        kv::validate_value(&self.limits, value)?;
        let mut scopes = self.scopes.lock().unwrap();
        let namespaces = scopes.entry(scope.clone()).or_default();
        if !namespaces.contains_key(ns) && namespaces.len() >= self.limits.namespaces_per_install {
            return Err(KvError::LimitReached(format!(
                "at most {} namespaces per install",
                self.limits.namespaces_per_install
            )));
        }
        let keys = namespaces.entry(ns.into()).or_default();
        let current = keys.get(key).map(|(_, r)| *r).unwrap_or(0);
        if let Some(want) = expected
            && want != current
        {
            return Err(KvError::Conflict);
        }
        if current == 0 && keys.len() >= self.limits.keys_per_namespace {
            return Err(KvError::LimitReached(format!(
                "at most {} keys per namespace",
                self.limits.keys_per_namespace
            )));
        }
        let revision = current + 1;
        keys.insert(key.into(), (value.to_vec(), revision));
        Ok(KvEntry {
            namespace: ns.into(),
            key: key.into(),
            value: value.to_vec(),
            revision,
        })
    }

    async fn delete(&self, scope: &KvScope, ns: &str, key: &str) -> Result<(), KvError> {
        let mut scopes = self.scopes.lock().unwrap();
        if let Some(namespaces) = scopes.get_mut(scope)
            && let Some(keys) = namespaces.get_mut(ns)
        {
            keys.remove(key);
            if keys.is_empty() {
                namespaces.remove(ns);
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        scope: &KvScope,
        ns: &str,
        after: Option<&str>,
    ) -> Result<KvPage, KvError> {
        let scopes = self.scopes.lock().unwrap();
        let Some(keys) = scopes.get(scope).and_then(|n| n.get(ns)) else {
            return Ok(KvPage {
                entries: vec![],
                more: false,
            });
        };
        let mut iter: Box<dyn Iterator<Item = (&String, &(Vec<u8>, u64))>> = match after {
            Some(a) => Box::new(
                keys.range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            ),
            None => Box::new(keys.iter()),
        };
        let entries: Vec<KvEntry> = iter
            .by_ref()
            .take(self.limits.page_size)
            .map(|(k, (v, r))| KvEntry {
                namespace: ns.into(),
                key: k.clone(),
                value: v.clone(),
                revision: *r,
            })
            .collect();
        let more = iter.next().is_some();
        Ok(KvPage { entries, more })
    }

    fn limits(&self) -> KvLimits {
        self.limits
    }
}

/// Secrets in a map keyed by (tenant, install).
#[derive(Default)]
pub struct MemorySecretStore {
    bundles: Mutex<HashMap<(String, String), SecretBundle>>,
}

impl MemorySecretStore {
    /// Sets the secrets of one install.
    pub fn set(&self, tenant: &str, install_id: &str, bundle: SecretBundle) {
        self.bundles
            .lock()
            .unwrap()
            .insert((tenant.into(), install_id.into()), bundle);
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn load(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Option<SecretBundle>, StoreError> {
        Ok(self
            .bundles
            .lock()
            .unwrap()
            .get(&(tenant.to_string(), install_id.to_string()))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(t: &str) -> KvScope {
        KvScope {
            tenant: t.into(),
            install_id: "i1".into(),
        }
    }

    #[tokio::test]
    async fn revisions_conflicts_and_scoping() {
        let kv = MemoryKvStore::default();
        let a = scope("a");
        let e = kv.put(&a, "ns", "k", b"1", None).await.unwrap();
        assert_eq!(e.revision, 1);
        assert_eq!(
            kv.put(&a, "ns", "k", b"2", Some(7)).await,
            Err(KvError::Conflict)
        );
        assert_eq!(
            kv.put(&a, "ns", "k", b"2", Some(1)).await.unwrap().revision,
            2
        );
        assert_eq!(
            kv.put(&a, "ns", "new", b"x", Some(1)).await,
            Err(KvError::Conflict)
        );
        assert_eq!(
            kv.put(&a, "ns", "new", b"x", Some(0))
                .await
                .unwrap()
                .revision,
            1
        );
        assert_eq!(kv.get(&scope("b"), "ns", "k").await.unwrap(), None);
        kv.delete(&a, "ns", "missing").await.unwrap();
    }

    #[tokio::test]
    async fn pages_return_each_key_once() {
        let kv = MemoryKvStore::default();
        let a = scope("a");
        for i in 0..250 {
            kv.put(&a, "ns", &format!("k{i:04}"), b"v", None)
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = kv.list(&a, "ns", after.as_deref()).await.unwrap();
            seen.extend(page.entries.iter().map(|e| e.key.clone()));
            if !page.more {
                break;
            }
            after = page.entries.last().map(|e| e.key.clone());
        }
        assert_eq!(seen.len(), 250);
        seen.dedup();
        assert_eq!(seen.len(), 250);
    }

    #[tokio::test]
    async fn limits_hold() {
        let kv = MemoryKvStore::with_limits(KvLimits {
            namespaces_per_install: 2,
            keys_per_namespace: 2,
            ..KvLimits::default()
        });
        let a = scope("a");
        kv.put(&a, "n1", "k1", b"", None).await.unwrap();
        kv.put(&a, "n1", "k2", b"", None).await.unwrap();
        assert!(matches!(
            kv.put(&a, "n1", "k3", b"", None).await,
            Err(KvError::LimitReached(_))
        ));
        kv.put(&a, "n2", "k1", b"", None).await.unwrap();
        assert!(matches!(
            kv.put(&a, "n3", "k1", b"", None).await,
            Err(KvError::LimitReached(_))
        ));
        assert!(matches!(
            kv.put(&a, "n1", "a/b", b"", None).await,
            Err(KvError::Invalid(_))
        ));
        assert!(matches!(
            kv.put(&a, "n1", "k1", &vec![0; 65 << 10], None).await,
            Err(KvError::Invalid(_))
        ));
    }
}
