// A hostile JavaScript extension for runtime-core's hostile-guest tests
// (runtime-core/tests/it/hostile.rs): one component, one misbehaviour per path,
// so the ~8 s jco build is paid once. `/hello` behaves, to show the same
// component still answers after each misbehaviour.
import { logInfo } from 'alga:extension/logging';
import { get as kvGet } from 'alga:extension/storage';

const encoder = new TextEncoder();

function text(status, body) {
  return {
    status,
    headers: [{ name: 'content-type', value: 'text/plain' }],
    body: encoder.encode(body),
  };
}

// Every step schedules the next: the microtask queue never drains.
function chain(n) {
  return Promise.resolve(n + 1).then(chain);
}

function recurse(n) {
  return recurse(n + 1) + 1;
}

const routes = {
  '/hello': () => text(200, 'hello'),
  '/spin': () => {
    for (;;) {}
  },
  '/promise-loop': async () => {
    await chain(0);
    return text(200, 'unreachable');
  },
  '/heap': () => {
    const hoard = [];
    for (;;) hoard.push(new Array(1 << 16).fill(1.5));
  },
  '/huge': () => ({ status: 200, headers: [], body: new Uint8Array(6 << 20) }),
  '/log-flood': () => {
    const line = 'x'.repeat(1024);
    for (;;) logInfo(line);
  },
  '/console-flood': () => {
    const line = 'y'.repeat(1024);
    for (;;) console.log(line);
  },
  '/recurse': () => text(200, String(recurse(0))),
  // Retries a call the install is not granted until something gives.
  '/retry': () => {
    for (;;) {
      try {
        kvGet('ns', 'key');
        return text(200, 'granted?');
      } catch (e) {
        // denied: try again
      }
    }
  },
};

export async function handler(request) {
  const path = request.http.url.split('?')[0];
  const route = routes[path];
  return route ? route() : text(404, 'no such misbehaviour');
}
