//! `manifest.json`: the validator in both modes, and its own output read back.

use runtime_core::manifest::{self, Strictness};

/// The input is a `manifest.json`. Strict mode accepts a subset of what compatible
/// mode accepts, with the same manifest; an accepted manifest serialized with
/// `to_json` is accepted again as the same manifest (a fixed point); every declared
/// endpoint without parameters is reachable by its own method and path; every
/// schedule names a schedulable endpoint.
pub fn manifest(data: &[u8]) {
    let strict = manifest::check(data, Strictness::Strict);
    let compatible = manifest::check(data, Strictness::Compatible);
    if let Ok(strict) = &strict {
        let compatible = compatible
            .as_ref()
            .expect("strict mode accepted a manifest compatible mode refuses");
        assert!(
            strict.warnings().is_empty(),
            "strict mode warned: {:?}",
            strict.warnings()
        );
        assert_eq!(strict.wildcard(), compatible.wildcard());
        let none: [&str; 0] = [];
        assert_eq!(
            strict.clone().resolve(none).0,
            compatible.clone().resolve(none).0,
            "the modes read the same document differently"
        );
    }
    let Ok(checked) = compatible else { return };
    let wildcard = checked.wildcard();
    let (m, _) = checked.resolve(["0.0.1", "not a version"]);
    if let Some(w) = wildcard {
        assert!(w.matches(&m.version), "{w} resolved to {}", m.version);
    }

    let json = serde_json::to_vec(&m.to_json()).expect("a Value serializes");
    let again = manifest::parse(&json).unwrap_or_else(|e| {
        panic!(
            "the manifest's own JSON is refused: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, m, "to_json then parse changed the manifest");
    assert_eq!(again.to_json(), m.to_json());

    for e in m.endpoints().iter().filter(|e| !e.has_params()) {
        let hit = m
            .match_endpoint(&e.method, &e.path)
            .unwrap_or_else(|| panic!("{} {} matches no endpoint", e.method, e.path));
        assert_eq!(hit.endpoint.path, e.path, "{} {}", e.method, e.path);
        assert!(hit.params.is_empty());
    }
    for s in &m.schedules {
        let (method, path) = s.endpoint.split_once(' ').expect("\"METHOD /path\"");
        assert!(
            m.schedulable_endpoints()
                .any(|e| e.method == method && e.path == path),
            "schedule names {:?}, not a schedulable endpoint",
            s.endpoint
        );
    }
}
