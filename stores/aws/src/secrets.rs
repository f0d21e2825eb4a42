//! Install secrets in AWS Secrets Manager: one secret per install, named
//! `<ALGA_SECRETS_PREFIX><tenant>/<install_id>`, whose SecretString is a JSON object
//! of strings. The reserved key `__expires_at` (RFC 3339) carries the expiry: it is
//! removed from the values and becomes [`SecretBundle::expires_at`], so values and
//! expiry change together in one `PutSecretValue`. Bundles (and absences) are cached
//! per process for at most 30 s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::error::map_sdk;
use super::settings::SECRETS_CACHE_MAX;
use runtime_core::store::{SecretBundle, SecretStore, StoreError};

/// The reserved JSON key holding the bundle's expiry.
pub const EXPIRES_AT_KEY: &str = "__expires_at";

/// Cached bundles kept at most; past it the cache starts over.
const CACHE_ENTRIES_MAX: usize = 10_000;

type Cache = HashMap<(String, String), (Instant, Option<SecretBundle>)>;

/// A [`SecretStore`] over Secrets Manager.
#[derive(Debug)]
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<Cache>,
}

/// Tenant and install ids become part of a secret name; refuse what could make two
/// of them spell the same name (`/`) or what Secrets Manager refuses.
fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Internal(format!(
            "{what} {id:?} cannot name a secret (allowed: letters, digits, _+=.@-)"
        )))
    }
}

impl SecretsManagerStore {
    /// The store with names under `prefix`, cached for `ttl` (capped at 30 s).
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        prefix: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        SecretsManagerStore {
            client,
            prefix: prefix.into(),
            ttl: ttl.min(SECRETS_CACHE_MAX),
            cache: Mutex::default(),
        }
    }

    /// How long a loaded bundle is served from memory (at most 30 s).
    pub fn cache_ttl(&self) -> Duration {
        self.ttl
    }

    /// The secret name of an install.
    pub fn secret_name(&self, tenant: &str, install_id: &str) -> Result<String, StoreError> {
        check_id("tenant", tenant)?;
        check_id("install id", install_id)?;
        Ok(format!("{}{tenant}/{install_id}", self.prefix))
    }

    /// The SecretString for `bundle` (the format `load` reads).
    pub fn encode(bundle: &SecretBundle) -> String {
        let mut map: BTreeMap<String, String> = bundle.values.clone();
        if let Some(t) = bundle.expires_at {
            map.insert(
                EXPIRES_AT_KEY.into(),
                humantime::format_rfc3339_seconds(t).to_string(),
            );
        }
        serde_json::to_string(&map).expect("strings serialize")
    }

    /// Writes the secrets of an install (creating the secret when it is new) and
    /// forgets the cached copy. Operators and tests use it; guests never write.
    pub async fn store(
        &self,
        tenant: &str,
        install_id: &str,
        bundle: &SecretBundle,
    ) -> Result<(), StoreError> {
        let name = self.secret_name(tenant, install_id)?;
        let text = Self::encode(bundle);
        let put = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(&text)
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(&name)
                    .secret_string(&text)
                    .send()
                    .await
                    .map_err(|e| map_sdk("CreateSecret", &e))?;
            }
            Err(e) => return Err(map_sdk("PutSecretValue", &e)),
        }
        self.cache
            .lock()
            .unwrap()
            .remove(&(tenant.to_string(), install_id.to_string()));
        Ok(())
    }

    async fn fetch(&self, name: &str) -> Result<Option<SecretBundle>, StoreError> {
        let out = match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(map_sdk("GetSecretValue", &e)),
        };
        let Some(text) = out.secret_string() else {
            return Err(StoreError::Internal(format!(
                "secret {name} has no SecretString"
            )));
        };
        decode(name, text).map(Some)
    }
}

/// Parses a SecretString: a JSON object of strings, `__expires_at` taken out.
fn decode(name: &str, text: &str) -> Result<SecretBundle, StoreError> {
    let mut values: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
        StoreError::Internal(format!(
            "secret {name} is not a JSON object of strings: {e}"
        ))
    })?;
    let expires_at = match values.remove(EXPIRES_AT_KEY) {
        Some(t) => Some(runtime_core::clock::parse_rfc3339(&t).ok_or_else(|| {
            StoreError::Internal(format!(
                "secret {name}: {EXPIRES_AT_KEY} {t:?} is not an RFC 3339 instant"
            ))
        })?),
        None => None,
    };
    Ok(SecretBundle { values, expires_at })
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn load(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Option<SecretBundle>, StoreError> {
        let name = self.secret_name(tenant, install_id)?;
        let cache_key = (tenant.to_string(), install_id.to_string());
        if let Some((at, bundle)) = self.cache.lock().unwrap().get(&cache_key)
            && at.elapsed() < self.ttl
        {
            return Ok(bundle.clone());
        }
        let bundle = self.fetch(&name).await?;
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(cache_key, (Instant::now(), bundle.clone()));
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_round_trips_through_the_reserved_key() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let b = SecretBundle {
            values: BTreeMap::from([("k".into(), "v".into())]),
            expires_at: Some(t),
        };
        let text = SecretsManagerStore::encode(&b);
        assert!(text.contains("__expires_at"));
        assert_eq!(decode("n", &text).unwrap(), b);
        assert!(decode("n", r#"{"k": 1}"#).is_err());
    }
}
