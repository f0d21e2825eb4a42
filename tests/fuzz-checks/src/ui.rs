//! ext-ui request paths: `/ext-ui/{extensionId}/{contentHash}/{path}`.

use std::path::{Component, Path};

use runtime_core::ui::{self, route};

/// A valid prefix, so mode 1 inputs start at the path rules.
const PREFIX: &str = "/ext-ui/com.example.hello/sha256:\
    0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/";

/// The first byte picks the entry point: 0 `route::parse` on the rest; 1 the
/// same behind a valid extension and hash; 2 `parse_asset_path`; 3
/// `check_decoded`. An accepted file path is relative, has no empty, `.`, `..` or
/// dot-file segment, no `\`, `%` or control character, stays under the bundle's
/// `ui/` when joined to it, is a fixed point of `check_decoded`, and the route
/// written back as a URL (every byte escaped once) parses to the same route.
pub fn ui_path(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode {
        0 | 1 => {
            let raw = if mode == 0 {
                text.to_string()
            } else {
                format!("{PREFIX}{text}")
            };
            let Ok(r) = route::parse(&raw, 8192) else {
                return;
            };
            check_route(&r);
        }
        2 => {
            if let Ok(Some(p)) = route::parse_asset_path(text) {
                check_path(&p);
            }
        }
        3 => {
            if let Ok(Some(p)) = route::check_decoded(text) {
                check_path(&p);
            }
        }
        _ => {}
    }
}

fn check_path(p: &str) {
    assert!(!p.is_empty() && !p.starts_with('/'), "{p:?}");
    assert!(
        !p.contains(['\\', '%']) && !p.chars().any(char::is_control),
        "{p:?}"
    );
    for segment in p.split('/') {
        assert!(
            !segment.is_empty() && !segment.starts_with('.'),
            "{p:?} has segment {segment:?}"
        );
    }
    let root = Path::new("/bundle/ui");
    let joined = root.join(p);
    assert!(
        joined.starts_with(root)
            && Path::new(p)
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
        "{p:?} leaves the bundle's ui/"
    );
    assert_eq!(route::check_decoded(p), Ok(Some(p.to_string())));
}

fn check_route(r: &route::Route) {
    let id = &r.extension_id;
    assert!(!id.is_empty() && id.len() <= 128, "{id:?}");
    for segment in id.split('/') {
        assert!(
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_@.".contains(c)),
            "extension id {id:?}"
        );
    }
    if let Some(p) = &r.path {
        check_path(p);
        let key = ui::asset_key(&r.content_hash, p);
        assert_eq!(key, format!("ui/{}/{p}", r.content_hash.hex()));
    }
    if let Some(t) = &r.tenant {
        assert!(!t.is_empty() && t.len() <= 256 && !t.chars().any(char::is_control));
    }

    let mut url = format!(
        "/ext-ui/{}/sha256:{}",
        super::percent_encode(id, "-_.@/"),
        r.content_hash.hex()
    );
    if let Some(p) = &r.path {
        url.push('/');
        url.push_str(&super::percent_encode(p, "-_./"));
    }
    if let Some(t) = &r.tenant {
        url.push_str("?tenant=");
        url.push_str(&super::percent_encode(t, ""));
    }
    let again = route::parse(&url, usize::MAX)
        .unwrap_or_else(|e| panic!("the route written back ({url:?}) is refused: {e}"));
    assert_eq!(&again, r, "{url:?}");
}
