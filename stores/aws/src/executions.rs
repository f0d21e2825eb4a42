//! Execution records in DynamoDB: one item per invocation under its tenant and
//! extension, sorted by start time, so `recent` is one query read backwards.
//! Batches (from the batching writer) go out as `BatchWriteItem`s of 25.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::error::map_sdk;
use super::keys::{self, Item, n, s};
use runtime_core::store::StoreError;
use runtime_core::store::executions::{ExecutionLog, ExecutionRecord};

/// An [`ExecutionLog`] over the single table.
#[derive(Clone, Debug)]
pub struct DynamoExecutionLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoExecutionLog {
    /// The log over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoExecutionLog {
            client,
            table: table.into(),
        }
    }
}

fn pk(tenant: &str, extension: &str) -> String {
    format!("EXEC#{}#{}", keys::part(tenant), keys::part(extension))
}

fn read(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<ExecutionRecord, StoreError> {
    let i = Item(item);
    Ok(ExecutionRecord {
        request_id: i.str("request_id")?,
        tenant: i.str("tenant")?,
        extension: i.str("extension")?,
        install_id: i.opt_str("install_id")?,
        version: i.opt_str("version")?,
        content_hash: i.opt_str("content_hash")?,
        started_at_ms: i.u64("started_at_ms")?,
        duration_ms: i.u64("duration_ms")?,
        status: i.u64("status")? as u16,
        outcome: i.str("outcome")?,
        error: i.opt_str("error")?,
    })
}

/// The item of one record, kept for `ttl`.
fn item(r: &ExecutionRecord, ttl: Duration) -> std::collections::HashMap<String, AttributeValue> {
    let mut item = keys::key(
        pk(&r.tenant, &r.extension),
        format!("{:016}#{}", r.started_at_ms, r.request_id),
    );
    item.insert("request_id".into(), s(&r.request_id));
    item.insert("tenant".into(), s(&r.tenant));
    item.insert("extension".into(), s(&r.extension));
    for (name, v) in [
        ("install_id", &r.install_id),
        ("version", &r.version),
        ("content_hash", &r.content_hash),
        ("error", &r.error),
    ] {
        if let Some(v) = v {
            item.insert(name.into(), s(v));
        }
    }
    item.insert("started_at_ms".into(), n(r.started_at_ms));
    item.insert("duration_ms".into(), n(r.duration_ms));
    item.insert("status".into(), n(r.status));
    item.insert("outcome".into(), s(&r.outcome));
    item.insert(
        "ttl".into(),
        n(runtime_core::clock::unix_secs() + ttl.as_secs()),
    );
    item
}

/// Items per `BatchWriteItem` (DynamoDB's limit).
const BATCH_ITEMS: usize = 25;
/// Rounds of resending the items DynamoDB left unprocessed (throttled).
const UNPROCESSED_ROUNDS: u32 = 5;

#[async_trait]
impl ExecutionLog for DynamoExecutionLog {
    async fn record(&self, r: &ExecutionRecord, ttl: Duration) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(r, ttl)))
            .send()
            .await
            .map_err(|e| map_sdk("PutItem (execution)", &e))?;
        Ok(())
    }

    async fn record_batch(
        &self,
        records: &[ExecutionRecord],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if let [one] = records {
            return self.record(one, ttl).await;
        }
        for chunk in records.chunks(BATCH_ITEMS) {
            let mut requests = Vec::with_capacity(chunk.len());
            for r in chunk {
                let put = PutRequest::builder()
                    .set_item(Some(item(r, ttl)))
                    .build()
                    .map_err(|e| StoreError::Internal(format!("execution record: {e}")))?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut round = 0;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| map_sdk("BatchWriteItem (executions)", &e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                round += 1;
                if round > UNPROCESSED_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "{} execution records left unprocessed",
                        requests.len()
                    )));
                }
                // Throttled: back off before resending what is left.
                tokio::time::sleep(Duration::from_millis(20 << round)).await;
            }
        }
        Ok(())
    }

    async fn recent(
        &self,
        tenant: &str,
        extension: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let now = runtime_core::clock::unix_secs();
        let mut out = Vec::new();
        let mut start = None;
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk(tenant, extension)))
                .scan_index_forward(false)
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| map_sdk("Query (executions)", &e))?;
            for item in page.items() {
                // TTL deletes lazily: skip what has already expired.
                if Item(item).opt_u64("ttl")?.is_some_and(|t| t < now) {
                    continue;
                }
                out.push(read(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
