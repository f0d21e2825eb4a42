//! AWS backends: S3 for blobs, one DynamoDB table for everything with a key,
//! Secrets Manager for install secrets. The key schema is in docs/backends.md
//! ("DynamoDB single table"); every item key is built in [`keys`]. [`backends`]
//! assembles the set the Lambda functions run on.

use std::sync::Arc;

use runtime_core::backends::{BackendError, BackendKind, Backends};
use runtime_core::store::{BatchingExecutionLog, ScheduleStore};

mod credential;
mod error;
mod events;
mod executions;
mod idempotency;
mod keys;
mod kv;
mod quota;
mod registry;
mod request_count;
mod s3;
mod scheduler_mirror;
mod schedules;
mod secrets;
mod settings;
mod subscriptions;

pub use credential::{read_secret_string, token_from_env};
pub use error::{Hint, Problem, classify, explain, map_sdk};
pub use events::{EventBridgePublisher, NoDeadLetters, SqsDeadLetters};
pub use executions::DynamoExecutionLog;
pub use idempotency::DynamoIdempotencyStore;
pub use kv::DynamoKvStore;
pub use quota::DynamoQuotaStore;
pub use registry::DynamoRegistry;
pub use request_count::RequestCounter;
pub use s3::S3BlobStore;
pub use scheduler_mirror::{MirroredScheduleStore, SchedulerTarget, schedule_name};
pub use schedules::DynamoScheduleStore;
pub use secrets::SecretsManagerStore;
pub use settings::{
    AwsClients, AwsLimits, AwsOverrides, AwsSettings, SECRETS_CACHE_MAX, sdk_config,
};

/// The AWS set: S3, one DynamoDB table, Secrets Manager, EventBridge (+ Scheduler)
/// and SQS, over SDK clients built once here (call it once per process and clone
/// the result).
pub async fn backends(settings: &AwsSettings) -> Backends {
    let c = AwsClients::new(settings).await;
    let t = &settings.table;
    let stored: Arc<dyn ScheduleStore> = Arc::new(DynamoScheduleStore::new(c.dynamodb.clone(), t));
    let schedules: Arc<dyn ScheduleStore> = match &settings.scheduler {
        Some(target) => Arc::new(MirroredScheduleStore::new(
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
        // Records leave the request path: a background writer sends them as
        // BatchWriteItems (and only when the gateway keeps a table copy at all).
        executions: Arc::new(BatchingExecutionLog::new(Arc::new(
            DynamoExecutionLog::new(c.dynamodb, t),
        ))),
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

/// The AWS set configured by the environment ([`AwsSettings::from_env`]).
pub async fn backends_from_env() -> Result<Backends, BackendError> {
    let settings = AwsSettings::from_env().map_err(BackendError::Config)?;
    Ok(backends(&settings).await)
}

/// Creates the single table with its GSI and TTL attribute (tests and first-time
/// setup; production tables come from the SAM/CDK templates).
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), runtime_core::store::StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type set")
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("name and type set")
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::GSI1)
                .key_schema(key("gsi1pk", KeyType::Hash))
                .key_schema(key("gsi1sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index complete"),
        )
        .send()
        .await
        .map_err(|e| map_sdk("CreateTable", &e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .expect("ttl spec complete"),
        )
        .send()
        .await
        .map_err(|e| map_sdk("UpdateTimeToLive", &e))?;
    Ok(())
}
