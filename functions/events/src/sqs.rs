//! The few fields of Lambda's SQS event and partial-batch response this function
//! uses. (aws_lambda_events' `sqs` feature would pull serde_with, schemars and
//! jiff — some twenty crates — for these three fields.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An SQS batch.
#[derive(Debug, Clone, Deserialize)]
pub struct SqsEvent {
    /// The messages.
    #[serde(rename = "Records")]
    pub records: Vec<SqsMessage>,
}

/// One message of a batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    /// Message id (what a failure names).
    pub message_id: String,
    /// The body: an EventBridge event as JSON.
    #[serde(default)]
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl SqsMessage {
    /// Which delivery of this message this is, from 1.
    pub fn receive_count(&self) -> u32 {
        self.attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(1)
    }
}

/// The partial-batch response (`ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SqsBatchResponse {
    /// Messages to deliver again.
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One message to deliver again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    /// Its message id.
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}
