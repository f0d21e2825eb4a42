//! The soak run behind `scripts/soak`: 100,000 requests at concurrency 64 against a
//! release `alga-lambda up`, a mix of the WAT hello, the JavaScript example and 5 %
//! hostile guests (a spinning loop, a memory bomb, an output past the limit), then a
//! short phase with a pool smaller than the concurrency (slot exhaustion must be a
//! 503 with a code, never a crash).
//!
//! Every response is checked against the status and error code the execute contract
//! documents for its guest; the server's resident memory and open descriptors are
//! sampled every second from /proc. The report (`OUT/soak.json`, `OUT/soak.md`) gives
//! p50 / p99 per guest, the statuses, and the RSS slope after warm-up.
//!
//! `soak ALGA_LAMBDA JS_EXAMPLE_DIR OUT_DIR [--requests N] [--concurrency C]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use test_support::guests;

/// Deadline `up` gives each request in the soak: a spinning guest holds a slot this
/// long, so it bounds how much of the run the hostile 5 % occupy.
const DEADLINE_MS: u64 = 1000;
/// Response limit in the soak; the huge guest answers twice this.
const RESPONSE_MAX: u32 = 1 << 20;
/// Share of the run (by requests) treated as warm-up for the RSS slope.
const WARM_UP_SHARE: f64 = 0.2;

/// One kind of request in the mix and what the contract says it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Hello,
    Js,
    Spin,
    Bomb,
    Huge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Hello => "wat-hello",
            Kind::Js => "js-example",
            Kind::Spin => "hostile-spin",
            Kind::Bomb => "hostile-memory-bomb",
            Kind::Huge => "hostile-huge-output",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Hello => "/api/ext/com.example.soak-hello/run",
            Kind::Js => "/api/ext/com.example.hello/api/hello",
            Kind::Spin => "/api/ext/com.example.soak-spin/run",
            Kind::Bomb => "/api/ext/com.example.soak-bomb/run",
            Kind::Huge => "/api/ext/com.example.soak-huge/run",
        }
    }

    /// The documented answer: status and error code (`None`: a 200 from the guest).
    fn expected(self) -> (u16, Option<&'static str>) {
        match self {
            Kind::Hello | Kind::Js => (200, None),
            Kind::Spin => (504, Some("timeout")),
            Kind::Bomb => (500, Some("memory_limit")),
            Kind::Huge => (502, Some("output_too_large")),
        }
    }

    /// The mix: 95 % well-behaved (two thirds WAT hello, a third the JS example),
    /// 5 % hostile (1 % spin, 2 % memory bomb, 2 % huge output).
    fn of(i: u64) -> Kind {
        match i % 100 {
            0 => Kind::Spin,
            1 | 2 => Kind::Bomb,
            3 | 4 => Kind::Huge,
            n if n % 3 == 0 => Kind::Js,
            _ => Kind::Hello,
        }
    }
}

/// What one request came back with.
struct Outcome {
    kind: Kind,
    status: u16,
    code: Option<String>,
    latency: Duration,
}

/// A resource sample of the server process.
#[derive(Clone, Copy)]
struct Sample {
    at_s: f64,
    done: u64,
    rss_kib: u64,
    fds: u64,
}

struct Args {
    alga: PathBuf,
    js: PathBuf,
    out: PathBuf,
    requests: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut rest: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str, default: u64| -> u64 {
        match rest.iter().position(|a| a == flag) {
            Some(i) => {
                let v = rest.remove(i + 1);
                rest.remove(i);
                v.parse()
                    .unwrap_or_else(|_| panic!("{flag} takes a number"))
            }
            None => default,
        }
    };
    let requests = take("--requests", 100_000);
    let concurrency = take("--concurrency", 64) as usize;
    let [alga, js, out] = rest.as_slice() else {
        eprintln!(
            "usage: soak ALGA_LAMBDA JS_EXAMPLE_DIR OUT_DIR [--requests N] [--concurrency C]"
        );
        std::process::exit(2);
    };
    Args {
        alga: alga.into(),
        js: js.into(),
        out: out.into(),
        requests,
        concurrency,
    }
}

/// Writes a WAT extension directory with one `GET /run` endpoint.
fn write_extension(root: &Path, name: &str, component: Vec<u8>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::create_dir_all(dir.join("ui")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        format!(
            r#"{{"name":"com.example.{name}","version":"1.0.0","runtime":"wasm-js@1",
  "ui":{{"type":"iframe","entry":"ui/index.html"}},
  "api":{{"endpoints":[{{"method":"GET","path":"/run","handler":"dist/main.wasm"}}]}}}}
"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("dist/main.wasm"), component).unwrap();
    std::fs::write(dir.join("ui/index.html"), "<!doctype html><p>soak</p>\n").unwrap();
    dir
}

