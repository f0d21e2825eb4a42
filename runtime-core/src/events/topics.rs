//! Topics reserved for the host app. Subscribers of a host topic (`ticket.created`)
//! trust that the host app sent it; an extension of the same tenant must not be
//! able to forge one. Extensions' emits of a reserved topic are refused
//! (`denied`), and the dispatcher never delivers an extension-sourced event on
//! one, whatever reached the bus.

/// Patterns reserved when `ALGA_EVENTS_HOST_TOPICS` is unset: the host app's
/// domain namespaces, in both the dotted (`ticket.created`) and Alga's
/// upper-case (`TICKET_CREATED`) spellings (matching ignores ASCII case).
pub const DEFAULT_HOST_TOPICS: &str = "alga.*,alga_*,ticket.*,ticket_*,invoice.*,invoice_*,project.*,project_*,client.*,client_*,company.*,company_*,contact.*,contact_*,user.*,user_*,tenant.*,tenant_*,billing.*,billing_*,time_entry.*,time_entry_*";

/// The reserved topics: exact names, or prefixes written `prefix*`; compared
/// ignoring ASCII case, so `Ticket.Created` is as reserved as `ticket.created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTopics {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl Default for HostTopics {
    fn default() -> Self {
        HostTopics::parse(DEFAULT_HOST_TOPICS)
    }
}

impl HostTopics {
    /// From a comma-separated list (`ticket.*,invoice.paid`); `none` reserves nothing.
    pub fn parse(list: &str) -> Self {
        let mut t = HostTopics {
            exact: Vec::new(),
            prefixes: Vec::new(),
        };
        if list.trim().eq_ignore_ascii_case("none") {
            return t;
        }
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let item = item.to_ascii_lowercase();
            match item.strip_suffix('*') {
                Some(prefix) => t.prefixes.push(prefix.to_string()),
                None => t.exact.push(item),
            }
        }
        t
    }

    /// From `ALGA_EVENTS_HOST_TOPICS` (unset or blank: [`DEFAULT_HOST_TOPICS`]).
    pub fn from_env() -> Self {
        match std::env::var("ALGA_EVENTS_HOST_TOPICS") {
            Ok(v) if !v.trim().is_empty() => HostTopics::parse(&v),
            _ => HostTopics::default(),
        }
    }

    /// Whether `topic` belongs to the host app.
    pub fn reserves(&self, topic: &str) -> bool {
        let topic = topic.to_ascii_lowercase();
        self.exact.contains(&topic) || self.prefixes.iter().any(|p| topic.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_topics() {
        let d = HostTopics::default();
        for t in [
            "ticket.created",
            "TICKET_CREATED",
            "Invoice.Paid",
            "alga.anything",
        ] {
            assert!(d.reserves(t), "{t}");
        }
        for t in [
            "widget.made",
            "hello.ping",
            "tickets",
            "com.example.ticket.created",
        ] {
            assert!(!d.reserves(t), "{t}");
        }
        let custom = HostTopics::parse(" psa.* , order.placed ");
        assert!(custom.reserves("psa.x") && custom.reserves("order.placed"));
        assert!(!custom.reserves("order.placed.late") && !custom.reserves("ticket.created"));
        assert!(!HostTopics::parse("none").reserves("ticket.created"));
    }
}
