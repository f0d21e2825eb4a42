//! `alga-lambda up` end to end over HTTP: the JavaScript example is built,
//! published with a dev key, installed, and served through the same handlers as
//! the Lambda functions. One server per scenario; every check goes over a socket.

use test_support::guests;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use test_support::http_client::{Reply, send};

const TOKEN: &str = "test-service-token";
const EXT: &str = "com.example.hello";

/// A running `up`, killed on drop.
pub(crate) struct Up {
    child: Child,
    pub(crate) addr: SocketAddr,
    banner: String,
    tenant: String,
    /// Everything it printed on stdout so far.
    out: Arc<Mutex<String>>,
}

impl Up {
    /// Waits (bounded) until stdout holds `needle`; returns all of stdout.
    pub(crate) fn wait_for_output(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.out.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "up never printed {needle:?}; it printed:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `up` on the repository's example (built by scripts/build-example).
fn start(data: &Path, env: &[(&str, &str)], tenant: &str) -> Up {
    let example = repo().join("examples/hello");
    assert!(
        example.join("dist/main.wasm").is_file(),
        "run scripts/build-example first (scripts/test does)"
    );
    start_in(&example, data, env, tenant, &[])
}

/// `up` on extension directory `dir` with `extra` arguments; waits (bounded) for
/// its "ready on" line.
pub(crate) fn start_in(
    dir: &Path,
    data: &Path,
    env: &[(&str, &str)],
    tenant: &str,
    extra: &[&str],
) -> Up {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alga-lambda"));
    cmd.arg("up")
        .arg(dir)
        .args(["--port", "0", "--token", TOKEN, "--tenant", tenant])
        .args(extra)
        .arg("--data")
        .arg(data)
        .env_remove("RUNNER_SERVICE_TOKEN")
        .env_remove("ALGA_BACKEND")
        // The exact default CSP is asserted below.
        .env_remove("EXT_UI_CONTENT_SECURITY_POLICY")
        .env_remove("EXT_UI_FRAME_ANCESTORS")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn alga-lambda up");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = Arc::new(Mutex::new(String::new()));
    let all = out.clone();
    std::thread::spawn(move || {
        let mut banner = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            all.lock().unwrap().push_str(&format!("{line}\n"));
            banner.push_str(&line);
            banner.push('\n');
            if let Some(addr) = line.strip_prefix("ready on http://") {
                let _ = tx.send((addr.parse::<SocketAddr>().unwrap(), banner.clone()));
            }
        }
    });
    let (addr, banner) = match rx.recv_timeout(Duration::from_secs(600)) {
        Ok(v) => v,
        Err(_) => {
            let _ = child.kill();
            panic!("up did not become ready");
        }
    };
    Up {
        child,
        addr,
        banner,
        tenant: tenant.to_string(),
        out,
    }
}

/// The UI's default Content-Security-Policy (ALGA-COMPAT.md §4).
const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; \
    form-action 'self'";

/// What an HTML UI file carries on 200 and 304: immutable caching, nosniff, the CSP.
fn assert_html_cache_headers(r: &Reply) {
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("content-security-policy"), Some(DEFAULT_CSP));
}

/// A UI error: the status, a small JSON body with the code, never cached, nosniff, no CSP.
fn assert_ui_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"], code, "{}", r.text());
    assert!(r.json()["message"].is_string(), "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(r.header("etag").is_none());
    assert!(r.header("content-security-policy").is_none());
}

fn execute_body(tenant: &str, hash: &str, path: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "context": {"tenant_id": tenant, "extension_id": EXT, "content_hash": hash},
        "http": {"method": "GET", "path": path, "query": {"q": "1"}},
    }))
    .unwrap()
}

fn content_hash(up: &Up) -> String {
    let start = up.banner.find("(sha256:").expect("hash in the banner") + 1;
    up.banner[start..start + 71].to_string()
}

fn execute(up: &Up, hash: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("x-alga-tenant", up.tenant.as_str()),
        ("x-alga-extension", EXT),
    ];
    headers.extend_from_slice(extra);
    send(
        up.addr,
        "POST",
        "/v1/execute",
        &headers,
        &execute_body(&up.tenant, hash, "/api/hello"),
    )
}

