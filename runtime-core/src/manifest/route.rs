//! Endpoint path syntax and request matching.

use super::{Endpoint, EndpointMatch};

/// Characters allowed in a literal segment besides ASCII letters and digits: RFC 3986
/// `pchar` (percent escapes are kept as written and compared as written).
const SEGMENT_PUNCTUATION: &str = "-._~!$&'()*+,;=:@%";

/// Longest endpoint or handler path accepted.
pub(super) const MAX_PATH_CHARS: usize = 1024;

/// One segment of a validated endpoint path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
}

impl Segment<'_> {
    pub(super) fn is_param(self) -> bool {
        matches!(self, Segment::Param(_))
    }
}

/// The segments of an endpoint path (`"/"` has none).
pub(super) fn pattern_segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.strip_prefix('/')
        .filter(|rest| !rest.is_empty())
        .into_iter()
        .flat_map(|rest| rest.split('/'))
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => Segment::Param(name),
            None => Segment::Literal(segment),
        })
}

/// Checks an endpoint path; the error says what is wrong and quotes the path.
pub(super) fn check_pattern(path: &str) -> Result<(), String> {
    let found = super::validate::quote(path);
    let expected = "expected a path like \"/api/items/:id\"";
    if path.is_empty() {
        return Err(format!("{expected}, found an empty string"));
    }
    if !path.starts_with('/') {
        return Err(format!("{expected} (starting with '/'), found {found}"));
    }
    if path.chars().count() > MAX_PATH_CHARS {
        return Err(format!(
            "expected at most {MAX_PATH_CHARS} characters, found {}",
            path.chars().count()
        ));
    }
    if path.contains('?') {
        return Err(format!(
            "{expected} without a query string ('?'), found {found}"
        ));
    }
    if path.contains('#') {
        return Err(format!(
            "{expected} without a fragment ('#'), found {found}"
        ));
    }
    if path == "/" {
        return Ok(());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut params: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let n = i + 1;
        if segment.is_empty() {
            return Err(if n == segments.len() {
                format!("{expected} without a trailing '/', found {found}")
            } else {
                format!("{expected} without empty segments ('//'), found {found}")
            });
        }
        if let Some(name) = segment.strip_prefix(':') {
            if name.is_empty() {
                return Err(format!(
                    "segment {n} is ':' without a name; expected ':name' (letters, digits, '_'), found {found}"
                ));
            }
            if let Some(c) = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
            {
                return Err(format!(
                    "parameter {segment:?} contains {c:?}; expected ':name' with only letters, digits and '_', found {found}"
                ));
            }
            if params.contains(&name) {
                return Err(format!(
                    "parameter ':{name}' appears twice; expected distinct parameter names, found {found}"
                ));
            }
            params.push(name);
            continue;
        }
        if *segment == "." || *segment == ".." {
            return Err(format!(
                "{expected} without '.' or '..' segments, found {found}"
            ));
        }
        if segment.starts_with('{') && segment.ends_with('}') {
            return Err(format!(
                "segment {segment:?} looks like a parameter; write it as ':{}', found {found}",
                &segment[1..segment.len() - 1]
            ));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || SEGMENT_PUNCTUATION.contains(*c)))
        {
            return Err(format!(
                "segment {segment:?} contains {c:?}; expected letters, digits and {SEGMENT_PUNCTUATION} (percent-encode anything else), found {found}"
            ));
        }
    }
    Ok(())
}

/// Checks a path that names one concrete endpoint path (no `:param` segments).
pub(super) fn check_concrete(path: &str) -> Result<(), String> {
    check_pattern(path)?;
    if let Some(Segment::Param(name)) = pattern_segments(path).find(|s| s.is_param()) {
        return Err(format!(
            "expected a path without parameters, found ':{name}' in {}",
            super::validate::quote(path)
        ));
    }
    Ok(())
}

/// The segments of a request path, after dropping any query string or fragment;
/// `None` when it does not start with `/`.
pub(super) fn request_segments(path: &str) -> Option<Vec<&str>> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    Some(rest.split('/').collect())
}

/// Whether a request segment may be a `:param` value. Guests join parameters into
/// storage keys, file paths and outbound URLs, and many decode them first, so a
/// value must not be able to climb or split the path after decoding: no `.` or
/// `..` (also spelt with `%2e`), no `/` or `\` (also as `%2F` / `%5C`), and not
/// empty. Such a request matches no endpoint: the gateway answers 404
/// `endpoint_not_found` before any guest runs. Other escapes (`%20`, `%25`, ...)
/// pass through as written.
fn param_value_allowed(segment: &str) -> bool {
    if segment.is_empty() || segment.contains('\\') {
        return false;
    }
    let lower = segment.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    let dots = lower.replace("%2e", ".");
    dots != "." && dots != ".."
}

/// Parameter values, in path order.
type Params = Vec<(String, String)>;

/// How an endpoint matched: per segment, whether it was a literal (for specificity),
/// and the parameter values.
fn match_one(pattern: &str, request: &[&str]) -> Option<(Vec<bool>, Params)> {
    let mut literal = Vec::with_capacity(request.len());
    let mut params = Vec::new();
    let mut pattern = pattern_segments(pattern);
    for actual in request {
        match pattern.next()? {
            Segment::Literal(expected) if expected == *actual => literal.push(true),
            Segment::Param(name) if param_value_allowed(actual) => {
                literal.push(false);
                params.push((name.to_string(), actual.to_string()));
            }
            _ => return None,
        }
    }
    if pattern.next().is_some() {
        return None;
    }
    Some((literal, params))
}

/// The most specific endpoint with exactly `method` that matches, first declared on a tie.
pub(super) fn best_match<'a>(
    endpoints: &'a [Endpoint],
    method: &str,
    request: &[&str],
) -> Option<EndpointMatch<'a>> {
    let mut best: Option<(Vec<bool>, EndpointMatch<'a>)> = None;
    for endpoint in endpoints.iter().filter(|e| e.method == method) {
        let Some((specificity, params)) = match_one(&endpoint.path, request) else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| specificity > *b) {
            best = Some((specificity, EndpointMatch { endpoint, params }));
        }
    }
    best.map(|(_, m)| m)
}

/// A key that is equal for two endpoint paths exactly when they match the same
/// requests: parameters become `:`.
pub(super) fn shape(path: &str) -> String {
    let mut out = String::new();
    for segment in pattern_segments(path) {
        out.push('/');
        match segment {
            Segment::Literal(s) => out.push_str(s),
            Segment::Param(_) => out.push(':'),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}
