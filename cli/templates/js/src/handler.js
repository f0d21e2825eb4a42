// {{extension_id}}: the server side. jco builds this module into a WebAssembly
// component (npm run build → dist/main.wasm); its `handler` export answers every
// request the manifest's endpoints route to it.
//
// Host APIs are imports: `alga:extension/<interface>` (the full list, with types,
// is in wit/extension-runner.wit). Each is gated by a capability the manifest asks
// for and the install grants; a host call that returns `result<T, E>` throws in JS
// with the error case (e.g. 'missing', 'denied') as `e.payload`.
import { getContext } from 'alga:extension/context';
import { logInfo, logWarn } from 'alga:extension/logging';
import { get as kvGet, put as kvPut } from 'alga:extension/storage';
import { createRouter, json, readJson } from './router.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function errorCase(e) {
  return e && e.payload !== undefined ? e.payload : String(e);
}

// GET /api/hello: who is calling (cap:context.read and cap:log.emit are always granted).
function hello() {
  const ctx = getContext();
  logInfo(`hello for tenant ${ctx.tenantId}`);
  return json(200, {
    message: `Hello from ${ctx.extensionId}`,
    tenant: ctx.tenantId,
    installId: ctx.installId ?? null,
    requestId: ctx.requestId ?? null,
  });
}

// POST /api/counter {"by": n}: a per-install counter in key-value storage
// (cap:storage.kv), updated with the entry's revision so concurrent calls never
// lose a count.
function counter(request) {
  const by = Number(readJson(request).by ?? 1);
  if (!Number.isInteger(by) || by < 1 || by > 1000) {
    return json(400, { error: 'invalid_by', message: '"by" must be an integer from 1 to 1000' });
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    let current = 0;
    let revision;
    try {
      const entry = kvGet('counter', 'count');
      current = Number(decoder.decode(entry.value)) || 0;
      revision = entry.revision;
    } catch (e) {
      if (errorCase(e) === 'denied') return storageDenied();
      if (errorCase(e) !== 'missing') throw e;
    }
    try {
      kvPut({ namespace: 'counter', key: 'count', value: encoder.encode(String(current + by)), revision });
      logInfo(`counter ${current} -> ${current + by}`);
      return json(200, { count: current + by });
    } catch (e) {
      if (errorCase(e) === 'denied') return storageDenied();
      if (errorCase(e) !== 'conflict') throw e;
      logWarn(`counter: another request won revision ${revision}; trying again`);
    }
  }
  return json(409, { error: 'busy', message: 'the counter changed five times in a row; try again' });
}

function storageDenied() {
  return json(403, {
    error: 'storage_denied',
    hint: 'add "cap:storage.kv" to "capabilities" in manifest.json (up grants what the manifest asks)',
  });
}

export const handler = createRouter({
  'GET /api/hello': hello,
  'POST /api/counter': counter,
});
