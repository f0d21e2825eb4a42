// The iframe UI: reads its context from the query string the host page sets, then
// calls the extension's own handler through the runner's direct route.
const params = new URLSearchParams(window.location.search);
const extensionId = params.get('extensionId') || 'com.example.hello';
const status = document.getElementById('status');
const result = document.getElementById('result');

fetch(`/api/ext/${encodeURIComponent(extensionId)}/api/hello`)
  .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
  .then(({ ok, body }) => {
    status.textContent = ok ? body.message : `Handler error: ${JSON.stringify(body)}`;
    status.dataset.state = ok ? 'ok' : 'error';
    result.textContent = JSON.stringify(body, null, 2);
  })
  .catch((e) => {
    status.textContent = `Request failed: ${e}`;
    status.dataset.state = 'error';
  });
