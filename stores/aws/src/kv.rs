//! Guest key-value storage in DynamoDB.
//!
//! Entries live under `pk = KV#<tenant>#<install>#<namespace>` (escaped parts) with
//! the raw key as `sk`, so a listing is one query in key order and no scope can
//! reach another's partition. Counts live beside them under `KVI#<tenant>#<install>`:
//! `NS#<namespace>` holds the namespace's key count, `#META` the install's
//! namespace count. Creating a key writes the entry and bumps the counters in one
//! `TransactWriteItems` with conditions on the limits, so concurrent writers can
//! never push a count past its limit (the counts are exact, not approximate).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};

use super::error::{cancel_codes, condition_failed, map_sdk};
use super::keys::{self, Item, n, s};
use runtime_core::store::StoreError;
use runtime_core::store::kv::{self, KvEntry, KvError, KvLimits, KvPage, KvScope, KvStore};

/// A [`KvStore`] over the single table.
#[derive(Clone, Debug)]
pub struct DynamoKvStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    limits: KvLimits,
}

/// Rounds of the read-decide-write loop before giving up under heavy contention.
const ROUNDS: usize = 8;

enum Created {
    Yes,
    EntryExists,
    Retry,
}

fn entry_pk(scope: &KvScope, ns: &str) -> String {
    format!(
        "KV#{}#{}#{}",
        keys::part(&scope.tenant),
        keys::part(&scope.install_id),
        keys::part(ns)
    )
}

fn counts_pk(scope: &KvScope) -> String {
    format!(
        "KVI#{}#{}",
        keys::part(&scope.tenant),
        keys::part(&scope.install_id)
    )
}

fn ns_sk(ns: &str) -> String {
    format!("NS#{}", keys::part(ns))
}

const META_SK: &str = "#META";

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, KvError> {
    r.map_err(|e| KvError::Store(StoreError::Internal(format!("request: {e}"))))
}

