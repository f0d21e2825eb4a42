// A small router for the handler: routes are "METHOD /path" keys, and a path
// segment written `:name` matches any one segment and hands it over as params.name.
// The manifest's `api.endpoints` must list every route: the runtime only calls the
// handler for the endpoints the manifest declares.
//
// The types come from our WIT (npm run types → types/, by `jco guest-types`).
import type { ExecuteRequest, ExecuteResponse, HttpHeader } from 'alga:extension/types';

export type Params = Record<string, string>;
export type Route = (request: ExecuteRequest, params: Params) => ExecuteResponse;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON response. */
export function json(status: number, value: unknown, headers: HttpHeader[] = []): ExecuteResponse {
  return {
    status,
    headers: [{ name: 'content-type', value: 'application/json' }, ...headers],
    body: encoder.encode(JSON.stringify(value)),
  };
}

/** The request body parsed as JSON ({} when there is none); throws on bad JSON. */
export function readJson<T = Record<string, unknown>>(request: ExecuteRequest): T {
  const body = request.http.body;
  if (!body || body.length === 0) return {} as T;
  return JSON.parse(decoder.decode(body)) as T;
}

interface Entry {
  method: string;
  segments: string[];
  run: Route;
}

/** A handler for the world's `handler` export that dispatches on method and path. */
export function createRouter(routes: Record<string, Route>): (request: ExecuteRequest) => ExecuteResponse {
  const table: Entry[] = Object.entries(routes).map(([key, run]) => {
    const [method, pattern] = key.trim().split(/\s+/);
    return { method: method.toUpperCase(), segments: pattern.split('/'), run };
  });
  return (request) => {
    const method = request.http.method.toUpperCase();
    const path = request.http.url.split('?')[0];
    const segments = path.split('/');
    const allowed: string[] = [];
    for (const route of table) {
      const params = match(route.segments, segments);
      if (!params) continue;
      if (route.method !== method) {
        allowed.push(route.method);
        continue;
      }
      try {
        return route.run(request, params);
      } catch (e) {
        if (e instanceof SyntaxError) return json(400, { error: 'invalid_json', message: e.message });
        throw e;
      }
    }
    if (allowed.length > 0) {
      return json(405, { error: 'method_not_allowed', allowed }, [{ name: 'allow', value: allowed.join(', ') }]);
    }
    return json(404, { error: 'not_found', path });
  };
}

function match(pattern: string[], segments: string[]): Params | null {
  if (pattern.length !== segments.length) return null;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(':')) params[pattern[i].slice(1)] = decodeURIComponent(segments[i]);
    else if (pattern[i] !== segments[i]) return null;
  }
  return params;
}
