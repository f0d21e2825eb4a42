//! The one Wasmtime `Config`, shared by the compiler (publish, CLI) and the runtime
//! (execute), the engine with its pooling allocator, and the epoch ticker.
//!
//! A `.cwasm` only loads into an engine with the same wasm features and codegen
//! settings, so both sides build their `Config` here and stamp the same fingerprint
//! into the artifact header (`module_version`). Wasmtime's own
//! `precompile_compatibility_hash` exists only in builds with Cranelift, so the
//! runtime cannot compute it; our fingerprint covers the same ground (wasmtime
//! version, target, every codegen-relevant setting) and the header check makes
//! Wasmtime refuse anything else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, ModuleVersionStrategy, PoolingAllocationConfig,
};

/// Settings that shape the Wasmtime engine; the codegen-relevant ones are part of
/// every artifact's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Fuel metering compiled into the code (changes artifacts).
    pub fuel: bool,
    /// Use the pooling allocator (falls back to on-demand when it cannot reserve).
    pub pooling: bool,
    /// Component instances the pool holds at once (= concurrent requests).
    pub pool_instances: u32,
    /// The largest linear memory any guest may reach; also the pool's slot size.
    pub max_memory_bytes: usize,
    /// How often the epoch ticker advances; the deadline's granularity.
    pub epoch_tick: Duration,
    /// Native stack available to guest code.
    pub max_wasm_stack: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            fuel: false,
            pooling: true,
            pool_instances: 64,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(5),
            max_wasm_stack: 512 << 10,
        }
    }
}

/// The wasmtime release this crate is built against (a test checks it against Cargo.lock).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Bump when `build_config` changes in a way that changes generated code.
const CONFIG_REVISION: u32 = 1;

/// Errors building an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The target triple is not one Wasmtime can compile for.
    #[error("unsupported target {0:?}")]
    UnsupportedTarget(String),
    /// Wasmtime refused the configuration.
    #[error("engine configuration refused: {0}")]
    Config(String),
}

/// A compilation target: a target triple we produce artifacts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(String);

impl Target {
    /// x86_64 Lambda.
    pub fn x86_64_linux() -> Self {
        Target("x86_64-unknown-linux-gnu".into())
    }

    /// arm64 (Graviton) Lambda.
    pub fn aarch64_linux() -> Self {
        Target("aarch64-unknown-linux-gnu".into())
    }

    /// The targets `publish` precompiles for.
    pub fn lambda_targets() -> [Target; 2] {
        [Target::x86_64_linux(), Target::aarch64_linux()]
    }

    /// The machine this process runs on.
    pub fn host() -> Self {
        let arch = std::env::consts::ARCH;
        let triple = match std::env::consts::OS {
            "linux" => format!("{arch}-unknown-linux-gnu"),
            "macos" => format!("{arch}-apple-darwin"),
            "windows" => format!("{arch}-pc-windows-msvc"),
            os => format!("{arch}-unknown-{os}"),
        };
        Target(triple)
    }

    /// Parses a triple we support.
    pub fn parse(triple: &str) -> Result<Self, EngineError> {
        match triple {
            "x86_64-unknown-linux-gnu" | "aarch64-unknown-linux-gnu" => Ok(Target(triple.into())),
            t if t == Target::host().0 => Ok(Target(t.into())),
            t => Err(EngineError::UnsupportedTarget(t.into())),
        }
    }

    /// The triple.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies the code an engine generates: equal fingerprints, loadable artifacts.
pub fn fingerprint(target: &Target, settings: &EngineSettings) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "wasmtime={WASMTIME_VERSION};rev={CONFIG_REVISION};target={};fuel={};stack={}",
        target.as_str(),
        settings.fuel,
        settings.max_wasm_stack
    ));
    hex::encode(&h.finalize()[..8])
}

/// Builds the `Config` every engine of this project uses.
///
/// `compile_for` is `Some(target)` for the compiler (Cranelift, explicit target,
/// baseline ISA flags so the artifact runs on any CPU of that architecture) and
/// `None` for the runtime, which only deserializes.
pub fn build_config(
    settings: &EngineSettings,
    compile_for: Option<&Target>,
) -> Result<Config, EngineError> {
    let mut c = Config::new();
    let target = compile_for.cloned().unwrap_or_else(Target::host);
    // Pin the wasm features that can be toggled in every build; the rest (GC,
    // threads, component-model-async) are off because both builds leave those cargo
    // features of wasmtime off.
    c.wasm_component_model(true)
        .wasm_gc(false)
        .wasm_stack_switching(false)
        .wasm_simd(true)
        .wasm_relaxed_simd(false)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_multi_memory(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_memory64(false);
    c.epoch_interruption(true)
        .consume_fuel(settings.fuel)
        .max_wasm_stack(settings.max_wasm_stack)
        // The fiber stack must hold the wasm stack plus host frames.
        .async_stack_size(settings.max_wasm_stack + (1 << 20))
        .memory_init_cow(true);
    c.module_version(ModuleVersionStrategy::Custom(format!(
        "alga-{}",
        fingerprint(&target, settings)
    )))
    .map_err(|e| EngineError::Config(e.to_string()))?;
    #[cfg(feature = "compiler")]
    if let Some(t) = compile_for {
        c.target(t.as_str())
            .map_err(|_| EngineError::UnsupportedTarget(t.to_string()))?;
    }
    #[cfg(not(feature = "compiler"))]
    let _ = compile_for;
    Ok(c)
}

/// How instances are allocated in the engine that was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots, reused across requests.
    Pooling,
    /// `mmap` per instance (the fallback when the pool cannot be reserved).
    OnDemand,
}

