// The iframe bridge: calls the extension's own handler from its UI.
//
// The host app (Alga, or `alga-lambda up`'s host page) shows this UI in a sandboxed
// iframe: an opaque origin without cookies or credentials, so the UI cannot call
// the API itself. It posts {alga: "fetch", id, path, method, body} to its parent;
// the host checks that the path stays under this extension's route, calls
// /api/ext/<extension id><path> as the signed-in user and posts back
// {alga: "fetch-result", id, status, body}. Opened on its own (not framed), the
// UI calls the direct route itself.
//
//   const reply = await algaBridge.call('/api/hello');
//   reply.status; reply.body (text); reply.json()
//   await algaBridge.call('/api/counter', { method: 'POST', body: { by: 2 } });
(function () {
  'use strict';
  const params = new URLSearchParams(window.location.search);
  // The host puts the extension id (and tenant) in the iframe's query string.
  const extensionId = params.get('extensionId') || '{{extension_id}}';
  const framed = window.parent !== window;
  const timeoutMs = 15000;
  let nextId = 1;

  function reply(status, body) {
    return {
      status,
      ok: status >= 200 && status < 300,
      body,
      json() {
        return body ? JSON.parse(body) : null;
      },
    };
  }

  function call(path, { method = 'GET', body } = {}) {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      return Promise.reject(new Error('the path must start with /'));
    }
    const text = body === undefined || body === null || typeof body === 'string' ? body : JSON.stringify(body);
    if (!framed) {
      const init = { method, headers: {} };
      if (text !== undefined && text !== null) {
        init.body = text;
        init.headers['content-type'] = 'application/json';
      }
      return fetch(`/api/ext/${encodeURIComponent(extensionId)}${path}`, init).then((r) =>
        r.text().then((t) => reply(r.status, t)),
      );
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        window.removeEventListener('message', onReply);
        reject(new Error(`the host did not answer ${method} ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      function onReply(event) {
        const msg = event.data;
        if (event.source !== window.parent || !msg || msg.alga !== 'fetch-result' || msg.id !== id) return;
        window.removeEventListener('message', onReply);
        clearTimeout(timer);
        if (msg.status === 0) reject(new Error(`the host could not call the handler: ${msg.body}`));
        else resolve(reply(msg.status, msg.body));
      }
      window.addEventListener('message', onReply);
      // The parent's origin is unknown to an opaque-origin frame; the host checks
      // that the message comes from this frame.
      window.parent.postMessage({ alga: 'fetch', id, path, method, body: text }, '*');
    });
  }

  window.algaBridge = { call, extensionId, framed };
})();
