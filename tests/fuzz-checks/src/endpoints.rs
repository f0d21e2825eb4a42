//! Endpoint matching: declared endpoints (through the validator) against a request.

use arbitrary::{Result, Unstructured};
use runtime_core::manifest::{self, ENDPOINT_METHODS, Endpoint, Manifest};

/// Segments endpoint paths are made of: literals, parameters, escapes.
const PATTERN_SEGMENTS: &[&str] = &[
    "api", "items", "a", "b", ":id", ":name", ":x", "%2e", "a%20b", "~", "@me", "v1", ":id_2",
];

/// Segments requests are made of: the pattern literals plus traversal spellings.
const REQUEST_SEGMENTS: &[&str] = &[
    "api",
    "items",
    "a",
    "b",
    "v1",
    "7",
    "",
    ".",
    "..",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2f",
    "a%2Fb",
    "%5c",
    "a\\b",
    "%252e%252e",
    "%%2f",
    "%2",
    "a%20b",
    "~",
    "@me",
    "%2e%2e%2f",
    "%C0%AE",
];

/// The input chooses up to six endpoints and a request; the manifest goes through
/// the validator. Checked against an oracle written apart from the router: a
/// request matches iff some endpoint of its method (HEAD falling back to GET) has
/// the same number of segments, equal literals, and for each parameter a non-empty
/// value that, percent-decoded once, is not `.` or `..` and holds no `/` or `\`;
/// the chosen endpoint is the most specific (literal beats parameter, segment by
/// segment), the first declared on a tie; parameter values are the raw segments.
pub fn endpoint_match(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((endpoints, method, path)) = input(&mut u) else {
        return;
    };
    let doc = serde_json::json!({
        "name": "com.example.fuzz",
        "version": "1.0.0",
        "runtime": "wasm-js@1",
        "api": {"endpoints": endpoints.iter().map(|(m, p)| serde_json::json!({
            "method": m, "path": p, "handler": "dist/main.wasm"
        })).collect::<Vec<_>>()},
    });
    let Ok(m) = manifest::parse(doc.to_string().as_bytes()) else {
        return;
    };
    check(&m, &method, &path);
}

/// Declared `(method, path)` pairs, then the request's method and path.
type Input = (Vec<(String, String)>, String, String);

fn input(u: &mut Unstructured<'_>) -> Result<Input> {
    let n = u.int_in_range(1..=6)?;
    let mut endpoints = Vec::with_capacity(n);
    for _ in 0..n {
        let method = (*u.choose(&ENDPOINT_METHODS)?).to_string();
        let path = join(u, PATTERN_SEGMENTS)?;
        endpoints.push((method, path));
    }
    let method = if u.ratio(1, 8)? {
        u.arbitrary::<String>()?
    } else {
        let m = *u.choose(&ENDPOINT_METHODS)?;
        if u.ratio(1, 4)? {
            format!(" {} ", m.to_ascii_lowercase())
        } else {
            m.to_string()
        }
    };
    let mut path = if u.ratio(1, 8)? {
        u.arbitrary::<String>()?
    } else {
        join(u, REQUEST_SEGMENTS)?
    };
    if u.ratio(1, 6)? {
        path.push(*u.choose(&['?', '#'])?);
        path.push_str(&u.arbitrary::<String>()?);
    }
    Ok((endpoints, method, path))
}

/// `/` and up to four segments from `pool` (or, rarely, arbitrary text).
fn join(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<String> {
    let n = u.int_in_range(0..=4)?;
    let mut out = String::new();
    for _ in 0..n {
        out.push('/');
        if u.ratio(1, 10)? {
            out.push_str(&u.arbitrary::<String>()?);
        } else {
            out.push_str(u.choose(pool)?);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The request's segments: the path before any `?` or `#`, which must start with `/`.
fn request_segments(path: &str) -> Option<Vec<&str>> {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let rest = path[..end].strip_prefix('/')?;
    Some(if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    })
}

fn param_ok(value: &str) -> bool {
    let decoded = super::percent_decode_lossy(value);
    !value.is_empty()
        && !value.contains('\\')
        && !decoded.contains(['/', '\\'])
        && decoded != "."
        && decoded != ".."
}

/// Per segment whether it is a literal, when `e` matches `request`.
fn oracle(e: &Endpoint, request: &[&str]) -> Option<Vec<bool>> {
    let pattern: Vec<&str> = if e.path == "/" {
        Vec::new()
    } else {
        e.path[1..].split('/').collect()
    };
    if pattern.len() != request.len() {
        return None;
    }
    pattern
        .iter()
        .zip(request)
        .map(|(p, r)| match p.strip_prefix(':') {
            Some(_) => param_ok(r).then_some(false),
            None => (p == r).then_some(true),
        })
        .collect()
}

fn check(m: &Manifest, raw_method: &str, path: &str) {
    let hit = m.match_endpoint(raw_method, path);
    let method = raw_method.trim().to_ascii_uppercase();
    let Some(request) = request_segments(path) else {
        assert!(hit.is_none(), "{path:?} does not start with / yet matched");
        return;
    };
    let matching = |want: &str| -> Vec<(usize, Vec<bool>)> {
        m.endpoints()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.method == want)
            .filter_map(|(i, e)| oracle(e, &request).map(|s| (i, s)))
            .collect()
    };
    let mut candidates = matching(&method);
    if candidates.is_empty() && method == "HEAD" {
        candidates = matching("GET");
    }
    // Most specific, first declared on a tie.
    let expected = candidates
        .iter()
        .fold(None::<&(usize, Vec<bool>)>, |best, c| match best {
            Some(b) if c.1 <= b.1 => Some(b),
            _ => Some(c),
        })
        .map(|(i, _)| &m.endpoints()[*i]);
    match (hit, expected) {
        (None, None) => {}
        (Some(hit), Some(e)) => {
            assert!(
                std::ptr::eq(hit.endpoint, e),
                "{method} {path:?} chose {} {}, the oracle {} {}",
                hit.endpoint.method,
                hit.endpoint.path,
                e.method,
                e.path
            );
            let names: Vec<&str> = e
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix(':'))
                .collect();
            let values: Vec<&str> = e.path[1..]
                .split('/')
                .zip(&request)
                .filter(|(p, _)| p.starts_with(':'))
                .map(|(_, r)| *r)
                .collect();
            let got: Vec<(&str, &str)> = hit
                .params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let want: Vec<(&str, &str)> = names.into_iter().zip(values).collect();
            assert_eq!(got, want, "{method} {path:?} on {}", e.path);
        }
        (hit, expected) => panic!(
            "{method} {path:?}: router chose {:?}, the oracle {:?}",
            hit.map(|h| format!("{} {}", h.endpoint.method, h.endpoint.path)),
            expected.map(|e| format!("{} {}", e.method, e.path)),
        ),
    }
}
