//! Install secrets for one machine: a JSON file in the data directory
//! (`<data>/secrets.json`, mode 0600, written atomically), shaped
//! `{"<tenant>": {"<install id>": {"<name>": "<value>", "__expires_at": "<RFC 3339>"}}}`
//! — per install the same JSON object the AWS backend keeps in Secrets Manager.
//! Not encrypted: like `~/.aws/credentials`, it relies on file permissions.
//! Read on every load, so edits take effect at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use runtime_core::store::{SecretBundle, SecretStore, StoreError};

/// The reserved key holding a bundle's expiry (as on AWS).
const EXPIRES_AT_KEY: &str = "__expires_at";

type FileShape = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

/// Secrets in a JSON file.
pub struct FileSecretStore {
    path: PathBuf,
    // Serialises writers of this process; readers see whole files (rename).
    write_lock: tokio::sync::Mutex<()>,
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

impl FileSecretStore {
    /// The store over `path` (created on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSecretStore {
            path: path.into(),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn read(&self) -> Result<FileShape, StoreError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::Internal(format!(
                    "{}: not a tenant → install → name → value JSON map: {e}",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileShape::new()),
            Err(e) => Err(io_err(&self.path, e)),
        }
    }

    /// Sets (replaces) the secrets of one install.
    pub async fn set(
        &self,
        tenant: &str,
        install_id: &str,
        bundle: &SecretBundle,
    ) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        let mut all = self.read().await?;
        let mut map = bundle.values.clone();
        if let Some(t) = bundle.expires_at {
            map.insert(
                EXPIRES_AT_KEY.into(),
                humantime::format_rfc3339_seconds(t).to_string(),
            );
        }
        all.entry(tenant.into())
            .or_default()
            .insert(install_id.into(), map);
        let bytes = serde_json::to_vec_pretty(&all).expect("strings serialize");
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_private(&path, &bytes))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
            .map_err(|e| io_err(&self.path, e))
    }
}

/// Writes `bytes` to `path` through a 0600 temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".secrets-{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[async_trait]
impl SecretStore for FileSecretStore {
    async fn load(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Option<SecretBundle>, StoreError> {
        let mut all = self.read().await?;
        let Some(mut values) = all.get_mut(tenant).and_then(|t| t.remove(install_id)) else {
            return Ok(None);
        };
        let expires_at = match values.remove(EXPIRES_AT_KEY) {
            Some(t) => Some(runtime_core::clock::parse_rfc3339(&t).ok_or_else(|| {
                StoreError::Internal(format!(
                    "{}: {EXPIRES_AT_KEY} {t:?} is not an RFC 3339 instant",
                    self.path.display()
                ))
            })?),
            None => None,
        };
        Ok(Some(SecretBundle { values, expires_at }))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::new(dir.path().join("secrets.json"));
        store.set("t", "i", &SecretBundle::default()).await.unwrap();
        let mode = std::fs::metadata(dir.path().join("secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            store.load("t", "i").await.unwrap(),
            Some(SecretBundle::default())
        );
    }
}
