//! `alga:extension/invoicing`: manual invoices through the host app.
//!
//! Not granted → `{success: false, error: "Permission denied:
//! cap:invoice.manual.create not granted"}`. Granted, but no host API is configured
//! → `success: false` naming that.

use super::HostState;
use super::bindings::alga::extension::invoicing;
use super::bindings::alga::extension::types::{
    CreateManualInvoiceInput, CreateManualInvoiceResult,
};
use crate::capability::Capability;

impl invoicing::Host for HostState {
    async fn create_manual_invoice(
        &mut self,
        _input: CreateManualInvoiceInput,
    ) -> wasmtime::Result<CreateManualInvoiceResult> {
        self.budget.charge()?;
        let error = if self.grants.has(Capability::InvoiceManualCreate) {
            "invoicing is not configured on this runner"
        } else {
            "Permission denied: cap:invoice.manual.create not granted"
        };
        Ok(CreateManualInvoiceResult {
            success: false,
            invoice_id: None,
            invoice_number: None,
            status: None,
            subtotal: None,
            tax: None,
            total: None,
            error: Some(error.into()),
            field_errors: None,
        })
    }
}