impl DynamoKvStore {
    /// The store over `table` with the default limits.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self::with_limits(client, table, KvLimits::default())
    }

    /// The store with custom limits.
    pub fn with_limits(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        limits: KvLimits,
    ) -> Self {
        DynamoKvStore {
            client,
            table: table.into(),
            limits,
        }
    }

    fn entry_item(
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
    ) -> HashMap<String, AttributeValue> {
        let mut item = keys::key(entry_pk(scope, ns), key.into());
        item.insert("v".into(), AttributeValue::B(Blob::new(value)));
        item.insert("rev".into(), n(1));
        item
    }

    /// Overwrites an existing entry under `condition`; `None` when the condition failed.
    async fn update_existing(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<Option<KvEntry>, KvError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(entry_pk(scope, ns), key.into())))
            .update_expression("SET v = :v ADD rev :one")
            .expression_attribute_values(":v", AttributeValue::B(Blob::new(value)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        req = match expected {
            Some(r) => req
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", n(r)),
            None => req.condition_expression("attribute_exists(pk)"),
        };
        match req.send().await {
            Ok(out) => {
                let attrs = out.attributes.unwrap_or_default();
                Ok(Some(KvEntry {
                    namespace: ns.into(),
                    key: key.into(),
                    value: value.to_vec(),
                    revision: Item(&attrs).u64("rev")?,
                }))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(map_sdk("UpdateItem (kv)", &e).into()),
        }
    }

    /// Creates a new entry and counts it, within the limits.
    async fn create(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
    ) -> Result<Created, KvError> {
        let put_entry = TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::entry_item(scope, ns, key, value)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?)
            .build();
        // First assume the namespace is already counted.
        let bump_ns = TransactWriteItem::builder()
            .update(build(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(keys::key(counts_pk(scope), ns_sk(ns))))
                    .update_expression("ADD #keys :one")
                    .condition_expression("attribute_exists(#keys) AND #keys < :max")
                    .expression_attribute_names("#keys", "keys")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":max", n(self.limits.keys_per_namespace))
                    .build(),
            )?)
            .build();
        let result = self
            .client
            .transact_write_items()
            .transact_items(put_entry.clone())
            .transact_items(bump_ns)
            .send()
            .await;
        let codes = match result {
            Ok(_) => return Ok(Created::Yes),
            Err(e) => match cancel_codes(&e) {
                Some(codes) => codes,
                None => return Err(map_sdk("TransactWriteItems (kv create)", &e).into()),
            },
        };
        if condition_failed(&codes, 0) {
            return Ok(Created::EntryExists);
        }
        if !condition_failed(&codes, 1) {
            return Ok(Created::Retry); // a transaction conflict: try again
        }
        let counted = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(counts_pk(scope), ns_sk(ns))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem (kv counts)", &e))?;
        if let Some(item) = counted.item {
            if Item(&item).opt_u64("keys")?.unwrap_or(0) >= self.limits.keys_per_namespace as u64 {
                return Err(KvError::LimitReached(format!(
                    "at most {} keys per namespace",
                    self.limits.keys_per_namespace
                )));
            }
            return Ok(Created::Retry);
        }
        // A new namespace: count it against the install's limit as well.
        let mut ns_item = keys::key(counts_pk(scope), ns_sk(ns));
        ns_item.insert("keys".into(), n(1));
        let result = self
            .client
            .transact_write_items()
            .transact_items(put_entry)
            .transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(ns_item))
                            .condition_expression("attribute_not_exists(pk)")
                            .build(),
                    )?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(build(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(keys::key(counts_pk(scope), META_SK.into())))
                            .update_expression("ADD #ns :one")
                            .condition_expression("attribute_not_exists(#ns) OR #ns < :max")
                            .expression_attribute_names("#ns", "namespaces")
                            .expression_attribute_values(":one", n(1))
                            .expression_attribute_values(
                                ":max",
                                n(self.limits.namespaces_per_install),
                            )
                            .build(),
                    )?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Yes),
            Err(e) => match cancel_codes(&e) {
                Some(codes) if condition_failed(&codes, 0) => Ok(Created::EntryExists),
                Some(codes) if condition_failed(&codes, 2) => Err(KvError::LimitReached(format!(
                    "at most {} namespaces per install",
                    self.limits.namespaces_per_install
                ))),
                Some(_) => Ok(Created::Retry),
                None => Err(map_sdk("TransactWriteItems (kv new namespace)", &e).into()),
            },
        }
    }

    /// Drops a namespace's counter once its last key is gone (conditional on the
    /// count still being zero, so a concurrent create wins).
    async fn drop_empty_namespace(&self, scope: &KvScope, ns: &str) -> Result<(), KvError> {
        let counted = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(counts_pk(scope), ns_sk(ns))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem (kv counts)", &e))?;
        let Some(item) = counted.item else {
            return Ok(());
        };
        if Item(&item).opt_u64("keys")?.unwrap_or(0) > 0 {
            return Ok(());
        }
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .delete(build(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(keys::key(counts_pk(scope), ns_sk(ns))))
                            .condition_expression("#keys = :zero")
                            .expression_attribute_names("#keys", "keys")
                            .expression_attribute_values(":zero", n(0))
                            .build(),
                    )?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(build(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(keys::key(counts_pk(scope), META_SK.into())))
                            .update_expression("ADD #ns :minus")
                            .condition_expression("attribute_exists(#ns)")
                            .expression_attribute_names("#ns", "namespaces")
                            .expression_attribute_values(":minus", n(-1))
                            .build(),
                    )?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A key was created meanwhile: the namespace stays.
            Err(e) if cancel_codes(&e).is_some() => Ok(()),
            Err(e) => Err(map_sdk("TransactWriteItems (kv drop namespace)", &e).into()),
        }
    }
}

