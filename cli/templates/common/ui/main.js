// The extension's UI: greets through GET /api/hello and counts with POST
// /api/counter, both through the bridge (bridge.js).
(function () {
  'use strict';
  const greeting = document.getElementById('greeting');
  const counter = document.getElementById('counter');
  const detail = document.getElementById('detail');
  const button = document.getElementById('count');

  function show(el, state, text) {
    el.dataset.state = state;
    el.textContent = text;
  }

  algaBridge
    .call('/api/hello')
    .then((r) => {
      const value = r.json();
      if (!r.ok) throw new Error(value && value.message ? value.message : `HTTP ${r.status}`);
      show(greeting, 'ok', value.message);
      detail.textContent = JSON.stringify(value, null, 2);
    })
    .catch((e) => show(greeting, 'error', `The handler failed: ${e.message}`));

  button.addEventListener('click', () => {
    button.disabled = true;
    algaBridge
      .call('/api/counter', { method: 'POST', body: { by: 1 } })
      .then((r) => {
        const value = r.json();
        if (!r.ok) throw new Error(value && value.hint ? value.hint : `HTTP ${r.status}`);
        counter.dataset.count = String(value.count);
        show(counter, 'ok', `Counted ${value.count} time${value.count === 1 ? '' : 's'}`);
      })
      .catch((e) => show(counter, 'error', e.message))
      .finally(() => {
        button.disabled = false;
      });
  });
})();
