//! The execute pipeline: from a `/v1/execute` request to the four-key envelope.
//!
//! Checks run in the seed runner's order — routing headers, artifact, capabilities,
//! secrets, run — and each failure has its own code (see [`ExecError`]). Limits are
//! always on: a deadline (epoch interruption, plus a host-side timer for time spent
//! in host calls), linear memory, optional fuel, response size, log bytes and host
//! calls. The deadline counts from the call, after the component is loaded.

mod abi_fault;
mod call;
pub mod envelope;
pub mod error;
pub mod quota;
mod registry_resolver;
pub mod request;
pub mod resolve;
pub mod secret_envelope;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use wasmtime::Store;

use crate::artifact::{ArtifactError, ContentHash};
use crate::capability::CapabilitySet;
use crate::config::{Limits, RuntimeConfig};
use crate::engine::{EngineError, RuntimeEngine, Target};
use crate::host::bindings::alga::extension::types as wit;
use crate::host::limits::LimitExceeded;
use crate::host::logging::LogLine;
use crate::host::{
    self, EGRESS_ALLOWLIST_KEY, HostServices, HostSetup, HostState, Invocation, Network,
    RequestLimits, UserInfo,
};
use crate::loader::ComponentLoader;
use crate::store::BlobStore;

pub use call::{Call, CallBody};
pub use envelope::Envelope;
pub use error::ExecError;
pub use quota::{QuotaLimits, QuotaPolicy};
pub use registry_resolver::RegistryResolver;
pub use request::{ExecuteRequest, RoutingHeaders};
pub use resolve::{HostIds, InstallSource, ResolveQuery, Resolved, Resolver, StaticResolver};

/// What one guest-to-host transfer (a host call's arguments, or the handler's
/// response) may copy beyond the request's body limits: room for headers and
/// the rest of the record.
const TRANSFER_HEADROOM: usize = 1 << 20;

/// What one execution produced, for the caller's logs and metrics.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The response envelope.
    pub envelope: Envelope,
    /// Why there is no guest response, typed (`None`: the guest answered).
    pub error: Option<ExecError>,
    /// The guest's log lines (logging interface, stdout, stderr, host notes).
    pub logs: Vec<LogLine>,
    /// Measurements.
    pub metrics: Metrics,
}

impl Outcome {
    /// A request that ended in `error` before or instead of a guest response;
    /// `metrics` carry what was known by then.
    pub fn failed(error: ExecError, mut metrics: Metrics) -> Outcome {
        metrics.outcome = error.code();
        metrics.retry_after = error.retry_after();
        Outcome {
            envelope: Envelope::error(&error),
            error: Some(error),
            logs: Vec::new(),
            metrics,
        }
    }
}

/// Per-invocation measurements.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// `ok` or the error code.
    pub outcome: &'static str,
    /// Loading the component (0 when it was cached).
    pub load: Duration,
    /// Instantiate + call.
    pub run: Duration,
    /// Largest linear memory total, bytes.
    pub peak_memory: usize,
    /// Host calls made.
    pub host_calls: u32,
    /// Fuel consumed, when fuel is on.
    pub fuel_consumed: Option<u64>,
    /// Outbound requests through the egress policy (each redirect hop counts).
    pub egress_calls: u32,
    /// Body bytes sent and received through the egress policy.
    pub egress_bytes: u64,
    /// The content hash run.
    pub content_hash: Option<String>,
    /// Tenant (from the routing headers).
    pub tenant_id: Option<String>,
    /// Extension.
    pub extension_id: Option<String>,
    /// The install that ran, once resolved.
    pub install_id: Option<String>,
    /// The version that ran, once resolved.
    pub version: Option<String>,
    /// The request id the guest saw.
    pub request_id: Option<String>,
    /// Seconds the caller should wait before retrying (quota, capacity).
    pub retry_after: Option<u64>,
    /// The whole invocation, from the call to the envelope.
    pub total: Duration,
    /// What the guest recorded through `alga:extension/metrics`.
    pub guest: crate::host::metrics::GuestMetrics,
}

