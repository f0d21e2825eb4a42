// Sample alga-lambda extension handler, built into a WebAssembly component by jco.
//
// It uses the host APIs a typical Alga extension uses: context, logging, storage and
// secrets. Every host call is one the runner gates by capability; the manifest asks for
// cap:storage.kv and cap:secrets.get.
import { getContext } from 'alga:extension/context';
import { logInfo, logWarn } from 'alga:extension/logging';
import { get as getSecret } from 'alga:extension/secrets';
import { get as kvGet, put as kvPut } from 'alga:extension/storage';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function json(status, value) {
  return {
    status,
    headers: [{ name: 'content-type', value: 'application/json' }],
    body: encoder.encode(JSON.stringify(value)),
  };
}

// Host functions that return `result<T, E>` throw in JS; the error's payload is the
// WIT enum case (e.g. "missing", "denied").
function errorCase(e) {
  return e && e.payload !== undefined ? e.payload : String(e);
}

function greeting() {
  try {
    return { greeting: getSecret('greeting'), source: 'secret' };
  } catch (e) {
    return { greeting: 'Hello', source: `default (${errorCase(e)})` };
  }
}

// Counts visits per tenant install, using the storage revision for a safe update.
function countVisit() {
  let current = 0;
  let revision;
  try {
    const entry = kvGet('hello', 'visits');
    current = Number(decoder.decode(entry.value)) || 0;
    revision = entry.revision;
  } catch (e) {
    if (errorCase(e) !== 'missing') {
      logWarn(`storage unavailable: ${errorCase(e)}`);
      return null;
    }
  }
  try {
    const stored = kvPut({
      namespace: 'hello',
      key: 'visits',
      value: encoder.encode(String(current + 1)),
      revision,
    });
    return { visits: current + 1, revision: Number(stored.revision) };
  } catch (e) {
    logWarn(`storage put failed: ${errorCase(e)}`);
    return null;
  }
}

// Events arrive as POST to the subscription's handler path (manifest `events`)
// with the event as the JSON body; the last one is kept for /api/hello to show.
function onEvent(request) {
  const text = request.http.body ? decoder.decode(request.http.body) : '{}';
  const event = JSON.parse(text);
  try {
    kvPut({
      namespace: 'hello',
      key: 'last-event',
      value: encoder.encode(JSON.stringify({ id: event.id, topic: event.topic, data: event.data })),
    });
  } catch (e) {
    logWarn(`storage put failed: ${errorCase(e)}`);
    return json(503, { error: 'storage_unavailable' });
  }
  logInfo(`event ${event.id} on ${event.topic}`);
  return json(200, { received: event.id });
}

function lastEvent() {
  try {
    return JSON.parse(decoder.decode(kvGet('hello', 'last-event').value));
  } catch (e) {
    return null;
  }
}

export function handler(request) {
  const ctx = getContext();
  const { method, url } = request.http;
  const path = url.split('?')[0];
  logInfo(`hello handler: ${method} ${url}`);
  // console output reaches the runner's request log too (captured WASI stdout).
  console.log(`served ${path} for ${ctx.tenantId}`);

  if (path === '/api/hello' || path === '/') {
    const { greeting: text, source } = greeting();
    return json(200, {
      message: `${text} from ${ctx.extensionId}`,
      greetingSource: source,
      tenant: ctx.tenantId,
      installId: ctx.installId ?? null,
      requestId: ctx.requestId ?? null,
      counter: countVisit(),
      lastEvent: lastEvent(),
    });
  }

  if (path === '/events/hello-ping' && method === 'POST') {
    return onEvent(request);
  }

  if (path === '/api/echo') {
    const reply = json(200, {
      method,
      url,
      headers: request.http.headers.map((h) => [h.name, h.value]),
      body: request.http.body ? decoder.decode(request.http.body) : null,
    });
    // Response headers cross an allowlist: x-ext-* and cache-control reach the
    // caller; a cookie or a CORS grant on the API's domain never does.
    reply.headers.push(
      { name: 'x-ext-echo', value: 'yes' },
      { name: 'cache-control', value: 'private, max-age=5' },
      { name: 'set-cookie', value: 'session=from-the-guest' },
      { name: 'access-control-allow-origin', value: '*' },
    );
    return reply;
  }

  return json(404, { error: 'not_found', path });
}
