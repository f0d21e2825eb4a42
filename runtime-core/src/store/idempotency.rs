//! Idempotency records: a caller's key (per tenant) maps to the response of the
//! first request that carried it, for a bounded time. Used by `/v1/execute`'s
//! `x-idempotency-key` and by event delivery (event id + install).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// What a claim on a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free; the caller owns it now and must `complete` or `release` it.
    Claimed,
    /// Another request holds the key and has not finished.
    InProgress,
    /// A request with this key finished; its stored response.
    Completed(Vec<u8>),
}

/// Tenant-scoped idempotency records with a time to live.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `scope` (a tenant). An unfinished claim lapses after
    /// `claim_ttl`, so a crashed holder does not block the key for ever.
    async fn claim(&self, scope: &str, key: &str, claim_ttl: Duration)
    -> Result<Claim, StoreError>;
    /// Stores the response of a claimed key, kept for `ttl`.
    async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// Gives a claim up (the request failed in a way worth retrying).
    async fn release(&self, scope: &str, key: &str) -> Result<(), StoreError>;
}