/// Runs extension handlers. One per process; cheap to share behind an `Arc`.
pub struct Executor {
    engine: Arc<RuntimeEngine>,
    loader: ComponentLoader,
    resolver: Arc<dyn Resolver>,
    services: HostServices,
    network: Network,
    limits: Limits,
    metrics_max: u32,
    target: Target,
    fingerprint: String,
    quotas: Option<QuotaPolicy>,
    vault: Option<Arc<crate::vault::VaultTransit>>,
    scheduler: Option<Arc<crate::schedule::Scheduler>>,
    events: Option<(
        Arc<dyn crate::events::EventPublisher>,
        Arc<host::events::EmitSettings>,
    )>,
}

impl Executor {
    /// Builds the engine, the linker and the loader.
    pub fn new(
        config: &RuntimeConfig,
        blobs: Arc<dyn BlobStore>,
        resolver: Arc<dyn Resolver>,
        services: HostServices,
    ) -> Result<Self, EngineError> {
        let engine = Arc::new(RuntimeEngine::new(&config.engine)?);
        let linker =
            Arc::new(host::link(engine.engine()).map_err(|e| EngineError::Config(e.to_string()))?);
        let loader = ComponentLoader::new(engine.clone(), linker, blobs, &config.cache);
        let fingerprint = engine.fingerprint();
        Ok(Executor {
            engine,
            loader,
            resolver,
            services,
            network: Network::new(&config.egress, &config.host_api),
            limits: config.limits.clone(),
            metrics_max: config.metrics.guest_values_max,
            target: Target::host(),
            fingerprint,
            quotas: None,
            vault: crate::vault::VaultTransit::new(config.vault.clone()).map(Arc::new),
            scheduler: None,
            events: None,
        })
    }

