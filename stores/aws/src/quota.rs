//! Quota counters in DynamoDB: one item per (tenant, extension, window), charged
//! with `ADD` under a condition on the limit — one atomic operation, so parallel
//! charges against a limit of N allow exactly N.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::error::map_sdk;
use super::keys::{self, Item, n};
use runtime_core::store::StoreError;
use runtime_core::store::quota::{QuotaCharge, QuotaKey, QuotaStore};

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
