//! Parsing `/ext-ui/{extensionId}/{contentHash}/{path}`: the hash, the extension id and
//! the strict path rules of ALGA-COMPAT §4.
//!
//! Decoding rule (the one place every encoding trick is decided): the path is
//! percent-decoded **exactly once**, and the decoded text must then pass every rule.
//! So `%2e%2e` is `..` (refused as a dot segment), `%5c` is `\` (refused), `%00` is NUL
//! (refused as a control character), `%c0%ae` is not UTF-8 (refused), and double
//! encoding (`%252e`) leaves a `%` behind, which is refused too — nothing downstream
//! (S3, CloudFront, a file system) ever gets a second chance to decode it. An encoded
//! separator (`%2f`) is refused outright: no client needs one, and it only serves to
//! hide a segment from whatever looked at the raw path first.

use crate::content::ContentHash;

use super::content_type;

/// The URL prefix of UI requests.
pub const PREFIX: &str = "/ext-ui/";

/// Longest extension id (the manifest's `name` limit).
const MAX_EXTENSION_ID_CHARS: usize = 128;

/// A UI request's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The extension (decoded).
    pub extension_id: String,
    /// The bundle.
    pub content_hash: ContentHash,
    /// The file under the bundle's `ui/`, decoded and checked; `None` = the UI entry.
    pub path: Option<String>,
    /// The `tenant=` of the query, when the host page sent one: the bundle must then be
    /// that tenant's install (as Alga's runner checks). Empty counts as absent.
    pub tenant: Option<String>,
}

