//! A stand-in for the parts of Alga's server our host-app backends call, written
//! from Alga's route and service code as our own fixture (nothing of Alga's is
//! copied): in memory, on a real HTTP server on 127.0.0.1.
//!
//! - `POST /api/internal/ext-storage/install/{installId}` (`x-runner-auth`):
//!   `get`/`put`/`delete`/`list` with Alga's checks, revisions (`ifRevision` needs an
//!   existing entry), quotas (32 namespaces, 5120 keys a namespace, 64 KiB of value
//!   JSON, 4 KiB of metadata, 256 MiB an install), base64url `{"key"}` cursors and
//!   Alga's `nextCursor` (the first key of the next page, which its own `key >
//!   cursor` query then skips), statuses 400/401/403/404/409/429/500.
//! - `POST /api/internal/ext-scheduler/install/{installId}` (`x-runner-auth`):
//!   `list`/`get`/`create`/`update`/`delete`/`getEndpoints`: UUID ids it makes
//!   itself, endpoints resolved against the install's (`"METHOD /path"`, no method
//!   = GET or POST), names unique in an install, at most 50 schedules, Alga's cron,
//!   time zone, name and payload rules, and its answers (`201 {success, scheduleId}`,
//!   `400 {success: false, error, fieldErrors}`).
//! - `GET /api/installs/validate?tenant=&extension=&hash=` (`x-api-key`): `{"valid"}`.
//!
//! Requests are served one at a time under one lock, so the stub's count checks are
//! atomic (Alga's storage locks a usage row; its scheduler counts, then inserts, so
//! concurrent creators there can pass 50). It can be switched to failing (503 to
//! everything, nothing applied) or slow (applied, answered late), and it records
//! every request. Not modelled: `bulkPut`, TTLs, namespace schemas, Alga's job runner
//! (schedules are stored, never fired), its 10-a-minute scheduler rate limit unless
//! [`AlgaHostStub::set_schedule_rate_limit`] sets a count, and time zones beyond
//! `UTC` and `Area/Location` names.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::http_server::{Reply, Seen, TestServer};

/// An install as Alga's database has it.
#[derive(Debug, Clone)]
pub struct StubInstall {
    /// Alga's install UUID (the `{installId}` of the internal routes).
    pub install_id: String,
    /// Its tenant.
    pub tenant: String,
    /// Alga's registry UUID of the extension (`extension=` of installs/validate).
    pub registry_id: String,
    /// Bundle hashes (`sha256:<hex>`) of the installed version.
    pub content_hashes: Vec<String>,
    /// The version's endpoints, `(METHOD, /path)`.
    pub endpoints: Vec<(String, String)>,
    /// Disabled installs' storage answers 401.
    pub enabled: bool,
}

impl StubInstall {
    /// Install `install_id` of `tenant`, enabled, with no endpoints or bundles.
    pub fn new(install_id: &str, tenant: &str) -> Self {
        StubInstall {
            install_id: install_id.into(),
            tenant: tenant.into(),
            registry_id: format!("reg-{install_id}"),
            content_hashes: vec![],
            endpoints: vec![],
            enabled: true,
        }
    }

    /// With the extension's registry UUID.
    pub fn registry_id(mut self, id: &str) -> Self {
        self.registry_id = id.into();
        self
    }

    /// With a bundle hash of the installed version.
    pub fn bundle(mut self, hash: &str) -> Self {
        self.content_hashes.push(hash.into());
        self
    }

    /// With an endpoint.
    pub fn endpoint(mut self, method: &str, path: &str) -> Self {
        self.endpoints.push((method.into(), path.into()));
        self
    }

