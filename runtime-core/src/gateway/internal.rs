//! Calls the runner makes on its own behalf — an event delivery, a schedule
//! firing — through the same execute pipeline as a request from outside: the
//! install's grants and quotas, a fresh request id, no user, one record.

use std::collections::BTreeMap;

use super::record::Route;
use super::{Gateway, new_request_id};
use crate::execute::request::{HttpPayload, RequestContext, RequestedLimits};
use crate::execute::{Call, CallBody, ExecuteRequest, Outcome, RoutingHeaders};
use crate::store::InstallRecord;

/// One internal call of an install's endpoint.
#[derive(Debug)]
pub struct InternalCall<'a> {
    /// The install to run.
    pub install: &'a InstallRecord,
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The endpoint path.
    pub path: &'a str,
    /// JSON body (`None` = no body).
    pub body: Option<&'a [u8]>,
    /// Extra request headers (lower-case names), e.g. `x-alga-schedule-id`.
    pub headers: &'a [(&'a str, &'a str)],
    /// What the record calls it.
    pub route: Route,
    /// For an event delivery, the event's depth in a chain of extension emits
    /// ([`crate::events::Event::hops`]); 0 otherwise.
    pub event_hops: u32,
}

impl Gateway {
    /// Runs an install's endpoint; answers the outcome (the envelope and metrics).
    pub async fn run_internal(&self, call: InternalCall<'_>) -> Outcome {
        let install = call.install;
        let request_id = new_request_id();
        let mut headers: BTreeMap<String, String> = call
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if call.body.is_some() {
            headers.insert("content-type".to_string(), "application/json".to_string());
        }
        let execute = ExecuteRequest {
            context: RequestContext {
                tenant_id: install.tenant.clone(),
                extension_id: install.extension_id.clone(),
                content_hash: install.content_hash.to_string(),
                request_id: Some(request_id.clone()),
                install_id: Some(install.install_id.clone()),
                version_id: Some(install.version.clone()),
                config: None,
            },
            http: HttpPayload {
                method: call.method.to_ascii_uppercase(),
                path: call.path.to_string(),
                query: None,
                headers: Some(headers),
                body_b64: None,
            },
            limits: RequestedLimits::default(),
            secret_envelope: None,
            providers: None,
            user: None,
        };
        let routing = RoutingHeaders {
            tenant: Some(install.tenant.clone()),
            extension: Some(install.extension_id.clone()),
            request_id: Some(request_id),
        };
        let outcome = self
            .executor
            .call(
                &routing,
                Call {
                    body: CallBody::Bytes(call.body),
                    install: Some(install),
                    event_hops: call.event_hops,
                    ..Call::wire(&execute)
                },
            )
            .await;
        self.record(call.route, &install.tenant, &install.extension_id, &outcome)
            .await;
        outcome
    }
}