#[async_trait]
impl KvStore for DynamoKvStore {
    async fn get(&self, scope: &KvScope, ns: &str, key: &str) -> Result<Option<KvEntry>, KvError> {
        if ns.is_empty() || key.is_empty() {
            return Ok(None); // not storable, so not stored (DynamoDB refuses empty keys)
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(entry_pk(scope, ns), key.into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem (kv)", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let i = Item(&item);
        Ok(Some(KvEntry {
            namespace: ns.into(),
            key: key.into(),
            value: i.bytes("v")?,
            revision: i.u64("rev")?,
        }))
    }

    async fn put(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<KvEntry, KvError> {
        kv::validate_namespace(&self.limits, ns)?;
        kv::validate_key(&self.limits, key)?;
        kv::validate_value(&self.limits, value)?;
        let created = || KvEntry {
            namespace: ns.into(),
            key: key.into(),
            value: value.to_vec(),
            revision: 1,
        };
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(5 << round.min(5))).await;
            }
            match expected {
                Some(r) if r > 0 => {
                    return self
                        .update_existing(scope, ns, key, value, Some(r))
                        .await?
                        .ok_or(KvError::Conflict);
                }
                Some(_) => match self.create(scope, ns, key, value).await? {
                    Created::Yes => return Ok(created()),
                    Created::EntryExists => return Err(KvError::Conflict),
                    Created::Retry => {}
                },
                None => {
                    if let Some(e) = self.update_existing(scope, ns, key, value, None).await? {
                        return Ok(e);
                    }
                    match self.create(scope, ns, key, value).await? {
                        Created::Yes => return Ok(created()),
                        Created::EntryExists | Created::Retry => {}
                    }
                }
            }
        }
        Err(KvError::Store(StoreError::Unavailable(format!(
            "kv put {ns}/{key}: too much contention"
        ))))
    }

    async fn delete(&self, scope: &KvScope, ns: &str, key: &str) -> Result<(), KvError> {
        if ns.is_empty() || key.is_empty() {
            return Ok(());
        }
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(5 << round.min(5))).await;
            }
            let result = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .delete(build(
                            Delete::builder()
                                .table_name(&self.table)
                                .set_key(Some(keys::key(entry_pk(scope, ns), key.into())))
                                .condition_expression("attribute_exists(pk)")
                                .build(),
                        )?)
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .update(build(
                            Update::builder()
                                .table_name(&self.table)
                                .set_key(Some(keys::key(counts_pk(scope), ns_sk(ns))))
                                .update_expression("ADD #keys :minus")
                                .condition_expression("attribute_exists(#keys)")
                                .expression_attribute_names("#keys", "keys")
                                .expression_attribute_values(":minus", n(-1))
                                .build(),
                        )?)
                        .build(),
                )
                .send()
                .await;
            match result {
                Ok(_) => return self.drop_empty_namespace(scope, ns).await,
                Err(e) => match cancel_codes(&e) {
                    // Deleting a missing key succeeds.
                    Some(codes) if condition_failed(&codes, 0) => return Ok(()),
                    Some(codes) if condition_failed(&codes, 1) => {
                        return Err(KvError::Store(StoreError::Internal(format!(
                            "kv {ns}/{key}: entry without a namespace count"
                        ))));
                    }
                    Some(_) => {}
                    None => return Err(map_sdk("TransactWriteItems (kv delete)", &e).into()),
                },
            }
        }
        Err(KvError::Store(StoreError::Unavailable(format!(
            "kv delete {ns}/{key}: too much contention"
        ))))
    }

    async fn list(
        &self,
        scope: &KvScope,
        ns: &str,
        after: Option<&str>,
    ) -> Result<KvPage, KvError> {
        let want = self.limits.page_size + 1;
        let mut entries = Vec::new();
        let mut start = None;
        // One page may take several queries: DynamoDB stops at 1 MB per response.
        while entries.len() < want {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(entry_pk(scope, ns)))
                .consistent_read(true)
                .limit((want - entries.len()) as i32)
                .set_exclusive_start_key(start);
            q = match after.filter(|a| !a.is_empty()) {
                Some(a) => q
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", s(a)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q.send().await.map_err(|e| map_sdk("Query (kv)", &e))?;
            for item in page.items() {
                let i = Item(item);
                entries.push(KvEntry {
                    namespace: ns.into(),
                    key: i.str("sk")?,
                    value: i.bytes("v")?,
                    revision: i.u64("rev")?,
                });
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let more = entries.len() > self.limits.page_size;
        entries.truncate(self.limits.page_size);
        Ok(KvPage { entries, more })
    }

    fn limits(&self) -> KvLimits {
        self.limits
    }
}