#[test]
fn up_serves_the_example_through_the_lambda_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let up = start(dir.path(), &[], "dev");
    let hash = content_hash(&up);
    assert!(
        up.banner.contains("/api/ext/com.example.hello/api/hello"),
        "{}",
        up.banner
    );

    // The host page embeds the UI in a sandboxed iframe, src built the Alga way.
    let page = send(up.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains(r#"sandbox="allow-scripts""#), "{html}");
    assert!(
        html.contains(&format!(
            "/ext-ui/{EXT}/{hash}/index.html?path=%2F&amp;tenant=dev&amp;extensionId={EXT}"
        )),
        "{html}"
    );

    // POST /v1/execute: the four-key envelope, HTTP 200.
    let r = execute(&up, &hash, &[("x-runner-service-token", TOKEN)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json();
    for key in ["status", "headers", "body_b64", "error"] {
        assert!(env.get(key).is_some(), "missing {key}: {env}");
    }
    assert_eq!(env["status"], 200, "{env}");
    assert!(env["error"].is_null());
    let body = base64::engine::general_purpose::STANDARD
        .decode(env["body_b64"].as_str().unwrap())
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["tenant"], "dev");
    assert!(body["message"].as_str().unwrap().contains(EXT));

    // No credential, or a wrong one: 401 with the envelope shape.
    for extra in [vec![], vec![("x-runner-service-token", "wrong")]] {
        let r = execute(&up, &hash, &extra);
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("unauthorized")
        );
    }
    // Malformed bodies: plain 400 / 415 / 422.
    let auth = ("x-runner-service-token", TOKEN);
    let r = send(
        up.addr,
        "POST",
        "/v1/execute",
        &[auth, ("content-type", "application/json")],
        b"{not json",
    );
    assert_eq!(r.status, 400);
    let r = send(
        up.addr,
        "POST",
        "/v1/execute",
        &[auth, ("content-type", "text/plain")],
        b"{}",
    );
    assert_eq!(r.status, 415);
    let r = send(
        up.addr,
        "POST",
        "/v1/execute",
        &[auth, ("content-type", "application/json")],
        b"{\"context\":1}",
    );
    assert_eq!(r.status, 422);
    // Missing routing headers keep the seed's code, inside a 200 envelope.
    let r = send(
        up.addr,
        "POST",
        "/v1/execute",
        &[auth, ("content-type", "application/json")],
        &execute_body(&up.tenant, &hash, "/api/hello"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"], "missing_routing_headers");
    // A hash that is not the tenant's install.
    let other = format!("sha256:{}", "ab".repeat(32));
    let r = execute(&up, &other, &[auth]);
    assert_eq!(r.json()["status"], 404);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("not_installed")
    );

    // Idempotency: the same key replays the stored response; another body is refused.
    let key = ("x-idempotency-key", "order-1");
    let first = execute(&up, &hash, &[auth, key]).json();
    let replay = execute(&up, &hash, &[auth, key]);
    assert_eq!(replay.header("x-idempotent-replay"), Some("true"));
    assert_eq!(replay.json(), first, "the replay is the first response");
    let with_key = |body: &[u8]| {
        send(
            up.addr,
            "POST",
            "/v1/execute",
            &[
                auth,
                key,
                ("content-type", "application/json"),
                ("x-alga-tenant", up.tenant.as_str()),
                ("x-alga-extension", EXT),
            ],
            body,
        )
    };
    let reused = with_key(&execute_body(&up.tenant, &hash, "/api/echo"));
    assert!(
        reused.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("idempotency_key_reused")
    );
    assert_eq!(
        reused.json()["headers"],
        serde_json::json!({}),
        "an error envelope's headers are an empty object"
    );
    // Alga retries with the same key and a fresh context.request_id: a replay.
    let mut retry: serde_json::Value =
        serde_json::from_slice(&execute_body(&up.tenant, &hash, "/api/hello")).unwrap();
    retry["context"]["request_id"] = "alga-retry-2".into();
    let retried = with_key(&serde_json::to_vec(&retry).unwrap());
    assert_eq!(retried.header("x-idempotent-replay"), Some("true"));
    assert_eq!(
        retried.json(),
        first,
        "a retry with a fresh request id replays"
    );

    // The direct route: the local authorizer's identity, the guest's own response.
    let r = send(
        up.addr,
        "GET",
        &format!("/api/ext/{EXT}/api/hello?lang=en"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("x-request-id").is_some());
    assert_eq!(r.json()["tenant"], "dev");
    // POST echo: the body and allowed headers reach the guest; credentials do not.
    let r = send(
        up.addr,
        "POST",
        &format!("/api/ext/{EXT}/api/echo"),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer secret"),
            ("cookie", "s=1"),
        ],
        br#"{"n":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    assert_eq!(echo["body"], r#"{"n":1}"#);
    let seen: Vec<String> = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_string())
        .collect();
    assert!(seen.contains(&"content-type".to_string()), "{seen:?}");
    assert!(
        !seen.iter().any(|h| h == "authorization" || h == "cookie"),
        "{seen:?}"
    );
    // And back: the guest's allowed headers arrive, its cookie and CORS grant do not.
    assert_eq!(r.header("x-ext-echo"), Some("yes"));
    assert_eq!(r.header("cache-control"), Some("private, max-age=5"));
    assert_eq!(r.header("set-cookie"), None);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Endpoint mismatch: undeclared path, wrong method, unknown extension.
    let r = send(
        up.addr,
        "GET",
        &format!("/api/ext/{EXT}/api/nope"),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (404, "endpoint_not_found")
    );
    let r = send(
        up.addr,
        "DELETE",
        &format!("/api/ext/{EXT}/api/hello"),
        &[("content-type", "application/json")],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (404, "endpoint_not_found")
    );
    let r = send(
        up.addr,
        "GET",
        "/api/ext/com.example.other/api/hello",
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (404, "not_installed")
    );
    // A 7 MiB body (Alga's gateway forwards up to 10 MB) reaches the guest: the
    // echo of it is then over the 5 MiB response limit.
    let r = send(
        up.addr,
        "POST",
        &format!("/api/ext/{EXT}/api/echo"),
        &[("content-type", "application/json")],
        &vec![b'x'; 7 << 20],
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (502, "output_too_large"),
        "the body was taken and echoed"
    );
    // Oversize body (over 10 MiB): 413 from the handler, and the server keeps serving.
    let big = vec![b'x'; 11 << 20];
    let r = send(
        up.addr,
        "POST",
        &format!("/api/ext/{EXT}/api/echo"),
        &[("content-type", "application/json")],
        &big,
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (413, "payload_too_large")
    );
    let r = send(
        up.addr,
        "GET",
        &format!("/api/ext/{EXT}/api/hello"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);

    // UI assets: 200 with the exact headers, 304, 400, 404.
    let ui = format!("/ext-ui/{EXT}/{hash}");
    let r = send(up.addr, "GET", &format!("{ui}/index.html"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_html_cache_headers(&r);
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with("\"sha256-"), "{etag}");
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    let r = send(
        up.addr,
        "GET",
        &format!("{ui}/index.html"),
        &[("if-none-match", &etag)],
        b"",
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_html_cache_headers(&r);
    assert_eq!(r.header("content-type"), None, "a 304 carries no body type");
    assert!(r.body.is_empty());
    // A list with the ETag and `*` revalidate too; another tag gets the file.
    for inm in [format!("\"x\", {etag}"), "*".to_string()] {
        let r = send(
            up.addr,
            "GET",
            &format!("{ui}/index.html"),
            &[("if-none-match", &inm)],
            b"",
        );
        assert_eq!(r.status, 304, "{inm}");
    }
    let r = send(
        up.addr,
        "GET",
        &format!("{ui}/index.html"),
        &[("if-none-match", "\"sha256-other\"")],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = send(up.addr, "GET", &format!("{ui}/main.js"), &[], b"");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/javascript"))
    );
    // Every UI file carries the CSP, not only HTML.
    assert_eq!(r.header("content-security-policy"), Some(DEFAULT_CSP));
    let r = send(up.addr, "GET", &format!("{ui}/style.css"), &[], b"");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/css"))
    );
    // A binary asset comes through byte for byte.
    let icon = std::fs::read(repo().join("examples/hello/ui/icon.png")).unwrap();
    let r = send(up.addr, "GET", &format!("{ui}/icon.png"), &[], b"");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(r.body, icon, "icon.png's bytes");
    assert_eq!(
        r.header("content-length"),
        Some(icon.len().to_string().as_str())
    );
    assert_eq!(r.header("content-security-policy"), Some(DEFAULT_CSP));
    let r = send(
        up.addr,
        "GET",
        &format!("/ext-ui/{EXT}/{}/index.html", hash.replace(':', "%3A")),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "percent-encoded hash");
    let r = send(up.addr, "GET", &format!("{ui}/some/app/route"), &[], b"");
    assert_eq!(r.status, 200, "SPA fallback");
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = send(up.addr, "GET", &format!("{ui}/missing.js"), &[], b"");
    assert_ui_error(&r, 404, "not_found");
    let r = send(
        up.addr,
        "GET",
        &format!("/ext-ui/{EXT}/not-a-hash/index.html"),
        &[],
        b"",
    );
    assert_ui_error(&r, 400, "invalid_hash");
    let r = send(
        up.addr,
        "GET",
        &format!("{ui}/%2e%2e/secret.json"),
        &[],
        b"",
    );
    assert_ui_error(&r, 400, "invalid_path");
    let r = send(
        up.addr,
        "GET",
        &format!("/ext-ui/{EXT}/{other}/index.html"),
        &[],
        b"",
    );
    assert_ui_error(&r, 404, "not_found");
    // Path traversal in every spelling: refused, never served.
    for evil in [
        "../../../etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "%252e%252e/etc/passwd",
        "..%5c..%5cetc%5cpasswd",
        "..\\..\\etc\\passwd",
        "%c0%ae%c0%ae/etc/passwd",
        "./index.html",
        ".hidden.js",
        "index.html%00.js",
        "/etc/passwd",
    ] {
        let r = send(up.addr, "GET", &format!("{ui}/{evil}"), &[], b"");
        assert!(
            r.status == 400 || r.status == 404,
            "{evil}: {} {}",
            r.status,
            r.text()
        );
        assert!(!r.text().contains("root:"), "{evil} leaked a file");
    }

    // Events: `alga-lambda emit` posts to up's bus; the example's subscription
    // (`hello.ping` → /events/hello-ping) stores the event, /api/hello shows it.
    let emit = Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .args([
            "emit",
            "hello.ping",
            r#"{"message":"hi from emit"}"#,
            "--id",
            "evt-up-1",
        ])
        .arg("--url")
        .arg(format!("http://{}", up.addr))
        .output()
        .unwrap();
    assert!(emit.status.success(), "{emit:?}");
    assert!(String::from_utf8_lossy(&emit.stdout).contains("queued event evt-up-1"));
    let hello = format!("/api/ext/{EXT}/api/hello");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        let r = send(up.addr, "GET", &hello, &[], b"");
        let last = r.json()["lastEvent"].clone();
        if !last.is_null() || std::time::Instant::now() > deadline {
            break last;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(last["id"], "evt-up-1", "{last}");
    assert_eq!(last["topic"], "hello.ping");
    assert_eq!(last["data"]["message"], "hi from emit");
    assert_eq!(last["data"]["tenant_id"], "dev");
    // The handler is reachable by the bus only: it is no declared endpoint.
    let r = send(
        up.addr,
        "POST",
        &format!("/api/ext/{EXT}/events/hello-ping"),
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // Data that is not a JSON object is refused before anything is sent (exit 1).
    let bad = Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .args(["emit", "hello.ping", "[1]", "--url"])
        .arg(format!("http://{}", up.addr))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    drop(up);

    // Quotas: a second server on a fresh data directory (counters persist in a
    // data directory) with 3 invocations a day (a day window, so the test cannot
    // straddle a reset).
    let quota_dir = tempfile::tempdir().unwrap();
    let up = start(
        quota_dir.path(),
        &[("ALGA_QUOTA_PER_MINUTE", "0"), ("ALGA_QUOTA_PER_DAY", "3")],
        "quota-tenant",
    );
    let path = format!("/api/ext/{EXT}/api/hello");
    let statuses: Vec<u16> = (0..5)
        .map(|_| send(up.addr, "GET", &path, &[], b"").status)
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let r = send(up.addr, "GET", &path, &[], b"");
    assert_eq!(r.json()["error"], "quota_exceeded");
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");

    // The same quota guards the service route: per the wire contract the
    // transport answers 200 and the envelope carries 429 and the code; the
    // retry hint rides on the HTTP answer.
    let hash = content_hash(&up);
    let r = execute(&up, &hash, &[("x-runner-service-token", TOKEN)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let envelope = r.json();
    assert_eq!(envelope["status"], 429, "{envelope}");
    assert!(
        envelope["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("quota_exceeded")),
        "{envelope}"
    );
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after on /v1/execute")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
}

/// The content hash a host page's iframe src embeds.
fn page_hash(up: &Up) -> String {
    let page = send(up.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let prefix = format!("/ext-ui/{EXT}/");
    let start = html.find(&prefix).expect("an /ext-ui/ src") + prefix.len();
    html[start..start + 71].to_string()
}

/// The `message` of the direct route's answer.
fn hello_message(up: &Up) -> String {
    let r = send(
        up.addr,
        "GET",
        &format!("/api/ext/{EXT}/api/hello"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["message"].as_str().expect("a message").to_string()
}

/// Copies the example's sources (not `dist/`) into `to`, as a fresh checkout has them.
fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_sources(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn up_builds_a_fresh_checkout_and_watch_republishes_an_edit() {
    // A tree shaped like a fresh checkout: wit/ and the example's sources, no dist/.
    let tree = tempfile::tempdir().unwrap();
    let (repo, root) = (repo(), tree.path());
    std::os::unix::fs::symlink(repo.join("wit"), root.join("wit")).unwrap();
    let from = repo.join("examples/hello");
    let ext = root.join("examples/hello");
    std::fs::create_dir_all(&ext).unwrap();
    for file in ["manifest.json", "package.json", "package-lock.json"] {
        std::fs::copy(from.join(file), ext.join(file)).unwrap();
    }
    copy_sources(&from.join("src"), &ext.join("src"));
    copy_sources(&from.join("ui"), &ext.join("ui"));
    let node_modules = from.join("node_modules");
    assert!(
        node_modules.is_dir(),
        "examples/hello/node_modules missing: run scripts/build-example first"
    );
    std::os::unix::fs::symlink(node_modules, ext.join("node_modules")).unwrap();
    let component = ext.join("dist/main.wasm");
    assert!(!component.exists());

    let up = start_in(&ext, &root.join("data"), &[], "dev", &["--watch"]);
    assert!(component.is_file(), "up built dist/main.wasm itself");
    let first = content_hash(&up);
    assert_eq!(page_hash(&up), first);
    let message = hello_message(&up);
    assert!(message.ends_with(&format!("from {EXT}")), "{message}");
    assert!(!message.contains("(edited)"), "{message}");

    // Edit the handler; the watcher rebuilds, republishes and reinstalls it.
    let handler = ext.join("src/handler.js");
    let source = std::fs::read_to_string(&handler).unwrap();
    let template = "`${text} from ${ctx.extensionId}`";
    assert_eq!(
        source.matches(template).count(),
        1,
        "the handler's template"
    );
    let edited = source.replace(template, "`${text} (edited) from ${ctx.extensionId}`");
    std::fs::write(&handler, edited).unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let message = loop {
        let message = hello_message(&up);
        if message.contains("(edited)") {
            break message;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "--watch did not serve the edited handler within 10 minutes (still {message:?})"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(message, format!("Hello (edited) from {EXT}"));
    let second = page_hash(&up);
    assert_ne!(second, first, "the host page embeds the new bundle");
    assert!(second.starts_with("sha256:"), "{second}");
    let r = send(
        up.addr,
        "GET",
        &format!("/ext-ui/{EXT}/{second}/index.html"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "the new bundle's UI is served");
}

/// An extension directory with a WAT handler (no npm build, a fast publish) that
/// answers 200 `hello` on `GET /api/hello` and `POST /api/echo`.
fn small_extension(dir: &Path) {
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::create_dir_all(dir.join("ui")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        format!(
            r#"{{"name":"{EXT}","version":"1.0.0","runtime":"wasm-js@1","capabilities":[],
            "ui":{{"type":"iframe","entry":"ui/index.html"}},
            "api":{{"endpoints":[
              {{"method":"GET","path":"/api/hello","handler":"dist/main.wasm"}},
              {{"method":"POST","path":"/api/echo","handler":"dist/main.wasm"}}]}},
            "events":[{{"topic":"hello.ping","handler":"/events/hello-ping"}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("dist/main.wasm"), guests::hello()).unwrap();
    std::fs::write(dir.join("ui/index.html"), "<p>hi</p>").unwrap();
}

/// DNS rebinding and CSRF against `up`: a page on another site must neither read
/// from nor write to the dev server, which vouches for the dev identity.
#[test]
fn sec_08_up_refuses_foreign_hosts_and_cross_site_posts() {
    let root = tempfile::tempdir().unwrap();
    let ext = root.path().join("ext");
    small_extension(&ext);
    let up = start_in(&ext, &root.path().join("data"), &[], "dev", &[]);
    let port = up.addr.port();
    let hash = content_hash(&up);
    let hello = format!("/api/ext/{EXT}/api/hello");
    let echo = format!("/api/ext/{EXT}/api/echo");
    let events = "/__alga/events";
    let event = br#"{"topic":"hello.ping","data":{"n":1}}"#;
    let json = ("content-type", "application/json");

    // DNS rebinding: evil.example re-resolved to 127.0.0.1 sends its own name as
    // the Host; every route refuses it, reads and writes alike.
    let ui = format!("/ext-ui/{EXT}/{hash}/index.html");
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("evil.example:{port}@127.0.0.1"),
        String::new(),
    ] {
        let h = ("host", host.as_str());
        for path in ["/", "/__alga/host.js", hello.as_str(), ui.as_str()] {
            let r = send(up.addr, "GET", path, &[h], b"");
            assert_eq!(r.status, 403, "Host {host:?} {path}: {}", r.text());
            assert_eq!(r.json()["error"], "host_not_allowed", "{}", r.text());
        }
        let r = send(up.addr, "POST", &echo, &[h, json], b"{}");
        assert_eq!(r.status, 403, "Host {host:?}: {}", r.text());
        let r = send(up.addr, "POST", events, &[h, json], event);
        assert_eq!(r.status, 403, "Host {host:?}: {}", r.text());
        assert_eq!(r.json()["error"], "host_not_allowed", "{}", r.text());
    }
    // Loopback names and addresses (any case) are this machine's own.
    for host in [
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = send(up.addr, "GET", &hello, &[("host", host.as_str())], b"");
        assert_eq!(r.status, 200, "Host {host:?}: {}", r.text());
        assert_eq!(r.text(), "hello");
    }
    let r = send(up.addr, "GET", "/", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());

    // CSRF: a cross-site form (text/plain can carry a JSON body), a no-cors fetch
    // without a type, urlencoded and multipart posts: all are refused, on the
    // direct route (any method but GET/HEAD) and on the event bus.
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        for method in ["POST", "PUT", "DELETE"] {
            let r = send(up.addr, method, &echo, &headers, event);
            assert_eq!(r.status, 403, "{method} {content_type:?}: {}", r.text());
            assert_eq!(r.json()["error"], "csrf_rejected", "{}", r.text());
        }
        let r = send(up.addr, "POST", events, &headers, event);
        assert_eq!(r.status, 403, "{content_type:?}: {}", r.text());
        assert_eq!(r.json()["error"], "csrf_rejected", "{}", r.text());
        // A wrong token does not help.
        let mut wrong = headers.clone();
        wrong.push(("x-runner-service-token", "guess"));
        let r = send(up.addr, "POST", &echo, &wrong, event);
        assert_eq!(r.status, 403, "{content_type:?}: {}", r.text());
    }
    // What a browser can only send after a CORS preflight (that `up` never grants)
    // goes through: JSON, or up's own token header.
    for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
        let h = ("content-type", content_type);
        let r = send(up.addr, "POST", &echo, &[h], event);
        assert_eq!(r.status, 200, "{content_type}: {}", r.text());
        let r = send(up.addr, "POST", events, &[h], event);
        assert_eq!(r.status, 202, "{content_type}: {}", r.text());
    }
    let token = ("x-runner-service-token", TOKEN);
    let r = send(
        up.addr,
        "POST",
        &echo,
        &[token, ("content-type", "text/plain")],
        b"x",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(up.addr, "POST", events, &[token], event);
    assert_eq!(r.status, 202, "{}", r.text());
    // Reads need neither.
    let r = send(up.addr, "GET", &hello, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// With `ALGA_INSTALL_SOURCE=caller`, `/v1/execute` runs a request shaped as Alga's
/// server sends it — its registry UUID as the extension, its own install UUID and
/// the install's grants as `providers` — although our registry has no such install.
#[test]
fn up_in_caller_mode_runs_algas_request_shape() {
    const TENANT: &str = "5f0e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
    const REGISTRY_UUID: &str = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a";
    const INSTALL_UUID: &str = "3c2b1a09-8f7e-4d6c-a5b4-93827160f5e4";
    let dir = tempfile::tempdir().unwrap();
    // In caller mode the installs are Alga's: ext-ui asks Alga's installs/validate.
    let alga = test_support::alga_host_stub::AlgaHostStub::start("bridge-token");
    alga.set_api_key("alga-auth-key");
    let base = alga.base();
    let up = start(
        dir.path(),
        &[
            ("ALGA_INSTALL_SOURCE", "caller"),
            ("ALGA_HOST_API_BASE", base.as_str()),
            ("ALGA_HOST_API_KEY", "alga-auth-key"),
        ],
        "dev",
    );
    let hash = content_hash(&up);
    alga.add_install(
        test_support::alga_host_stub::StubInstall::new(INSTALL_UUID, TENANT)
            .registry_id(REGISTRY_UUID)
            .bundle(&hash),
    );
    let body = serde_json::json!({
        "context": {"tenant_id": TENANT, "extension_id": REGISTRY_UUID, "content_hash": hash,
                    "install_id": INSTALL_UUID, "request_id": "alga-1",
                    "config": {"greeting": "Hallo"}},
        "http": {"method": "GET", "path": "/api/hello", "query": {}, "headers": {}},
        "providers": ["cap:context.read", "cap:log.emit", "cap:storage.kv", "cap:secrets.get"],
        "limits": {"timeout_ms": 5000},
    });
    // Alga's ext-proxy sender: the service token and the routing headers.
    let as_alga = |body: &serde_json::Value| {
        send(
            up.addr,
            "POST",
            "/v1/execute",
            &[
                ("x-runner-service-token", TOKEN),
                ("content-type", "application/json"),
                ("x-alga-tenant", TENANT),
                ("x-alga-extension", REGISTRY_UUID),
            ],
            &serde_json::to_vec(body).unwrap(),
        )
    };
    let r = as_alga(&body);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json();
    assert_eq!(env["status"], 200, "{env}");
    let out = base64::engine::general_purpose::STANDARD
        .decode(env["body_b64"].as_str().unwrap())
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["tenant"], TENANT, "{out}");
    assert_eq!(out["installId"], INSTALL_UUID, "{out}");
    assert_eq!(
        out["counter"]["visits"], 1,
        "storage works, scoped by the caller's install: {out}"
    );
    // A hash we never published is refused, nothing run.
    let mut unknown = body.clone();
    unknown["context"]["content_hash"] = format!("sha256:{}", "0".repeat(64)).into();
    let r = as_alga(&unknown);
    let env = r.json();
    assert_eq!(env["status"], 503, "{env}");
    assert!(
        env["error"]
            .as_str()
            .unwrap()
            .starts_with("artifact_missing"),
        "{env}"
    );
    // Alga's iframe URL: Alga says the tenant runs this bundle, so it is served;
    // for another tenant Alga says no, and it is the same 404 as any unknown bundle.
    let iframe = |tenant: &str| {
        format!(
            "/ext-ui/{REGISTRY_UUID}/{}/index.html?path=%2F&tenant={tenant}&extensionId={REGISTRY_UUID}",
            hash.replace(':', "%3A")
        )
    };
    let r = send(up.addr, "GET", &iframe(TENANT), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(up.addr, "GET", &iframe("another-tenant"), &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        alga.requests()
            .iter()
            .any(|s| s.path.starts_with("/api/installs/validate")
                && s.header("x-api-key") == Some("alga-auth-key")),
        "ext-ui asked Alga with its key"
    );
}

/// In `registry` mode an install can carry Alga's ids (`install --host-extension-id
/// --host-install-id`): `/v1/execute` then accepts Alga's request as it sends it
/// (its registry UUID as the extension, its install UUID), and ext-ui serves the
/// iframe at Alga's URL (registry UUID, `encodeURIComponent`ed hash). Another
/// tenant's UUID install id is not this install.
#[test]
fn up_in_registry_mode_accepts_algas_ids_the_install_carries() {
    const TENANT: &str = "5f0e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
    const REGISTRY_UUID: &str = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a";
    const INSTALL_UUID: &str = "3c2b1a09-8f7e-4d6c-a5b4-93827160f5e4";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let up = start(&data, &[], TENANT);
    let hash = content_hash(&up);
    let out = Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .args(["install", EXT, "--tenant", TENANT, "--grant-requested"])
        .args([
            "--host-extension-id",
            REGISTRY_UUID,
            "--host-install-id",
            INSTALL_UUID,
        ])
        .arg("--data")
        .arg(&data)
        .env_remove("ALGA_BACKEND")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!(
            "host ids: extension {REGISTRY_UUID} install {INSTALL_UUID}"
        )),
        "{said}"
    );

    let alga_request = |install_id: &str| {
        let body = serde_json::json!({
            "context": {"tenant_id": TENANT, "extension_id": REGISTRY_UUID, "content_hash": hash,
                        "install_id": install_id, "request_id": "alga-2", "config": {}},
            "http": {"method": "GET", "path": "/api/hello", "query": {}, "headers": {}},
            "limits": {"timeout_ms": 5000},
        });
        send(
            up.addr,
            "POST",
            "/v1/execute",
            &[
                ("x-runner-service-token", TOKEN),
                ("content-type", "application/json"),
                ("x-alga-tenant", TENANT),
                ("x-alga-extension", REGISTRY_UUID),
            ],
            &serde_json::to_vec(&body).unwrap(),
        )
    };
    let env = alga_request(INSTALL_UUID).json();
    assert_eq!(env["status"], 200, "{env}");
    let out = base64::engine::general_purpose::STANDARD
        .decode(env["body_b64"].as_str().unwrap())
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["tenant"], TENANT, "{out}");
    // An install id that is neither ours nor the host app's: not this install.
    let env = alga_request("00000000-0000-4000-8000-000000000000").json();
    assert_eq!(env["status"], 404, "{env}");

    // Alga's iframe URL: its registry UUID and the encoded hash.
    let r = send(
        up.addr,
        "GET",
        &format!(
            "/ext-ui/{REGISTRY_UUID}/{}/index.html?path=%2F&tenant={TENANT}&extensionId={REGISTRY_UUID}",
            hash.replace(':', "%3A")
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html"));
    // The same URL with another tenant's tenant=: that tenant has no such install.
    let r = send(
        up.addr,
        "GET",
        &format!(
            "/ext-ui/{REGISTRY_UUID}/{}/index.html?path=%2F&tenant=another-tenant&extensionId={REGISTRY_UUID}",
            hash.replace(':', "%3A")
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // A UUID no install carries: the same not_found as any unknown extension.
    let r = send(
        up.addr,
        "GET",
        &format!("/ext-ui/11111111-2222-4333-8444-555555555555/{hash}/index.html"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

/// The server-sent events of `up`'s request log, read until `done` holds for
/// what arrived (bounded); `last_id` is sent as `Last-Event-ID`.
pub(crate) fn read_events(
    addr: SocketAddr,
    last_id: Option<u64>,
    done: impl Fn(&str) -> bool,
) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head =
        format!("GET /__alga/requests HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n");
    if let Some(id) = last_id {
        head.push_str(&format!("last-event-id: {id}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut buf)
            .expect("the event stream answers within 60 s");
        assert!(
            n > 0,
            "the event stream closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if done(&text) {
            return text;
        }
    }
}

/// The `data:` JSON of each `request` event in `text`.
pub(crate) fn events(text: &str) -> Vec<serde_json::Value> {
    text.split("\n\n")
        .filter(|block| block.contains("event: request"))
        .filter_map(|block| {
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            serde_json::from_str(data).ok()
        })
        .collect()
}

#[test]
fn up_logs_each_request_as_a_line_and_streams_it_to_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let up = start(dir.path(), &[], "dev");
    let hello = format!("/api/ext/{EXT}/api/hello");
    assert_eq!(send(up.addr, "GET", &hello, &[], b"").status, 200);
    let missing = format!("/api/ext/{EXT}/api/nope");
    assert_eq!(send(up.addr, "GET", &missing, &[], b"").status, 404);

    // The terminal: one line per request, the guest's lines under it; no colour
    // when stdout is not a terminal.
    let out = up.wait_for_output(&format!("GET {missing} 404"));
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("GET {hello} 200 ")))
        .unwrap_or_else(|| panic!("no request line for {hello}:\n{out}"));
    assert!(lines[at].ends_with(" ok"), "{}", lines[at]);
    assert!(lines[at].contains(" ms "), "{}", lines[at]);
    assert_eq!(
        lines[at + 1],
        "    info  hello handler: GET /api/hello",
        "{out}"
    );
    assert!(
        lines[at + 2..]
            .iter()
            .take_while(|l| l.starts_with("    "))
            .any(|l| l.contains("[stdout] served /api/hello for dev")),
        "{out}"
    );
    let refused = lines
        .iter()
        .find(|l| l.starts_with(&format!("GET {missing} 404 ")))
        .unwrap();
    assert!(refused.contains(" endpoint_not_found"), "{refused}");
    assert!(!out.contains('\x1b'), "colour on a pipe: {out:?}");

    // The panel's stream: the kept requests, with their logs and metrics.
    let text = read_events(up.addr, None, |t| t.contains("/api/nope"));
    let got = events(&text);
    let first = got
        .iter()
        .find(|e| e["path"] == hello.as_str())
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 200);
    assert_eq!(first["outcome"], "ok");
    assert!(first["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(first["logs"][0]["message"], "hello handler: GET /api/hello");
    assert_eq!(first["logs"][0]["level"], "info");
    assert_eq!(first["metrics"]["route"], "direct");
    assert!(first["metrics"]["run_ms"].as_f64().is_some(), "{first}");
    assert!(
        first["metrics"]["host_calls"].as_u64().unwrap() > 0,
        "{first}"
    );
    let nope = got.iter().find(|e| e["path"] == missing.as_str()).unwrap();
    assert_eq!(nope["status"], 404);
    assert_eq!(nope["outcome"], "endpoint_not_found");

    // A reconnecting browser names the last event it saw and gets only newer ones.
    let seen = first["seq"].as_u64().unwrap();
    let text = read_events(up.addr, Some(seen), |t| t.contains("/api/nope"));
    assert!(
        events(&text)
            .iter()
            .all(|e| e["seq"].as_u64().unwrap() > seen),
        "{text}"
    );
}

/// Ctrl-C on `up`: the execution records still queued by the batching writer are
/// written before it exits, so the request just answered is in the data directory.
#[test]
fn ctrl_c_writes_the_queued_execution_records_before_up_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = start(dir.path(), &[], "dev");
    let r = send(
        up.addr,
        "GET",
        &format!("/api/ext/{EXT}/api/hello"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let request_id = r.header("x-request-id").unwrap().to_string();
    let status = Command::new("kill")
        .args(["-INT", &up.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = up.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "up did not exit on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let backends = stores_local::backends(dir.path()).unwrap();
    let records = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(backends.executions.recent("dev", EXT, 10))
        .unwrap();
    assert!(
        records.iter().any(|r| r.request_id == request_id),
        "{request_id} not among {records:?}"
    );
}
