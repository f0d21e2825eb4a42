//! `up`'s request log: each request as one readable line — method, path,
//! status, duration, outcome — with the guest's log lines under it, on the
//! terminal (coloured when stdout is one and `NO_COLOR` is unset) and, through
//! server-sent events, in the host page's request panel (the last [`KEEP`]
//! requests with their logs and metrics). `up --json` prints instead the JSON
//! lines the Lambda functions write to CloudWatch (`alga::request`,
//! `alga::guest`).
//!
//! The gateway reports each invocation as tracing events (`alga::request`, then
//! one `alga::guest` per log line, all before the handler returns); a layer
//! collects them by request id into a [`Journal`], and the server, which knows
//! the method, path and HTTP status, claims them by the `x-request-id` of its
//! answer. Invocations no HTTP request claims (events delivered by the bus) are
//! published by the layer itself once their lines are in.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::commands::request::one_line;

/// How many requests the host page's panel gets when it connects.
pub const KEEP: usize = 100;
/// Invocations waiting for their HTTP request, at most.
const PENDING_MAX: usize = 1000;
/// Guest log lines kept per request.
const LINES_MAX: usize = 200;

/// One guest log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `info`, `warn` or `error`.
    pub level: String,
    /// `log`, `stdout`, `stderr` or `host`.
    pub source: String,
    /// The text, as the guest wrote it (escaped when printed).
    pub message: String,
}

/// One request, as the terminal and the panel show it.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Order of arrival (the SSE event id).
    pub seq: u64,
    /// Milliseconds since 1970.
    pub time_ms: u64,
    /// HTTP method, or `CRON` / `EVENT` for what no HTTP request started.
    pub method: String,
    /// The path asked for (with the query string).
    pub path: String,
    /// The status answered (the guest's, for `/v1/execute`).
    pub status: u16,
    /// Wall time from request to answer.
    pub duration_ms: f64,
    /// `ok`, or the error code (`guest_trap`, `endpoint_not_found`, ...).
    pub outcome: String,
    /// The invocation's measurements, when a guest was involved: route,
    /// request_id, install, content_hash, load_ms, run_ms, peak_memory,
    /// host_calls, error.
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// The guest's log lines.
    pub logs: Vec<Line>,
}

impl Entry {
    /// The JSON the panel receives.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "time_ms": self.time_ms,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": (self.duration_ms * 10.0).round() / 10.0,
            "outcome": self.outcome,
            "metrics": self.metrics,
            "logs": self.logs.iter().map(|l| serde_json::json!({
                "level": l.level, "source": l.source, "message": l.message,
            })).collect::<Vec<_>>(),
        })
    }

    /// The terminal lines: the request, then each guest line indented.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let status_color = match self.status {
            0..=299 => "32",
            300..=399 => "36",
            400..=499 => "33",
            _ => "31",
        };
        let outcome_color = if self.outcome == "ok" { "2" } else { "31" };
        let mut out = format!(
            "{} {} {} {} {}",
            paint("1", &one_line(&self.method)),
            one_line(&self.path),
            paint(status_color, &self.status.to_string()),
            paint("2", &duration(self.duration_ms)),
            paint(outcome_color, &one_line(&self.outcome)),
        );
        if let Some(error) = self.metrics.get("error").and_then(|e| e.as_str())
            && !error.is_empty()
            && self.outcome != "ok"
        {
            let _ = write!(out, " {}", paint("31", &one_line(error)));
        }
        for l in &self.logs {
            let level_color = match l.level.as_str() {
                "warn" => "33",
                "error" => "31",
                _ => "2",
            };
            let source = if l.source == "log" {
                String::new()
            } else {
                format!("[{}] ", l.source)
            };
            let _ = write!(
                out,
                "\n    {} {source}{}",
                paint(level_color, &format!("{:<5}", l.level)),
                one_line(&l.message)
            );
        }
        out
    }
}

fn duration(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// An invocation reported by the gateway, waiting for its HTTP request.
#[derive(Default)]
struct Pending {
    fields: serde_json::Map<String, serde_json::Value>,
    logs: Vec<Line>,
}

/// Where requests are collected, printed and published.
pub struct Journal {
    pending: Mutex<(HashMap<String, Pending>, VecDeque<String>)>,
    recent: Mutex<VecDeque<Entry>>,
    live: broadcast::Sender<Entry>,
    seq: AtomicU64,
    /// Print readable lines (not `--json`).
    print: bool,
    color: bool,
}

static JOURNAL: OnceLock<Journal> = OnceLock::new();

/// The journal, once `up` started it.
pub fn journal() -> Option<&'static Journal> {
    JOURNAL.get()
}

