//! The host page `up` serves at `/`: it plays the host app (Alga) — embeds the
//! extension's UI in a sandboxed iframe, with the src built the way Alga builds
//! it, and relays the UI's API calls to the direct route (the iframe itself has
//! an opaque origin and no credentials, exactly as in production).

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The page for one extension install.
pub fn page(extension_id: &str, content_hash: &str, tenant: &str) -> Response<Full<Bytes>> {
    let src = format!(
        "/ext-ui/{}/{}/index.html?path=%2F&tenant={}&extensionId={}",
        encode(extension_id),
        content_hash,
        encode(tenant),
        encode(extension_id),
    );
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>alga-lambda up: {ext}</title>
<style>
body {{ font: 15px system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }}
header {{ padding: 12px 20px; background: #1d2330; color: #fff; }}
header code {{ color: #9fd3ff; }}
main {{ padding: 20px; }}
iframe {{ width: 100%; height: 60vh; border: 1px solid #c9ced8; border-radius: 6px; background: #fff; }}
#requests h2 {{ font-size: 15px; margin: 18px 0 6px; }}
#requests h2 small {{ font-weight: normal; color: #5b6475; }}
#request-log {{ list-style: none; margin: 0; padding: 0; font: 13px ui-monospace, monospace; background: #fff; border: 1px solid #c9ced8; border-radius: 6px; max-height: 40vh; overflow: auto; }}
#request-log li {{ border-bottom: 1px solid #eceef2; padding: 4px 10px; }}
#request-log .line span {{ margin-right: 10px; }}
#request-log .method {{ font-weight: bold; }}
#request-log .s2, #request-log .s3 {{ color: #1a7f37; }}
#request-log .s4 {{ color: #9a6700; }}
#request-log .s5, #request-log .failed {{ color: #cf222e; }}
#request-log .duration, #request-log .metrics {{ color: #5b6475; }}
#request-log .logs {{ margin: 2px 0 2px 18px; white-space: pre-wrap; }}
#request-log .warn {{ color: #9a6700; }}
#request-log .error {{ color: #cf222e; }}
</style>
</head>
<body>
<header>alga-lambda up · tenant <code>{tenant}</code> · extension <code>{ext}</code> · bundle <code>{hash}</code></header>
<main>
<iframe id="extension" title="{ext}" sandbox="allow-scripts" data-extension-id="{ext}" src="{src}"></iframe>
<section id="requests">
<h2>Requests <small id="request-state" data-state="connecting">connecting…</small></h2>
<ol id="request-log" aria-live="polite"></ol>
</section>
</main>
<script src="/__alga/host.js"></script>
</body>
</html>
"#,
        ext = escape(extension_id),
        tenant = escape(tenant),
        hash = escape(content_hash),
        src = escape(&src),
    );
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header(
            "content-security-policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-src 'self'; object-src 'none'; base-uri 'none'",
        )
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(html)))
        .expect("a valid response")
}

/// The host page's script: the bridge between the sandboxed iframe and the API.
pub fn script() -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "text/javascript")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from_static(HOST_JS.as_bytes())))
        .expect("a valid response")
}