/// Runs the CLI and fails loudly with its output.
fn cli(alga: &Path, data: &Path, args: &[&str]) {
    let out = Command::new(alga)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run alga-lambda");
    assert!(
        out.status.success(),
        "alga-lambda {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packs, signs, publishes and installs `dir` for tenant `dev`.
fn deploy(alga: &Path, data: &Path, key: &Path, dir: &Path, id: &str) {
    let bundle = data.join(format!("{id}.tar.zst"));
    let b = bundle.to_str().unwrap();
    cli(alga, data, &["pack", dir.to_str().unwrap(), "--out", b]);
    cli(alga, data, &["sign", "--key", key.to_str().unwrap(), b]);
    cli(alga, data, &["publish", b]);
    cli(
        alga,
        data,
        &["install", "--tenant", "dev", "--grant-requested", id],
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `up` serving the WAT hello; the other installs are already in `data`.
fn start_up(alga: &Path, data: &Path, hello: &Path, port: u16, pool: u32, log: &Path) -> Child {
    Command::new(alga)
        .arg("--data")
        .arg(data)
        .arg("up")
        .arg(hello)
        .args([
            "--port",
            &port.to_string(),
            "--token",
            "soak-token",
            "--json",
        ])
        .env("ALGA_LOG", "warn")
        .env("ALGA_QUOTA_PER_MINUTE", "0")
        .env("ALGA_QUOTA_PER_DAY", "0")
        .env("ALGA_TIMEOUT_MS", DEADLINE_MS.to_string())
        .env("ALGA_RESPONSE_MAX_BYTES", RESPONSE_MAX.to_string())
        .env("ALGA_POOL_INSTANCES", pool.to_string())
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(log).unwrap(),
        ))
        .spawn()
        .expect("start up")
}

/// One keep-alive HTTP/1.1 connection's sender.
type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(port: u16) -> std::io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one GET, reconnecting once if the kept-alive connection was closed.
async fn get(sender: &mut Option<Sender>, port: u16, path: &str) -> Result<(u16, Bytes), String> {
    for attempt in 0..2 {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            *sender = Some(connect(port).await.map_err(|e| e.to_string())?);
        }
        let s = sender.as_mut().unwrap();
        if s.ready().await.is_err() {
            *sender = None;
            continue;
        }
        let req = hyper::Request::get(path)
            .header("host", format!("127.0.0.1:{port}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                return Ok((status, body));
            }
            Err(e) if attempt == 0 && e.is_canceled() => *sender = None,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("connection closed twice".into())
}

/// Waits until `path` answers 200.
async fn wait_ready(port: u16, path: &str, server: &mut Child) {
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let mut s = None;
        if let Ok((200, _)) = get(&mut s, port, path).await {
            return;
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("up exited before serving ({status}); see its log");
        }
        assert!(Instant::now() < until, "up did not come up within 300 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Drives `requests` requests of the mix through `concurrency` connections,
/// sampling the server every second.
async fn drive(
    port: u16,
    pid: u32,
    requests: u64,
    concurrency: usize,
    kind_of: fn(u64) -> Kind,
) -> (Vec<Outcome>, Vec<Sample>, Duration) {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(requests as usize)));
    let finished = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sampler = {
        let (done, finished) = (done.clone(), finished.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !finished.load(Ordering::Relaxed) {
                tick.tick().await;
                if let (Some(rss_kib), Some(fds)) = (rss_kib(pid), fds(pid)) {
                    samples.push(Sample {
                        at_s: started.elapsed().as_secs_f64(),
                        done: done.load(Ordering::Relaxed),
                        rss_kib,
                        fds,
                    });
                }
            }
            samples
        })
    };
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, done, outcomes) = (next.clone(), done.clone(), outcomes.clone());
            tokio::spawn(async move {
                let mut sender = None;
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let kind = kind_of(i);
                    let t = Instant::now();
                    let (status, code) = match get(&mut sender, port, kind.path()).await {
                        Ok((status, body)) => (status, error_code(status, &body, kind)),
                        Err(e) => (0, Some(format!("transport: {e}"))),
                    };
                    mine.push(Outcome {
                        kind,
                        status,
                        code,
                        latency: t.elapsed(),
                    });
                    done.fetch_add(1, Ordering::Relaxed);
                }
                outcomes.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    finished.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    (outcomes, samples, elapsed)
}

/// The error code of a non-200 answer; for a 200, `None` when the body is the
/// guest's own (checked for the WAT hello).
fn error_code(status: u16, body: &[u8], kind: Kind) -> Option<String> {
    if status == 200 {
        return match kind {
            Kind::Hello if body != b"hello" => Some("unexpected body".into()),
            _ => None,
        };
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("error")?.as_str().map(String::from)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Least-squares slope of RSS (KiB) against requests served, after warm-up:
/// returned as KiB per 10,000 requests, with the samples it used.
fn rss_slope(samples: &[Sample], requests: u64) -> (f64, usize) {
    let warm = (requests as f64 * WARM_UP_SHARE) as u64;
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.done >= warm && s.done < requests)
        .map(|s| (s.done as f64, s.rss_kib as f64))
        .collect();
    if pts.len() < 2 {
        return (0.0, pts.len());
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if var == 0.0 { 0.0 } else { cov / var };
    (slope * 10_000.0, pts.len())
}

/// Summarises one phase; the second value counts unexpected answers.
fn summarise(
    phase: &str,
    outcomes: &[Outcome],
    samples: &[Sample],
    elapsed: Duration,
    requests: u64,
    allow_capacity: bool,
) -> (serde_json::Value, u64) {
    let mut by_kind: BTreeMap<Kind, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        by_kind.entry(o.kind).or_default().push(o);
    }
    let mut unexpected = 0u64;
    let mut kinds = serde_json::Map::new();
    for (kind, list) in &by_kind {
        let (want_status, want_code) = kind.expected();
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        let mut bad = 0u64;
        for o in list {
            let label = match &o.code {
                Some(c) => format!("{} {c}", o.status),
                None => o.status.to_string(),
            };
            *statuses.entry(label).or_default() += 1;
            let documented = o.status == want_status && o.code.as_deref() == want_code;
            let capacity = allow_capacity
                && o.status == 503
                && o.code.as_deref() == Some("capacity_exhausted");
            if !documented && !capacity {
                bad += 1;
            }
        }
        unexpected += bad;
        let mut lat: Vec<Duration> = list.iter().map(|o| o.latency).collect();
        lat.sort();
        kinds.insert(
            kind.name().into(),
            serde_json::json!({
                "requests": list.len(),
                "expected": format!("{want_status} {}", want_code.unwrap_or("")).trim().to_string(),
                "statuses": statuses,
                "unexpected": bad,
                "p50_ms": percentile(&lat, 0.50),
                "p99_ms": percentile(&lat, 0.99),
                "max_ms": percentile(&lat, 1.0),
            }),
        );
    }
    let (slope, used) = rss_slope(samples, requests);
    let warm = (requests as f64 * WARM_UP_SHARE) as u64;
    let after_warm: Vec<&Sample> = samples.iter().filter(|s| s.done >= warm).collect();
    let mut all: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    all.sort();
    let value = serde_json::json!({
        "phase": phase,
        "requests": outcomes.len(),
        "seconds": elapsed.as_secs_f64(),
        "requests_per_second": outcomes.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&all, 0.50),
        "p99_ms": percentile(&all, 0.99),
        "unexpected": unexpected,
        "kinds": kinds,
        "rss_kib_first": samples.first().map(|s| s.rss_kib),
        "rss_kib_after_warm_up": after_warm.first().map(|s| s.rss_kib),
        "rss_kib_last": samples.last().map(|s| s.rss_kib),
        "rss_kib_max": samples.iter().map(|s| s.rss_kib).max(),
        "rss_slope_kib_per_10k_requests": slope,
        "rss_slope_samples": used,
        "fds_after_warm_up_min": after_warm.iter().map(|s| s.fds).min(),
        "fds_after_warm_up_max": after_warm.iter().map(|s| s.fds).max(),
        "samples": samples.iter().map(|s| [s.at_s, s.done as f64, s.rss_kib as f64, s.fds as f64]).collect::<Vec<_>>(),
    });
    (value, unexpected)
}

fn markdown(report: &serde_json::Value) -> String {
    let mut md = String::new();
    for phase in report["phases"].as_array().unwrap() {
        md += &format!(
            "### {}: {} requests in {:.1} s ({:.0} req/s), p50 {:.2} ms, p99 {:.2} ms, unexpected {}\n\n",
            phase["phase"].as_str().unwrap(),
            phase["requests"],
            phase["seconds"].as_f64().unwrap(),
            phase["requests_per_second"].as_f64().unwrap(),
            phase["p50_ms"].as_f64().unwrap(),
            phase["p99_ms"].as_f64().unwrap(),
            phase["unexpected"],
        );
        md += "| guest | requests | documented answer | answers | unexpected | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|\n";
        for (name, k) in phase["kinds"].as_object().unwrap() {
            let answers: Vec<String> = k["statuses"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            md += &format!(
                "| {name} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} |\n",
                k["requests"],
                k["expected"].as_str().unwrap(),
                answers.join(", "),
                k["unexpected"],
                k["p50_ms"].as_f64().unwrap(),
                k["p99_ms"].as_f64().unwrap(),
                k["max_ms"].as_f64().unwrap(),
            );
        }
        md += &format!(
            "\nRSS: {} KiB at the first sample, {} KiB after warm-up ({} % of the requests), {} KiB at the end, {} KiB at most; slope after warm-up {:.1} KiB per 10,000 requests ({} samples). Open descriptors after warm-up: {}–{}.\n\n",
            phase["rss_kib_first"],
            phase["rss_kib_after_warm_up"],
            (WARM_UP_SHARE * 100.0) as u32,
            phase["rss_kib_last"],
            phase["rss_kib_max"],
            phase["rss_slope_kib_per_10k_requests"].as_f64().unwrap(),
            phase["rss_slope_samples"],
            phase["fds_after_warm_up_min"],
            phase["fds_after_warm_up_max"],
        );
    }
    md
}

/// Runs one phase against a fresh `up` with `pool` instance slots.
async fn phase(
    a: &Args,
    name: &str,
    data: &Path,
    hello: &Path,
    pool: u32,
    requests: u64,
    allow_capacity: bool,
) -> (serde_json::Value, u64) {
    let port = free_port();
    let log = a.out.join(format!("up-{name}.log"));
    let mut server = start_up(&a.alga, data, hello, port, pool, &log);
    wait_ready(port, Kind::Hello.path(), &mut server).await;
    wait_ready(port, Kind::Js.path(), &mut server).await;
    let pid = server.id();
    eprintln!(
        "soak: {name}: {requests} requests at concurrency {}, pool {pool}",
        a.concurrency
    );
    let (outcomes, samples, elapsed) = drive(port, pid, requests, a.concurrency, Kind::of).await;
    let alive = server.try_wait().unwrap().is_none();
    let (mut value, mut unexpected) =
        summarise(name, &outcomes, &samples, elapsed, requests, allow_capacity);
    // After the load, the server must still answer.
    let mut s = None;
    let after = get(&mut s, port, Kind::Hello.path()).await;
    let healthy = alive && matches!(after, Ok((200, _)));
    value["server_alive_after"] = healthy.into();
    if !healthy {
        unexpected += 1;
    }
    let _ = server.kill();
    let _ = server.wait();
    (value, unexpected)
}

#[tokio::main]
async fn main() {
    let a = args();
    std::fs::create_dir_all(&a.out).unwrap();
    let work = a.out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let guests_dir = work.join("guests");
    let hello = write_extension(&guests_dir, "soak-hello", guests::hello());
    let exts = [
        ("soak-spin", guests::infinite_loop()),
        ("soak-bomb", guests::memory_grower()),
        ("soak-huge", guests::huge_response(RESPONSE_MAX * 2)),
    ];
    let key = work.join("soak-key.json");
    cli(
        &a.alga,
        &data,
        &[
            "keygen",
            "--trust",
            "--key-id",
            "soak",
            "--out",
            key.to_str().unwrap(),
        ],
    );
    eprintln!("soak: publishing the guests and the JavaScript example");
    for (name, component) in exts {
        let dir = write_extension(&guests_dir, name, component);
        deploy(&a.alga, &data, &key, &dir, &format!("com.example.{name}"));
    }
    deploy(&a.alga, &data, &key, &a.js, "com.example.hello");

    let (main_phase, unexpected_main) = phase(&a, "mix", &data, &hello, 64, a.requests, true).await;
    // Fewer slots than connections: the overflow must be 503 capacity_exhausted.
    let small = (a.requests / 10).max(1000);
    let (pool_phase, unexpected_pool) = phase(&a, "pool-of-8", &data, &hello, 8, small, true).await;
    let capacity_seen = pool_phase["kinds"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|k| k["statuses"].as_object())
        .flat_map(|s| s.iter())
        .filter(|(label, _)| label.as_str() == "503 capacity_exhausted")
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum::<u64>();
    let report = serde_json::json!({
        "requests": a.requests,
        "concurrency": a.concurrency,
        "deadline_ms": DEADLINE_MS,
        "response_max_bytes": RESPONSE_MAX,
        "pool_phase_capacity_exhausted": capacity_seen,
        "phases": [main_phase, pool_phase],
    });
    std::fs::write(
        a.out.join("soak.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let md = markdown(&report);
    std::fs::write(a.out.join("soak.md"), &md).unwrap();
    println!("{md}");
    let unexpected = unexpected_main + unexpected_pool;
    if unexpected > 0 {
        eprintln!("soak: {unexpected} unexpected answers (see soak.md)");
        std::process::exit(1);
    }
    if capacity_seen == 0 {
        eprintln!("soak: the pool-of-8 phase never exhausted the pool; it proved nothing");
        std::process::exit(1);
    }
}
