//! Execution records: one per invocation, kept for a bounded time, for operators
//! (what ran, for whom, how long, how it ended).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// One invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    /// Request id.
    pub request_id: String,
    /// Tenant.
    pub tenant: String,
    /// Extension.
    pub extension: String,
    /// Install id, when resolved.
    pub install_id: Option<String>,
    /// Version, when resolved.
    pub version: Option<String>,
    /// Bundle content hash, when known.
    pub content_hash: Option<String>,
    /// Unix milliseconds at the start.
    pub started_at_ms: u64,
    /// Wall time of the whole invocation.
    pub duration_ms: u64,
    /// The envelope's status.
    pub status: u16,
    /// `ok` or the error code.
    pub outcome: String,
    /// The error text, if any.
    pub error: Option<String>,
}

/// Where execution records go.
#[async_trait]
pub trait ExecutionLog: Send + Sync {
    /// Records one invocation, kept for `ttl`.
    async fn record(&self, r: &ExecutionRecord, ttl: Duration) -> Result<(), StoreError>;
    /// Records several invocations, each kept for `ttl`: in one request where the
    /// store can (DynamoDB's `BatchWriteItem`, one SQLite transaction); this
    /// default records them one by one.
    async fn record_batch(
        &self,
        records: &[ExecutionRecord],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        for r in records {
            self.record(r, ttl).await?;
        }
        Ok(())
    }
    /// Writes out what is buffered, returning once it is stored (a batching log,
    /// [`super::execution_writer::BatchingExecutionLog`]); a log that writes at
    /// once has nothing to do.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The newest records of a tenant's extension, newest first, at most `limit`.
    async fn recent(
        &self,
        tenant: &str,
        extension: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;
}