    /// Disabled.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

/// Storage quotas (Alga's `DEFAULT_QUOTA` unless changed).
#[derive(Debug, Clone, Copy)]
pub struct StubQuota {
    /// Namespaces per install.
    pub namespaces: usize,
    /// Keys per namespace.
    pub keys_per_namespace: usize,
    /// Bytes of a value's JSON text.
    pub value_bytes: usize,
    /// Bytes of a value's metadata JSON.
    pub metadata_bytes: usize,
    /// Value + metadata bytes per install.
    pub total_bytes: usize,
}

impl Default for StubQuota {
    fn default() -> Self {
        StubQuota {
            namespaces: 32,
            keys_per_namespace: 5120,
            value_bytes: 64 * 1024,
            metadata_bytes: 4 * 1024,
            total_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    revision: u64,
    value: Value,
    metadata: Value,
    bytes: usize,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Clone)]
struct StoredSchedule {
    id: String,
    install_id: String,
    method: String,
    path: String,
    name: Option<String>,
    cron: String,
    timezone: String,
    enabled: bool,
    payload: Value,
    seq: u64,
    created_at: String,
}

#[derive(Default)]
struct State {
    token: String,
    api_key: Option<String>,
    installs: BTreeMap<String, StubInstall>,
    /// (install, namespace) → key → record.
    records: BTreeMap<(String, String), BTreeMap<String, Record>>,
    schedules: Vec<StoredSchedule>,
    quota: StubQuota,
    failing: bool,
    delay: Duration,
    rate_limit: Option<u32>,
    mutations: BTreeMap<String, u32>,
    seq: u64,
}

/// The running stub.
#[derive(Clone)]
pub struct AlgaHostStub {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl AlgaHostStub {
    /// Starts on 127.0.0.1, accepting `runner_token` as `x-runner-auth`.
    pub fn start(runner_token: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            token: runner_token.into(),
            ..State::default()
        }));
        let s = state.clone();
        let server = TestServer::start("127.0.0.1", move |seen| {
            let mut st = s.lock().unwrap();
            if st.failing {
                return json_reply(503, json!({"error": "Service Unavailable"}));
            }
            let mut reply = st.route(seen);
            reply.delay = st.delay;
            reply
        });
        AlgaHostStub { server, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        self.server.base()
    }

    /// Adds (or replaces) an install.
    pub fn add_install(&self, install: StubInstall) {
        let mut st = self.state.lock().unwrap();
        st.installs.insert(install.install_id.clone(), install);
    }

    /// Requires `key` as `x-api-key` on installs/validate (unset: any).
    pub fn set_api_key(&self, key: &str) {
        self.state.lock().unwrap().api_key = Some(key.into());
    }

    /// Replaces the storage quotas.
    pub fn set_quota(&self, quota: StubQuota) {
        self.state.lock().unwrap().quota = quota;
    }

