//! In-memory quotas, idempotency records and execution records: for
//! `alga-lambda run`, tests, and single-process use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use runtime_core::store::StoreError;
use runtime_core::store::executions::{ExecutionLog, ExecutionRecord};
use runtime_core::store::idempotency::{Claim, IdempotencyStore};
use runtime_core::store::quota::{QuotaCharge, QuotaDecision, QuotaKey, QuotaStore};

/// Quota counters in a map.
#[derive(Default)]
pub struct MemoryQuotaStore {
    counters: Mutex<HashMap<QuotaKey, u64>>,
}

#[async_trait]
impl QuotaStore for MemoryQuotaStore {
    async fn charge(&self, key: &QuotaKey, limit: u64) -> Result<QuotaCharge, StoreError> {
        let mut counters = self.counters.lock().unwrap();
        let used = counters.entry(key.clone()).or_default();
        if *used >= limit {
            return Ok(QuotaCharge::Exhausted);
        }
        *used += 1;
        Ok(QuotaCharge::Allowed { used: *used })
    }

    async fn charge_all(&self, charges: &[(QuotaKey, u64)]) -> Result<QuotaDecision, StoreError> {
        // Under one lock: every counter is checked before any is charged.
        let mut counters = self.counters.lock().unwrap();
        for (index, (key, limit)) in charges.iter().enumerate() {
            if counters.get(key).copied().unwrap_or(0) >= *limit {
                return Ok(QuotaDecision::Exhausted { index });
            }
        }
        for (key, _) in charges {
            *counters.entry(key.clone()).or_default() += 1;
        }
        Ok(QuotaDecision::Allowed)
    }

    async fn used(&self, key: &QuotaKey) -> Result<u64, StoreError> {
        Ok(self.counters.lock().unwrap().get(key).copied().unwrap_or(0))
    }
}

enum Slot {
    Claimed(Instant),
    Done(Vec<u8>, Instant),
}

/// Idempotency records in a map; lapsed entries are treated as absent.
#[derive(Default)]
pub struct MemoryIdempotencyStore {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        claim_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut slots = self.slots.lock().unwrap();
        let now = Instant::now();
        let k = (scope.to_string(), key.to_string());
        match slots.get(&k) {
            Some(Slot::Claimed(until)) if *until > now => return Ok(Claim::InProgress),
            Some(Slot::Done(bytes, until)) if *until > now => {
                return Ok(Claim::Completed(bytes.clone()));
            }
            _ => {}
        }
        slots.insert(k, Slot::Claimed(now + claim_ttl));
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.slots.lock().unwrap().insert(
            (scope.to_string(), key.to_string()),
            Slot::Done(response.to_vec(), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn release(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let mut slots = self.slots.lock().unwrap();
        let k = (scope.to_string(), key.to_string());
        if matches!(slots.get(&k), Some(Slot::Claimed(_))) {
            slots.remove(&k);
        }
        Ok(())
    }
}

/// The newest execution records, bounded.
pub struct MemoryExecutionLog {
    records: Mutex<Vec<ExecutionRecord>>,
    max: usize,
}

impl Default for MemoryExecutionLog {
    fn default() -> Self {
        MemoryExecutionLog {
            records: Mutex::default(),
            max: 10_000,
        }
    }
}

#[async_trait]
impl ExecutionLog for MemoryExecutionLog {
    async fn record(&self, r: &ExecutionRecord, ttl: Duration) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(r), ttl).await
    }

    async fn record_batch(
        &self,
        batch: &[ExecutionRecord],
        _ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        for r in batch {
            if records.len() >= self.max {
                records.remove(0);
            }
            records.push(r.clone());
        }
        Ok(())
    }

    async fn recent(
        &self,
        tenant: &str,
        extension: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let records = self.records.lock().unwrap();
        Ok(records
            .iter()
            .rev()
            .filter(|r| r.tenant == tenant && r.extension == extension)
            .take(limit)
            .cloned()
            .collect())
    }
}
