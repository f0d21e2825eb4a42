//! Backends chosen by configuration, assembled once per process: the local set
//! (a data directory with files + SQLite) or the AWS set (S3, DynamoDB, Secrets
//! Manager). Everything above this module sees only the store traits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::trust::TrustBundle;
use crate::config::RuntimeConfig;
use crate::engine::EngineError;
use crate::events::{DeadLetterSink, EventPublisher, FileDeadLetters, LocalBus};
use crate::execute::{Executor, RegistryResolver};
use crate::host::HostServices;
use crate::store::local::{DirBlobStore, FileSecretStore, SqliteRegistry, SqliteStateStore};
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
    /// The local set: everything under one data directory (created if needed).
    pub fn local(data_dir: &Path) -> Result<Self, BackendError> {
        // Storage, quotas, idempotency and execution records persist across restarts.
        let state =
            SqliteStateStore::open(&data_dir.join("state.db")).map_err(RegistryError::from)?;
        let bus = Arc::new(LocalBus::default());
        Ok(Backends {
            kind: BackendKind::Local(data_dir.to_path_buf()),
            blobs: Arc::new(DirBlobStore::new(data_dir.join("blobs"))),
            uploads: Arc::new(DirBlobStore::new(data_dir.join("uploads"))),
            registry: Arc::new(SqliteRegistry::open(&data_dir.join("registry.db"))?),
            kv: Arc::new(state.clone()),
            secrets: Arc::new(FileSecretStore::new(data_dir.join("secrets.json"))),
            quotas: Arc::new(state.clone()),
            idempotency: Arc::new(state.clone()),
            executions: Arc::new(state),
            schedules: Arc::new(
                crate::store::local::SqliteScheduleStore::open(&data_dir.join("registry.db"))
                    .map_err(|e| BackendError::Config(format!("schedules: {e}")))?,
            ),
            events: bus.clone(),
            dead_letters: Arc::new(FileDeadLetters::new(data_dir.join("dead-letters.jsonl"))),
            local_bus: Some(bus),
        })
    }

    /// The AWS set: S3, one DynamoDB table and Secrets Manager, over SDK clients
    /// built once here (call it once per process and clone the result).
    pub async fn aws(settings: &crate::store::aws::AwsSettings) -> Self {
        use crate::store::aws::{
            AwsClients, DynamoExecutionLog, DynamoIdempotencyStore, DynamoKvStore,
            DynamoQuotaStore, DynamoRegistry, EventBridgePublisher, NoDeadLetters, S3BlobStore,
            SecretsManagerStore, SqsDeadLetters,
        };
        let c = AwsClients::new(settings).await;
        let t = &settings.table;
        let stored: Arc<dyn ScheduleStore> = Arc::new(crate::store::aws::DynamoScheduleStore::new(
            c.dynamodb.clone(),
            t,
        ));
        let schedules: Arc<dyn ScheduleStore> = match &settings.scheduler {
            Some(target) => Arc::new(crate::store::aws::MirroredScheduleStore::new(
                stored,
                c.scheduler.clone(),
                target.clone(),
            )),
            None => stored,
        };
        Backends {
            kind: BackendKind::Aws,
            blobs: Arc::new(S3BlobStore::new(c.s3.clone(), &settings.bucket)),
            uploads: Arc::new(S3BlobStore::new(c.s3.clone(), &settings.upload_bucket)),
            registry: Arc::new(DynamoRegistry::new(c.dynamodb.clone(), t)),
            kv: Arc::new(DynamoKvStore::new(c.dynamodb.clone(), t)),
            secrets: Arc::new(SecretsManagerStore::new(
                c.secrets.clone(),
                &settings.secrets_prefix,
                settings.secrets_cache_ttl,
            )),
            quotas: Arc::new(DynamoQuotaStore::new(c.dynamodb.clone(), t)),
            idempotency: Arc::new(DynamoIdempotencyStore::new(c.dynamodb.clone(), t)),
            executions: Arc::new(DynamoExecutionLog::new(c.dynamodb, t)),
            schedules,
            events: Arc::new(EventBridgePublisher::new(
                c.eventbridge.clone(),
                &settings.event_bus,
            )),
            dead_letters: match &settings.events_dlq_url {
                Some(url) => Arc::new(SqsDeadLetters::new(c.sqs.clone(), url)),
                None => Arc::new(NoDeadLetters),
            },
            local_bus: None,
        }
    }

    /// The set `ALGA_BACKEND` names (`local`, the default, under `data_dir`; or `aws`).
    pub async fn from_env(data_dir: &Path) -> Result<Self, BackendError> {
        match std::env::var("ALGA_BACKEND").as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("local") => Self::local(data_dir),
            Ok("aws") => {
                let settings =
                    crate::store::aws::AwsSettings::from_env().map_err(BackendError::Config)?;
                Ok(Self::aws(&settings).await)
            }
            Ok(other) => Err(BackendError::Config(format!(
                "ALGA_BACKEND={other:?}: expected local or aws"
            ))),
        }
    }

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
        let resolver = Arc::new(RegistryResolver::new(self.registry.clone(), self.trust()?));
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
