//! Idempotency records in DynamoDB, one item per (tenant, key). A claim is a
//! conditional put (absent, or lapsed); DynamoDB's TTL deletes items lazily, so
//! every read also checks `expires_ms` itself. Responses over 16 KiB are stored
//! zstd-compressed; one that still exceeds the item limit is refused (`Internal`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::error::map_sdk;
use super::keys::{self, Item, n, s};
use runtime_core::store::StoreError;
use runtime_core::store::idempotency::{Claim, IdempotencyStore};

/// An [`IdempotencyStore`] over the single table.
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoIdempotencyStore {
    /// The store over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoIdempotencyStore {
            client,
            table: table.into(),
        }
    }

    fn key(scope: &str, key: &str) -> std::collections::HashMap<String, AttributeValue> {
        keys::key(
            format!("IDEM#{}#{}", keys::part(scope), keys::part(key)),
            "IDEM".into(),
        )
    }
}

/// How many times a claim re-checks a record that lapsed between two reads.
const CLAIM_ROUNDS: usize = 4;

/// Responses above this are stored zstd-compressed (attribute `enc` = `zstd`).
const COMPRESS_ABOVE: usize = 16 << 10;

/// The largest stored response: a DynamoDB item holds at most 400 KB in all.
pub const RESPONSE_MAX_STORED: usize = 380_000;

/// The stored form of a response and its encoding.
fn encode(response: &[u8]) -> Result<(Vec<u8>, Option<&'static str>), StoreError> {
    let (bytes, enc) = if response.len() > COMPRESS_ABOVE {
        let z = zstd::bulk::compress(response, 3)
            .map_err(|e| StoreError::Internal(format!("compressing a response: {e}")))?;
        (z, Some("zstd"))
    } else {
        (response.to_vec(), None)
    };
    if bytes.len() > RESPONSE_MAX_STORED {
        return Err(StoreError::Internal(format!(
            "idempotency response of {} bytes ({} stored) is over DynamoDB's item limit",
            response.len(),
            bytes.len()
        )));
    }
    Ok((bytes, enc))
}

fn decode(item: &Item<'_>) -> Result<Vec<u8>, StoreError> {
    let bytes = item.bytes("response")?;
    match item.opt_str("enc")?.as_deref() {
        None => Ok(bytes),
        // Bounded by the execute path's response limit (and far above the stored cap).
        Some("zstd") => zstd::bulk::decompress(&bytes, 64 << 20)
            .map_err(|e| StoreError::Internal(format!("stored response: {e}"))),
        Some(other) => Err(StoreError::Internal(format!(
            "stored response encoding {other:?}"
        ))),
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        claim_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        for _ in 0..CLAIM_ROUNDS {
            let now = runtime_core::clock::unix_millis();
            let expires = now + claim_ttl.as_millis() as u64;
            let mut item = Self::key(scope, key);
            item.insert("state".into(), s("claimed"));
            item.insert("expires_ms".into(), n(expires));
            item.insert("ttl".into(), n(expires / 1000 + 1));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR expires_ms < :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(Claim::Claimed),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(map_sdk("PutItem (idempotency claim)", &e)),
            }
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(scope, key)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| map_sdk("GetItem (idempotency)", &e))?;
            let Some(found) = out.item else { continue };
            let found = Item(&found);
            if found.u64("expires_ms")? < runtime_core::clock::unix_millis() {
                continue;
            }
            return match found.str("state")?.as_str() {
                "done" => Ok(Claim::Completed(decode(&found)?)),
                _ => Ok(Claim::InProgress),
            };
        }
        Err(StoreError::Unavailable(format!(
            "idempotency key {key:?}: the record kept changing"
        )))
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (stored, enc) = encode(response)?;
        let expires = runtime_core::clock::unix_millis() + ttl.as_millis() as u64;
        let mut item = Self::key(scope, key);
        item.insert("state".into(), s("done"));
        item.insert("response".into(), AttributeValue::B(Blob::new(stored)));
        if let Some(enc) = enc {
            item.insert("enc".into(), s(enc));
        }
        item.insert("expires_ms".into(), n(expires));
        item.insert("ttl".into(), n(expires / 1000 + 1));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| map_sdk("PutItem (idempotency complete)", &e))?;
        Ok(())
    }

    async fn release(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(scope, key)))
            .condition_expression("#state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s("claimed"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already completed or gone: nothing to give up.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(map_sdk("DeleteItem (idempotency release)", &e)),
        }
    }
}
