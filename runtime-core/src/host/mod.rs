//! The host side of the `alga:extension` world plus WASI 0.2, one file per
//! interface with its capability gate at the top of each function.
//!
//! A capability has three moments (as Spin's factors do): **link** once per process
//! ([`link`]), **configure** once per install (the grants and backends in
//! [`Invocation`]), **prepare** once per request ([`HostState::prepare`]: the
//! per-store state with its counters and limits).

mod bridge_json;
mod clients;
mod context;
pub mod events;
pub mod host_api;
pub mod http;
mod invoicing;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod network;
mod scheduler;
pub mod secrets;
mod services;
mod storage;
pub(crate) mod ui_proxy;
mod user;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::{Capability, CapabilitySet};
use crate::store::{KvScope, KvStore, SecretStore};
use limits::{GuestLimiter, HostCallBudget};
use logging::{LogLevel, LogSink};

/// Generated bindings of the `runner-plus` world: Alga's `runner` plus our
/// `metrics` and `events`. Binding the superset links guests built against
/// either world, since a `runner` guest imports a subset of it and both export
/// the same `handler`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "runner-plus",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [PartialEq],
    });
}

// Named after the guest contract rather than the bound world: the whole crate
// instantiates and calls guests through these, whichever world they were built against.
pub use bindings::{RunnerPlus as Runner, RunnerPlusPre as RunnerPre};
pub use host_api::HostApiSettings;
pub use network::Network;

/// The install configuration key holding the install's egress allowlist
/// (comma-separated, merged with `EXT_EGRESS_ALLOWLIST`).
pub const EGRESS_ALLOWLIST_KEY: &str = "egress_allowlist";

/// The signed-in user a request runs for, as the host app sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User id.
    pub user_id: String,
    /// E-mail.
    pub user_email: String,
    /// Display name.
    pub user_name: String,
    /// `internal` or `client`.
    pub user_type: String,
    /// The user's client (company) name.
    pub client_name: String,
    /// The user's client id.
    pub client_id: Option<String>,
    /// Extra fields, sorted by key.
    pub additional_fields: BTreeMap<String, String>,
}

/// What one request runs as: identity, grants and install configuration.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Request id (propagated to logs and the guest).
    pub request_id: Option<String>,
    /// Tenant.
    pub tenant_id: String,
    /// Extension id.
    pub extension_id: String,
    /// The tenant's install of the extension.
    pub install_id: Option<String>,
    /// The host app's id of the extension (Alga's registry UUID), when the install
    /// carries one: what calls to the host app name it by.
    pub host_extension_id: Option<String>,
    /// The host app's id of the install (Alga's install UUID), when it has one.
    pub host_install_id: Option<String>,
    /// The bundle running (its manifest is what the scheduler validates against).
    pub content_hash: Option<crate::content::ContentHash>,
    /// Extension version.
    pub version_id: Option<String>,
    /// The signed-in user, if any.
    pub user: Option<UserInfo>,
    /// Install configuration.
    pub config: BTreeMap<String, String>,
}

impl Invocation {
    /// The extension as the host app knows it: its own id when the install carries
    /// one, else ours (which, in `caller` install mode, is already the host app's).
    pub fn host_app_extension_id(&self) -> &str {
        self.host_extension_id
            .as_deref()
            .unwrap_or(&self.extension_id)
    }

    /// The install as the host app knows it (see [`Invocation::host_app_extension_id`]).
    pub fn host_app_install_id(&self) -> Option<&str> {
        self.host_install_id
            .as_deref()
            .or(self.install_id.as_deref())
    }
}

/// Shared backends the host functions reach (configured once per process).
#[derive(Clone)]
pub struct HostServices {
    /// Guest key-value storage.
    pub kv: Arc<dyn KvStore>,
    /// Install secrets.
    pub secrets: Arc<dyn SecretStore>,
}

/// Per-request limits for the host side.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Linear memory, all memories together.
    pub memory_bytes: usize,
    /// Host calls.
    pub host_calls: u32,
    /// Log bytes.
    pub log_bytes: usize,
}

