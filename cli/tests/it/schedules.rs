//! `alga-lambda up` fires schedules: a manifest's schedule and one a guest
//! creates through `alga:extension/scheduler` both reach their endpoint with
//! their JSON payload, through the execute path, on a simulated clock
//! (`ALGA_UP_CRON_TICK_MS`: one minute per tick) instead of real minutes. The
//! manifest's schedule is in `Europe/Berlin`: `up` accepts an IANA zone and its
//! cron reads the schedule on that zone's clock (the exact instants across
//! daylight-saving changes are unit tests in `runtime_core::schedule`).

use test_support::guests;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runtime_core::store::KvScope;
use test_support::http_client::send;

const EXT: &str = "com.example.sched";

const MANIFEST: &str = r#"{
  "name": "com.example.sched",
  "version": "1.0.0",
  "runtime": "wasm-js@1",
  "capabilities": ["cap:storage.kv", "cap:scheduler.manage"],
  "api": {"endpoints": [
    {"method": "POST", "path": "/api/create", "handler": "h"},
    {"method": "POST", "path": "/api/record", "handler": "h"}
  ]},
  "schedules": [
    {"endpoint": "POST /api/record", "cron": "*/5 * * * *", "timezone": "Europe/Berlin", "payload": {"from": "manifest"}}
  ]
}"#;

struct Up(Child, SocketAddr);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(ext: &Path, data: &Path) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .args(["up", ext.to_str().unwrap(), "--port", "0", "--token", "t"])
        .args(["--tenant", "acme", "--data", data.to_str().unwrap()])
        .env("ALGA_UP_CRON_TICK_MS", "200")
        .env_remove("ALGA_BACKEND")
        .env_remove("RUNNER_SERVICE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn alga-lambda up");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // Keeps draining stdout (the cron prints a line per firing).
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("ready on http://") {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("up became ready");
    Up(child, addr)
}

/// The values the guest recorded (key = the firing's request id), once some
/// value equals `want`; panics after a generous bound.
async fn wait_for(data: &Path, want: &str) -> Vec<(String, String)> {
    let backends = stores_local::backends(data).unwrap();
    let install = backends
        .registry
        .get_install("acme", EXT)
        .await
        .unwrap()
        .expect("installed by up");
    let scope = KvScope {
        tenant: "acme".into(),
        install_id: install.install_id,
    };
    let started = Instant::now();
    loop {
        let page = backends.kv.list(&scope, "sched", None).await.unwrap();
        let seen: Vec<(String, String)> = page
            .entries
            .iter()
            .map(|e| {
                (
                    e.key.clone(),
                    String::from_utf8_lossy(&e.value).into_owned(),
                )
            })
            .collect();
        if seen.iter().any(|(_, v)| v == want) {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no firing with {want} yet; recorded: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_fires_manifest_and_guest_created_schedules_with_their_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let ext = dir.path().join("ext");
    std::fs::create_dir_all(ext.join("dist")).unwrap();
    std::fs::write(ext.join("manifest.json"), MANIFEST).unwrap();
    std::fs::write(ext.join("dist/main.wasm"), guests::scheduler_guest()).unwrap();
    let data = dir.path().join("data");
    let up = start(&ext, &data);

    // The manifest's schedule was created at install and fires with its payload.
    let seen = wait_for(&data, r#"{"from":"manifest"}"#).await;
    for (request_id, _) in &seen {
        assert_eq!(request_id.len(), 32, "a fresh request id: {request_id}");
    }

    // A guest creates a schedule through the scheduler interface (direct route,
    // dev identity); the cron fires it with the guest's payload. A text body needs
    // up's token (CSRF: JSON or the token).
    let r = send(
        up.1,
        "POST",
        &format!("/api/ext/{EXT}/api/create"),
        &[
            ("content-type", "text/plain"),
            ("x-runner-service-token", "t"),
        ],
        b"POST /api/record",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.text().starts_with("sch_"), "{}", r.text());
    let seen = wait_for(&data, r#"{"k":1}"#).await;
    // Only the two schedules fired, each time with its own payload as the body.
    for (_, v) in &seen {
        assert!(v == r#"{"from":"manifest"}"# || v == r#"{"k":1}"#, "{v}");
    }
}
