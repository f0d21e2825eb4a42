//! File extensions a UI may serve, and their Content-Type (never with a charset,
//! as ALGA-COMPAT §4 asks).

/// Content-Type of a file whose name has no extension.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The Content-Type for a known extension (compared case-insensitively), or `None`
/// when the extension is not one a UI may serve.
pub fn for_extension(ext: &str) -> Option<&'static str> {
    let t = match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html",
        // RFC 9239 makes text/javascript the one registered type for JavaScript.
        "js" => "text/javascript",
        "css" => "text/css",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => return None,
    };
    Some(t)
}

/// The Content-Type of a served file name: by its extension, else the default.
pub fn for_file(name: &str) -> &'static str {
    match name.rsplit_once('.') {
        Some((_, ext)) => for_extension(ext).unwrap_or(DEFAULT_CONTENT_TYPE),
        None => DEFAULT_CONTENT_TYPE,
    }
}

/// Whether the type gets the CSP (HTML only).
pub fn is_html(content_type: &str) -> bool {
    content_type == "text/html"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_allowed_extension_without_charset() {
        for ext in [
            "html", "js", "css", "json", "map", "svg", "png", "jpg", "jpeg", "webp", "woff",
            "woff2",
        ] {
            let t = for_extension(ext).unwrap_or_else(|| panic!("{ext} must be known"));
            assert!(!t.contains("charset"), "{ext}: {t}");
        }
        assert_eq!(for_extension("HTML"), Some("text/html"));
        assert_eq!(for_extension("exe"), None);
        assert_eq!(for_extension("htm"), None);
        assert_eq!(for_file("a/b.min.js"), "text/javascript");
        assert_eq!(for_file("LICENSE"), DEFAULT_CONTENT_TYPE);
    }
}