/// The data of one request's `Store`: never shared, never reused.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    http_hooks: http::WasiHttpEgress,
    pub(crate) limiter: GuestLimiter,
    pub(crate) budget: HostCallBudget,
    pub(crate) grants: CapabilitySet,
    pub(crate) invocation: Arc<Invocation>,
    pub(crate) logs: LogSink,
    pub(crate) secrets: secrets::SecretsState,
    pub(crate) kv: Option<(Arc<dyn KvStore>, KvScope)>,
    pub(crate) egress: Arc<http::EgressSession>,
    pub(crate) host_api: Option<Arc<host_api::HostApi>>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) metrics: crate::host::metrics::MetricsRecorder,
    /// Whether the bound / an invalid metric has been noted in the log.
    pub(crate) metrics_noted: (bool, bool),
    /// The scheduler backend, when this runner has one.
    pub(crate) scheduler: Option<Arc<crate::schedule::Scheduler>>,
    pub(crate) events: events::EmitState,
}

/// Handles (WASI streams and pollables, `wasi:http` fields, requests, bodies, ...)
/// one request may hold at once. Wasmtime's default is 1,000,000, which lets a
/// guest make the host allocate without bound by creating resources in a loop;
/// a guest with 20 outbound calls in flight needs a few hundred. Past the cap the
/// call traps and the request ends with `memory_limit`.
pub const RESOURCE_TABLE_MAX: usize = 1024;

/// Bytes (roughly: names plus values plus map overhead) one `wasi:http` fields
/// resource may hold. Wasmtime's default is 128 KiB; real header sections stay
/// under 8 KiB (the usual proxy limit). With [`RESOURCE_TABLE_MAX`] this bounds
/// what a request's headers can pin in host memory.
pub const WASI_HTTP_FIELDS_MAX: usize = 16 << 10;

/// Guest metric values per invocation unless configured (`ALGA_METRICS_MAX_VALUES`).
pub const DEFAULT_METRICS_MAX_VALUES: u32 = 1000;

/// Egress with default settings (empty allowlist: denies all) for states that are
/// never attached to a [`Network`].
fn default_egress() -> &'static Arc<http::Egress> {
    static DEFAULT: OnceLock<Arc<http::Egress>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(http::Egress::new(Default::default())))
}

/// Everything one request's [`HostState`] is built from, in one place: the
/// executor fills it once per request (as Wasmtime's `serve` builds its
/// per-request host state in `new_store`), and nothing is patched afterwards.
pub struct HostSetup<'a> {
    /// Who the request runs as.
    pub invocation: Arc<Invocation>,
    /// The capabilities granted to this request.
    pub grants: CapabilitySet,
    /// The process's storage and secret backends.
    pub services: &'a HostServices,
    /// Secrets the caller sent with the request (the secret envelope), if any.
    pub inline_secrets: Option<crate::store::SecretBundle>,
    /// Memory, host-call and log bounds.
    pub limits: RequestLimits,
    /// The process's outbound network; `None`: egress with default settings
    /// (denies every destination) and no host API.
    pub network: Option<&'a Network>,
    /// The install's egress allowlist (from the install's configuration, never
    /// the request's).
    pub install_allowlist: Option<&'a str>,
    /// When the request's time is up; outbound calls end by then at the latest.
    pub deadline: Option<Instant>,
    /// Guest metric values allowed in this invocation.
    pub metrics_max: u32,
    /// The scheduler backend, when this runner has one.
    pub scheduler: Option<Arc<crate::schedule::Scheduler>>,
    /// Where `emit` goes, when this runner publishes events.
    pub events: Option<events::EmitSetup>,
}

impl<'a> HostSetup<'a> {
    /// A setup with no network, scheduler or events and the default metrics
    /// bound; fill in the rest with struct update syntax.
    pub fn new(
        invocation: Arc<Invocation>,
        grants: CapabilitySet,
        services: &'a HostServices,
        limits: RequestLimits,
    ) -> Self {
        HostSetup {
            invocation,
            grants,
            services,
            inline_secrets: None,
            limits,
            network: None,
            install_allowlist: None,
            deadline: None,
            metrics_max: DEFAULT_METRICS_MAX_VALUES,
            scheduler: None,
            events: None,
        }
    }
}

