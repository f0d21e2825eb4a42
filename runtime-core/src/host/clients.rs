//! `alga:extension/clients`: read the tenant's clients through the host API
//! (`POST {base}/api/internal/ext-clients/install/{install}`, operations `list`
//! and `get`).
//!
//! Not granted or no install → `not-allowed`; bad paging → `invalid-input` (before
//! any call). Host API status 401/403/404 → `not-allowed`, 400/409/422 →
//! `invalid-input`, anything else that is not 2xx (429, 5xx), an unreadable answer,
//! a transport failure or no configured host API → `internal`.

use serde_json::{Map, Value, json};

use super::HostState;
use super::bindings::alga::extension::clients;
use super::bindings::alga::extension::types::{
    ClientReadError, ClientSummary, ClientsListInput, ClientsListResult,
};
use super::bridge_json::{boolean, string, uint};
use super::host_api::{BridgeFailure, BridgeReply};
use super::logging::LogLevel;
use crate::capability::Capability;

/// Checks 1-based paging: page ≥ 1, page size 1–100.
pub(super) fn valid_paging(page: Option<u32>, page_size: Option<u32>) -> bool {
    page.is_none_or(|p| p >= 1) && page_size.is_none_or(|s| (1..=100).contains(&s))
}

/// A list call's payload: `{"input": {…filters, page, pageSize}}` (shared with services).
pub(super) fn list_payload(
    mut filters: Map<String, Value>,
    page: Option<u32>,
    page_size: Option<u32>,
) -> Map<String, Value> {
    if let Some(p) = page {
        filters.insert("page".into(), p.into());
    }
    if let Some(s) = page_size {
        filters.insert("pageSize".into(), s.into());
    }
    Map::from_iter([("input".to_string(), Value::Object(filters))])
}

/// The read-error class of a host API status (shared with services).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadClass {
    NotAllowed,
    InvalidInput,
    Internal,
}

/// Status → read error class.
pub(super) fn read_class(status: u16) -> ReadClass {
    match status {
        401 | 403 | 404 => ReadClass::NotAllowed,
        400 | 409 | 422 => ReadClass::InvalidInput,
        _ => ReadClass::Internal,
    }
}

impl HostState {
    /// The gate and the call of a read bridge; `Ok(json)` on a 2xx JSON object.
    pub(super) async fn read_bridge(
        &mut self,
        cap: Capability,
        kind: &str,
        operation: &str,
        payload: Map<String, Value>,
    ) -> wasmtime::Result<Result<Map<String, Value>, ReadClass>> {
        self.budget.charge()?;
        if !self.grants.has(cap) {
            return Ok(Err(ReadClass::NotAllowed));
        }
        let result = self.bridge(kind, operation, payload).await;
        let class = match result {
            Ok(BridgeReply {
                status: 200..=299,
                json: Some(Value::Object(obj)),
            }) => return Ok(Ok(obj)),
            Ok(BridgeReply { status, .. }) if !(200..300).contains(&status) => {
                self.logs.note(
                    LogLevel::Warn,
                    format!("{kind}.{operation}: host API answered {status}"),
                );
                read_class(status)
            }
            Ok(_) => {
                self.logs.note(
                    LogLevel::Error,
                    format!("{kind}.{operation}: the host API's answer is not a JSON object"),
                );
                ReadClass::Internal
            }
            Err(BridgeFailure::NoInstall) => ReadClass::NotAllowed,
            Err(e) => {
                self.logs
                    .note(LogLevel::Error, format!("{kind}.{operation}: {e}"));
                ReadClass::Internal
            }
        };
        Ok(Err(class))
    }
}

fn client_error(c: ReadClass) -> ClientReadError {
    match c {
        ReadClass::NotAllowed => ClientReadError::NotAllowed,
        ReadClass::InvalidInput => ClientReadError::InvalidInput,
        ReadClass::Internal => ClientReadError::Internal,
    }
}

fn client_summary(v: &Value) -> Option<ClientSummary> {
    let o = v.as_object()?;
    Some(ClientSummary {
        client_id: string(o, &["clientId", "client_id"])?,
        client_name: string(o, &["clientName", "client_name"])?,
        client_type: string(o, &["clientType", "client_type"]),
        is_inactive: boolean(o, &["isInactive", "is_inactive"]).unwrap_or(false),
        default_currency_code: string(o, &["defaultCurrencyCode", "default_currency_code"]),
        account_manager_id: string(o, &["accountManagerId", "account_manager_id"]),
        account_manager_name: string(o, &["accountManagerName", "account_manager_name"]),
        billing_email: string(o, &["billingEmail", "billing_email"]),
    })
}

/// Parses a list answer with `items`, `totalCount`, `page`, `pageSize`.
pub(super) fn list_parts<T>(
    obj: &Map<String, Value>,
    item: impl Fn(&Value) -> Option<T>,
) -> Option<(Vec<T>, u32, u32, u32)> {
    let items = obj
        .get("items")?
        .as_array()?
        .iter()
        .map(item)
        .collect::<Option<Vec<T>>>()?;
    let total = uint(obj, &["totalCount", "total_count"]).unwrap_or(items.len() as u32);
    let page = uint(obj, &["page"]).unwrap_or(1);
    let size = uint(obj, &["pageSize", "page_size"]).unwrap_or(items.len() as u32);
    Some((items, total, page, size))
}

impl clients::Host for HostState {
    async fn list_clients(
        &mut self,
        input: ClientsListInput,
    ) -> wasmtime::Result<Result<ClientsListResult, ClientReadError>> {
        if self.grants.has(Capability::ClientRead) && !valid_paging(input.page, input.page_size) {
            self.budget.charge()?;
            return Ok(Err(ClientReadError::InvalidInput));
        }
        let mut args = Map::new();
        if let Some(s) = input.search {
            args.insert("search".into(), s.into());
        }
        if let Some(b) = input.include_inactive {
            args.insert("includeInactive".into(), b.into());
        }
        let payload = list_payload(args, input.page, input.page_size);
        let obj = match self
            .read_bridge(Capability::ClientRead, "clients", "list", payload)
            .await?
        {
            Ok(o) => o,
            Err(c) => return Ok(Err(client_error(c))),
        };
        Ok(match list_parts(&obj, client_summary) {
            Some((items, total_count, page, page_size)) => Ok(ClientsListResult {
                items,
                total_count,
                page,
                page_size,
            }),
            None => {
                self.logs.note(
                    LogLevel::Error,
                    "clients.list: unreadable answer from the host API".into(),
                );
                Err(ClientReadError::Internal)
            }
        })
    }

    async fn get_client(
        &mut self,
        client_id: String,
    ) -> wasmtime::Result<Result<Option<ClientSummary>, ClientReadError>> {
        let payload = Map::from_iter([("input".to_string(), json!({"clientId": client_id}))]);
        let obj = match self
            .read_bridge(Capability::ClientRead, "clients", "get", payload)
            .await?
        {
            Ok(o) => o,
            Err(c) => return Ok(Err(client_error(c))),
        };
        Ok(match obj.get("item") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => client_summary(v).map(Some).ok_or(ClientReadError::Internal),
        })
    }
}
