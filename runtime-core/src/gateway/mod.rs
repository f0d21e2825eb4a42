//! The HTTP face of the runner, independent of how requests arrive (API Gateway,
//! a Function URL, or `alga-lambda up`): `POST /v1/execute` (the Alga runner's wire
//! contract) and the direct route `ANY /api/ext/{extensionId}/{proxy+}`.
//!
//! The Lambda functions and the local server translate their events into these
//! calls and the [`HttpReply`] back; all decisions (credentials, idempotency,
//! endpoint matching, quotas, header filtering, records) are made here.

mod caller;
pub mod credential;
mod direct;
mod dispatch;
pub mod emf;
mod execute_api;
mod headers;
mod internal;
mod local_bus;
mod public_error;
mod record;
mod schedule_fire;
pub mod settings;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::backends::Backends;
use crate::content::ContentHash;
use crate::execute::Executor;
use crate::manifest::Manifest;
use crate::store::CachingRegistry;

pub use caller::{Caller, Claims};
pub use direct::DirectRequest;
pub use dispatch::{Delivery, DeliveryStatus, DispatchError, Dispatcher, Report, RetryPolicy};
pub use execute_api::{idempotency_store_key, parse_execute_body};
pub use internal::InternalCall;
pub use local_bus::drain_local_bus;
pub use record::Route;
pub use settings::{
    ExecuteAuth, ExecutionRecords, GatewaySettings, IamPrincipal, PlatformIdentity,
};

/// A response, ready to be turned into any transport's response type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        HttpReply {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
                ("x-content-type-options".into(), "nosniff".into()),
            ],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// A JSON error `{"error": code, "message": message}`.
    pub fn error(status: u16, code: &str, message: impl std::fmt::Display) -> Self {
        Self::json(
            status,
            &serde_json::json!({ "error": code, "message": message.to_string() }),
        )
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves the execute API and the direct route for one process.
pub struct Gateway {
    executor: Arc<Executor>,
    backends: Backends,
    settings: GatewaySettings,
    manifests: Mutex<LruCache<ContentHash, Arc<Manifest>>>,
}

impl Gateway {
    /// A gateway running requests on `executor` (which should carry the quota
    /// policy) with `backends` for installs, idempotency and records.
    pub fn new(executor: Arc<Executor>, backends: Backends, settings: GatewaySettings) -> Self {
        Gateway {
            executor,
            backends,
            settings,
            manifests: Mutex::new(LruCache::new(NonZeroUsize::new(256).expect("non-zero"))),
        }
    }

    /// A gateway over `backends`, with an executor built from `config` that
    /// counts the quotas of `settings`. Its registry reads go through a cache
    /// ([`CachingRegistry`], `settings.registry_cache`) shared by the executor,
    /// the event dispatcher and the schedules; the caller's own `backends` keep
    /// the uncached registry.
    pub fn build(
        mut backends: Backends,
        config: &crate::RuntimeConfig,
        settings: GatewaySettings,
    ) -> Result<Self, crate::backends::BackendError> {
        backends.registry = CachingRegistry::wrap(backends.registry, settings.registry_cache);
        let executor = backends
            .executor(config)?
            .with_quotas(crate::execute::QuotaPolicy::new(
                backends.quotas.clone(),
                settings.quotas,
            ));
        Ok(Gateway::new(Arc::new(executor), backends, settings))
    }

    /// The settings in force.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// The backends this gateway runs on.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The executor.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Returns once every execution record queued so far is stored (records are
    /// written off the request path): a clean shutdown calls it last.
    pub async fn flush_records(&self) -> Result<(), crate::store::StoreError> {
        self.backends.executions.flush().await
    }
}

/// A fresh request id: 16 random bytes in hex.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    // A failing OS random source leaves zeros; ids are for correlation, not secrets.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}
