//! `alga:extension/services`: read the tenant's service catalogue through the host
//! API (`POST {base}/api/internal/ext-services/install/{install}`, operations
//! `list` and `get`). Errors map as for clients (see `clients.rs`).

use serde_json::{Map, Value, json};

use super::HostState;
use super::bindings::alga::extension::services;
use super::bindings::alga::extension::types::{
    ServiceBillingMethod, ServiceItemKind, ServiceReadError, ServiceSummary, ServicesListInput,
    ServicesListResult,
};
use super::bridge_json::{boolean, number, string};
use super::clients::{ReadClass, list_parts, list_payload, valid_paging};
use super::logging::LogLevel;
use crate::capability::Capability;

fn service_error(c: ReadClass) -> ServiceReadError {
    match c {
        ReadClass::NotAllowed => ServiceReadError::NotAllowed,
        ReadClass::InvalidInput => ServiceReadError::InvalidInput,
        ReadClass::Internal => ServiceReadError::Internal,
    }
}

fn kind_name(k: ServiceItemKind) -> &'static str {
    match k {
        ServiceItemKind::Service => "service",
        ServiceItemKind::Product => "product",
    }
}

fn billing_name(b: ServiceBillingMethod) -> &'static str {
    match b {
        ServiceBillingMethod::Fixed => "fixed",
        ServiceBillingMethod::Hourly => "hourly",
        ServiceBillingMethod::Usage => "usage",
    }
}

fn service_summary(v: &Value) -> Option<ServiceSummary> {
    let o = v.as_object()?;
    let item_kind = match string(o, &["itemKind", "item_kind"]).as_deref() {
        Some("product") => ServiceItemKind::Product,
        _ => ServiceItemKind::Service,
    };
    let billing_method = match string(o, &["billingMethod", "billing_method"])?.as_str() {
        "fixed" => ServiceBillingMethod::Fixed,
        "hourly" => ServiceBillingMethod::Hourly,
        "usage" => ServiceBillingMethod::Usage,
        _ => return None,
    };
    Some(ServiceSummary {
        service_id: string(o, &["serviceId", "service_id"])?,
        service_name: string(o, &["serviceName", "service_name"])?,
        item_kind,
        billing_method,
        service_type_id: string(o, &["serviceTypeId", "service_type_id"]),
        service_type_name: string(o, &["serviceTypeName", "service_type_name"]),
        default_rate: number(o, &["defaultRate", "default_rate"]).unwrap_or(0.0),
        unit_of_measure: string(o, &["unitOfMeasure", "unit_of_measure"]).unwrap_or_default(),
        is_active: boolean(o, &["isActive", "is_active"]).unwrap_or(true),
        sku: string(o, &["sku"]),
    })
}

impl services::Host for HostState {
    async fn list_services(
        &mut self,
        input: ServicesListInput,
    ) -> wasmtime::Result<Result<ServicesListResult, ServiceReadError>> {
        if self.grants.has(Capability::ServiceRead) && !valid_paging(input.page, input.page_size) {
            self.budget.charge()?;
            return Ok(Err(ServiceReadError::InvalidInput));
        }
        let mut args = Map::new();
        if let Some(s) = input.search {
            args.insert("search".into(), s.into());
        }
        if let Some(k) = input.item_kind {
            args.insert("itemKind".into(), kind_name(k).into());
        }
        if let Some(b) = input.is_active {
            args.insert("isActive".into(), b.into());
        }
        if let Some(b) = input.billing_method {
            args.insert("billingMethod".into(), billing_name(b).into());
        }
        let payload = list_payload(args, input.page, input.page_size);
        let obj = match self
            .read_bridge(Capability::ServiceRead, "services", "list", payload)
            .await?
        {
            Ok(o) => o,
            Err(c) => return Ok(Err(service_error(c))),
        };
        Ok(match list_parts(&obj, service_summary) {
            Some((items, total_count, page, page_size)) => Ok(ServicesListResult {
                items,
                total_count,
                page,
                page_size,
            }),
            None => {
                self.logs.note(
                    LogLevel::Error,
                    "services.list: unreadable answer from the host API".into(),
                );
                Err(ServiceReadError::Internal)
            }
        })
    }

    async fn get_service(
        &mut self,
        service_id: String,
    ) -> wasmtime::Result<Result<Option<ServiceSummary>, ServiceReadError>> {
        let payload = Map::from_iter([("input".to_string(), json!({"serviceId": service_id}))]);
        let obj = match self
            .read_bridge(Capability::ServiceRead, "services", "get", payload)
            .await?
        {
            Ok(o) => o,
            Err(c) => return Ok(Err(service_error(c))),
        };
        Ok(match obj.get("item") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => service_summary(v)
                .map(Some)
                .ok_or(ServiceReadError::Internal),
        })
    }
}
