//! Shared by the function crates' emulator tests: cargo-lambda's runtime
//! emulator, the function binaries attached to it, `cargo lambda invoke`, a
//! deployment on moto (the functions run on the AWS backends only), and the
//! sample events of `events/` with the
//! real content hash substituted.
//!
//! The emulator runs with `--only-lambda-apis`: it serves the Lambda runtime API
//! (`/.rt/<function>/2018-06-01/runtime/invocation/next` …) and the invoke API,
//! and the test starts each function binary itself with `AWS_LAMBDA_RUNTIME_API`
//! pointing at it. That way the binary under test is the one cargo built for this
//! test run (`CARGO_BIN_EXE_…`), not a second build with other features.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::moto::AwsEnv;
use crate::signer::Signer;

/// The placeholder hash's hex in `events/*.json`.
const PLACEHOLDER_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Bound on the emulator's start-up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one `cargo lambda invoke` (a cold function start included).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(180);

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("events").is_dir() && p.join("Cargo.lock").is_file())
        .expect("the repository root")
        .to_path_buf()
}

/// The `cargo-lambda` executable: the project venv's (`scripts/test` installs it), else PATH's.
fn cargo_lambda() -> PathBuf {
    let venv = repo().join(".venv/bin/cargo-lambda");
    if venv.is_file() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("cargo-lambda"))
        .find(|p| p.is_file());
    on_path.expect(
        "cargo-lambda not found: run scripts/setup-e2e (scripts/test does) to install it into .venv/",
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) on drop.
pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo lambda watch --only-lambda-apis` on a free loopback port.
pub struct Emulator {
    port: u16,
    // Fields drop in order: the functions go first, so none logs a failed poll
    // of an emulator that is already gone.
    functions: Vec<Killed>,
    /// Each attached function's stdout (its JSON log lines), by name.
    stdout: Vec<(String, tempfile::NamedTempFile)>,
    _process: Killed,
}

impl Emulator {
    /// Starts the emulator and waits (bounded) until it accepts connections.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address"])
            .arg("127.0.0.1")
            .arg("--invoke-port")
            .arg(port.to_string())
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cargo lambda watch");
        let process = Killed(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "cargo lambda watch did not listen on {addr} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Emulator {
            port,
            functions: Vec::new(),
            stdout: Vec::new(),
            _process: process,
        }
    }

    /// Starts a function binary against the emulator's runtime API, under `name`
    /// (the name `cargo lambda invoke` uses: a binary of the workspace).
    pub fn attach<K, V>(&mut self, name: &str, binary: &str, env: impl IntoIterator<Item = (K, V)>)
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(binary);
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{}/.rt/{name}", self.port),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env_remove("ALGA_BACKEND")
        .env_remove("SIGNING_TRUST_BUNDLE")
        .env_remove("RUNNER_SERVICE_TOKEN_SECRET_ID")
        .env_remove("ALGA_PUBLISH_TOKEN_SECRET_ID")
        .stdin(Stdio::null());
        let log = tempfile::NamedTempFile::new().expect("a log file");
        cmd.stdout(log.reopen().expect("the log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.functions
            .push(Killed(cmd.spawn().expect("spawn the function binary")));
        self.stdout.push((name.to_string(), log));
    }

    /// The JSON log lines a function wrote to stdout so far (non-JSON lines skipped).
    pub fn log_lines(&self, name: &str) -> Vec<serde_json::Value> {
        let (_, log) = self
            .stdout
            .iter()
            .find(|(n, _)| n == name)
            .expect("an attached function");
        std::fs::read_to_string(log.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `cargo lambda invoke <name> --data-file <payload>`; the function's JSON answer.
    pub fn invoke(&self, name: &str, payload: &serde_json::Value) -> serde_json::Value {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_vec(payload).unwrap()).unwrap();
        let mut child = Command::new(cargo_lambda())
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .arg("--invoke-port")
            .arg(self.port.to_string())
            .arg("--output-format")
            .arg("json")
            .arg("--data-file")
            .arg(file.path())
            .arg(name)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cargo lambda invoke");
        // Read both pipes on threads so a chatty child never blocks on a full pipe.
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > INVOKE_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cargo lambda invoke {name} took longer than {INVOKE_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert!(
            status.success(),
            "cargo lambda invoke {name} failed ({status})\nstdout: {out}\nstderr: {err}"
        );
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("invoke {name}: not JSON ({e}): {out}\nstderr: {err}"))
    }
}

/// `events/<file>` with every placeholder hash replaced by `hex` (in base64
/// bodies too).
pub fn event(file: &str, hex: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("events").join(file)).unwrap();
    let mut value: serde_json::Value =
        serde_json::from_str(&text.replace(PLACEHOLDER_HEX, hex)).unwrap();
    if value["isBase64Encoded"] == true
        && let Some(body) = value["body"].as_str()
    {
        let b64 = base64::engine::general_purpose::STANDARD;
        let decoded = String::from_utf8(b64.decode(body).unwrap()).unwrap();
        value["body"] = b64.encode(decoded.replace(PLACEHOLDER_HEX, hex)).into();
    }
    value
}

/// Decodes an HTTP-shaped function answer's body (base64 when flagged).
pub fn body_bytes(response: &serde_json::Value) -> Vec<u8> {
    let body = response["body"].as_str().unwrap_or_default();
    if response["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

/// A response header, by case-insensitive name.
pub fn header<'a>(response: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    response["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// Packs and signs an extension directory: `(bundle bytes, signature sidecar JSON)`.
pub fn signed_bundle(dir: &Path, signer: &Signer) -> (Vec<u8>, String) {
    use runtime_core::bundle::archive::{self, ArchiveLimits};
    let bundle = archive::pack_dir(dir, &ArchiveLimits::default()).unwrap();
    let signature = signer.sign(&bundle);
    (bundle, signature)
}

/// What a function under the emulator runs against: a fresh bucket, table and
/// secret prefix on the shared moto, and a signing key its functions trust. The
/// runtime that built the SDK clients stays here, so the test can read the
/// backends afterwards with [`Deployment::block_on`].
pub struct Deployment {
    /// The AWS environment on moto.
    pub aws: AwsEnv,
    /// The trusted publisher key.
    pub signer: Signer,
    runtime: tokio::runtime::Runtime,
}

impl Deployment {
    /// A fresh, empty deployment.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let aws = runtime.block_on(AwsEnv::new());
        Deployment {
            aws,
            signer: Signer::new("e2e"),
            runtime,
        }
    }

    /// Runs `f` on the runtime that owns the SDK clients.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The environment a function binary needs: the AWS settings (as the SAM
    /// template sets them) and the trust bundle holding this deployment's key.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = self.aws.function_env();
        env.push(("SIGNING_TRUST_BUNDLE".into(), self.signer.trust.to_json()));
        env
    }

    /// Publishes the example extension (examples/hello, built by
    /// `scripts/build-example`) and installs it for `tenant` with every capability
    /// it requests; returns the content hash's hex.
    pub fn publish_example(&self, tenant: &str) -> String {
        use runtime_core::store::InstallRequest;
        let example = repo().join("examples/hello");
        assert!(
            example.join("dist/main.wasm").is_file(),
            "examples/hello/dist/main.wasm missing: run scripts/build-example (scripts/test does)"
        );
        let (bundle, _) = signed_bundle(&example, &self.signer);
        let backends = &self.aws.backends;
        self.block_on(async {
            // Only this machine's target: the functions run here, and one compile is enough.
            let publisher = self.signer.publisher(backends);
            let published = self.signer.publish(&publisher, &bundle).await;
            let grants = published
                .manifest
                .capabilities
                .iter()
                .map(|c| c.to_string())
                .collect();
            backends
                .registry
                .install(&InstallRequest {
                    tenant: tenant.to_string(),
                    extension_id: published.manifest.name.clone(),
                    version: Some(published.manifest.version.to_string()),
                    grants,
                    config: Default::default(),
                    ..Default::default()
                })
                .await
                .unwrap();
            published.content_hash.hex()
        })
    }
}

impl Default for Deployment {
    fn default() -> Self {
        Self::new()
    }
}
