//! Name resolution for egress, done by us so every address can be checked and the
//! connection goes to exactly the checked address (no second lookup that a
//! rebinding DNS server could answer differently).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

/// Resolves a host name to its addresses.
#[async_trait::async_trait]
pub trait DnsResolver: Send + Sync {
    /// All addresses of `host` (a domain name, never an IP literal).
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The system resolver (getaddrinfo on a blocking thread, via tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl DnsResolver for SystemResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let mut addrs: Vec<IpAddr> = tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect();
        addrs.dedup();
        Ok(addrs)
    }
}

/// A fixed name → addresses table (tests, and pinning names in an operator's setup).
#[derive(Debug, Default, Clone)]
pub struct FixedResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl FixedResolver {
    /// Adds (or replaces) a name.
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.names.insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

#[async_trait::async_trait]
impl DnsResolver for FixedResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self.names
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown host {host}")))
    }
}
