//! Quota counters in DynamoDB: one item per (tenant, extension, window), charged
//! with `ADD` under a condition on the limit — one atomic operation, so parallel
//! charges against a limit of N allow exactly N. Several windows (the minute and
//! the day of one request) are charged by one `TransactWriteItems` of conditional
//! `Update`s: one round trip, all or none, and its cancellation reasons say which
//! window refused.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};

use super::error::{cancel_codes, condition_failed, map_sdk};
use super::keys::{self, Item, n};
use runtime_core::store::StoreError;
use runtime_core::store::quota::{QuotaCharge, QuotaDecision, QuotaKey, QuotaStore};

/// Attempts of a quota transaction that DynamoDB cancels for a conflict (another
/// transaction on the same counter at the same moment: a busy tenant's requests
/// racing each other), the first included.
const CONFLICT_ATTEMPTS: u32 = 6;

/// A [`QuotaStore`] over the single table.
#[derive(Clone, Debug)]
pub struct DynamoQuotaStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoQuotaStore {
    /// The store over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoQuotaStore {
            client,
            table: table.into(),
        }
    }
}

fn item_key(
    k: &QuotaKey,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    keys::key(
        format!(
            "QUOTA#{}#{}",
            keys::part(&k.tenant),
            keys::part(&k.extension)
        ),
        format!("{}#{:012}", k.window.name(), k.window_start),
    )
}

#[async_trait]
impl QuotaStore for DynamoQuotaStore {
    async fn charge(&self, key: &QuotaKey, limit: u64) -> Result<QuotaCharge, StoreError> {
        if limit == 0 {
            return Ok(QuotaCharge::Exhausted);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key(key)))
            .update_expression("ADD #n :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(key.expires_at()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let attrs = out.attributes.unwrap_or_default();
                Ok(QuotaCharge::Allowed {
                    used: Item(&attrs).u64("n")?,
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(QuotaCharge::Exhausted)
            }
            Err(e) => Err(map_sdk("UpdateItem (quota)", &e)),
        }
    }

    async fn charge_all(&self, charges: &[(QuotaKey, u64)]) -> Result<QuotaDecision, StoreError> {
        match charges {
            [] => return Ok(QuotaDecision::Allowed),
            // One window: a plain conditional update (a transaction would cost
            // twice the write capacity for the same decision).
            [(key, limit)] => {
                return Ok(match self.charge(key, *limit).await? {
                    QuotaCharge::Allowed { .. } => QuotaDecision::Allowed,
                    QuotaCharge::Exhausted => QuotaDecision::Exhausted { index: 0 },
                });
            }
            _ => {}
        }
        if let Some(index) = charges.iter().position(|(_, limit)| *limit == 0) {
            return Ok(QuotaDecision::Exhausted { index });
        }
        let mut items = Vec::with_capacity(charges.len());
        for (key, limit) in charges {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(item_key(key)))
                .update_expression("ADD #n :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#n) OR #n < :limit")
                .expression_attribute_names("#n", "n")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(*limit))
                .expression_attribute_values(":ttl", n(key.expires_at()))
                .build()
                .map_err(|e| StoreError::Internal(format!("quota transaction: {e}")))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(QuotaDecision::Allowed),
                Err(e) => e,
            };
            let Some(codes) = cancel_codes(&e) else {
                return Err(map_sdk("TransactWriteItems (quota)", &e));
            };
            if let Some(index) = (0..charges.len()).find(|i| condition_failed(&codes, *i)) {
                return Ok(QuotaDecision::Exhausted { index });
            }
            // Cancelled without a failed condition: a conflict with a concurrent
            // transaction on one of the counters (nothing was charged). Try again
            // shortly, with jitter so the racers spread out.
            attempt += 1;
            if attempt == CONFLICT_ATTEMPTS {
                return Err(StoreError::Unavailable(format!(
                    "quota transaction cancelled {CONFLICT_ATTEMPTS} times: {codes:?}"
                )));
            }
            let mut jitter = [0u8; 1];
            let _ = getrandom::fill(&mut jitter);
            let millis = (2u64 << attempt) + u64::from(jitter[0] % 8);
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
    }

    async fn used(&self, key: &QuotaKey) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem (quota)", &e))?;
        match out.item {
            Some(item) => Ok(Item(&item).opt_u64("n")?.unwrap_or(0)),
            None => Ok(0),
        }
    }
}