    /// While on, every request answers 503 and changes nothing.
    pub fn set_failing(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    /// Every answer is sent this late (the request is applied first, as a slow
    /// server's would be).
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// At most `limit` schedule changes per install from now on (Alga's is 10 a
    /// minute); `None`: unlimited.
    pub fn set_schedule_rate_limit(&self, limit: Option<u32>) {
        let mut st = self.state.lock().unwrap();
        st.rate_limit = limit;
        st.mutations.clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.server.seen()
    }

    /// A stored entry as Alga keeps it: `{"value", "metadata", "revision"}`.
    pub fn stored(&self, install_id: &str, namespace: &str, key: &str) -> Option<Value> {
        let st = self.state.lock().unwrap();
        let r = st
            .records
            .get(&(install_id.to_string(), namespace.to_string()))?
            .get(key)?;
        Some(json!({"value": r.value, "metadata": r.metadata, "revision": r.revision}))
    }

    /// Stores an entry as another writer would (Alga's own runner, its UI).
    pub fn put_raw(
        &self,
        install_id: &str,
        namespace: &str,
        key: &str,
        value: Value,
        metadata: Value,
    ) {
        let mut st = self.state.lock().unwrap();
        let now = st.now();
        let ns = st
            .records
            .entry((install_id.to_string(), namespace.to_string()))
            .or_default();
        let revision = ns.get(key).map_or(1, |r| r.revision + 1);
        let bytes = json_len(&value) + json_len(&metadata);
        ns.insert(
            key.to_string(),
            Record {
                revision,
                value,
                metadata,
                bytes,
                created_at: now.clone(),
                updated_at: now,
            },
        );
    }

    /// An install's schedules as Alga lists them (names as stored, UUID ids).
    pub fn schedules(&self, install_id: &str) -> Vec<Value> {
        let st = self.state.lock().unwrap();
        st.list_schedules(install_id)
    }

    /// Adds a schedule as Alga's own runner would have made it; returns its UUID.
    pub fn add_raw_schedule(
        &self,
        install_id: &str,
        endpoint: (&str, &str),
        cron: &str,
        name: Option<&str>,
    ) -> String {
        let mut st = self.state.lock().unwrap();
        let (id, created_at, seq) = st.new_id();
        st.schedules.push(StoredSchedule {
            id: id.clone(),
            install_id: install_id.into(),
            method: endpoint.0.into(),
            path: endpoint.1.into(),
            name: name.map(String::from),
            cron: cron.into(),
            timezone: "UTC".into(),
            enabled: true,
            payload: Value::Null,
            seq,
            created_at,
        });
        id
    }
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::new(status, body.to_string()).header("content-type", "application/json")
}

/// A thrown `StorageServiceError` / `SchedulerApiError` as Alga's `mapError` answers it.
fn service_error(status: u16, code: &str, message: &str) -> Reply {
    json_reply(
        status,
        json!({"error": message, "code": code, "details": null}),
    )
}

/// A zod refusal.
fn zod_error(field: &str, message: &str) -> Reply {
    json_reply(
        400,
        json!({"error": "Validation error", "details": {"formErrors": [], "fieldErrors": {field: [message]}}}),
    )
}

/// A scheduler service's `{success: false}` answer.
fn sched_fail(error: &str, field: Option<&str>) -> Reply {
    let mut body = json!({"success": false, "error": error});
    if let Some(f) = field {
        body["fieldErrors"] = json!({ f: error });
    }
    json_reply(400, body)
}

/// Length as JavaScript counts it (UTF-16 code units).
fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Bytes of `JSON.stringify(v)`.
fn json_len(v: &Value) -> usize {
    v.to_string().len()
}

/// `decodeURIComponent`, lenient: a `%` not followed by two hex digits stays.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `unix` seconds as JavaScript's `toISOString` writes them.
fn iso(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    parts.len() == 5
        && hex(parts[0], 8)
        && hex(parts[1], 4)
        && hex(parts[2], 4)
        && matches!(parts[2].as_bytes()[0], b'1'..=b'5')
        && hex(parts[3], 4)
        && matches!(
            parts[3].as_bytes()[0].to_ascii_lowercase(),
            b'8' | b'9' | b'a' | b'b'
        )
        && hex(parts[4], 12)
}

/// Alga's `validateCronExpression`.
fn check_cron(cron: &str) -> Result<String, (&'static str, &'static str)> {
    let value = cron.trim();
    let fail = |m| Err(("cron", m));
    if js_len(value) > 128 {
        return fail("Cron expression too long");
    }
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 5 {
        return fail("Invalid cron expression (expected 5 fields: m h dom mon dow)");
    }
    if parts
        .iter()
        .any(|p| !p.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c)))
    {
        return fail("Invalid cron expression (unsupported characters)");
    }
    if parts[2] != "*" && parts[4] != "*" {
        return fail("Cron cannot set both day-of-month and day-of-week");
    }
    if parts[1..].iter().all(|p| *p == "*") && ["*", "*/1", "*/2", "*/3", "*/4"].contains(&parts[0])
    {
        return fail("Cron too frequent (minimum interval is 5 minutes)");
    }
    Ok(value.to_string())
}

/// Alga's `validateTimezone`, with `Intl` approximated: `UTC` or an `Area/Location`
/// name of the IANA areas.
fn check_timezone(tz: Option<&str>) -> Result<String, (&'static str, &'static str)> {
    let value = tz.unwrap_or("UTC").trim();
    if value.is_empty() {
        return Ok("UTC".into());
    }
    if js_len(value) > 64 {
        return Err(("timezone", "Timezone too long"));
    }
    const AREAS: &[&str] = &[
        "Africa",
        "America",
        "Antarctica",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
        "Etc",
    ];
    let known = value == "UTC"
        || value.split_once('/').is_some_and(|(area, rest)| {
            AREAS.contains(&area)
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_/+-".contains(c))
        });
    if known {
        Ok(value.to_string())
    } else {
        Err(("timezone", "Invalid timezone"))
    }
}

/// Alga's `validatePayloadJson`.
fn check_payload(p: Option<&Value>) -> Result<Value, (&'static str, &'static str)> {
    match p {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ (Value::Object(_) | Value::Array(_))) => {
            if json_len(v) > 100_000 {
                Err(("payload", "Payload too large"))
            } else {
                Ok(v.clone())
            }
        }
        Some(_) => Err(("payload", "Payload must be a JSON object or array")),
    }
}

/// Alga's `validateScheduleName`.
fn check_name(n: Option<&Value>) -> Result<Option<String>, (&'static str, &'static str)> {
    let text = match n {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let value = text.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if js_len(value) > 128 {
        return Err(("name", "Name too long"));
    }
    Ok(Some(value.to_string()))
}

fn normalize_path(p: &str) -> String {
    let raw = p.trim();
    if raw.is_empty() {
        return String::new();
    }
    let mut with_slash = if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("/{raw}")
    };
    while with_slash.contains("//") {
        with_slash = with_slash.replace("//", "/");
    }
    with_slash
}

