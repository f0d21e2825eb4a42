//! An executor wired to in-memory backends with artifacts precompiled the way
//! publish does it, and the requests the tests send it.

use std::sync::Arc;

use runtime_core::Executor;
use runtime_core::artifact::{ArtifactRef, ContentHash};
use runtime_core::config::RuntimeConfig;
use runtime_core::engine::Target;
use runtime_core::execute::{ExecuteRequest, Outcome, RoutingHeaders, StaticResolver};
use runtime_core::host::HostServices;
use stores_local::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};

/// An executor over in-memory backends.
pub struct Harness {
    pub executor: Executor,
    pub blobs: Arc<MemoryBlobStore>,
    pub resolver: Arc<StaticResolver>,
    pub kv: Arc<MemoryKvStore>,
    pub secrets: Arc<MemorySecretStore>,
    pub config: RuntimeConfig,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(test_config())
    }

    pub fn with_config(config: RuntimeConfig) -> Self {
        Self::with_network(config, None)
    }

    /// An executor whose outbound network is `network` (default: from `config`).
    pub fn with_network(
        config: RuntimeConfig,
        network: Option<runtime_core::host::Network>,
    ) -> Self {
        let blobs = Arc::new(MemoryBlobStore::default());
        let resolver = Arc::new(StaticResolver::default());
        let kv = Arc::new(MemoryKvStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let executor = Executor::new(
            &config,
            blobs.clone(),
            resolver.clone(),
            HostServices {
                kv: kv.clone(),
                secrets: secrets.clone(),
            },
        )
        .expect("executor");
        let executor = match network {
            Some(n) => executor.with_network(n),
            None => executor,
        };
        Harness {
            executor,
            blobs,
            resolver,
            kv,
            secrets,
            config,
        }
    }

    /// Precompiles `wasm` for this host (as publish does) and registers it; returns
    /// the content hash to name in requests.
    pub async fn publish(&self, wasm: &[u8]) -> (ContentHash, ArtifactRef) {
        let content = ContentHash::of(wasm);
        let artifact = runtime_core::publish::precompile_and_store(
            self.blobs.as_ref(),
            content,
            wasm,
            &Target::host(),
            &self.config.engine,
        )
        .await
        .expect("precompile");
        self.resolver.register(artifact.clone());
        (content, artifact)
    }

    pub async fn run(&self, req: serde_json::Value) -> Outcome {
        run_on(&self.executor, req).await
    }

    /// Runs a plain `GET /` on `content` and asserts it answers 200: after a
    /// hostile request, the next one works.
    pub async fn assert_next_request_works(&self, content: &ContentHash) {
        let out = self
            .run(request(content, "GET", "/", serde_json::json!({})))
            .await;
        assert_eq!(
            out.envelope.status, 200,
            "the next request: {:?}",
            out.envelope
        );
    }
}

/// Runs a `/v1/execute`-shaped request on `executor`, routed to its own context's
/// tenant and extension.
pub async fn run_on(executor: &Executor, req: serde_json::Value) -> Outcome {
    let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).unwrap()).unwrap();
    let routing = RoutingHeaders {
        tenant: Some(req.context.tenant_id.clone()),
        extension: Some(req.context.extension_id.clone()),
        request_id: None,
    };
    executor.execute(&routing, &req).await
}

/// Small pools and a short deadline so limit tests run fast.
pub fn test_config() -> RuntimeConfig {
    let mut c = RuntimeConfig::default();
    c.engine.pool_instances = 8;
    c
}

/// A request for `content` with `extra` merged into the top level.
pub fn request(
    content: &ContentHash,
    method: &str,
    path: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "context": {
            "tenant_id": "tenant-a",
            "extension_id": "com.example.test",
            "content_hash": content.to_string(),
            "install_id": "install-1",
            "request_id": "req-1"
        },
        "http": { "method": method, "path": path }
    });
    merge(&mut v, extra);
    v
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Current resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Runs the calling test again, alone, in a fresh process of this test binary,
/// so that a process-wide measure (RSS) sees only it and not the tests running
/// beside it in the crate's one test binary. Returns `true` in that process (go
/// on with the test) and `false` in the caller once the child has passed.
/// `test` is the test's full path (`module::name`).
pub fn in_own_process(test: &str) -> bool {
    in_own_process_with(test, &[])
}

/// [`in_own_process`] with `env` set in the fresh process (settings read from
/// the environment, such as `SIGNING_TRUST_BUNDLE`, without touching this
/// process's environment while other tests run).
pub fn in_own_process_with(test: &str, env: &[(&str, &str)]) -> bool {
    const MARK: &str = "ALGA_TEST_OWN_PROCESS";
    if std::env::var(MARK).as_deref() == Ok(test) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(MARK, test)
        .envs(env.iter().copied())
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{test} failed in its own process:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run in its own process:\n{stdout}"
    );
    // What the test printed there (a table of measurements), for `--nocapture`.
    print!("{stdout}");
    false
}