/// Starts collecting (`up` only); `print` unless `--json`.
pub fn start(print: bool) -> &'static Journal {
    JOURNAL.get_or_init(|| Journal {
        pending: Mutex::new((HashMap::new(), VecDeque::new())),
        recent: Mutex::new(VecDeque::with_capacity(KEEP)),
        live: broadcast::channel(256).0,
        seq: AtomicU64::new(0),
        print,
        color: print
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Journal {
    /// Takes the invocation the gateway reported under `request_id`.
    fn take(&self, request_id: &str) -> Option<Pending> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.0.remove(request_id)
    }

    /// Completes an HTTP request: its invocation's fields and lines, if a guest
    /// ran, then prints and publishes it.
    pub fn finish(&self, mut entry: Entry, request_id: Option<&str>) {
        if let Some(p) = request_id.and_then(|id| self.take(id)) {
            fill(&mut entry, p);
        }
        self.publish(entry);
    }

    /// Prints and publishes a finished entry.
    pub fn publish(&self, mut entry: Entry) {
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if entry.time_ms == 0 {
            entry.time_ms = now_ms();
        }
        if self.print {
            use std::io::Write;
            let text = entry.render(self.color);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back(entry.clone());
        }
        let _ = self.live.send(entry);
    }

    /// The kept entries after `after`, and a receiver of the ones to come
    /// (subscribed first, so nothing falls between the two).
    pub fn subscribe(&self, after: u64) -> (Vec<Entry>, broadcast::Receiver<Entry>) {
        let rx = self.live.subscribe();
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let past = recent.iter().filter(|e| e.seq > after).cloned().collect();
        (past, rx)
    }

    fn on_request(&'static self, fields: serde_json::Map<String, serde_json::Value>) {
        let Some(id) = fields
            .get("request_id")
            .and_then(|v| v.as_str())
            .filter(|id| !id.is_empty())
            .map(String::from)
        else {
            return;
        };
        let route = fields
            .get("route")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let (map, order) = &mut *p;
            // `order` holds the last PENDING_MAX ids, claimed or not (a claim
            // only takes the map's entry): bounded by it, not by the map, or it
            // would grow by one id per request.
            while order.len() >= PENDING_MAX {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            order.push_back(id.clone());
            map.insert(
                id.clone(),
                Pending {
                    fields,
                    logs: Vec::new(),
                },
            );
        }
        // An event delivery has no HTTP request to claim it; its lines follow
        // this event at once, from the same call.
        if route == "event"
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(p) = self.take(&id) {
                    let mut entry = Entry {
                        method: "EVENT".into(),
                        ..Entry::default()
                    };
                    fill(&mut entry, p);
                    entry.path = format!(
                        "→ {}",
                        entry
                            .metrics
                            .get("extension")
                            .and_then(|v| v.as_str())
                            .unwrap_or("?")
                    );
                    self.publish(entry);
                }
            });
        }
    }

    fn on_guest(&self, fields: &serde_json::Map<String, serde_json::Value>, message: String) {
        let Some(id) = fields.get("request_id").and_then(|v| v.as_str()) else {
            return;
        };
        let text = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pending) = p.0.get_mut(id)
            && pending.logs.len() < LINES_MAX
        {
            pending.logs.push(Line {
                level: text("level"),
                source: text("source"),
                message,
            });
        }
    }
}

/// Moves an invocation's report into the entry.
fn fill(entry: &mut Entry, p: Pending) {
    let f = p.fields;
    if let Some(o) = f.get("outcome").and_then(|v| v.as_str()) {
        entry.outcome = o.to_string();
    }
    if let Some(s) = f.get("status").and_then(|v| v.as_u64()) {
        entry.status = s as u16;
    }
    if entry.duration_ms == 0.0
        && let Some(d) = f.get("duration_ms").and_then(|v| v.as_f64())
    {
        entry.duration_ms = d;
    }
    for key in [
        "route",
        "request_id",
        "extension",
        "install",
        "content_hash",
        "load_ms",
        "run_ms",
        "peak_memory",
        "host_calls",
        "error",
    ] {
        if let Some(v) = f.get(key)
            && v != ""
        {
            entry.metrics.insert(key.into(), v.clone());
        }
    }
    entry.logs = p.logs;
}

