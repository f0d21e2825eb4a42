//! Schedules in the DynamoDB single table.
//!
//! A schedule is `pk = SCHED#<tenant>#<install>` (escaped parts), `sk = S#<id>`,
//! with the schedule as JSON in `doc`; enabled ones also carry
//! `gsi1pk = SCHEDULES_ENABLED`, `gsi1sk = <tenant>#<install>#<id>` (a sparse
//! index: the local cron's listing). The install's count is `sk = #COUNT`
//! (attribute `n`) in the same partition. Creating writes the schedule
//! (`attribute_not_exists`) and `ADD n 1` conditional on `n < 50` in one
//! `TransactWriteItems`, so the limit holds exactly under concurrent creators;
//! deleting removes the item and decrements in one transaction too.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::error::{cancel_codes, condition_failed, map_sdk};
use super::keys::{self, Item, n, s};
use runtime_core::schedule::{MAX_PER_INSTALL, Schedule};
use runtime_core::store::StoreError;
use runtime_core::store::schedules::{ScheduleStore, ScheduleStoreError};

/// The sparse index partition of enabled schedules.
const ENABLED_PK: &str = "SCHEDULES_ENABLED";
const COUNT_SK: &str = "#COUNT";
/// Attempts when a transaction collides with another (not a failed condition).
const ROUNDS: usize = 8;

/// A [`ScheduleStore`] over the single table.
#[derive(Clone, Debug)]
pub struct DynamoScheduleStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

fn install_pk(tenant: &str, install_id: &str) -> String {
    format!("SCHED#{}#{}", keys::part(tenant), keys::part(install_id))
}

fn schedule_sk(id: &str) -> String {
    format!("S#{}", keys::part(id))
}

fn item(sch: &Schedule) -> Attrs {
    let mut it = keys::key(
        install_pk(&sch.tenant, &sch.install_id),
        schedule_sk(&sch.id),
    );
    it.insert(
        "doc".into(),
        s(serde_json::to_string(sch).expect("a schedule serializes")),
    );
    it.insert("enabled".into(), AttributeValue::Bool(sch.enabled));
    if sch.enabled {
        it.insert("gsi1pk".into(), s(ENABLED_PK));
        it.insert(
            "gsi1sk".into(),
            s(format!(
                "{}#{}#{}",
                keys::part(&sch.tenant),
                keys::part(&sch.install_id),
                keys::part(&sch.id)
            )),
        );
    }
    it
}

fn decode(it: &Attrs) -> Result<Schedule, ScheduleStoreError> {
    let doc = Item(it).str("doc")?;
    serde_json::from_str(&doc)
        .map_err(|e| StoreError::Internal(format!("stored schedule: {e}")).into())
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, ScheduleStoreError> {
    r.map_err(|e| StoreError::Internal(format!("request: {e}")).into())
}

impl DynamoScheduleStore {
    /// The store over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoScheduleStore {
            client,
            table: table.into(),
        }
    }

    fn count_update(
        &self,
        tenant: &str,
        install_id: &str,
        delta: i64,
    ) -> Result<TransactWriteItem, ScheduleStoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                install_pk(tenant, install_id),
                COUNT_SK.into(),
            )))
            .update_expression("ADD #n :d")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":d", n(delta));
        if delta > 0 {
            u = u
                .condition_expression("attribute_not_exists(#n) OR #n < :max")
                .expression_attribute_values(":max", n(MAX_PER_INSTALL));
        }
        Ok(TransactWriteItem::builder()
            .update(built(u.build())?)
            .build())
    }

    async fn query_all(
        &self,
        index: bool,
        pk: &str,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Attrs>, ScheduleStoreError> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = if index {
                q.index_name(keys::GSI1)
                    .key_condition_expression("gsi1pk = :pk")
            } else {
                q.consistent_read(true)
                    .key_condition_expression(match sk_prefix {
                        Some(_) => "pk = :pk AND begins_with(sk, :pre)",
                        None => "pk = :pk",
                    })
            };
            if let Some(pre) = sk_prefix {
                q = q.expression_attribute_values(":pre", s(pre));
            }
            let page = q
                .send()
                .await
                .map_err(|e| map_sdk("Query (schedules)", &e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl ScheduleStore for DynamoScheduleStore {
    async fn create(&self, sch: &Schedule) -> Result<(), ScheduleStoreError> {
        for _ in 0..ROUNDS {
            let put = TransactWriteItem::builder()
                .put(built(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item(sch)))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build();
            let result = self
                .client
                .transact_write_items()
                .transact_items(put)
                .transact_items(self.count_update(&sch.tenant, &sch.install_id, 1)?)
                .send()
                .await;
            let codes = match result {
                Ok(_) => return Ok(()),
                Err(e) => match cancel_codes(&e) {
                    Some(codes) => codes,
                    None => {
                        return Err(map_sdk("TransactWriteItems (schedule create)", &e).into());
                    }
                },
            };
            if condition_failed(&codes, 0) {
                return Err(ScheduleStoreError::Exists(sch.id.clone()));
            }
            if condition_failed(&codes, 1) {
                return Err(ScheduleStoreError::QuotaExceeded);
            }
            // A conflict with a concurrent transaction: try again.
        }
        Err(StoreError::Unavailable("schedule create: too much contention".into()).into())
    }

    async fn get(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Schedule>, ScheduleStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                install_pk(tenant, install_id),
                schedule_sk(id),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem (schedule)", &e))?;
        out.item.as_ref().map(decode).transpose()
    }

    async fn list(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let items = self
            .query_all(false, &install_pk(tenant, install_id), Some("S#"))
            .await?;
        let mut list = items.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    async fn update(&self, sch: &Schedule) -> Result<(), ScheduleStoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(sch)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_conditional_check_failed_exception()) =>
            {
                Err(ScheduleStoreError::NotFound(sch.id.clone()))
            }
            Err(e) => Err(map_sdk("PutItem (schedule update)", &e).into()),
        }
    }

    async fn delete(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<(), ScheduleStoreError> {
        for _ in 0..ROUNDS {
            let del = TransactWriteItem::builder()
                .delete(built(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(keys::key(
                            install_pk(tenant, install_id),
                            schedule_sk(id),
                        )))
                        .condition_expression("attribute_exists(pk)")
                        .build(),
                )?)
                .build();
            let result = self
                .client
                .transact_write_items()
                .transact_items(del)
                .transact_items(self.count_update(tenant, install_id, -1)?)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => match cancel_codes(&e) {
                    Some(codes) if condition_failed(&codes, 0) => {
                        return Err(ScheduleStoreError::NotFound(id.to_string()));
                    }
                    Some(_) => {}
                    None => {
                        return Err(map_sdk("TransactWriteItems (schedule delete)", &e).into());
                    }
                },
            }
        }
        Err(StoreError::Unavailable("schedule delete: too much contention".into()).into())
    }

    async fn list_enabled(&self) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let items = self.query_all(true, ENABLED_PK, None).await?;
        items.iter().map(decode).collect()
    }
}