impl HostState {
    /// Builds the state for one request.
    pub fn new(setup: HostSetup<'_>) -> HostState {
        let HostSetup {
            invocation,
            grants,
            services,
            inline_secrets,
            limits,
            network,
            install_allowlist,
            deadline,
            metrics_max,
            scheduler,
            events,
        } = setup;
        let logs = LogSink::new(limits.log_bytes);
        // No preopened directories, no environment, no arguments, no sockets: WASI
        // here is only clocks, random and captured stdio.
        let wasi = WasiCtxBuilder::new()
            .stdout(logs.stdio(LogLevel::Info, "stdout"))
            .stderr(logs.stdio(LogLevel::Error, "stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        // A store the host app keeps names the install by the host app's id.
        let kv_install = if services.kv.keyed_by_host_app_ids() {
            invocation.host_app_install_id()
        } else {
            invocation.install_id.as_deref()
        };
        let kv = kv_install.map(|install| {
            (
                services.kv.clone(),
                KvScope {
                    tenant: invocation.tenant_id.clone(),
                    install_id: install.to_string(),
                },
            )
        });
        let secrets = secrets::SecretsState::new(
            inline_secrets,
            services.secrets.clone(),
            invocation.tenant_id.clone(),
            invocation.install_id.clone(),
        );
        let egress_policy = network.map_or(default_egress(), |n| &n.egress);
        let egress = Arc::new(egress_policy.session(
            grants.has(Capability::HttpFetch),
            install_allowlist,
            deadline,
        ));
        let mut table = ResourceTable::new();
        table.set_max_capacity(RESOURCE_TABLE_MAX);
        let mut http_ctx = WasiHttpCtx::new();
        http_ctx.set_field_size_limit(WASI_HTTP_FIELDS_MAX);
        HostState {
            wasi,
            table,
            http_ctx,
            http_hooks: http::WasiHttpEgress::new(egress.clone(), logs.clone()),
            limiter: GuestLimiter::new(limits.memory_bytes),
            budget: HostCallBudget::new(limits.host_calls),
            grants,
            invocation,
            logs,
            secrets,
            kv,
            egress,
            host_api: network.and_then(|n| n.host_api.clone()),
            deadline,
            metrics: crate::host::metrics::MetricsRecorder::new(metrics_max),
            metrics_noted: (false, false),
            scheduler,
            events: events.map(events::EmitState::new).unwrap_or_default(),
        }
    }

    /// The guest's metrics so far.
    pub fn guest_metrics(&self) -> crate::host::metrics::GuestMetrics {
        self.metrics.finish()
    }

    /// Outbound requests made through the egress policy.
    pub fn egress_calls(&self) -> u32 {
        self.egress.calls()
    }

    /// Body bytes sent and received through the egress policy.
    pub fn egress_bytes(&self) -> u64 {
        self.egress.bytes()
    }

    /// The request's log lines.
    pub fn logs(&self) -> &LogSink {
        &self.logs
    }

    /// Largest linear memory total seen, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.limiter.peak_memory
    }

    /// Host calls made.
    pub fn host_calls(&self) -> u32 {
        self.budget.used()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl bindings::alga::extension::types::Host for HostState {}

/// Builds the process-wide linker: WASI 0.2, `wasi:http` (through our egress
/// policy, each outgoing request charged to the host-call budget) and every
/// `alga:extension` interface.
pub fn link(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    http::link_charged_outgoing_handler(&mut linker)?;
    Runner::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_charged_outgoing_handler_replaces_wasmtimes() {
        let config = crate::engine::build_config(&Default::default(), None).unwrap();
        let engine = wasmtime::Engine::new(&config).unwrap();
        super::link(&engine).unwrap();
        // Wasmtime's own `handle` lives under the name we shadow: defining it
        // again without shadowing fails only if so.
        let mut linker = wasmtime::component::Linker::<super::HostState>::new(&engine);
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let again = linker
            .instance(&format!(
                "wasi:http/outgoing-handler@{}",
                super::http::WASI_HTTP_VERSION
            ))
            .unwrap()
            .func_wrap(
                "handle",
                |_: wasmtime::StoreContextMut<'_, super::HostState>, (): ()| Ok(()),
            );
        assert!(
            again.is_err(),
            "wasmtime's handle is not under that version"
        );
    }
}
