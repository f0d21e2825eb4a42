//! A real moto server for AWS tests, started by the tests themselves.
//!
//! moto comes from the project venv that `scripts/test` installs. By default the
//! venv's Python runs `scripts/moto_server_serial.py` (moto_server with requests
//! serialised: moto 5.2.5's DynamoDB transactions are not thread-safe, see that
//! file); `ALGA_MOTO_SERVER` names another server binary taking `-H HOST -p PORT`
//! (e.g. `.venv/bin/moto_server`). It runs under a
//! tiny shell watchdog that kills it when our end of its stdin closes — when the
//! `Moto` is dropped or stopped, and also when the test process dies — so no moto
//! outlives its test binary. It is killed with SIGKILL: moto has nothing to save, and
//! after a large test its orderly exit was measured to take many seconds. Tests share one server per process (`Moto::shared`)
//! and stay independent by creating their own bucket, table and secret prefix.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runtime_core::backends::Backends;
pub use stores_aws::RequestCounter;
use stores_aws::{AwsClients, AwsLimits, AwsOverrides, AwsSettings};

/// How long moto may take to answer after it is spawned (generous: a cold Python
/// start on a loaded 2-core machine takes a few seconds).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running moto server.
pub struct Moto {
    child: Option<(Child, ChildStdin)>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _log: tempfile::NamedTempFile,
    /// Where moto's recorder appends every request before serving it, if journaled.
    journal: Option<PathBuf>,
}

/// The repository root, found upwards from the including crate (this file is
/// shared by crates at different depths).
fn root() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("scripts/moto_server_serial.py").is_file())
        .expect("the repository root (scripts/moto_server_serial.py)")
        .display()
        .to_string()
}