/// The runtime engine: one per process.
pub struct RuntimeEngine {
    engine: Engine,
    allocation: Allocation,
    settings: EngineSettings,
    _ticker: EpochTicker,
}

impl RuntimeEngine {
    /// Builds the runtime engine, trying the pooling allocator first, and starts its
    /// epoch ticker.
    pub fn new(settings: &EngineSettings) -> Result<Self, EngineError> {
        let (engine, allocation) = Self::build_engine(settings)?;
        let ticker = EpochTicker::start(&engine, settings.epoch_tick);
        Ok(RuntimeEngine {
            engine,
            allocation,
            settings: settings.clone(),
            _ticker: ticker,
        })
    }

    fn build_engine(settings: &EngineSettings) -> Result<(Engine, Allocation), EngineError> {
        if settings.pooling {
            let mut c = build_config(settings, None)?;
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(settings)));
            match Engine::new(&c) {
                Ok(engine) => return Ok((engine, Allocation::Pooling)),
                Err(e) => tracing::warn!(
                    error = %e,
                    "pooling allocator unavailable; falling back to on-demand allocation"
                ),
            }
        }
        let mut c = build_config(settings, None)?;
        c.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        let engine = Engine::new(&c).map_err(|e| EngineError::Config(e.to_string()))?;
        Ok((engine, Allocation::OnDemand))
    }

    /// The Wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Which allocator is in use.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The fingerprint artifacts must carry to load here.
    pub fn fingerprint(&self) -> String {
        fingerprint(&Target::host(), &self.settings)
    }
}

fn pool_config(s: &EngineSettings) -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::new();
    let n = s.pool_instances;
    // A componentize-js guest has a dozen core instances and a few memories and
    // tables (its adapters and shims).
    p.total_component_instances(n)
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(4))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_core_instances_per_component(32)
        .max_memories_per_component(8)
        // Multi-memory is on in the Config: a module with a second memory must
        // fit a pool slot too (the default of 1 refused every such component).
        .max_memories_per_module(4)
        .max_tables_per_component(16)
        .max_memory_size(s.max_memory_bytes)
        .table_elements(100_000)
        .max_unused_warm_slots(n.min(16))
        // Reset a small memory or table with a memset instead of `madvise`: the
        // decommit made every request pay a TLB shoot-down across cores (4.5 % of
        // `up`'s CPU at c = 64 in `perf`); zeroing 128 KiB costs less.
        .linear_memory_keep_resident(128 << 10)
        .table_keep_resident(16 << 10);
    p
}

/// Advances the engine's epoch on a fixed period, so epoch deadlines act as a
/// wall-clock timeout. Stops when dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine, tick: std::time::Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("alga-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        EpochTicker {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("Cargo.lock at the workspace root");
        let needle = "name = \"wasmtime\"\nversion = \"";
        let at = lock.find(needle).expect("wasmtime in Cargo.lock") + needle.len();
        let version = &lock[at..at + lock[at..].find('"').unwrap()];
        assert_eq!(version, WASMTIME_VERSION, "update engine::WASMTIME_VERSION");
    }

    #[test]
    fn fingerprint_depends_on_target_and_codegen_settings() {
        let s = EngineSettings::default();
        let x = fingerprint(&Target::x86_64_linux(), &s);
        assert_ne!(x, fingerprint(&Target::aarch64_linux(), &s));
        let fuel = EngineSettings {
            fuel: true,
            ..s.clone()
        };
        assert_ne!(x, fingerprint(&Target::x86_64_linux(), &fuel));
        // The pool size does not change code.
        let bigger = EngineSettings {
            pool_instances: 7,
            ..s
        };
        assert_eq!(x, fingerprint(&Target::x86_64_linux(), &bigger));
    }

    #[test]
    fn runtime_engine_builds_and_falls_back_without_pooling() {
        let pooled = RuntimeEngine::new(&EngineSettings {
            pool_instances: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(pooled.allocation(), Allocation::Pooling);
        let plain = RuntimeEngine::new(&EngineSettings {
            pooling: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plain.allocation(), Allocation::OnDemand);
    }
}
