// The iframe UI: reads its context from the query string the host page sets, then
// calls the extension's own handler. Inside the host app's sandboxed iframe (an
// opaque origin, no credentials) the call goes through the host page's bridge
// (postMessage); opened on its own it calls the direct route itself.
const params = new URLSearchParams(window.location.search);
const extensionId = params.get('extensionId') || 'com.example.hello';
const status = document.getElementById('status');
const result = document.getElementById('result');

let nextId = 1;
function callHandler(path, { method = 'GET', body } = {}) {
  if (window.parent === window) {
    return fetch(`/api/ext/${encodeURIComponent(extensionId)}${path}`, { method, body })
      .then((r) => r.text().then((text) => ({ status: r.status, body: text })));
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the host did not answer')), 10000);
    window.addEventListener('message', function onReply(event) {
      const msg = event.data;
      if (event.source !== window.parent || !msg || msg.alga !== 'fetch-result' || msg.id !== id) return;
      window.removeEventListener('message', onReply);
      clearTimeout(timer);
      resolve({ status: msg.status, body: msg.body });
    });
    window.parent.postMessage({ alga: 'fetch', id, path, method, body }, '*');
  });
}

callHandler('/api/hello')
  .then(({ status: code, body }) => {
    const parsed = JSON.parse(body);
    const ok = code >= 200 && code < 300;
    status.textContent = ok ? parsed.message : `Handler error: ${body}`;
    status.dataset.state = ok ? 'ok' : 'error';
    result.textContent = JSON.stringify(parsed, null, 2);
  })
  .catch((e) => {
    status.textContent = `Request failed: ${e}`;
    status.dataset.state = 'error';
  });
