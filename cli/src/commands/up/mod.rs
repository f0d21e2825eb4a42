//! `alga-lambda up [DIR]`: builds, publishes and installs an extension into the
//! local data directory and serves execute, ui-assets and publish on localhost
//! through the same handler functions as the Lambdas, like `spin up` or
//! `wrangler dev`.

mod bus;
mod cron;
mod dev_publish;
mod guard;
mod host_page;
pub mod log;
mod server;
mod sse;

pub use bus::EVENTS_PATH;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use runtime_core::RuntimeConfig;
use runtime_core::backends::Backends;
use runtime_core::engine::Target;
use runtime_core::gateway::{ExecuteAuth, GatewaySettings};
use runtime_core::ui::UiSettings;
use tokio::net::TcpListener;

/// Arguments of `up`.
#[derive(Args)]
pub struct UpArgs {
    /// The extension directory (manifest.json, dist/main.wasm or a package.json that builds it, ui/).
    #[arg(default_value = "examples/hello")]
    dir: PathBuf,
    /// Address to listen on (loopback by default: the dev identity is trusted).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Another `Host` name to answer besides loopback names and `--host`
    /// (repeatable; requests naming any other host are refused: DNS rebinding).
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "ALGA_UP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Tenant the extension is installed for and the host page runs as.
    #[arg(long, default_value = "dev")]
    tenant: String,
    /// User id the local authorizer vouches for.
    #[arg(long, default_value = "dev-user")]
    user_id: String,
    /// The user's e-mail.
    #[arg(long, default_value = "dev@example.com")]
    user_email: String,
    /// The user's name.
    #[arg(long, default_value = "Dev User")]
    user_name: String,
    /// `internal` or `client`.
    #[arg(long, default_value = "internal")]
    user_type: String,
    /// Grant only these capabilities (default: all the manifest requests).
    #[arg(long = "grant", value_name = "CAP")]
    grants: Vec<String>,
    /// Service token for POST /v1/execute (default: `RUNNER_SERVICE_TOKEN`, else generated).
    #[arg(long, env = "RUNNER_SERVICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Rebuild, republish and reinstall when the extension's files change.
    #[arg(long)]
    watch: bool,
    /// Print each request as the JSON lines the Lambda functions log
    /// (`alga::request`, `alga::guest`) instead of a readable line.
    #[arg(long)]
    json: bool,
}

impl UpArgs {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }
}

/// `up`'s request body limit unless `ALGA_REQUEST_MAX_BYTES` says otherwise: what
/// Alga's gateway accepts (10 MB).
const UP_REQUEST_BODY_MAX: usize = 10 << 20;