/// Also shows the request log (`/__alga/requests`, server-sent events): newest
/// first, the last [`super::log::KEEP`], each with its guest log lines and metrics.
/// Guest text is only ever set as text, never as HTML.
///
/// Relays `{alga: "fetch", id, path, method, body}` from the extension's own
/// iframe to `/api/ext/{ext}{path}` and posts `{alga: "fetch-result", id, status,
/// body}` back. Messages from any other window are ignored; a path that could leave
/// the extension's own route is answered 400 `invalid_path` and never requested.
/// State-changing calls carry JSON's content type, which `up` requires (CSRF).
const HOST_JS: &str = r#"'use strict';
(function () {
  const frame = document.getElementById('extension');
  const ext = frame.dataset.extensionId;
  const base = '/api/ext/' + encodeURIComponent(ext);

  // Undoes percent-encoding until nothing changes, so `%252e` counts as the `.`
  // a server decoding twice would see; null when an escape is malformed or the
  // nesting is deeper than any honest path's.
  function decodeFully(segment) {
    let text = segment;
    for (let round = 0; round < 4; round++) {
      let decoded;
      try {
        decoded = decodeURIComponent(text);
      } catch (_) {
        return null;
      }
      if (decoded === text) return text;
      text = decoded;
    }
    return null;
  }

  // The URL on the extension's own route for a path the UI asked for, or null.
  // The browser's URL parser resolves `.` and `..` segments (`%2e` spellings too),
  // reads `\` as `/` and drops tabs and newlines, so such a path could leave
  // /api/ext/{ext}/ and call /v1/execute or another extension with this page's
  // origin: any such segment is refused, and the resolved URL must still be under
  // the extension's route.
  function extensionUrl(path) {
    if (typeof path !== 'string' || !path.startsWith('/')) return null;
    const end = path.search(/[?#]/);
    const pathname = end < 0 ? path : path.slice(0, end);
    for (const segment of pathname.slice(1).split('/')) {
      const decoded = decodeFully(segment);
      if (decoded === null || decoded === '.' || decoded === '..') return null;
      if (/[\/\\\u0000-\u001f\u007f]/.test(decoded)) return null;
    }
    const url = new URL(base + path, window.location.origin);
    if (url.origin !== window.location.origin || !url.pathname.startsWith(base + '/')) return null;
    return url;
  }

  window.addEventListener('message', async (event) => {
    if (event.source !== frame.contentWindow) return;
    const msg = event.data;
    if (!msg || msg.alga !== 'fetch') return;
    const reply = (status, body) =>
      frame.contentWindow.postMessage({ alga: 'fetch-result', id: msg.id, status, body }, '*');
    const url = extensionUrl(msg.path);
    if (!url) {
      reply(400, JSON.stringify({
        error: 'invalid_path',
        message: "the path must start with / and stay under the extension's own route (no ., .., encoded dots, backslashes or control characters)",
      }));
      return;
    }
    const method = typeof msg.method === 'string' ? msg.method.toUpperCase() : 'GET';
    try {
      const init = { method, headers: {} };
      if (method !== 'GET' && method !== 'HEAD') {
        // up refuses state-changing requests without JSON's content type (CSRF).
        init.headers['content-type'] = 'application/json';
        if (msg.body !== undefined && msg.body !== null) init.body = String(msg.body);
      }
      const r = await fetch(url, init);
      reply(r.status, await r.text());
    } catch (e) {
      reply(0, String(e));
    }
  });

  // The request log.
  const log = document.getElementById('request-log');
  const state = document.getElementById('request-state');
  const keep = 100;
  const seen = new Set();
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function metricsText(m) {
    const parts = [];
    if (m.load_ms !== undefined) parts.push('load ' + Number(m.load_ms).toFixed(1) + ' ms');
    if (m.run_ms !== undefined) parts.push('run ' + Number(m.run_ms).toFixed(1) + ' ms');
    if (m.peak_memory !== undefined) parts.push(Math.round(m.peak_memory / 1024) + ' KiB peak');
    if (m.host_calls !== undefined) parts.push(m.host_calls + ' host calls');
    if (m.route) parts.push(m.route);
    if (m.request_id) parts.push(m.request_id);
    return parts.join(' · ');
  }
  function show(entry) {
    if (seen.has(entry.seq)) return;
    seen.add(entry.seq);
    const li = el('li', 'request');
    li.dataset.seq = entry.seq;
    li.dataset.method = entry.method;
    li.dataset.path = entry.path;
    li.dataset.status = entry.status;
    li.dataset.outcome = entry.outcome;
    const line = el('div', 'line');
    line.append(
      el('span', 'method', entry.method),
      el('span', 'path', entry.path),
      el('span', 'status s' + String(entry.status).charAt(0), String(entry.status)),
      el('span', 'duration', entry.duration_ms + ' ms'),
      el('span', 'outcome' + (entry.outcome === 'ok' ? '' : ' failed'), entry.outcome),
    );
    if (entry.metrics && entry.metrics.error && entry.outcome !== 'ok') {
      line.append(el('span', 'failed', entry.metrics.error));
    }
    li.append(line);
    if (entry.logs.length > 0) {
      const logs = el('div', 'logs');
      for (const l of entry.logs) {
        const row = el('div', 'log ' + l.level, l.level + ' ' + (l.source === 'log' ? '' : '[' + l.source + '] ') + l.message);
        logs.append(row);
      }
      li.append(logs);
    }
    const metrics = metricsText(entry.metrics || {});
    if (metrics) li.append(el('div', 'metrics', metrics));
    log.prepend(li);
    while (log.children.length > keep) log.lastElementChild.remove();
  }
  const source = new EventSource('/__alga/requests');
  source.addEventListener('open', () => {
    state.dataset.state = 'live';
    state.textContent = 'live';
  });
  source.addEventListener('error', () => {
    state.dataset.state = 'reconnecting';
    state.textContent = 'reconnecting…';
  });
  source.addEventListener('request', (event) => show(JSON.parse(event.data)));
})();
"#;