impl State {
    fn now(&mut self) -> String {
        self.seq += 1;
        iso(1_735_689_600 + self.seq)
    }

    fn new_id(&mut self) -> (String, String, u64) {
        let created = self.now();
        (
            format!("5ca1ab1e-0000-4000-8000-{:012x}", self.seq),
            created,
            self.seq,
        )
    }

    fn route(&mut self, seen: &Seen) -> Reply {
        let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
        let install = |prefix: &str| path.strip_prefix(prefix).map(percent_decode);
        match seen.method.as_str() {
            "POST" => {
                if let Some(id) = install("/api/internal/ext-storage/install/") {
                    return self.storage(seen, &id);
                }
                if let Some(id) = install("/api/internal/ext-scheduler/install/") {
                    return self.scheduler(seen, &id);
                }
            }
            "GET" if path == "/api/installs/validate" => return self.validate(seen, query),
            _ => {}
        }
        json_reply(404, json!({"error": "not found"}))
    }

    fn runner_auth(&self, seen: &Seen) -> bool {
        !self.token.is_empty() && seen.header("x-runner-auth") == Some(self.token.as_str())
    }

    // ---- ext-storage ----

    fn storage(&mut self, seen: &Seen, install_id: &str) -> Reply {
        if !self.runner_auth(seen) {
            return service_error(401, "UNAUTHORIZED", "Invalid runner token");
        }
        let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(&seen.body) else {
            // `req.json()` throws outside Alga's error classes: a 500.
            return json_reply(
                500,
                json!({"error": "Internal error", "code": "INTERNAL_ERROR"}),
            );
        };
        let op = raw.get("operation").and_then(Value::as_str).unwrap_or("");
        if !["put", "get", "list", "delete", "bulkPut"].contains(&op) {
            return zod_error("operation", "Invalid enum value");
        }
        let Some(ns) = raw
            .get("namespace")
            .and_then(Value::as_str)
            .map(String::from)
        else {
            return zod_error("namespace", "Required");
        };
        if !(1..=128).contains(&js_len(&ns)) {
            return zod_error(
                "namespace",
                "String must contain between 1 and 128 character(s)",
            );
        }
        let Some(install) = self.installs.get(install_id) else {
            return service_error(404, "NOT_FOUND", "extension install not found");
        };
        if !install.enabled {
            return service_error(401, "UNAUTHORIZED", "extension install is disabled");
        }
        let tenant = install.tenant.clone();
        match op {
            "put" => self.storage_put(install_id, &ns, &raw),
            "get" => self.storage_get(install_id, &ns, &raw),
            "delete" => self.storage_delete(install_id, &ns, &raw),
            "list" => self.storage_list(install_id, &tenant, &ns, &raw),
            _ => json_reply(
                400,
                json!({"error": "bulkPut is not modelled by this stub"}),
            ),
        }
    }

    /// The `key` field as zod and `assertKey` check it.
    fn key_of(raw: &Map<String, Value>) -> Result<String, Reply> {
        let Some(key) = raw.get("key").and_then(Value::as_str) else {
            return Err(zod_error("key", "Required"));
        };
        if !(1..=256).contains(&js_len(key)) {
            return Err(zod_error(
                "key",
                "String must contain between 1 and 256 character(s)",
            ));
        }
        if key.contains('/') {
            return Err(service_error(
                400,
                "VALIDATION_FAILED",
                "key must be 1-256 characters and must not contain \"/\"",
            ));
        }
        Ok(key.to_string())
    }

