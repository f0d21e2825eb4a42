//! The set of backends one process runs on, behind the store traits. The sets
//! themselves are built by the backend crates (`stores-local`: a data directory
//! with files + SQLite; `stores-aws`: S3, DynamoDB, Secrets Manager, ...) and
//! chosen by each binary; nothing in this crate names an implementation.

use std::path::PathBuf;
use std::sync::Arc;

use crate::bundle::trust::TrustBundle;
use crate::config::RuntimeConfig;
use crate::engine::EngineError;
use crate::events::{DeadLetterSink, EventPublisher, LocalBus};
use crate::execute::{Executor, RegistryResolver};
use crate::host::HostServices;
use crate::store::{
    BlobStore, ExecutionLog, IdempotencyStore, KvStore, QuotaStore, Registry, RegistryError,
    ScheduleStore, SecretStore,
};

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
    /// The backend configuration is incomplete or wrong.
    #[error("backend configuration: {0}")]
    Config(String),
}

/// Which set of backends serves this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// Files and SQLite under a data directory.
    Local(PathBuf),
    /// S3, DynamoDB and Secrets Manager.
    Aws,
}

/// Every backend a handler needs, behind the store traits.
#[derive(Clone)]
pub struct Backends {
    /// Which set this is.
    pub kind: BackendKind,
    /// Bundles, UI files and artifacts.
    pub blobs: Arc<dyn BlobStore>,
    /// Where bundles are uploaded for the publish function (an S3 bucket, or
    /// `<data>/uploads`).
    pub uploads: Arc<dyn BlobStore>,
    /// Extensions, versions and installs.
    pub registry: Arc<dyn Registry>,
    /// Guest storage.
    pub kv: Arc<dyn KvStore>,
    /// Install secrets.
    pub secrets: Arc<dyn SecretStore>,
    /// Invocation quotas.
    pub quotas: Arc<dyn QuotaStore>,
    /// Idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Execution records.
    pub executions: Arc<dyn ExecutionLog>,
    /// Schedules (registry storage; on AWS mirrored to EventBridge Scheduler when configured).
    pub schedules: Arc<dyn ScheduleStore>,
    /// Where extensions' events go (EventBridge, or the local bus).
    pub events: Arc<dyn EventPublisher>,
    /// Where deliveries that failed for good are kept.
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// The in-process bus, when local (`up` drains it).
    pub local_bus: Option<Arc<LocalBus>>,
}

impl Backends {
    /// The local data directory's own trust bundle file, when local.
    pub fn trust_path(&self) -> Option<PathBuf> {
        match &self.kind {
            BackendKind::Local(dir) => Some(dir.join("trust.json")),
            BackendKind::Aws => None,
        }
    }

    /// The trust bundle: `SIGNING_TRUST_BUNDLE` (a file or inline JSON) when set,
    /// else (locally) the data directory's `trust.json`; none at all trusts no key.
    pub fn trust(&self) -> Result<TrustBundle, BackendError> {
        if let Ok(setting) = std::env::var("SIGNING_TRUST_BUNDLE")
            && !setting.trim().is_empty()
        {
            return TrustBundle::from_setting(&setting).map_err(|e| BackendError::Trust {
                source_name: "SIGNING_TRUST_BUNDLE".into(),
                message: e.to_string(),
            });
        }
        let Some(path) = self.trust_path() else {
            return Ok(TrustBundle::default());
        };
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
        .with_targets(targets)
        .with_bundle_trust(config.bundle_trust)
        .with_strictness(if config.strict_manifests {
            crate::manifest::Strictness::Strict
        } else {
            crate::manifest::Strictness::Compatible
        }))
    }

    /// The services the host functions reach.
    pub fn host_services(&self) -> HostServices {
        HostServices {
            kv: self.kv.clone(),
            secrets: self.secrets.clone(),
        }
    }

    /// An executor resolving through the registry.
    pub fn executor(&self, config: &RuntimeConfig) -> Result<Executor, BackendError> {
        let resolver = Arc::new(
            RegistryResolver::new(self.registry.clone(), self.trust()?)
                .with_bundle_trust(config.bundle_trust),
        );
        Ok(
            Executor::new(config, self.blobs.clone(), resolver, self.host_services())?
                .with_scheduler(self.scheduler())
                .with_events(
                    self.events.clone(),
                    crate::host::events::EmitSettings::from_env(),
                ),
        )
    }

    /// The scheduler the host functions use: this set's schedules and registry.
    pub fn scheduler(&self) -> Arc<crate::schedule::Scheduler> {
        Arc::new(crate::schedule::Scheduler::new(
            self.schedules.clone(),
            self.registry.clone(),
        ))
    }
}