    /// Counts invocations against quotas (after the install is resolved).
    pub fn with_quotas(mut self, quotas: QuotaPolicy) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Backs the scheduler host functions (without it they answer "not configured").
    pub fn with_scheduler(mut self, scheduler: Arc<crate::schedule::Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Lets guests emit to `publisher` as `settings` allow (a number: that many
    /// per invocation, the other settings' defaults); without it, `emit`
    /// answers `unavailable`. The per-tenant emit rate is counted in the quota
    /// store of [`with_quotas`](Self::with_quotas), when there is one.
    pub fn with_events(
        mut self,
        publisher: Arc<dyn crate::events::EventPublisher>,
        settings: impl Into<host::events::EmitSettings>,
    ) -> Self {
        self.events = Some((publisher, Arc::new(settings.into())));
        self
    }

    /// Replaces the outbound network (tests pin DNS names to loopback servers).
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// The Vault transit client, when one is configured (for its counters).
    pub fn vault(&self) -> Option<&crate::vault::VaultTransit> {
        self.vault.as_deref()
    }

    /// The runtime engine.
    pub fn engine(&self) -> &RuntimeEngine {
        &self.engine
    }

    /// The component loader (for its counters).
    pub fn loader(&self) -> &ComponentLoader {
        &self.loader
    }

    /// The longest deadline any request may have.
    pub fn max_timeout(&self) -> Duration {
        self.limits.timeout_max
    }

    /// The target triple artifacts must be compiled for to run here.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs one request. Never panics on guest behaviour; every failure is an envelope.
    pub async fn execute(&self, routing: &RoutingHeaders, req: &ExecuteRequest) -> Outcome {
        self.call(routing, Call::wire(req)).await
    }

    /// Runs one request whose install is named by `source` (the registry's, or
    /// the caller's context as the Alga runner takes it).
    pub async fn execute_from(
        &self,
        routing: &RoutingHeaders,
        req: &ExecuteRequest,
        source: InstallSource,
    ) -> Outcome {
        self.call(
            routing,
            Call {
                source,
                ..Call::wire(req)
            },
        )
        .await
    }

    /// Runs one request delivering an event `event_hops` emits deep (0: not an
    /// event of an extension's), so the guest's own emits are one deeper.
    pub async fn execute_at_depth(
        &self,
        routing: &RoutingHeaders,
        req: &ExecuteRequest,
        event_hops: u32,
    ) -> Outcome {
        self.call(
            routing,
            Call {
                event_hops,
                ..Call::wire(req)
            },
        )
        .await
    }

    /// Runs one [`Call`]: the entry of the gateway's own routes (the direct
    /// route, events, schedules), which hand over the body as bytes and the
    /// install they already read.
    pub async fn call(&self, routing: &RoutingHeaders, call: Call<'_>) -> Outcome {
        let started = Instant::now();
        let mut metrics = Metrics::default();
        let mut logs = Vec::new();
        let result = self.run(routing, &call, &mut metrics, &mut logs).await;
        metrics.total = started.elapsed();
        match result {
            Ok(envelope) => {
                metrics.outcome = "ok";
                Outcome {
                    envelope,
                    error: None,
                    logs,
                    metrics,
                }
            }
            Err(e) => Outcome {
                logs,
                ..Outcome::failed(e, metrics)
            },
        }
    }

    /// The pipeline: check the routing, resolve the install, admit it against
    /// the quotas, load its component, prepare the store, invoke the handler.
    async fn run(
        &self,
        routing: &RoutingHeaders,
        call: &Call<'_>,
        metrics: &mut Metrics,
        logs: &mut Vec<LogLine>,
    ) -> Result<Envelope, ExecError> {
        let req = call.request;
        let (tenant, extension, content) = self.route(routing, req, metrics)?;
        let timeout = self.request_timeout(req).max(BEFORE_GUEST_FLOOR);
        let resolved = before_guest(
            timeout,
            "the registry",
            self.resolver.resolve(&ResolveQuery {
                tenant,
                extension,
                content,
                install_id: req.context.install_id.as_deref(),
                target: &self.target,
                fingerprint: &self.fingerprint,
                source: call.source,
                install: call.install,
            }),
        )
        .await?;
        metrics.install_id = resolved.install_id.clone();
        metrics.version = resolved.version_id.clone();
        if let Some(quotas) = &self.quotas {
            before_guest(
                timeout,
                "the quota store",
                quotas.admit(tenant, extension, &resolved.config),
            )
            .await?;
        }
        let load_started = Instant::now();
        let loaded = self
            .loader
            .load(&resolved.artifact)
            .await
            .map_err(load_error)?;
        metrics.load = load_started.elapsed();
        let prepared = self.prepare(routing, call, &resolved).await?;
        self.invoke(&loaded.pre, prepared, metrics, logs).await
    }

    /// The request's own time limit (its `limits.timeout_ms`, else the default), capped.
    fn request_timeout(&self, req: &ExecuteRequest) -> Duration {
        req.limits
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.limits.timeout_default)
            .min(self.limits.timeout_max)
    }

    /// The routing headers must name the context's tenant and extension, and the
    /// context a well-formed content hash.
    fn route<'r>(
        &self,
        routing: &'r RoutingHeaders,
        req: &ExecuteRequest,
        metrics: &mut Metrics,
    ) -> Result<(&'r String, &'r String, ContentHash), ExecError> {
        let (tenant, extension) = match (&routing.tenant, &routing.extension) {
            (Some(t), Some(e)) if !t.trim().is_empty() && !e.trim().is_empty() => (t, e),
            _ => return Err(ExecError::MissingRoutingHeaders),
        };
        if tenant != &req.context.tenant_id || extension != &req.context.extension_id {
            return Err(ExecError::RoutingMismatch(
                "x-alga-tenant / x-alga-extension differ from the request context".into(),
            ));
        }
        let content = ContentHash::parse(req.context.content_hash.trim()).ok_or_else(|| {
            ExecError::InvalidContentHash(format!("{:?}", req.context.content_hash))
        })?;
        metrics.content_hash = Some(content.to_string());
        metrics.tenant_id = Some(tenant.clone());
        metrics.extension_id = Some(extension.clone());
        metrics.request_id = req
            .context
            .request_id
            .clone()
            .or_else(|| routing.request_id.clone());
        Ok((tenant, extension, content))
    }

