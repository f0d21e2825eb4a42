//! Publishing events: `alga:extension/events.emit` hands events to a publisher —
//! EventBridge `PutEvents` on AWS (`stores_aws::EventBridgePublisher`), or the
//! in-process [`LocalBus`] that `alga-lambda up` drains.

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Event, new_event_id, now_rfc3339};
use crate::store::StoreError;

/// Puts events on the bus; the bus delivers them to the subscribed installs.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one event of `tenant` on `topic`; answers the event id. The
    /// caller has validated the event.
    async fn publish(&self, event: &Event) -> Result<String, StoreError>;
}

/// Events queued in memory for the process's dispatcher (`up`); bounded, so a
/// guest emitting in a loop meets `unavailable`, not an unbounded queue.
#[derive(Debug)]
pub struct LocalBus {
    tx: mpsc::Sender<Event>,
    rx: Mutex<Option<mpsc::Receiver<Event>>>,
}

/// Events the local bus holds before refusing more.
pub const LOCAL_BUS_CAPACITY: usize = 1024;

impl Default for LocalBus {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(LOCAL_BUS_CAPACITY);
        LocalBus {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl LocalBus {
    /// The receiving end, once (the process's dispatcher takes it).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Event>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Queues an event that came from outside (`alga-lambda emit`).
    pub fn queue(&self, event: Event) -> Result<(), StoreError> {
        self.tx.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable("the local event bus is full".into())
            }
            mpsc::error::TrySendError::Closed(_) => {
                StoreError::Unavailable("no dispatcher is draining the local event bus".into())
            }
        })
    }
}

#[async_trait]
impl EventPublisher for LocalBus {
    async fn publish(&self, event: &Event) -> Result<String, StoreError> {
        if self.rx.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            // Nobody drains the bus in this process (a one-shot CLI invoke):
            // refusing beats queueing into the void.
            return Err(StoreError::Unavailable(
                "no event bus runs in this process (alga-lambda up runs one)".into(),
            ));
        }
        self.queue(event.clone())?;
        Ok(event.id.clone())
    }
}

/// A new event from an extension or the CLI, with a fresh id and the current time.
pub fn new_event(tenant: &str, topic: &str, source: &str, data: serde_json::Value) -> Event {
    Event {
        id: new_event_id(),
        tenant: tenant.to_string(),
        topic: topic.to_string(),
        source: source.to_string(),
        time: now_rfc3339(),
        data,
        hops: 0,
    }
}