/// Why a raw path is not a servable UI route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path is not under `/ext-ui/`.
    #[error("not a UI route")]
    NotUiRoute,
    /// The raw path is longer than allowed.
    #[error("the path is longer than {0} bytes")]
    TooLong(usize),
    /// The content hash segment is missing or malformed.
    #[error("{0}")]
    InvalidHash(&'static str),
    /// The extension id or file path breaks a rule.
    #[error("{0}")]
    InvalidPath(&'static str),
    /// A query parameter the server reads (`tenant=`) is malformed.
    #[error("{0}")]
    InvalidQuery(&'static str),
}

/// Parses a raw (still percent-encoded) request path, with or without a query string.
pub fn parse(raw_path: &str, max_bytes: usize) -> Result<Route, RouteError> {
    if raw_path.len() > max_bytes {
        return Err(RouteError::TooLong(max_bytes));
    }
    // The host page adds `?path=&tenant=&extensionId=…`: `path` and `extensionId` are the
    // page script's business; `tenant` narrows which installs may serve the bundle.
    let without_fragment = raw_path.split('#').next().unwrap_or_default();
    let (path, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let tenant = parse_tenant(query)?;
    let rest = path.strip_prefix(PREFIX).ok_or(RouteError::NotUiRoute)?;

    // The hash segment is the first one spelled `sha256:`/`sha256%3A`: no extension id can
    // contain either (`:` and `%` are not allowed in names), so this is unambiguous and
    // lets a scoped id like `@acme/tool` appear with a literal `/`.
    let segments: Vec<&str> = rest.split('/').collect();
    let hash_at =
        segments
            .iter()
            .position(|s| is_hash_segment(s))
            .ok_or(RouteError::InvalidHash(
                "expected sha256:<64 hex digits> after the extension id",
            ))?;
    let extension_id = parse_extension_id(&segments[..hash_at])?;
    let content_hash = parse_hash(segments[hash_at])?;
    let path = if hash_at + 1 == segments.len() {
        None
    } else {
        let after = segments[hash_at + 1..].join("/");
        parse_asset_path(&after)?
    };
    Ok(Route {
        extension_id,
        content_hash,
        path,
        tenant,
    })
}

/// Longest tenant id accepted in `tenant=`, in bytes (Alga's are UUIDs).
const MAX_TENANT_BYTES: usize = 256;

/// The last `tenant=` of a query string, form-decoded once (`+` is a space). It is only
/// ever compared with installs' tenants, so any text passes that has no control
/// character and is not over the bound.
fn parse_tenant(query: &str) -> Result<Option<String>, RouteError> {
    const BAD: RouteError = RouteError::InvalidQuery(
        "tenant= must be UTF-8 text of at most 256 bytes without control characters",
    );
    let Some(raw) = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("tenant="))
        .next_back()
    else {
        return Ok(None);
    };
    let decoded = decode_once(&raw.replace('+', " ")).map_err(|_| BAD)?;
    if decoded.is_empty() {
        return Ok(None);
    }
    if decoded.len() > MAX_TENANT_BYTES || decoded.chars().any(char::is_control) {
        return Err(BAD);
    }
    Ok(Some(decoded))
}

fn is_hash_segment(s: &str) -> bool {
    s.starts_with("sha256:") || s.starts_with("sha256%3A") || s.starts_with("sha256%3a")
}

/// `sha256:<64 hex>` or `sha256%3A<64 hex>` (either case of `%3a` and of the hex digits).
pub fn parse_hash(segment: &str) -> Result<ContentHash, RouteError> {
    let hex = segment
        .strip_prefix("sha256:")
        .or_else(|| segment.strip_prefix("sha256%3A"))
        .or_else(|| segment.strip_prefix("sha256%3a"))
        .ok_or(RouteError::InvalidHash("expected sha256:<64 hex digits>"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RouteError::InvalidHash(
            "expected exactly 64 hex digits after sha256:",
        ));
    }
    ContentHash::parse(hex).ok_or(RouteError::InvalidHash("expected sha256:<64 hex digits>"))
}

fn parse_extension_id(segments: &[&str]) -> Result<String, RouteError> {
    const BAD: RouteError = RouteError::InvalidPath(
        "the extension id must be a published name (ASCII letters, digits and . - _ @ /)",
    );
    if segments.is_empty() {
        return Err(BAD);
    }
    // Decoded once like the path; a scoped id may spell its `/` as `%2F`.
    let decoded = decode_once(&segments.join("/"))?;
    let parts: Vec<&str> = decoded.split('/').collect();
    for seg in &parts {
        if seg.is_empty()
            || seg.starts_with('.')
            || !seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_@.".contains(c))
        {
            return Err(BAD);
        }
    }
    let id = parts.join("/");
    let first = id.chars().next().unwrap_or_default();
    if id.len() > MAX_EXTENSION_ID_CHARS || !(first.is_ascii_alphanumeric() || first == '@') {
        return Err(BAD);
    }
    Ok(id)
}

/// The rules for the part after `{contentHash}/`: `None` means the UI entry.
pub fn parse_asset_path(raw: &str) -> Result<Option<String>, RouteError> {
    if raw.starts_with('/') {
        return Err(RouteError::InvalidPath(
            "the file path must not start with /",
        ));
    }
    if contains_encoded_separator(raw) {
        return Err(RouteError::InvalidPath(
            "encoded / (%2F) is not allowed in a path",
        ));
    }
    let decoded = decode_once(raw)?;
    check_decoded(&decoded)
}

/// Checks an already-decoded path (also used for the manifest's `ui.entry`).
pub fn check_decoded(decoded: &str) -> Result<Option<String>, RouteError> {
    if decoded.contains('%') {
        return Err(RouteError::InvalidPath(
            "a path may be percent-encoded only once",
        ));
    }
    if decoded.chars().any(char::is_control) {
        return Err(RouteError::InvalidPath(
            "control characters are not allowed in a path",
        ));
    }
    if decoded.contains('\\') {
        return Err(RouteError::InvalidPath("\\ is not allowed in a path"));
    }
    // Repeated (and trailing) slashes collapse.
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| s.starts_with('.')) {
        return Err(RouteError::InvalidPath(
            "., .. and names starting with a dot are not allowed",
        ));
    }
    let Some(last) = segments.last() else {
        return Ok(None);
    };
    if let Some((_, ext)) = last.rsplit_once('.')
        && content_type::for_extension(ext).is_none()
    {
        return Err(RouteError::InvalidPath(
            "unknown file extension (allowed: html js css json map svg png jpg jpeg webp woff woff2)",
        ));
    }
    Ok(Some(segments.join("/")))
}

/// Whether the last segment of a checked path names a file (has an extension); paths
/// without one are app routes that fall back to the entry.
pub fn has_extension(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

fn contains_encoded_separator(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    lower.contains("%2f")
}

/// Percent-decodes once; a `%` not followed by two hex digits, or bytes that are not
/// UTF-8 (overlong forms like `%c0%ae` included), are refused.
fn decode_once(raw: &str) -> Result<String, RouteError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(RouteError::InvalidPath(
                    "% must be followed by two hex digits",
                ))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        RouteError::InvalidPath("the decoded path is not valid UTF-8 (e.g. an overlong encoding)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";

    fn route(tail: &str) -> Result<Route, RouteError> {
        parse(
            &format!("/ext-ui/com.example.hello/sha256:{HEX}{tail}"),
            2048,
        )
    }

    #[test]
    fn parses_hash_spellings() {
        for hash in [
            format!("sha256:{HEX}"),
            format!("sha256%3A{HEX}"),
            format!("sha256%3a{}", HEX.to_ascii_uppercase()),
        ] {
            let r = parse(&format!("/ext-ui/x/{hash}/index.html"), 2048).unwrap();
            assert_eq!(r.content_hash.hex(), HEX);
            assert_eq!(r.extension_id, "x");
            assert_eq!(r.path.as_deref(), Some("index.html"));
        }
        for bad in [
            "/ext-ui/x/index.html".to_string(),
            format!("/ext-ui/x/{HEX}/index.html"),
            format!("/ext-ui/x/sha256:{}/a.js", &HEX[1..]),
            format!("/ext-ui/x/sha256:{HEX}0/a.js"),
            format!("/ext-ui/x/sha256:{}zz/a.js", &HEX[2..]),
            format!("/ext-ui/x/sha256%3B{HEX}/a.js"),
            format!("/ext-ui/x/SHA256:{HEX}/a.js"),
            "/ext-ui/x".to_string(),
        ] {
            assert!(
                matches!(parse(&bad, 2048), Err(RouteError::InvalidHash(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn entry_when_path_missing_or_empty_and_query_ignored() {
        assert_eq!(route("").unwrap().path, None);
        assert_eq!(route("/").unwrap().path, None);
        assert_eq!(
            route("/index.html?path=/x&tenant=t")
                .unwrap()
                .path
                .as_deref(),
            Some("index.html")
        );
        assert_eq!(route("?path=a").unwrap().path, None);
    }

    #[test]
    fn tenant_comes_from_the_query_decoded_once() {
        let tenant = |tail: &str| route(tail).map(|r| r.tenant);
        assert_eq!(tenant("/index.html").unwrap(), None);
        assert_eq!(tenant("/index.html?tenant=").unwrap(), None);
        assert_eq!(
            tenant("/index.html?path=%2F&tenant=acme&extensionId=x").unwrap(),
            Some("acme".into())
        );
        assert_eq!(
            tenant("/index.html?tenant=a&tenant=6f1c%2Dbeef").unwrap(),
            Some("6f1c-beef".into())
        );
        // `xtenant=` is another parameter; a fragment is never sent but is ignored.
        assert_eq!(tenant("/?xtenant=a#tenant=b").unwrap(), None);
        assert_eq!(
            tenant("/?tenant=Acme+Corp%40eu").unwrap(),
            Some("Acme Corp@eu".into())
        );
        for bad in ["a%00", "%zz", "a%0A", "%c0%ae", "a%7f"] {
            assert!(
                matches!(
                    tenant(&format!("/index.html?tenant={bad}")),
                    Err(RouteError::InvalidQuery(_))
                ),
                "{bad}"
            );
        }
        let long = format!("/index.html?tenant={}", "a".repeat(257));
        assert!(matches!(tenant(&long), Err(RouteError::InvalidQuery(_))));
    }

    #[test]
    fn slashes_collapse_but_a_leading_one_is_refused() {
        assert_eq!(
            route("/assets//js///app.js").unwrap().path.as_deref(),
            Some("assets/js/app.js")
        );
        assert_eq!(
            route("/settings/").unwrap().path.as_deref(),
            Some("settings")
        );
        assert!(matches!(route("//app.js"), Err(RouteError::InvalidPath(_))));
    }

    #[test]
    fn extension_ids() {
        let r = parse(&format!("/ext-ui/@acme/tool/sha256:{HEX}/a.js"), 2048).unwrap();
        assert_eq!(r.extension_id, "@acme/tool");
        let r = parse(&format!("/ext-ui/%40acme%2Ftool/sha256:{HEX}/a.js"), 2048).unwrap();
        assert_eq!(r.extension_id, "@acme/tool");
        for bad in ["..", ".", "a/..", "a b", "a%00", "", "%2e%2e", "a%252e"] {
            let p = format!("/ext-ui/{bad}/sha256:{HEX}/a.js");
            assert!(
                matches!(parse(&p, 2048), Err(RouteError::InvalidPath(_))),
                "{p}"
            );
        }
        assert_eq!(parse("/other/x", 2048).unwrap_err(), RouteError::NotUiRoute);
    }

    #[test]
    fn known_extensions_and_app_routes() {
        assert!(route("/a/b.woff2").is_ok());
        assert!(route("/a/B.PNG").is_ok());
        assert!(route("/a/settings").is_ok());
        assert!(has_extension("a/b.js"));
        assert!(!has_extension("a.b/settings"));
        for bad in [
            "/a.exe",
            "/a.",
            "/a.js.",
            "/x.js%20",
            "/x.js::$DATA",
            "/a.htm",
        ] {
            assert!(
                matches!(route(bad), Err(RouteError::InvalidPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn too_long_is_its_own_error() {
        let long = format!("/{}.js", "a".repeat(3000));
        assert!(matches!(route(&long), Err(RouteError::TooLong(2048))));
    }
}
