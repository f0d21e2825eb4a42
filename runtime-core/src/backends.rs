//! Backends chosen by configuration, assembled once per process: the local set
//! (a data directory with files + SQLite) now, the AWS set later.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::trust::TrustBundle;
use crate::config::RuntimeConfig;
use crate::engine::EngineError;
use crate::execute::{Executor, RegistryResolver};
use crate::host::HostServices;
use crate::store::local::{DirBlobStore, MemoryKvStore, MemorySecretStore, SqliteRegistry};
use crate::store::{KvStore, RegistryError, SecretStore};

/// Why the backends could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The registry could not be opened.
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    /// The trust bundle could not be read.
    #[error("trust bundle {source_name}: {message}")]
    Trust {
        /// Where it was read from.
        source_name: String,
        /// What was wrong.
        message: String,
    },
    /// The engine could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The local backends: everything under one data directory.
pub struct LocalBackends {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Bundles, UI files and artifacts.
    pub blobs: Arc<DirBlobStore>,
    /// The registry.
    pub registry: Arc<SqliteRegistry>,
    /// Guest storage.
    pub kv: Arc<dyn KvStore>,
    /// Install secrets.
    pub secrets: Arc<dyn SecretStore>,
}

impl LocalBackends {
    /// Opens (creating if needed) the data directory.
    pub fn open(data_dir: &Path) -> Result<Self, BackendError> {
        Ok(LocalBackends {
            data_dir: data_dir.to_path_buf(),
            blobs: Arc::new(DirBlobStore::new(data_dir.join("blobs"))),
            registry: Arc::new(SqliteRegistry::open(&data_dir.join("registry.db"))?),
            kv: Arc::new(MemoryKvStore::default()),
            secrets: Arc::new(MemorySecretStore::default()),
        })
    }

    /// The data directory's own trust bundle file.
    pub fn trust_path(&self) -> PathBuf {
        self.data_dir.join("trust.json")
    }

    /// The trust bundle: `SIGNING_TRUST_BUNDLE` (a file or inline JSON) when set,
    /// else the data directory's `trust.json`; none at all trusts no key.
    pub fn trust(&self) -> Result<TrustBundle, BackendError> {
        if let Ok(setting) = std::env::var("SIGNING_TRUST_BUNDLE")
            && !setting.trim().is_empty()
        {
            return TrustBundle::from_setting(&setting).map_err(|e| BackendError::Trust {
                source_name: "SIGNING_TRUST_BUNDLE".into(),
                message: e.to_string(),
            });
        }
        let path = self.trust_path();
        match std::fs::read(&path) {
            Ok(bytes) => TrustBundle::from_json(&bytes).map_err(|e| BackendError::Trust {
                source_name: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustBundle::default()),
            Err(e) => Err(BackendError::Trust {
                source_name: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// A publisher for the Lambda targets plus this machine's.
    #[cfg(feature = "compiler")]
    pub fn publisher(
        &self,
        config: &RuntimeConfig,
    ) -> Result<crate::publish::Publisher, BackendError> {
        use crate::engine::Target;
        let mut targets = Target::lambda_targets().to_vec();
        if !targets.contains(&Target::host()) {
            targets.push(Target::host());
        }
        Ok(crate::publish::Publisher::new(
            self.blobs.clone(),
            self.registry.clone(),
            self.trust()?,
            config.engine.clone(),
        )
        .with_targets(targets))
    }

    /// An executor resolving through the registry.
    pub fn executor(&self, config: &RuntimeConfig) -> Result<Executor, BackendError> {
        let resolver = Arc::new(RegistryResolver::new(self.registry.clone(), self.trust()?));
        Ok(Executor::new(
            config,
            self.blobs.clone(),
            resolver,
            HostServices {
                kv: self.kv.clone(),
                secrets: self.secrets.clone(),
            },
        )?)
    }
}
