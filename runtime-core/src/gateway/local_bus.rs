//! The local bus's consumer (`alga-lambda up`): the same dispatcher as the
//! events Lambda, with its retries, idempotency and dead letters (to the data
//! directory's `dead-letters.jsonl`).

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use super::{DeliveryStatus, Dispatcher};
use crate::events::Event;

/// Events delivered at once; more wait in the bus.
const CONCURRENT_EVENTS: usize = 8;

/// Delivers every event the bus receives until it closes.
pub async fn drain_local_bus(mut rx: mpsc::Receiver<Event>, dispatcher: Arc<Dispatcher>) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_EVENTS));
    while let Some(event) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match dispatcher.deliver(&event).await {
                Ok(report) => {
                    for d in &report.deliveries {
                        let level_ok = matches!(
                            d.status,
                            DeliveryStatus::Delivered(_)
                                | DeliveryStatus::Duplicate
                                | DeliveryStatus::Skipped
                        );
                        if level_ok {
                            tracing::info!(target: "alga::events", event = %event.id, topic = %event.topic,
                                extension = %d.subscription.extension_id, handler = %d.subscription.handler,
                                status = ?d.status, "delivery");
                        } else {
                            tracing::warn!(target: "alga::events", event = %event.id, topic = %event.topic,
                                extension = %d.subscription.extension_id, handler = %d.subscription.handler,
                                status = ?d.status, "delivery");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(target: "alga::events", event = %event.id, error = %e, "event not delivered");
                }
            }
        });
    }
}