/// Runs `up`.
pub async fn up(args: UpArgs, data: &Path) -> crate::Outcome {
    log::start(!args.json);
    let mut config = RuntimeConfig::from_env()?;
    let body_max_set = std::env::var_os("ALGA_REQUEST_MAX_BYTES").is_some();
    if !body_max_set {
        // Alga's gateway forwards bodies up to 10 MB; locally no Lambda payload
        // limit stands in the way of taking what it sends.
        config.limits.request_body_max = UP_REQUEST_BODY_MAX;
    }
    let dir = args.dir.clone();
    // Taken before the build: an edit made while the first build and publish run
    // (a minute for the JS example) is a change for --watch, not the baseline.
    let sources = dev_publish::newest_source(&dir);
    dev_publish::build(&dir)?;
    let backends = crate::backends::local(data)?;
    let key = dev_publish::dev_key(data)?;
    // Locally only this machine's target is needed; compiling one halves the wait.
    let publisher = backends
        .publisher(&config)?
        .with_targets(vec![Target::host()]);
    let grants = (!args.grants.is_empty()).then_some(args.grants.as_slice());
    let deployed = dev_publish::deploy(
        &dir,
        data,
        &backends,
        &publisher,
        &key,
        &args.tenant,
        grants,
    )
    .await?;

    let token = args
        .token
        .clone()
        .unwrap_or_else(runtime_core::gateway::new_request_id);
    let mut settings = GatewaySettings::from_env()?;
    if !body_max_set {
        settings.body_max = UP_REQUEST_BODY_MAX;
    }
    settings.execute_auth = ExecuteAuth::Token(Some(token.clone()));
    if settings.publish_token.is_none() {
        settings.publish_token = Some(token.clone());
    }
    let claims = std::collections::HashMap::from([
        (settings.tenant_claim.clone(), args.tenant.clone()),
        (settings.user_claim.clone(), args.user_id.clone()),
        ("email".to_string(), args.user_email.clone()),
        ("name".to_string(), args.user_name.clone()),
        ("user_type".to_string(), args.user_type.clone()),
    ]);
    let publish = fn_publish::PublishFunction::new(
        backends.clone(),
        backends
            .publisher(&config)?
            .with_targets(vec![Target::host()]),
        settings.publish_token.clone(),
        "uploads/".into(),
    );
    let execute = fn_execute::ExecuteFunction::new(backends.clone(), &config, settings)?;
    let bus = bus::start(&backends, execute.gateway().clone());
    let site = Arc::new(server::Site {
        execute,
        ui: fn_ui_assets::UiAssetsFunction::new(&backends, UiSettings::from_env()?),
        publish,
        backends: backends.clone(),
        claims,
        extension_id: deployed.manifest.name.clone(),
        tenant: args.tenant.clone(),
        bus,
        hosts: guard::HostPolicy::new(&args.host, &args.allowed_hosts),
        token: token.clone(),
    });

    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    print_banner(&deployed, addr, &token, &args.tenant);
    // Schedules fire in-process, as EventBridge Scheduler fires them on AWS.
    tokio::spawn(cron::run(site.clone(), cron::Clock::from_env()?));

    if args.watch {
        let watch = Watch {
            dir: dir.clone(),
            data: data.to_path_buf(),
            backends,
            publisher,
            key,
            tenant: args.tenant.clone(),
            grants: grants.map(<[String]>::to_vec),
        };
        tokio::spawn(watch.run(sources));
    }
    let gateway = site.execute.gateway().clone();
    tokio::select! {
        served = server::serve(listener, site) => served?,
        // Ctrl-C: the execution records still queued are written before the exit.
        _ = tokio::signal::ctrl_c() => {
            if let Err(e) = gateway.flush_records().await {
                eprintln!("up: execution records not all written: {e}");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_banner(d: &dev_publish::Deployed, addr: std::net::SocketAddr, token: &str, tenant: &str) {
    let base = format!("http://{addr}");
    let ext = &d.manifest.name;
    let hash = &d.install.content_hash;
    let first = d
        .manifest
        .endpoints()
        .iter()
        .find(|e| e.method == "GET" && !e.has_params())
        .map(|e| e.path.clone())
        .unwrap_or_else(|| "/".into());
    println!(
        "{ext} {} ({hash}) is installed for tenant {tenant}",
        d.manifest.version
    );
    println!();
    println!("  host page     {base}/");
    println!("  direct route  {base}/api/ext/{ext}{first}");
    if let Some(ui) = &d.manifest.ui {
        let entry = ui.entry.strip_prefix("ui/").unwrap_or(&ui.entry);
        println!("  ui            {base}/ext-ui/{ext}/{hash}/{entry}");
    }
    println!("  execute API   POST {base}/v1/execute   (header x-runner-service-token: {token})");
    println!("  publish API   POST {base}/v1/publish   (header authorization: Bearer {token})");
    if !d.manifest.events.is_empty() {
        let topic = &d.manifest.events[0].topic;
        println!("  events        alga-lambda emit {topic} '{{}}' --url {base}");
    }
    println!();
    println!("ready on {base}");
}

/// What `--watch` rebuilds, republishes and reinstalls.
struct Watch {
    dir: PathBuf,
    data: PathBuf,
    backends: Backends,
    publisher: runtime_core::publish::Publisher,
    key: runtime_core::bundle::signature::SigningKey,
    tenant: String,
    grants: Option<Vec<String>>,
}

impl Watch {
    /// Polls the sources every 500 ms and redeploys when they differ from `seen`.
    async fn run(self, mut seen: Option<std::time::SystemTime>) {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = dev_publish::newest_source(&self.dir);
            if now == seen {
                continue;
            }
            seen = now;
            eprintln!("up: change detected, rebuilding");
            match self.redeploy().await {
                Ok(d) => eprintln!(
                    "up: {} {} ({}) is live",
                    d.manifest.name, d.manifest.version, d.install.content_hash
                ),
                Err(e) => {
                    eprintln!("up: rebuild failed, still serving the previous version: {e:#}")
                }
            }
        }
    }

    async fn redeploy(&self) -> anyhow::Result<dev_publish::Deployed> {
        dev_publish::build(&self.dir)?;
        dev_publish::deploy(
            &self.dir,
            &self.data,
            &self.backends,
            &self.publisher,
            &self.key,
            &self.tenant,
            self.grants.as_deref(),
        )
        .await
    }
}