    /// The request's grants, secrets, guest request, limits and its `Store`,
    /// built once from one [`HostSetup`].
    async fn prepare(
        &self,
        routing: &RoutingHeaders,
        call: &Call<'_>,
        resolved: &Resolved,
    ) -> Result<Prepared, ExecError> {
        let req = call.request;
        let grants = self.grants(req, resolved.grants.as_ref())?;
        let inline_secrets = match &req.secret_envelope {
            Some(env) => Some(
                secret_envelope::open(env, self.vault.as_deref())
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "secret envelope not opened");
                        if e.is_unavailable() {
                            ExecError::BackendUnavailable(e.to_string())
                        } else {
                            ExecError::SecretDecryptFailed
                        }
                    })?,
            ),
            None => None,
        };
        let guest_request = self.guest_request(req, &call.body)?;
        let mut config = resolved.config.clone();
        config.extend(req.context.config.clone().unwrap_or_default());
        let invocation = Arc::new(Invocation {
            request_id: req
                .context
                .request_id
                .clone()
                .or_else(|| routing.request_id.clone()),
            tenant_id: req.context.tenant_id.clone(),
            extension_id: req.context.extension_id.clone(),
            install_id: resolved.install_id.clone(),
            host_extension_id: resolved.host_ids.extension.clone(),
            host_install_id: resolved.host_ids.install.clone(),
            content_hash: Some(resolved.artifact.key.content),
            version_id: req
                .context
                .version_id
                .clone()
                .or(resolved.version_id.clone()),
            user: req.user.as_ref().map(|u| UserInfo {
                user_id: u.user_id.clone(),
                user_email: u.user_email.clone(),
                user_name: u.user_name.clone(),
                user_type: u.user_type.clone(),
                client_name: u.client_name.clone(),
                client_id: u.client_id.clone(),
                additional_fields: u.additional_fields.clone().unwrap_or_default(),
            }),
            config,
        });

        let timeout = self.request_timeout(req);
        let memory = req
            .limits
            .memory_mb
            .map(|mb| (mb as usize).saturating_mul(1 << 20))
            .unwrap_or(self.limits.memory_default_bytes)
            .min(self.engine.settings().max_memory_bytes);
        let deadline = Instant::now() + timeout;
        let state = HostState::new(HostSetup {
            inline_secrets,
            network: Some(&self.network),
            install_allowlist: resolved
                .config
                .get(EGRESS_ALLOWLIST_KEY)
                .map(String::as_str),
            deadline: Some(deadline),
            metrics_max: self.metrics_max,
            scheduler: self.scheduler.clone(),
            events: self
                .events
                .as_ref()
                .map(|(publisher, settings)| host::events::EmitSetup {
                    publisher: publisher.clone(),
                    settings: settings.clone(),
                    quotas: self.quotas.as_ref().map(QuotaPolicy::store),
                    hops: call.event_hops,
                }),
            ..HostSetup::new(
                invocation,
                grants,
                &self.services,
                RequestLimits {
                    memory_bytes: memory,
                    host_calls: self.limits.host_calls_max,
                    log_bytes: self.limits.log_bytes_max,
                },
            )
        });
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // Lifting copies every string and list a guest hands the host, and a
        // guest may point a million list elements at one string: 100 KiB of
        // guest memory became 125 MiB of host memory (Wasmtime's default bound
        // is 128 MiB per transfer). Bound each transfer by what a legitimate
        // one needs: the largest body this runner accepts or answers.
        store.set_hostcall_fuel(self.transfer_max());
        // Fairness: wasm never blocks a worker thread for more than one epoch tick.
        // At every tick the guest yields to the executor (tokio's `yield_now`, so
        // queued requests run first) until its wall-clock deadline has passed;
        // then it traps with `Trap::Interrupt`, which is the `timeout` code.
        // Without this a spinning guest holds its worker until the deadline, and
        // two of them stall every other request on a two-core host.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let fuel = if self.engine.settings().fuel {
            let f = req
                .limits
                .fuel
                .unwrap_or(self.limits.fuel_default)
                .min(self.limits.fuel_max);
            store
                .set_fuel(f)
                .map_err(|e| ExecError::ExecuteFailed(e.to_string()))?;
            Some(f)
        } else {
            None
        };
        Ok(Prepared {
            store,
            guest_request,
            timeout,
            deadline,
            fuel,
        })
    }

    /// Instantiates and calls the handler within the deadline; the store's
    /// measurements and logs are kept whatever the result.
    async fn invoke(
        &self,
        pre: &crate::host::RunnerPre<HostState>,
        prepared: Prepared,
        metrics: &mut Metrics,
        logs: &mut Vec<LogLine>,
    ) -> Result<Envelope, ExecError> {
        let Prepared {
            mut store,
            guest_request,
            timeout,
            deadline,
            fuel,
        } = prepared;
        // The guest's time counts from when its deadline was set (a few microseconds
        // of store setup ago), so a timeout is never measured shorter than its limit.
        let started = deadline - timeout;
        let result = {
            let call = async {
                let runner = pre.instantiate_async(&mut store).await?;
                runner.call_handler(&mut store, &guest_request).await
            };
            // The host timer ends a guest parked in a host call (a sleep, a slow
            // outbound call) at the same deadline the epoch callback enforces on
            // running wasm, with no grace: `timeout_at` polls the call before its
            // timer, so a guest that answers by the deadline is never cut, and
            // either path answers `timeout`.
            tokio::time::timeout_at(deadline.into(), call).await
        };
        metrics.run = started.elapsed();
        metrics.peak_memory = store.data().peak_memory();
        metrics.host_calls = store.data().host_calls();
        metrics.egress_calls = store.data().egress_calls();
        metrics.egress_bytes = store.data().egress_bytes();
        metrics.guest = store.data().guest_metrics();
        if let Some(f) = fuel {
            metrics.fuel_consumed = store.get_fuel().ok().map(|left| f - left);
        }
        *logs = store.data().logs().lines();

        let response = match result {
            Err(_elapsed) => return Err(ExecError::Timeout(timeout.as_millis() as u64)),
            Ok(Err(e)) => {
                return Err(match abi_fault::transfer_too_large(&e) {
                    // Raised while lifting the response (no guest frame on the
                    // stack): the response is over the limit.
                    Some(false) => ExecError::OutputTooLarge {
                        size: self.transfer_max(),
                        limit: self.limits.response_body_max,
                    },
                    // Raised inside a host call: host memory asked for by the guest.
                    Some(true) => ExecError::MemoryLimit(format!(
                        "a host call was passed more than {} bytes",
                        self.transfer_max()
                    )),
                    None => classify(e, timeout, fuel),
                });
            }
            Ok(Ok(r)) => r,
        };
        self.envelope(response)
    }

    /// The most one guest-to-host transfer may copy.
    fn transfer_max(&self) -> usize {
        self.limits
            .response_body_max
            .max(self.limits.request_body_max)
            .saturating_add(TRANSFER_HEADROOM)
    }

    fn grants(
        &self,
        req: &ExecuteRequest,
        install: Option<&CapabilitySet>,
    ) -> Result<CapabilitySet, ExecError> {
        let requested = match &req.providers {
            Some(p) => Some(CapabilitySet::parse(p).map_err(ExecError::UnknownCapabilities)?),
            None => None,
        };
        Ok(match (install, requested) {
            (Some(i), Some(r)) => i.intersect(&r),
            (Some(i), None) => i.clone(),
            (None, Some(r)) => r,
            (None, None) => CapabilitySet::minimal(),
        })
    }

    fn guest_request(
        &self,
        req: &ExecuteRequest,
        body: &CallBody<'_>,
    ) -> Result<wit::ExecuteRequest, ExecError> {
        let body = match body {
            CallBody::Bytes(bytes) => bytes.map(<[u8]>::to_vec),
            CallBody::Wire => match req.http.body_b64.as_deref() {
                None => None,
                Some(b) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|e| {
                            ExecError::InvalidRequest(format!("body_b64 is not base64: {e}"))
                        })?,
                ),
            },
        };
        if let Some(b) = &body
            && b.len() > self.limits.request_body_max
        {
            return Err(ExecError::InvalidRequest(format!(
                "body of {} bytes exceeds the {} byte limit",
                b.len(),
                self.limits.request_body_max
            )));
        }
        let headers = req
            .http
            .headers
            .iter()
            .flatten()
            .map(|(name, value)| wit::HttpHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        Ok(wit::ExecuteRequest {
            context: wit::ContextData {
                request_id: req.context.request_id.clone(),
                tenant_id: req.context.tenant_id.clone(),
                extension_id: req.context.extension_id.clone(),
                install_id: req.context.install_id.clone(),
                version_id: req.context.version_id.clone(),
            },
            http: wit::HttpRequest {
                method: req.http.method.clone(),
                url: req.guest_url(),
                headers,
                body,
            },
        })
    }

    fn envelope(&self, r: wit::ExecuteResponse) -> Result<Envelope, ExecError> {
        if !(100..=599).contains(&r.status) {
            return Err(ExecError::InvalidResponse(format!(
                "status {} is not an HTTP status",
                r.status
            )));
        }
        if let Some(b) = &r.body
            && b.len() > self.limits.response_body_max
        {
            return Err(ExecError::OutputTooLarge {
                size: b.len(),
                limit: self.limits.response_body_max,
            });
        }
        let headers: BTreeMap<String, String> =
            r.headers.into_iter().map(|h| (h.name, h.value)).collect();
        Ok(Envelope::success(r.status, headers, r.body))
    }
}