/// The program and its leading arguments (before `-H HOST -p PORT`).
fn server_command() -> (PathBuf, Vec<String>) {
    match std::env::var_os("ALGA_MOTO_SERVER") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), vec![]),
        _ => (
            PathBuf::from(format!("{}/.venv/bin/python", root())),
            vec![format!("{}/scripts/moto_server_serial.py", root())],
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Moto {
    /// Starts moto on a free port.
    pub fn start() -> Moto {
        let mut m = Moto {
            child: None,
            port: free_port(),
            _log: tempfile::NamedTempFile::new().expect("log file"),
            journal: None,
        };
        m.spawn();
        m
    }

    /// Starts moto on a free port with its recorder on: every request is appended
    /// to `journal` (one JSON line) before moto serves it — inside the serialising
    /// lock, so in the order served. What moto acknowledged is therefore in the
    /// journal, and [`Moto::crash_and_recover`] can bring it back after a SIGKILL:
    /// moto plays a backend that keeps a write-ahead log.
    pub fn start_journaled(journal: &std::path::Path) -> Moto {
        let mut m = Moto {
            child: None,
            port: free_port(),
            _log: tempfile::NamedTempFile::new().expect("log file"),
            journal: Some(journal.to_path_buf()),
        };
        m.spawn();
        m
    }

    /// The server every test of this process shares.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let (path, lead) = server_command();
        // The venv's moto_server shows that moto is installed there.
        let probe = if lead.is_empty() {
            path.clone()
        } else {
            PathBuf::from(format!("{}/.venv/bin/moto_server", root()))
        };
        if !path.exists() || !probe.exists() {
            panic!(
                "moto is not installed ({} missing) — the AWS tests need it. Run scripts/test \
                 (it installs moto[server]==5.2.5 into .venv/), or set ALGA_MOTO_SERVER to a \
                 moto_server binary.",
                probe.display()
            );
        }
        let log = self._log.reopen().expect("log file");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"port=$1; shift; "$@" -H 127.0.0.1 -p "$port" & pid=$!; read _ignored; kill -KILL "$pid"; wait "$pid""#)
            .arg("sh")
            .arg(self.port.to_string())
            .arg(&path)
            .args(&lead)
            .envs(self.journal.iter().flat_map(|j| {
                [
                    ("MOTO_ENABLE_RECORDING", std::ffi::OsStr::new("True")),
                    ("MOTO_RECORDER_FILEPATH", j.as_os_str()),
                ]
            }))
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "moto_server exited ({status}) before answering; its log: {}",
                    std::fs::read_to_string(self._log.path()).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "moto_server did not answer on port {} within {START_DEADLINE:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some((child, stdin));
    }

    /// Stops the server (its state is gone: moto keeps everything in memory).
    pub fn stop(&mut self) {
        if let Some((mut child, mut stdin)) = self.child.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Freezes the server with SIGSTOP: it keeps its state and its port, and the
    /// kernel still accepts connections, but nothing answers (a hung backend).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again, state intact.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Sends `sig` to every process under the watchdog shell (moto and any helper
    /// it spawned).
    fn signal(&self, sig: &str) {
        let (child, _) = self.child.as_ref().expect("moto is running");
        let pids = descendants(child.id());
        assert!(
            !pids.is_empty(),
            "moto's process was not found under its watchdog"
        );
        let status = Command::new("kill")
            .arg(sig)
            .args(pids.iter().map(u32::to_string))
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {pids:?}: {status}");
    }

    /// Starts a fresh, empty server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts a new server on the same port rebuilt from the journal (after
    /// [`Moto::kill`]; a running one is killed first): every journaled request is
    /// sent again, in order, before this returns. The port answers as soon as the
    /// new server is up, so clients that call during the replay see a partial
    /// state; a test holds them off until this returns. The new server journals the
    /// replayed requests afresh, so it can crash and recover again. Panics unless
    /// started with [`Moto::start_journaled`].
    pub fn recover(&mut self) {
        let journal = self.journal.clone().expect("a journaled moto");
        self.stop();
        let replayed = journal.with_extension("replaying");
        std::fs::rename(&journal, &replayed).expect("move the journal aside");
        self.spawn();
        // moto's own recorder replays a journal; it runs here, in a process of its
        // own, because asking the server to replay into itself would deadlock on
        // the lock that serialises its requests.
        let out = Command::new(format!("{}/.venv/bin/python", root()))
            .arg("-c")
            .arg(
                "import sys\n\
                 from moto.moto_api._internal.recorder.models import Recorder\n\
                 r = Recorder()\n\
                 r._location = sys.argv[1]\n\
                 r.replay_recording(target_host=sys.argv[2])\n",
            )
            .arg(&replayed)
            .arg(self.url())
            .output()
            .expect("run moto's replay");
        assert!(
            out.status.success(),
            "replaying moto's journal failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&replayed);
    }

    /// Kills the server (SIGKILL) and leaves the port closed; requests are refused.
    pub fn kill(&mut self) {
        self.stop();
    }
}

/// Every process below `pid`, from `/proc/<pid>/task/*/children` (Linux).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A name no other test in any process uses: `<prefix>-<pid>-<n>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Settings for a fresh bucket, table and secret prefix on `moto`, with fake
/// credentials and region set explicitly (the developer's environment is not used).
pub fn settings(moto: &Moto) -> AwsSettings {
    let mut s = AwsSettings::new(unique("bucket"), unique("table"));
    s.secrets_prefix = format!("{}/", unique("alga"));
    s.s3_force_path_style = true;
    s.overrides = AwsOverrides {
        endpoint_url: Some(moto.url()),
        region: Some("us-east-1".into()),
        credentials: Some(("testing".into(), "testing".into())),
        ..AwsOverrides::default()
    };
    s.limits = AwsLimits {
        // Bounded so a stopped moto fails fast (the fault test relies on it).
        operation_timeout: Duration::from_secs(10),
        ..AwsLimits::default()
    };
    s
}

/// Creates the bucket and the table that `settings` name.
pub async fn provision(settings: &AwsSettings) -> AwsClients {
    let clients = AwsClients::new(settings).await;
    clients
        .s3
        .create_bucket()
        .bucket(&settings.bucket)
        .send()
        .await
        .expect("create bucket");
    stores_aws::create_table(&clients.dynamodb, &settings.table)
        .await
        .expect("create table");
    clients
}

/// Everything a test needs: its own bucket, table and secret prefix on the shared moto.
pub struct AwsEnv {
    pub settings: AwsSettings,
    pub clients: AwsClients,
    pub backends: Backends,
}

impl AwsEnv {
    /// A fresh environment on the process's shared moto.
    pub async fn new() -> AwsEnv {
        Self::on(Moto::shared()).await
    }

    /// The environment a function binary reads to run on this bucket, table and
    /// secret prefix (what the SAM template sets on Lambda), with moto's endpoint
    /// and fake credentials.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let s = &self.settings;
        let (key_id, secret) = s.overrides.credentials.clone().unwrap_or_default();
        [
            ("ALGA_BACKEND", "aws".to_string()),
            ("ALGA_BUCKET", s.bucket.clone()),
            ("ALGA_UPLOAD_BUCKET", s.upload_bucket.clone()),
            ("ALGA_TABLE", s.table.clone()),
            ("ALGA_SECRETS_PREFIX", s.secrets_prefix.clone()),
            ("ALGA_EVENT_BUS", s.event_bus.clone()),
            ("ALGA_S3_FORCE_PATH_STYLE", "true".to_string()),
            (
                "AWS_ENDPOINT_URL",
                s.overrides.endpoint_url.clone().unwrap_or_default(),
            ),
            ("AWS_REGION", s.overrides.region.clone().unwrap_or_default()),
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A fresh environment on `moto` whose every SDK client counts the requests
    /// it sends (provisioning included: `take` the counts before measuring).
    pub async fn counted(moto: &Moto) -> (AwsEnv, RequestCounter) {
        let counter = RequestCounter::new();
        let mut settings = settings(moto);
        settings.overrides.interceptors.push(counter.interceptor());
        let clients = provision(&settings).await;
        let backends = stores_aws::backends(&settings).await;
        let env = AwsEnv {
            settings,
            clients,
            backends,
        };
        (env, counter)
    }

    /// A fresh environment on `moto`.
    pub async fn on(moto: &Moto) -> AwsEnv {
        let settings = settings(moto);
        let clients = provision(&settings).await;
        let backends = stores_aws::backends(&settings).await;
        AwsEnv {
            settings,
            clients,
            backends,
        }
    }
}
