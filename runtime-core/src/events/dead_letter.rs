//! Dead letters: a delivery that failed for good (its retries spent, or a
//! refusal no retry can fix) is kept with its reason instead of being lost. On
//! AWS an SQS queue (`stores_aws::SqsDeadLetters`); locally a JSON-lines file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Event;
use crate::store::StoreError;

/// A delivery that will not be retried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event.
    pub event: Event,
    /// The subscribed extension.
    pub extension_id: String,
    /// Its handler path.
    pub handler: String,
    /// Why the last attempt failed.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// RFC 3339 time it was given up.
    pub failed_at: String,
}

/// Where dead letters go.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Keeps one; an error means it was not kept (the caller must not drop the event).
    async fn send(&self, letter: &DeadLetter) -> Result<(), StoreError>;
}

/// Dead letters appended to a JSON-lines file (the local data directory's
/// `dead-letters.jsonl`).
#[derive(Debug)]
pub struct FileDeadLetters {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileDeadLetters {
    /// Appends to `path` (created on first use).
    pub fn new(path: PathBuf) -> Self {
        FileDeadLetters {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Every dead letter kept so far, oldest first.
    pub fn read_all(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Unavailable(format!("dead letters: {e}"))),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| StoreError::Internal(format!("dead letter line: {e}")))
            })
            .collect()
    }
}

#[async_trait]
impl DeadLetterSink for FileDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(letter)
            .map_err(|e| StoreError::Internal(format!("dead letter: {e}")))?;
        line.push(b'\n');
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("dead letters: {e}")))?;
        }
        // One write of a whole line to an append-mode file: concurrent writers
        // (another `up`, the CLI) never interleave inside a line.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&line))
            .map_err(|e| StoreError::Unavailable(format!("dead letters: {e}")))
    }
}
