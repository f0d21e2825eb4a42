//! AWS backend settings from the environment, and the SDK clients built from them
//! once per process.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Where the AWS backends keep things, and how hard the SDK tries.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// S3 bucket for bundles, UI files and artifacts (`ALGA_BUCKET`).
    pub bucket: String,
    /// S3 bucket the publish function reads uploads from (`ALGA_UPLOAD_BUCKET`,
    /// default: `bucket`); keys are the full object keys of the upload events.
    pub upload_bucket: String,
    /// The DynamoDB single table (`ALGA_TABLE`).
    pub table: String,
    /// Prefix of secret names (`ALGA_SECRETS_PREFIX`, default `alga/`).
    pub secrets_prefix: String,
    /// Path-style S3 addressing (`ALGA_S3_FORCE_PATH_STYLE`; moto and other stand-ins need it).
    pub s3_force_path_style: bool,
    /// How long a loaded secret bundle is reused (at most 30 s).
    pub secrets_cache_ttl: Duration,
    /// Overrides for tests; production leaves them `None` and aws-config reads the
    /// environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub overrides: AwsOverrides,
    /// Bounded retries and timeouts, so a down backend fails within seconds.
    pub limits: AwsLimits,
    /// Where schedules are mirrored in EventBridge Scheduler (`ALGA_SCHEDULER_*`);
    /// `None`: stored only.
    pub scheduler: Option<super::SchedulerTarget>,
    /// EventBridge bus extensions' events go to (`ALGA_EVENT_BUS`, default `default`).
    pub event_bus: String,
    /// SQS queue URL for dead letters with their reason (`ALGA_EVENTS_DLQ_URL`).
    pub events_dlq_url: Option<String>,
}

/// Explicit endpoint, region and credentials (tests against moto).
#[derive(Debug, Clone, Default)]
pub struct AwsOverrides {
    /// Endpoint of every service.
    pub endpoint_url: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Static access key id and secret.
    pub credentials: Option<(String, String)>,
    /// SDK interceptors added to every client (tests count round trips with
    /// [`crate::RequestCounter`]).
    pub interceptors: Vec<aws_sdk_dynamodb::config::SharedInterceptor>,
}

/// Retry and timeout bounds of the SDK clients.
#[derive(Debug, Clone, Copy)]
pub struct AwsLimits {
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// One attempt of a DynamoDB or Secrets Manager call.
    pub attempt_timeout: Duration,
    /// A whole DynamoDB or Secrets Manager call, retries included.
    pub operation_timeout: Duration,
    /// One attempt of an S3 call (artifacts are tens of MB).
    pub s3_attempt_timeout: Duration,
    /// A whole S3 call, retries included.
    pub s3_operation_timeout: Duration,
}

impl Default for AwsLimits {
    fn default() -> Self {
        AwsLimits {
            max_attempts: 2,
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(5),
            s3_attempt_timeout: Duration::from_secs(30),
            s3_operation_timeout: Duration::from_secs(60),
        }
    }
}

/// The longest a secret bundle may be cached.
pub const SECRETS_CACHE_MAX: Duration = Duration::from_secs(30);

impl AwsSettings {
    /// Settings with defaults for everything but the bucket and the table.
    pub fn new(bucket: impl Into<String>, table: impl Into<String>) -> Self {
        let bucket = bucket.into();
        AwsSettings {
            upload_bucket: bucket.clone(),
            bucket,
            table: table.into(),
            secrets_prefix: "alga/".into(),
            s3_force_path_style: false,
            secrets_cache_ttl: SECRETS_CACHE_MAX,
            overrides: AwsOverrides::default(),
            limits: AwsLimits::default(),
            scheduler: None,
            event_bus: "default".into(),
            events_dlq_url: None,
        }
    }

    /// Reads `ALGA_BUCKET`, `ALGA_TABLE` (both required), `ALGA_UPLOAD_BUCKET`,
    /// `ALGA_SECRETS_PREFIX` and `ALGA_S3_FORCE_PATH_STYLE`.
    pub fn from_env() -> Result<Self, String> {
        let required = |name: &str| match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(format!("{name} must be set when ALGA_BACKEND=aws")),
        };
        let mut s = AwsSettings::new(required("ALGA_BUCKET")?, required("ALGA_TABLE")?);
        if let Ok(b) = std::env::var("ALGA_UPLOAD_BUCKET")
            && !b.trim().is_empty()
        {
            s.upload_bucket = b.trim().to_string();
        }
        if let Ok(p) = std::env::var("ALGA_SECRETS_PREFIX") {
            s.secrets_prefix = p;
        }
        s.scheduler = super::SchedulerTarget::from_env()?;
        if let Ok(b) = std::env::var("ALGA_EVENT_BUS")
            && !b.trim().is_empty()
        {
            s.event_bus = b.trim().to_string();
        }
        s.events_dlq_url = std::env::var("ALGA_EVENTS_DLQ_URL")
            .ok()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        s.s3_force_path_style = match std::env::var("ALGA_S3_FORCE_PATH_STYLE")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "0" | "false" | "no" => false,
            "1" | "true" | "yes" => true,
            other => {
                return Err(format!(
                    "ALGA_S3_FORCE_PATH_STYLE={other:?}: expected true or false"
                ));
            }
        };
        Ok(s)
    }
}

/// The SDK clients, built once per process and shared by every store.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// EventBridge Scheduler.
    pub scheduler: aws_sdk_scheduler::Client,
    /// EventBridge (extensions' events).
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// SQS (dead letters).
    pub sqs: aws_sdk_sqs::Client,
}

/// The shared SDK configuration: the environment, `settings.overrides`, and the
/// bounded retries and timeouts of `settings.limits`.
pub async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let l = settings.limits;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(l.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(l.connect_timeout)
                .operation_attempt_timeout(l.attempt_timeout)
                .operation_timeout(l.operation_timeout)
                .build(),
        );
    let o = &settings.overrides;
    if let Some(url) = &o.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &o.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some((id, secret)) = &o.credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "alga-static",
        ));
    }
    loader.load().await
}

impl AwsClients {
    /// Loads the shared SDK configuration (environment + `overrides`) and builds the clients.
    pub async fn new(settings: &AwsSettings) -> Self {
        let l = settings.limits;
        let shared = sdk_config(settings).await;
        let s3_builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.s3_force_path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(l.connect_timeout)
                    .operation_attempt_timeout(l.s3_attempt_timeout)
                    .operation_timeout(l.s3_operation_timeout)
                    .build(),
            );
        // The shared configuration cannot carry interceptors: each client's
        // builder takes them.
        let interceptors = &settings.overrides.interceptors;
        macro_rules! with_interceptors {
            ($builder:expr) => {{
                let mut builder = $builder;
                for i in interceptors {
                    builder.push_interceptor(i.clone());
                }
                builder.build()
            }};
        }
        AwsClients {
            s3: aws_sdk_s3::Client::from_conf(with_interceptors!(s3_builder)),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(with_interceptors!(
                aws_sdk_dynamodb::config::Builder::from(&shared)
            )),
            secrets: aws_sdk_secretsmanager::Client::from_conf(with_interceptors!(
                aws_sdk_secretsmanager::config::Builder::from(&shared)
            )),
            scheduler: aws_sdk_scheduler::Client::from_conf(with_interceptors!(
                aws_sdk_scheduler::config::Builder::from(&shared)
            )),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(with_interceptors!(
                aws_sdk_eventbridge::config::Builder::from(&shared)
            )),
            sqs: aws_sdk_sqs::Client::from_conf(with_interceptors!(
                aws_sdk_sqs::config::Builder::from(&shared)
            )),
        }
    }
}
