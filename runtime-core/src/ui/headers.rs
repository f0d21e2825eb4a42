//! Response header values: ETag, Cache-Control, and If-None-Match evaluation.

/// Every successful UI response is immutable: its URL carries the bundle's hash.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Errors are never cached: a missing install may appear a moment later.
pub const CACHE_NO_STORE: &str = "no-store";

/// The strong ETag of a file: `"sha256-<hex of its bytes>"`.
pub fn etag(bytes: &[u8]) -> String {
    format!("\"sha256-{}\"", hex::encode(crate::artifact::sha256(bytes)))
}

/// Whether an `If-None-Match` header value matches `etag` (which is strong and quoted).
///
/// RFC 9110 §13.1.2: `*` matches any current representation, otherwise the list is
/// compared with the **weak** comparison, so `W/"sha256-…"` matches our strong
/// `"sha256-…"` too (a CDN may weaken an ETag after transforming a response). A
/// malformed header matches nothing, so the full response is sent.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let header = header.trim();
    if header == "*" {
        return true;
    }
    // The whole list must parse before anything matches: `"a"x` is not `"a"`.
    opaque_tags(header).is_some_and(|tags| tags.contains(&etag))
}

/// The opaque tags (quotes included, `W/` dropped) of a comma-separated entity-tag list,
/// or `None` when it is malformed or empty.
fn opaque_tags(list: &str) -> Option<Vec<&str>> {
    let mut tags = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return (!tags.is_empty()).then_some(tags);
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let end = tag.strip_prefix('"')?.find('"')?;
        // `end + 2` covers both quotes.
        tags.push(&tag[..end + 2]);
        rest = tag[end + 2..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(',') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_strong_sha256_of_the_file() {
        assert_eq!(
            etag(b"abc"),
            "\"sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
    }

    #[test]
    fn if_none_match_lists_star_and_weak() {
        let e = "\"sha256-aa\"";
        assert!(if_none_match("\"sha256-aa\"", e));
        assert!(if_none_match("*", e));
        assert!(if_none_match(" \"x\", W/\"y\" ,\"sha256-aa\"", e));
        assert!(if_none_match("W/\"sha256-aa\"", e));
        assert!(if_none_match("\"a,b\", \"sha256-aa\"", e));
        assert!(!if_none_match("\"sha256-ab\"", e));
        assert!(!if_none_match("sha256-aa", e));
        assert!(!if_none_match("\"sha256-aa", e));
        assert!(!if_none_match("w/\"sha256-aa\"", e));
        assert!(!if_none_match("\"x\" \"sha256-aa\"", e));
        assert!(!if_none_match("", e));
        assert!(!if_none_match("*, \"x\"", e));
        assert!(!if_none_match("\"sha256-aa\"x", e));
        assert!(!if_none_match("\"sha256-aa\", junk", e));
    }
}