/// Collects an event's fields as JSON values.
#[derive(Default)]
struct Fields {
    map: serde_json::Map<String, serde_json::Value>,
    message: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.map.insert(field.name().into(), text.into());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.map.insert(field.name().into(), value.into());
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.map.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.map.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.map.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.map.insert(field.name().into(), value.into());
    }
}

/// The tracing layer feeding the journal.
struct JournalLayer;

impl<S: tracing::Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let Some(journal) = journal() else { return };
        let target = event.metadata().target();
        if target != "alga::request" && target != "alga::guest" {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if target == "alga::request" {
            journal.on_request(fields.map);
        } else {
            journal.on_guest(&fields.map, fields.message);
        }
    }
}

/// The process's tracing: warnings (or `ALGA_LOG`) to stderr, the journal for
/// `up`, and with `json_lines` the request and guest lines as JSON on stdout.
pub fn init_tracing(json_lines: bool) {
    use tracing_subscriber::filter::{EnvFilter, Targets};
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("ALGA_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        );
    let requests = || {
        Targets::new()
            .with_target("alga::request", tracing::Level::INFO)
            .with_target("alga::guest", tracing::Level::INFO)
    };
    let json = json_lines.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_writer(std::io::stdout)
            .with_filter(requests())
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(JournalLayer.with_filter(requests()))
        .with(json)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            method: "GET".into(),
            path: "/api/ext/x/api/hello".into(),
            status: 200,
            duration_ms: 12.34,
            outcome: "ok".into(),
            logs: vec![
                Line {
                    level: "info".into(),
                    source: "log".into(),
                    message: "hello \x1b[2J".into(),
                },
                Line {
                    level: "warn".into(),
                    source: "stdout".into(),
                    message: "printed".into(),
                },
            ],
            ..Entry::default()
        }
    }

    #[test]
    fn a_request_is_one_line_with_its_guest_lines_under_it() {
        assert_eq!(
            entry().render(false),
            "GET /api/ext/x/api/hello 200 12 ms ok\n    info  hello \\u{1b}[2J\n    warn  [stdout] printed"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let coloured = entry().render(true);
        assert!(coloured.contains("\x1b[32m200\x1b[0m"), "{coloured:?}");
        // The guest's escape sequence is still escaped.
        assert!(coloured.contains("hello \\u{1b}[2J"), "{coloured:?}");
        assert!(!entry().render(false).contains('\x1b'));
    }

    #[test]
    fn claimed_requests_leave_nothing_behind() {
        let journal: &'static Journal = Box::leak(Box::new(Journal {
            pending: Mutex::new((HashMap::new(), VecDeque::new())),
            recent: Mutex::new(VecDeque::new()),
            live: broadcast::channel(4).0,
            seq: AtomicU64::new(0),
            print: false,
            color: false,
        }));
        for i in 0..3 * PENDING_MAX {
            let id = format!("req-{i}");
            let mut fields = serde_json::Map::new();
            fields.insert("request_id".into(), id.clone().into());
            journal.on_request(fields);
            journal.finish(Entry::default(), Some(&id));
        }
        let p = journal.pending.lock().unwrap();
        assert!(p.0.is_empty());
        assert!(p.1.len() <= PENDING_MAX, "{} ids kept", p.1.len());
        drop(p);
        // Unclaimed ones are bounded too, oldest out first.
        for i in 0..2 * PENDING_MAX {
            let mut fields = serde_json::Map::new();
            fields.insert("request_id".into(), format!("lost-{i}").into());
            journal.on_request(fields);
        }
        let p = journal.pending.lock().unwrap();
        assert_eq!(p.0.len(), PENDING_MAX);
        assert!(p.0.contains_key(&format!("lost-{}", 2 * PENDING_MAX - 1)));
        assert!(!p.0.contains_key("lost-0"));
    }

    #[test]
    fn failures_show_their_error() {
        let mut e = entry();
        e.status = 500;
        e.outcome = "guest_trap".into();
        e.logs.clear();
        e.metrics
            .insert("error".into(), "guest_trap: unreachable".into());
        assert_eq!(
            e.render(false),
            "GET /api/ext/x/api/hello 500 12 ms guest_trap guest_trap: unreachable"
        );
        assert_eq!(duration(1500.0), "1.50 s");
        assert_eq!(duration(3.21), "3.2 ms");
    }
}