    fn if_revision(raw: &Map<String, Value>) -> Result<Option<u64>, Reply> {
        match raw.get("ifRevision") {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| zod_error("ifRevision", "Expected a non-negative integer")),
        }
    }

    fn storage_put(&mut self, install_id: &str, ns: &str, raw: &Map<String, Value>) -> Reply {
        let key = match Self::key_of(raw) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let if_revision = match Self::if_revision(raw) {
            Ok(r) => r,
            Err(r) => return r,
        };
        let metadata = match raw.get("metadata") {
            None => json!({}),
            Some(m @ Value::Object(_)) => m.clone(),
            Some(_) => return zod_error("metadata", "Expected object"),
        };
        if raw.contains_key("ttlSeconds") {
            return json_reply(
                400,
                json!({"error": "ttlSeconds is not modelled by this stub"}),
            );
        }
        let value = raw.get("value").cloned().unwrap_or(Value::Null);
        let value_size = json_len(&value);
        let meta_size = json_len(&metadata);
        let quota = self.quota;
        if value_size > quota.value_bytes {
            return service_error(
                400,
                "LIMIT_EXCEEDED",
                &format!("value exceeds max size of {} bytes", quota.value_bytes),
            );
        }
        if meta_size > quota.metadata_bytes {
            return service_error(
                400,
                "LIMIT_EXCEEDED",
                &format!(
                    "metadata exceeds max size of {} bytes",
                    quota.metadata_bytes
                ),
            );
        }
        let k = (install_id.to_string(), ns.to_string());
        let existing = self.records.get(&k).and_then(|m| m.get(&key)).cloned();
        if let Some(want) = if_revision
            && existing.as_ref().is_none_or(|e| e.revision != want)
        {
            return service_error(
                409,
                "REVISION_MISMATCH",
                "ifRevision did not match stored revision",
            );
        }
        let keys_in_ns = self.records.get(&k).map_or(0, BTreeMap::len);
        let namespaces = self
            .records
            .iter()
            .filter(|((i, _), m)| i == install_id && !m.is_empty())
            .count();
        let used: usize = self
            .records
            .iter()
            .filter(|((i, _), _)| i == install_id)
            .flat_map(|(_, m)| m.values())
            .map(|r| r.bytes)
            .sum();
        if existing.is_none() && keys_in_ns >= quota.keys_per_namespace {
            return service_error(
                429,
                "QUOTA_EXCEEDED",
                &format!("namespace {ns} exceeded key quota"),
            );
        }
        if existing.is_none() && keys_in_ns == 0 && namespaces >= quota.namespaces {
            return service_error(429, "QUOTA_EXCEEDED", "namespace quota exceeded");
        }
        let delta = value_size + meta_size;
        let before = existing.as_ref().map_or(0, |e| e.bytes);
        if used + delta - before > quota.total_bytes {
            return service_error(429, "QUOTA_EXCEEDED", "total storage quota exceeded");
        }
        let now = self.now();
        let revision = existing.as_ref().map_or(1, |e| e.revision + 1);
        let created_at = existing.map_or(now.clone(), |e| e.created_at);
        self.records.entry(k).or_default().insert(
            key.clone(),
            Record {
                revision,
                value,
                metadata,
                bytes: delta,
                created_at: created_at.clone(),
                updated_at: now.clone(),
            },
        );
        json_reply(
            200,
            json!({"namespace": ns, "key": key, "revision": revision, "ttlExpiresAt": null,
                   "createdAt": created_at, "updatedAt": now}),
        )
    }

    fn storage_get(&mut self, install_id: &str, ns: &str, raw: &Map<String, Value>) -> Reply {
        let key = match Self::key_of(raw) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let if_revision = match Self::if_revision(raw) {
            Ok(r) => r,
            Err(r) => return r,
        };
        let Some(r) = self
            .records
            .get(&(install_id.to_string(), ns.to_string()))
            .and_then(|m| m.get(&key))
        else {
            return service_error(404, "NOT_FOUND", "record not found");
        };
        if if_revision.is_some_and(|want| want != r.revision) {
            return service_error(
                409,
                "REVISION_MISMATCH",
                "ifRevision did not match stored revision",
            );
        }
        json_reply(
            200,
            json!({"namespace": ns, "key": key, "revision": r.revision, "value": r.value,
                   "metadata": r.metadata, "ttlExpiresAt": null,
                   "createdAt": r.created_at, "updatedAt": r.updated_at}),
        )
    }

    fn storage_delete(&mut self, install_id: &str, ns: &str, raw: &Map<String, Value>) -> Reply {
        let key = match Self::key_of(raw) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let if_revision = match Self::if_revision(raw) {
            Ok(r) => r,
            Err(r) => return r,
        };
        let k = (install_id.to_string(), ns.to_string());
        let Some(existing) = self.records.get(&k).and_then(|m| m.get(&key)) else {
            return json_reply(200, json!({"success": false}));
        };
        if if_revision.is_some_and(|want| want != existing.revision) {
            return service_error(
                409,
                "REVISION_MISMATCH",
                "ifRevision did not match stored revision",
            );
        }
        let m = self.records.get_mut(&k).expect("checked above");
        m.remove(&key);
        if m.is_empty() {
            self.records.remove(&k);
        }
        json_reply(200, json!({"success": true}))
    }

    fn storage_list(
        &mut self,
        install_id: &str,
        tenant: &str,
        ns: &str,
        raw: &Map<String, Value>,
    ) -> Reply {
        let limit = match raw.get("limit") {
            None => 25,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=100) => n as usize,
                _ => {
                    return zod_error("limit", "Number must be between 1 and 100");
                }
            },
        };
        let cursor = match raw.get("cursor") {
            None => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) => {
                let decoded = URL_SAFE_NO_PAD
                    .decode(c.trim_end_matches('='))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|v| v.get("key")?.as_str().map(String::from));
                match decoded {
                    Some(k) => Some(k),
                    None => {
                        return service_error(
                            400,
                            "VALIDATION_FAILED",
                            "cursor is invalid or corrupted",
                        );
                    }
                }
            }
            Some(_) => return zod_error("cursor", "Expected string"),
        };
        let prefix = raw.get("keyPrefix").and_then(Value::as_str).unwrap_or("");
        let values = raw.get("includeValues").and_then(Value::as_bool) == Some(true);
        let metadata = raw.get("includeMetadata").and_then(Value::as_bool) == Some(true);
        let empty = BTreeMap::new();
        let records = self
            .records
            .get(&(install_id.to_string(), ns.to_string()))
            .unwrap_or(&empty);
        let rows: Vec<(&String, &Record)> = records
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| cursor.as_ref().is_none_or(|c| k.as_str() > c.as_str()))
            .take(limit + 1)
            .collect();
        let items: Vec<Value> = rows
            .iter()
            .take(limit)
            .map(|(k, r)| {
                let mut item = json!({"tenantId": tenant, "extensionInstallId": install_id,
                    "namespace": ns, "key": k, "revision": r.revision, "ttlExpiresAt": null,
                    "createdAt": r.created_at, "updatedAt": r.updated_at});
                if values {
                    item["value"] = r.value.clone();
                }
                if metadata {
                    item["metadata"] = r.metadata.clone();
                }
                item
            })
            .collect();
        // As Alga: the cursor names the first key of the next page.
        let next = rows
            .get(limit)
            .map(|(k, _)| URL_SAFE_NO_PAD.encode(json!({"key": k}).to_string()));
        json_reply(200, json!({"items": items, "nextCursor": next}))
    }

    // ---- ext-scheduler ----

    fn scheduler(&mut self, seen: &Seen, install_id: &str) -> Reply {
        if !self.runner_auth(seen) {
            return service_error(401, "UNAUTHORIZED", "Invalid runner token");
        }
        let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(&seen.body) else {
            return service_error(400, "VALIDATION_FAILED", "Invalid JSON body");
        };
        let op = raw.get("operation").and_then(Value::as_str).unwrap_or("");
        if !["list", "get", "create", "update", "delete", "getEndpoints"].contains(&op) {
            return zod_error("operation", "Invalid enum value");
        }
        if ["create", "update", "delete"].contains(&op)
            && let Some(limit) = self.rate_limit
        {
            let n = self.mutations.entry(install_id.to_string()).or_default();
            if *n >= limit {
                return service_error(
                    429,
                    "RATE_LIMITED",
                    "Too many requests, please try again later",
                );
            }
            *n += 1;
        }
        if !self.installs.contains_key(install_id) {
            return service_error(404, "NOT_FOUND", "Install not found");
        }
        match op {
            "list" => json_reply(200, json!({"schedules": self.list_schedules(install_id)})),
            "get" => {
                let Some(id) = raw.get("scheduleId").and_then(Value::as_str) else {
                    return zod_error("scheduleId", "Required");
                };
                if !is_uuid(id) {
                    return zod_error("scheduleId", "Invalid uuid");
                }
                let found = self
                    .schedules
                    .iter()
                    .find(|s| s.id == id && s.install_id == install_id)
                    .map(info);
                json_reply(200, json!({"schedule": found}))
            }
            "create" => self.create_schedule(install_id, &raw),
            "update" => self.update_schedule(install_id, &raw),
            "delete" => {
                let Some(id) = raw.get("scheduleId").and_then(Value::as_str) else {
                    return zod_error("scheduleId", "Required");
                };
                if !is_uuid(id) {
                    return zod_error("scheduleId", "Invalid uuid");
                }
                let before = self.schedules.len();
                self.schedules
                    .retain(|s| !(s.id == id && s.install_id == install_id));
                if self.schedules.len() == before {
                    return sched_fail("Schedule not found", None);
                }
                json_reply(200, json!({"success": true}))
            }
            _ => {
                let install = &self.installs[install_id];
                let endpoints: Vec<Value> = install
                    .endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, (m, p))| {
                        let m = m.to_uppercase();
                        let schedulable = ["GET", "POST"].contains(&m.as_str())
                            && !p.contains(':')
                            && !p.contains('{');
                        json!({"id": format!("ep-{i}"), "method": m, "path": p,
                               "handler": "handler", "schedulable": schedulable})
                    })
                    .collect();
                json_reply(200, json!({ "endpoints": endpoints }))
            }
        }
    }

    fn list_schedules(&self, install_id: &str) -> Vec<Value> {
        let mut list: Vec<&StoredSchedule> = self
            .schedules
            .iter()
            .filter(|s| s.install_id == install_id)
            .collect();
        list.sort_by_key(|s| s.seq);
        list.into_iter().map(info).collect()
    }

    /// Alga's `resolveEndpointByPath`: `(METHOD, path)` of a schedulable endpoint.
    fn resolve_endpoint(&self, install_id: &str, selector: &str) -> Option<(String, String)> {
        let raw = selector.trim();
        let (method, path) = match raw.split_once(char::is_whitespace) {
            Some((m, p)) if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()) => {
                (Some(m.to_uppercase()), normalize_path(p))
            }
            _ => (None, normalize_path(raw)),
        };
        let install = self.installs.get(install_id)?;
        let (m, p) = install.endpoints.iter().find(|(m, p)| {
            let m = m.to_uppercase();
            (*p == path || *p == path.trim_start_matches('/'))
                && match &method {
                    Some(want) => m == *want,
                    None => m == "GET" || m == "POST",
                }
        })?;
        let m = m.to_uppercase();
        let p = normalize_path(p);
        if !["GET", "POST"].contains(&m.as_str())
            || p.contains(':')
            || p.contains('{')
            || p.contains('}')
        {
            return None;
        }
        Some((m, p))
    }

    fn name_taken(&self, install_id: &str, name: &str, except: Option<&str>) -> bool {
        self.schedules.iter().any(|s| {
            s.install_id == install_id
                && s.name.as_deref() == Some(name)
                && except.is_none_or(|e| s.id != e)
        })
    }

    fn create_schedule(&mut self, install_id: &str, raw: &Map<String, Value>) -> Reply {
        let str_field = |k: &str| raw.get(k).and_then(Value::as_str);
        let Some(endpoint) = str_field("endpoint").filter(|e| (1..=256).contains(&js_len(e)))
        else {
            return zod_error(
                "endpoint",
                "String must contain between 1 and 256 character(s)",
            );
        };
        let Some(cron) = str_field("cron").filter(|c| (1..=128).contains(&js_len(c))) else {
            return zod_error("cron", "String must contain between 1 and 128 character(s)");
        };
        if str_field("name").is_some_and(|n| js_len(n) > 128) {
            return zod_error("name", "String must contain at most 128 character(s)");
        }
        let checked = (|| {
            let cron = check_cron(cron)?;
            let timezone = check_timezone(str_field("timezone"))?;
            let payload = check_payload(raw.get("payload"))?;
            let name = check_name(raw.get("name"))?;
            Ok::<_, (&str, &str)>((cron, timezone, payload, name))
        })();
        let (cron, timezone, payload, name) = match checked {
            Ok(v) => v,
            Err((field, message)) => return sched_fail(message, Some(field)),
        };
        let enabled = raw.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        let Some((method, path)) = self.resolve_endpoint(install_id, endpoint) else {
            return sched_fail("Endpoint not found or not schedulable", Some("endpoint"));
        };
        if self
            .schedules
            .iter()
            .filter(|s| s.install_id == install_id)
            .count()
            >= 50
        {
            return sched_fail("Too many schedules (max 50 per extension install)", None);
        }
        if let Some(n) = &name
            && self.name_taken(install_id, n, None)
        {
            return sched_fail(
                "Schedule name already in use for this extension",
                Some("name"),
            );
        }
        let (id, created_at, seq) = self.new_id();
        self.schedules.push(StoredSchedule {
            id: id.clone(),
            install_id: install_id.into(),
            method,
            path,
            name,
            cron,
            timezone,
            enabled,
            payload,
            seq,
            created_at,
        });
        json_reply(201, json!({"success": true, "scheduleId": id}))
    }

    fn update_schedule(&mut self, install_id: &str, raw: &Map<String, Value>) -> Reply {
        let Some(id) = raw.get("scheduleId").and_then(Value::as_str) else {
            return zod_error("scheduleId", "Required");
        };
        if !is_uuid(id) {
            return zod_error("scheduleId", "Invalid uuid");
        }
        let str_field = |k: &str| raw.get(k).and_then(Value::as_str);
        let checked = (|| {
            let cron = match str_field("cron").filter(|c| !c.is_empty()) {
                Some(c) => Some(check_cron(c)?),
                None => None,
            };
            let timezone = match str_field("timezone").filter(|t| !t.is_empty()) {
                Some(t) => Some(check_timezone(Some(t))?),
                None => None,
            };
            let payload = match raw.get("payload") {
                None => None,
                Some(Value::Null) => Some(Value::Null),
                Some(p) => Some(check_payload(Some(p))?),
            };
            let name = match raw.get("name") {
                None => None,
                Some(n) => Some(check_name(Some(n))?),
            };
            Ok::<_, (&str, &str)>((cron, timezone, payload, name))
        })();
        let (cron, timezone, payload, name) = match checked {
            Ok(v) => v,
            Err((field, message)) => return sched_fail(message, Some(field)),
        };
        let Some(at) = self
            .schedules
            .iter()
            .position(|s| s.id == id && s.install_id == install_id)
        else {
            return sched_fail("Schedule not found", None);
        };
        let endpoint = match str_field("endpoint").filter(|e| !e.is_empty()) {
            Some(e) => match self.resolve_endpoint(install_id, e) {
                Some(found) => Some(found),
                None => {
                    return sched_fail("Endpoint not found or not schedulable", Some("endpoint"));
                }
            },
            None => None,
        };
        if let Some(Some(n)) = &name
            && self.name_taken(install_id, n, Some(id))
        {
            return sched_fail(
                "Schedule name already in use for this extension",
                Some("name"),
            );
        }
        let s = &mut self.schedules[at];
        if let Some((m, p)) = endpoint {
            s.method = m;
            s.path = p;
        }
        if let Some(c) = cron {
            s.cron = c;
        }
        if let Some(t) = timezone {
            s.timezone = t;
        }
        if let Some(n) = name {
            s.name = n;
        }
        if let Some(p) = payload {
            s.payload = p;
        }
        if let Some(e) = raw.get("enabled").and_then(Value::as_bool) {
            s.enabled = e;
        }
        json_reply(200, json!({"success": true}))
    }

    // ---- installs/validate ----

    fn validate(&mut self, seen: &Seen, query: &str) -> Reply {
        if let Some(key) = &self.api_key
            && seen.header("x-api-key") != Some(key.as_str())
        {
            return json_reply(401, json!({"error": "Unauthorized"}));
        }
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                (
                    percent_decode(&k.replace('+', " ")),
                    percent_decode(&v.replace('+', " ")),
                )
            })
            .collect();
        let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let (Some(tenant), Some(extension), Some(hash)) =
            (get("tenant"), get("extension"), get("hash"))
        else {
            return json_reply(
                400,
                json!({"valid": false, "error": "missing or invalid parameters"}),
            );
        };
        let hash = if hash.starts_with("sha256:") {
            Some(hash.to_string())
        } else if hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            Some(format!("sha256:{}", hash.to_ascii_lowercase()))
        } else {
            None
        };
        let valid = hash.is_some_and(|h| {
            self.installs.values().any(|i| {
                i.tenant == tenant && i.registry_id == extension && i.content_hashes.contains(&h)
            })
        });
        json_reply(200, json!({ "valid": valid }))
    }
}

/// Alga's `ScheduleInfo` of a stored schedule.
fn info(s: &StoredSchedule) -> Value {
    json!({"id": s.id, "endpointPath": s.path, "endpointMethod": s.method, "name": s.name,
           "cron": s.cron, "timezone": s.timezone, "enabled": s.enabled,
           "payload": s.payload, "lastRunAt": null, "lastRunStatus": null, "lastError": null,
           "createdAt": s.created_at})
}