/// A request ready to call: its store (host state, limits, deadline) and input.
struct Prepared {
    store: Store<HostState>,
    guest_request: wit::ExecuteRequest,
    timeout: Duration,
    /// When the guest's time is up: the epoch callback and the host timer share it.
    deadline: Instant,
    fuel: Option<u64>,
}

/// A component that could not be loaded, as its typed code.
fn load_error(e: ArtifactError) -> ExecError {
    match e {
        ArtifactError::Missing(m) => ExecError::ArtifactMissing(m),
        ArtifactError::Integrity { .. } => ExecError::ArtifactIntegrity(e.to_string()),
        ArtifactError::Fetch(s) => ExecError::BundleFetchFailed(s.to_string()),
        ArtifactError::Link(m) => ExecError::LinkFailed(m),
        ArtifactError::Compile(m) => ExecError::ExecuteFailed(m),
    }
}

/// Maps a Wasmtime error from instantiate or call to its typed code.
fn classify(e: wasmtime::Error, timeout: Duration, fuel: Option<u64>) -> ExecError {
    if let Some(limit) = e.downcast_ref::<LimitExceeded>() {
        return match limit {
            LimitExceeded::Memory { .. } | LimitExceeded::Table { .. } => {
                ExecError::MemoryLimit(limit.to_string())
            }
            LimitExceeded::HostCalls { .. } => ExecError::HostCallLimit(limit.to_string()),
            LimitExceeded::LogBytes { .. } => ExecError::LogLimit(limit.to_string()),
        };
    }
    if let Some(full) = e.downcast_ref::<wasmtime::component::ResourceTableError>() {
        // The only way to fill the table is to hold more handles than
        // `RESOURCE_TABLE_MAX`: host memory held for the guest, so a memory limit.
        if matches!(full, wasmtime::component::ResourceTableError::Full) {
            return ExecError::MemoryLimit(format!(
                "resource table limit of {} handles exceeded",
                host::RESOURCE_TABLE_MAX
            ));
        }
    }
    if let Some(
        wasmtime_wasi_http::FieldMapError::TotalSizeTooBig
        | wasmtime_wasi_http::FieldMapError::TooManyFields,
    ) = e.downcast_ref::<wasmtime_wasi_http::FieldMapError>()
    {
        // Wasmtime traps (rather than answering `header-error`) when one fields
        // resource would hold more than `WASI_HTTP_FIELDS_MAX`.
        return ExecError::MemoryLimit(format!(
            "wasi:http fields limit of {} KiB exceeded",
            host::WASI_HTTP_FIELDS_MAX >> 10
        ));
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => ExecError::Timeout(timeout.as_millis() as u64),
            wasmtime::Trap::OutOfFuel => ExecError::FuelExhausted(fuel.unwrap_or_default()),
            wasmtime::Trap::StackOverflow => ExecError::StackOverflow,
            other => ExecError::GuestTrap(format!("{other}: {}", root_message(&e))),
        };
    }
    if let Some(fault) = abi_fault::guest_abi_fault(&e) {
        return ExecError::GuestTrap(format!("canonical ABI violation: {fault}"));
    }
    let text = format!("{e:#}");
    if text.contains("maximum concurrent") || text.contains("pooling allocator") {
        return ExecError::CapacityExhausted;
    }
    ExecError::ExecuteFailed(text)
}

fn root_message(e: &wasmtime::Error) -> String {
    let s = format!("{e}");
    s.lines().next().unwrap_or_default().to_string()
}

/// The shortest bound on the store calls before the guest: a deadline of a few
/// milliseconds is about the guest's code, and a backend answering within a second
/// is slow but working.
const BEFORE_GUEST_FLOOR: Duration = Duration::from_secs(1);

/// Bounds a store call made before the guest starts by the request's time limit (at
/// least [`BEFORE_GUEST_FLOOR`]): a backend that stops answering (SQLite locked by
/// another process, a frozen table) gives a 503 within that time instead of holding
/// the request for the backend's own bound (SQLite's 30 s busy timeout). The call may
/// still complete in the background; a quota charge that lands then only errs on the
/// side of refusing.
async fn before_guest<T, E>(
    timeout: Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ExecError>
where
    E: Into<ExecError>,
{
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ExecError::BackendUnavailable(format!(
            "{what} did not answer within {} ms",
            timeout.as_millis()
        ))),
    }
}
