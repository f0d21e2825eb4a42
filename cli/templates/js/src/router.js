// A small router for the handler: routes are "METHOD /path" keys, and a path
// segment written `:name` matches any one segment and hands it over as params.name.
// The manifest's `api.endpoints` must list every route: the runtime only calls the
// handler for the endpoints the manifest declares.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON response. */
export function json(status, value, headers = []) {
  return {
    status,
    headers: [{ name: 'content-type', value: 'application/json' }, ...headers],
    body: encoder.encode(JSON.stringify(value)),
  };
}

/** The request body parsed as JSON ({} when there is none); throws on bad JSON. */
export function readJson(request) {
  const body = request.http.body;
  if (!body || body.length === 0) return {};
  return JSON.parse(decoder.decode(body));
}

/** A handler for the world's `handler` export that dispatches on method and path. */
export function createRouter(routes) {
  const table = Object.entries(routes).map(([key, run]) => {
    const [method, pattern] = key.trim().split(/\s+/);
    return { method: method.toUpperCase(), segments: pattern.split('/'), run };
  });
  return function handler(request) {
    const method = request.http.method.toUpperCase();
    const path = request.http.url.split('?')[0];
    const segments = path.split('/');
    const allowed = [];
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

function match(pattern, segments) {
  if (pattern.length !== segments.length) return null;
  const params = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(':')) params[pattern[i].slice(1)] = decodeURIComponent(segments[i]);
    else if (pattern[i] !== segments[i]) return null;
  }
  return params;
}
