//! Execution records written off the request path: [`BatchingExecutionLog`]
//! hands each record to a background task over a bounded channel, and the task
//! writes what has queued up as one batch ([`ExecutionLog::record_batch`]: one
//! `BatchWriteItem`, one SQLite transaction). A request only waits when the
//! channel is full (the writer is behind), so records are slowed down, never
//! dropped. [`ExecutionLog::flush`] returns once everything queued before it is
//! stored: a clean shutdown calls it, and reads ([`ExecutionLog::recent`]) call
//! it first, so a process reads its own records.
//!
//! On Lambda the task runs whenever the container does: it starts the write as
//! the response goes out, and what a freeze interrupts resumes at the next
//! invocation; the request's JSON log line is the record either way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::executions::{ExecutionLog, ExecutionRecord};

/// Records the channel holds before a request waits for the writer.
pub const QUEUE_MAX: usize = 1024;
/// Records written in one batch at most.
pub const BATCH_MAX: usize = 100;

enum Msg {
    Record(Box<ExecutionRecord>, Duration),
    Flush(oneshot::Sender<()>),
}

/// An [`ExecutionLog`] that queues records for a background writer over another.
pub struct BatchingExecutionLog {
    inner: Arc<dyn ExecutionLog>,
    /// The writer's queue; `None` until the first record (the task is spawned on
    /// the runtime of the first caller), and replaced if that runtime has ended.
    queue: Mutex<Option<mpsc::Sender<Msg>>>,
}

impl BatchingExecutionLog {
    /// Batches the writes to `inner`.
    pub fn new(inner: Arc<dyn ExecutionLog>) -> Self {
        BatchingExecutionLog {
            inner,
            queue: Mutex::new(None),
        }
    }

    /// The writer's queue, starting the writer if there is none (or it ended
    /// with the runtime it ran on).
    fn queue(&self) -> mpsc::Sender<Msg> {
        let mut queue = self.queue.lock().unwrap();
        if let Some(tx) = queue.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(write_batches(self.inner.clone(), rx));
        *queue = Some(tx.clone());
        tx
    }

    async fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let msg = match self.queue().try_send(msg) {
            Ok(()) => return Ok(()),
            // The writer is behind: wait for room rather than lose the record.
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
            // The writer's runtime ended; `queue` starts another.
            Err(mpsc::error::TrySendError::Closed(msg)) => msg,
        };
        self.queue()
            .send(msg)
            .await
            .map_err(|_| StoreError::Unavailable("execution record writer stopped".into()))
    }
}

/// The writer: takes what has queued up (at most [`BATCH_MAX`] records), writes
/// it, then answers the flushes that were waiting behind it.
async fn write_batches(inner: Arc<dyn ExecutionLog>, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut records: Vec<(ExecutionRecord, Duration)> = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Record(r, ttl) => records.push((*r, ttl)),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if records.len() < BATCH_MAX {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        write(inner.as_ref(), records).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Writes records grouped by retention, retrying a failed batch once (a write
/// cut by a Lambda freeze times out on thaw); a batch that fails twice is logged
/// with its size — each record is still in its request's log line.
async fn write(inner: &dyn ExecutionLog, mut records: Vec<(ExecutionRecord, Duration)>) {
    while !records.is_empty() {
        let ttl = records[0].1;
        let split = records
            .iter()
            .position(|(_, t)| *t != ttl)
            .unwrap_or(records.len());
        let batch: Vec<ExecutionRecord> = records.drain(..split).map(|(r, _)| r).collect();
        let mut outcome = inner.record_batch(&batch, ttl).await;
        if outcome.is_err() {
            outcome = inner.record_batch(&batch, ttl).await;
        }
        if let Err(e) = outcome {
            tracing::warn!(error = %e, records = batch.len(), "execution records not stored");
        }
    }
}

#[async_trait]
impl ExecutionLog for BatchingExecutionLog {
    async fn record(&self, r: &ExecutionRecord, ttl: Duration) -> Result<(), StoreError> {
        self.send(Msg::Record(Box::new(r.clone()), ttl)).await
    }

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

    async fn flush(&self) -> Result<(), StoreError> {
        let running = self
            .queue
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|tx| !tx.is_closed());
        if !running {
            return Ok(());
        }
        let (done, written) = oneshot::channel();
        self.send(Msg::Flush(done)).await?;
        written
            .await
            .map_err(|_| StoreError::Unavailable("execution record writer stopped".into()))
    }

    async fn recent(
        &self,
        tenant: &str,
        extension: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.flush().await?;
        self.inner.recent(tenant, extension, limit).await
    }
}
