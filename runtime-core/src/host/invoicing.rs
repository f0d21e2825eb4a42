//! `alga:extension/invoicing`: manual invoices through the host API
//! (`POST {base}/api/internal/ext-invoicing/install/{install}`, operation
//! `createManualInvoice`, the seed's camelCase payload; absent optional fields
//! are omitted, never `null`).
//!
//! Not granted → `{success: false, error: "Permission denied:
//! cap:invoice.manual.create not granted"}`; no install → `"Permission denied:
//! install_id missing"`. A 2xx answer is read as the result (top level or under
//! `invoice`); any other status → `success: false` with the answer's `error`
//! (else `host API answered <status>`) and its `fieldErrors`; no configured host
//! API or a transport failure → `success: false` naming it.

use serde_json::{Map, Number, Value};

use super::HostState;
use super::bindings::alga::extension::invoicing;
use super::bindings::alga::extension::types::{
    CreateManualInvoiceInput, CreateManualInvoiceResult, DiscountType,
};
use super::bridge_json::{boolean, field_errors, number, string};
use super::host_api::{BridgeFailure, BridgeReply};
use super::logging::LogLevel;
use crate::capability::Capability;

fn failed(error: String, field_errors: Option<String>) -> CreateManualInvoiceResult {
    CreateManualInvoiceResult {
        success: false,
        invoice_id: None,
        invoice_number: None,
        status: None,
        subtotal: None,
        tax: None,
        total: None,
        error: Some(error),
        field_errors,
    }
}

fn num(f: f64) -> Value {
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::from(0))
}

fn payload(input: CreateManualInvoiceInput) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("clientId".into(), input.client_id.into());
    let items = input
        .items
        .into_iter()
        .map(|item| {
            let mut m = Map::new();
            m.insert("serviceId".into(), item.service_id.into());
            m.insert("quantity".into(), num(item.quantity));
            m.insert("description".into(), item.description.into());
            m.insert("rate".into(), num(item.rate));
            if let Some(d) = item.is_discount {
                m.insert("isDiscount".into(), d.into());
            }
            if let Some(t) = item.discount_type {
                let t = match t {
                    DiscountType::Percentage => "percentage",
                    DiscountType::Fixed => "fixed",
                };
                m.insert("discountType".into(), t.into());
            }
            if let Some(v) = item.applies_to_item_id {
                m.insert("appliesToItemId".into(), v.into());
            }
            if let Some(v) = item.applies_to_service_id {
                m.insert("appliesToServiceId".into(), v.into());
            }
            Value::Object(m)
        })
        .collect();
    p.insert("items".into(), Value::Array(items));
    if let Some(v) = input.invoice_date {
        p.insert("invoiceDate".into(), v.into());
    }
    if let Some(v) = input.due_date {
        p.insert("dueDate".into(), v.into());
    }
    if let Some(v) = input.po_number {
        p.insert("poNumber".into(), v.into());
    }
    p
}

fn parse_result(o: &Map<String, Value>) -> CreateManualInvoiceResult {
    let inv = o.get("invoice").and_then(|v| v.as_object());
    let s = |keys: &[&str]| string(o, keys).or_else(|| inv.and_then(|i| string(i, keys)));
    let n = |keys: &[&str]| number(o, keys).or_else(|| inv.and_then(|i| number(i, keys)));
    CreateManualInvoiceResult {
        success: boolean(o, &["success"]).unwrap_or(false),
        invoice_id: s(&["invoiceId", "invoice_id"]),
        invoice_number: s(&["invoiceNumber", "invoice_number"]),
        status: s(&["status"]),
        subtotal: n(&["subtotal"]),
        tax: n(&["tax"]),
        total: n(&["total"]),
        error: string(o, &["error"]),
        field_errors: field_errors(o),
    }
}

impl invoicing::Host for HostState {
    async fn create_manual_invoice(
        &mut self,
        input: CreateManualInvoiceInput,
    ) -> wasmtime::Result<CreateManualInvoiceResult> {
        self.budget.charge()?;
        if !self.grants.has(Capability::InvoiceManualCreate) {
            return Ok(failed(
                "Permission denied: cap:invoice.manual.create not granted".into(),
                None,
            ));
        }
        let reply = self
            .bridge("invoicing", "createManualInvoice", payload(input))
            .await;
        Ok(match reply {
            Ok(BridgeReply {
                status: 200..=299,
                json: Some(Value::Object(o)),
            }) => parse_result(&o),
            Ok(BridgeReply { status, json }) => {
                self.logs.note(
                    LogLevel::Warn,
                    format!("invoicing.create-manual-invoice: host API answered {status}"),
                );
                let obj = json.as_ref().and_then(|j| j.as_object());
                failed(
                    obj.and_then(|o| string(o, &["error"]))
                        .unwrap_or_else(|| format!("host API answered {status}")),
                    obj.and_then(field_errors),
                )
            }
            Err(BridgeFailure::NoInstall) => {
                failed("Permission denied: install_id missing".into(), None)
            }
            Err(BridgeFailure::NotConfigured) => {
                failed("invoicing is not configured on this runner".into(), None)
            }
            Err(e) => {
                self.logs.note(
                    LogLevel::Error,
                    format!("invoicing.create-manual-invoice: {e}"),
                );
                failed(format!("host API call failed: {e}"), None)
            }
        })
    }
}
