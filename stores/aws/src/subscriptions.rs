//! Event subscriptions in the single table: one item per (tenant, topic,
//! extension, handler) under `SUBS#<tenant>#<topic>`, so fan-out is one
//! consistent query. The install item keeps the pairs it subscribed (`subs`), so
//! re-installing, uninstalling and disabling know what to remove without an
//! index read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::error::map_sdk;
use super::keys::{self, Item, s};
use super::registry::DynamoRegistry;
use runtime_core::store::registry::{RegistryError, Subscription};

/// The install item's attribute listing its `(topic, handler)` pairs (JSON).
pub(super) const SUBS_ATTR: &str = "subs";

type Pairs = Vec<(String, String)>;

fn sub_key(
    tenant: &str,
    topic: &str,
    extension: &str,
    handler: &str,
) -> HashMap<String, AttributeValue> {
    keys::key(
        format!("SUBS#{}#{}", keys::part(tenant), keys::part(topic)),
        format!("{}#{}", keys::part(extension), keys::part(handler)),
    )
}

/// The pairs recorded on an install item (none when absent or unreadable).
pub(super) fn recorded_pairs(item: &HashMap<String, AttributeValue>) -> Pairs {
    Item(item)
        .opt_str(SUBS_ATTR)
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// The attribute value recording `pairs` on the install item.
pub(super) fn pairs_value(pairs: &Pairs) -> AttributeValue {
    s(serde_json::to_string(pairs).expect("strings serialize"))
}

impl DynamoRegistry {
    /// Makes the subscription items of (tenant, extension) exactly `wanted`,
    /// removing the pairs of `previous` that are no longer wanted. Puts are
    /// idempotent, so a retry after a partial failure converges.
    pub(super) async fn sync_subscriptions(
        &self,
        tenant: &str,
        extension: &str,
        previous: &Pairs,
        wanted: &Pairs,
    ) -> Result<(), RegistryError> {
        for (topic, handler) in previous.iter().filter(|p| !wanted.contains(p)) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(sub_key(tenant, topic, extension, handler)))
                .send()
                .await
                .map_err(|e| RegistryError::Store(map_sdk("DeleteItem (subscription)", &e)))?;
        }
        for (topic, handler) in wanted {
            let mut item = sub_key(tenant, topic, extension, handler);
            item.insert("tenant".into(), s(tenant));
            item.insert("topic".into(), s(topic));
            item.insert("extension_id".into(), s(extension));
            item.insert("handler".into(), s(handler));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| RegistryError::Store(map_sdk("PutItem (subscription)", &e)))?;
        }
        Ok(())
    }

    /// The subscription items of (tenant, topic).
    pub(super) async fn query_subscriptions(
        &self,
        tenant: &str,
        topic: &str,
    ) -> Result<Vec<Subscription>, RegistryError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(
                        ":pk",
                        s(format!("SUBS#{}#{}", keys::part(tenant), keys::part(topic))),
                    ),
            )
            .await?;
        let mut out = items
            .iter()
            .map(|item| {
                let i = Item(item);
                Ok(Subscription {
                    tenant: i.str("tenant")?,
                    extension_id: i.str("extension_id")?,
                    topic: i.str("topic")?,
                    handler: i.str("handler")?,
                })
            })
            .collect::<Result<Vec<_>, runtime_core::store::StoreError>>()
            .map_err(RegistryError::Store)?;
        out.sort();
        Ok(out)
    }
}
