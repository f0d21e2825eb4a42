//! Capability strings (`cap:*`) and the granted set a request runs with.

use std::collections::BTreeSet;
use std::fmt;

/// One of the capabilities an extension can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    ContextRead,
    SecretsGet,
    HttpFetch,
    StorageKv,
    LogEmit,
    UiProxy,
    UserRead,
    SchedulerManage,
    InvoiceManualCreate,
    ClientRead,
    ServiceRead,
    /// alga-lambda addition: publish events (`alga:extension/events`).
    EventsEmit,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 12] = [
        Capability::ContextRead,
        Capability::SecretsGet,
        Capability::HttpFetch,
        Capability::StorageKv,
        Capability::LogEmit,
        Capability::UiProxy,
        Capability::UserRead,
        Capability::SchedulerManage,
        Capability::InvoiceManualCreate,
        Capability::ClientRead,
        Capability::ServiceRead,
        Capability::EventsEmit,
    ];

    /// Capabilities every install has, whatever it asked for.
    pub const ALWAYS_GRANTED: [Capability; 3] = [
        Capability::ContextRead,
        Capability::LogEmit,
        Capability::UserRead,
    ];

    /// The wire string, e.g. `cap:storage.kv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ContextRead => "cap:context.read",
            Capability::SecretsGet => "cap:secrets.get",
            Capability::HttpFetch => "cap:http.fetch",
            Capability::StorageKv => "cap:storage.kv",
            Capability::LogEmit => "cap:log.emit",
            Capability::UiProxy => "cap:ui.proxy",
            Capability::UserRead => "cap:user.read",
            Capability::SchedulerManage => "cap:scheduler.manage",
            Capability::InvoiceManualCreate => "cap:invoice.manual.create",
            Capability::ClientRead => "cap:client.read",
            Capability::ServiceRead => "cap:service.read",
            Capability::EventsEmit => "cap:events.emit",
        }
    }

    /// Parses a capability string after trimming and ASCII-lowercasing it.
    pub fn parse(raw: &str) -> Option<Capability> {
        let normalised = raw.trim().to_ascii_lowercase();
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == normalised)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of granted capabilities; the always-granted ones are always members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySet(BTreeSet<Capability>);

impl CapabilitySet {
    /// Only the always-granted capabilities.
    pub fn minimal() -> Self {
        CapabilitySet(Capability::ALWAYS_GRANTED.into_iter().collect())
    }

    /// The minimal set plus `caps`.
    pub fn with(caps: impl IntoIterator<Item = Capability>) -> Self {
        let mut set = Self::minimal();
        set.0.extend(caps);
        set
    }

    /// Parses capability strings; unknown ones are returned, normalised, as the error.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, Vec<String>> {
        let mut unknown = Vec::new();
        let mut caps = Vec::new();
        for r in raw {
            match Capability::parse(r.as_ref()) {
                Some(c) => caps.push(c),
                None => unknown.push(r.as_ref().trim().to_ascii_lowercase()),
            }
        }
        if unknown.is_empty() {
            Ok(Self::with(caps))
        } else {
            Err(unknown)
        }
    }

    /// Whether `cap` is granted.
    pub fn has(&self, cap: Capability) -> bool {
        self.0.contains(&cap)
    }

    /// The capabilities in both sets (always-granted ones stay).
    pub fn intersect(&self, other: &CapabilitySet) -> CapabilitySet {
        CapabilitySet::with(self.0.intersection(&other.0).copied())
    }

    /// The granted capabilities in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalised_strings_and_reports_unknown_ones() {
        let set = CapabilitySet::parse(&["  CAP:Storage.KV ", "cap:http.fetch"]).unwrap();
        assert!(set.has(Capability::StorageKv));
        assert!(set.has(Capability::HttpFetch));
        assert!(set.has(Capability::ContextRead), "always granted");
        assert!(!set.has(Capability::SecretsGet));
        let err = CapabilitySet::parse(&["cap:storage.kv", "cap:root", " CAP:X "]).unwrap_err();
        assert_eq!(err, vec!["cap:root".to_string(), "cap:x".to_string()]);
    }

    #[test]
    fn there_are_exactly_eleven_distinct_strings() {
        let strings: BTreeSet<_> = Capability::ALL.iter().map(|c| c.as_str()).collect();
        // The seed's 11 plus cap:events.emit.
        assert_eq!(strings.len(), 12);
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn intersection_keeps_the_always_granted_ones() {
        let a = CapabilitySet::with([Capability::StorageKv, Capability::HttpFetch]);
        let b = CapabilitySet::with([Capability::StorageKv]);
        let both = a.intersect(&b);
        assert!(both.has(Capability::StorageKv));
        assert!(!both.has(Capability::HttpFetch));
        assert!(both.has(Capability::LogEmit));
    }
}
