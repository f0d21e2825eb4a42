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
use tokio::sync::{Notify, mpsc, oneshot};

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
    /// How long a batch waits for more records after its first.
    linger: Duration,
    /// Ends the writer's linger early (a flush, a full queue).
    hurry: Arc<Notify>,
}

impl BatchingExecutionLog {
    /// Batches the writes to `inner`.
    pub fn new(inner: Arc<dyn ExecutionLog>) -> Self {
        BatchingExecutionLog {
            inner,
            queue: Mutex::new(None),
            linger: Duration::ZERO,
            hurry: Arc::new(Notify::new()),
        }
    }

    /// Lets each batch wait up to `linger` for more records (a flush or a full
    /// queue writes at once).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// The writer's queue, starting the writer if there is none (or it ended
    /// with the runtime it ran on).
    fn queue(&self) -> mpsc::Sender<Msg> {
        let mut queue = self.queue.lock().unwrap();
        if let Some(tx) = queue.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(write_batches(
            self.inner.clone(),
            rx,
            self.linger,
            self.hurry.clone(),
        ));
        *queue = Some(tx.clone());
        tx
    }

    async fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let msg = match self.queue().try_send(msg) {
            Ok(()) => return Ok(()),
            // The writer is behind: wait for room rather than lose the record.
            Err(mpsc::error::TrySendError::Full(msg)) => {
                self.hurry.notify_one();
                msg
            }
            // The writer's runtime ended; `queue` starts another.
            Err(mpsc::error::TrySendError::Closed(msg)) => msg,
        };
        self.queue()
            .send(msg)
            .await
            .map_err(|_| StoreError::Unavailable("execution record writer stopped".into()))
    }
}

/// The writer: waits for a first message, lingers (unless it is a flush), then
/// writes what has queued up in batches of at most [`BATCH_MAX`] records and
/// answers the flushes that were waiting behind each batch.
async fn write_batches(
    inner: Arc<dyn ExecutionLog>,
    mut rx: mpsc::Receiver<Msg>,
    linger: Duration,
    hurry: Arc<Notify>,
) {
    while let Some(first) = rx.recv().await {
        if !linger.is_zero() && matches!(first, Msg::Record(..)) {
            // Records sent meanwhile only queue: nothing wakes the writer for
            // each of them.
            tokio::select! {
                _ = tokio::time::sleep(linger) => {}
                _ = hurry.notified() => {}
            }
        }
        let mut next = Some(first);
        loop {
            let mut records: Vec<(ExecutionRecord, Duration)> = Vec::new();
            let mut flushes = Vec::new();
            let mut drained = false;
            while records.len() < BATCH_MAX {
                let msg = match next.take() {
                    Some(msg) => msg,
                    None => match rx.try_recv() {
                        Ok(msg) => msg,
                        Err(_) => {
                            drained = true;
                            break;
                        }
                    },
                };
                match msg {
                    Msg::Record(r, ttl) => records.push((*r, ttl)),
                    Msg::Flush(done) => flushes.push(done),
                }
            }
            write(inner.as_ref(), records).await;
            for done in flushes {
                let _ = done.send(());
            }
            if drained {
                break;
            }
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
        // A lingering writer would otherwise sleep on past the flush.
        self.hurry.notify_one();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what it is given and counts the batches.
    #[derive(Default)]
    struct Kept {
        records: Mutex<Vec<ExecutionRecord>>,
        batches: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl ExecutionLog for Kept {
        async fn record(&self, r: &ExecutionRecord, ttl: Duration) -> Result<(), StoreError> {
            self.record_batch(std::slice::from_ref(r), ttl).await
        }
        async fn record_batch(
            &self,
            records: &[ExecutionRecord],
            _: Duration,
        ) -> Result<(), StoreError> {
            self.records.lock().unwrap().extend_from_slice(records);
            self.batches.lock().unwrap().push(records.len());
            Ok(())
        }
        async fn recent(
            &self,
            _: &str,
            _: &str,
            _: usize,
        ) -> Result<Vec<ExecutionRecord>, StoreError> {
            Ok(self.records.lock().unwrap().clone())
        }
    }

    fn record(i: usize) -> ExecutionRecord {
        ExecutionRecord {
            request_id: format!("req-{i}"),
            tenant: "acme".into(),
            extension: "x".into(),
            install_id: None,
            version: None,
            content_hash: None,
            started_at_ms: 0,
            duration_ms: 1,
            status: 200,
            outcome: "ok".into(),
            error: None,
        }
    }

    const TTL: Duration = Duration::from_secs(60);
    /// Far beyond any test: only a flush or a full queue can end it.
    const LINGER: Duration = Duration::from_secs(3600);
    /// A bound for "returns at all", not a timing.
    const PATIENCE: Duration = Duration::from_secs(60);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lingering_writer_stores_a_stream_in_few_batches_and_a_flush_writes_at_once() {
        let kept = Arc::new(Kept::default());
        let log = BatchingExecutionLog::new(kept.clone()).with_linger(LINGER);
        for i in 0..250 {
            log.record(&record(i), TTL).await.unwrap();
        }
        assert!(kept.records.lock().unwrap().is_empty(), "still lingering");
        tokio::time::timeout(PATIENCE, log.flush())
            .await
            .expect("a flush cuts the linger short")
            .unwrap();
        let stored = kept.records.lock().unwrap().clone();
        let ids: Vec<String> = stored.iter().map(|r| r.request_id.clone()).collect();
        let expected: Vec<String> = (0..250).map(|i| format!("req-{i}")).collect();
        assert_eq!(ids, expected, "every record, in order");
        assert_eq!(*kept.batches.lock().unwrap(), [100, 100, 50]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_ends_the_linger_and_nothing_is_dropped() {
        let kept = Arc::new(Kept::default());
        let log = BatchingExecutionLog::new(kept.clone()).with_linger(LINGER);
        let n = QUEUE_MAX * 2 + 7;
        tokio::time::timeout(PATIENCE, async {
            for i in 0..n {
                log.record(&record(i), TTL).await.unwrap();
            }
        })
        .await
        .expect("senders wait for room, not for the linger");
        log.flush().await.unwrap();
        assert_eq!(kept.records.lock().unwrap().len(), n);
    }
}
