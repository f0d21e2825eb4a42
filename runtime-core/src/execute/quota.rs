//! Invocation quotas in the execute path: per tenant + extension, per minute and
//! per day, with per-install overrides. Checked after the install is resolved and
//! before anything is loaded, so a throttled request costs one conditional write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::error::ExecError;
use crate::store::{QuotaDecision, QuotaKey, QuotaStore, QuotaWindow};

pub use crate::store::quota::{PER_DAY_KEY, PER_MINUTE_KEY};

/// Default limits (`ALGA_QUOTA_PER_MINUTE`, `ALGA_QUOTA_PER_DAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Invocations per minute; 0 = unlimited.
    pub per_minute: u64,
    /// Invocations per UTC day; 0 = unlimited.
    pub per_day: u64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            per_minute: 600,
            per_day: 100_000,
        }
    }
}

/// The quota check of one process.
#[derive(Clone)]
pub struct QuotaPolicy {
    store: Arc<dyn QuotaStore>,
    limits: QuotaLimits,
}

impl QuotaPolicy {
    /// A policy counting in `store`.
    pub fn new(store: Arc<dyn QuotaStore>, limits: QuotaLimits) -> Self {
        QuotaPolicy { store, limits }
    }

    /// The counters' store (the per-tenant emit rate counts there too).
    pub fn store(&self) -> Arc<dyn QuotaStore> {
        self.store.clone()
    }

    /// Counts one invocation in every window, or says which window is exhausted.
    ///
    /// Both windows are decided together ([`QuotaStore::charge_all`]: one
    /// conditional write on DynamoDB, one transaction in SQLite): a refused
    /// request uses up neither the minute nor the day.
    pub async fn admit(
        &self,
        tenant: &str,
        extension: &str,
        install_config: &BTreeMap<String, String>,
    ) -> Result<(), ExecError> {
        let now = SystemTime::now();
        let windows: Vec<(QuotaWindow, u64)> = [
            (QuotaWindow::Minute, self.limits.per_minute, PER_MINUTE_KEY),
            (QuotaWindow::Day, self.limits.per_day, PER_DAY_KEY),
        ]
        .into_iter()
        .map(|(window, default, key)| {
            let limit = install_config
                .get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default);
            (window, limit)
        })
        // 0 = unlimited: nothing to count.
        .filter(|(_, limit)| *limit > 0)
        .collect();
        if windows.is_empty() {
            return Ok(());
        }
        let charges: Vec<(QuotaKey, u64)> = windows
            .iter()
            .map(|(window, limit)| (QuotaKey::at(tenant, extension, *window, now), *limit))
            .collect();
        match self.store.charge_all(&charges).await {
            Ok(QuotaDecision::Allowed) => Ok(()),
            Ok(QuotaDecision::Exhausted { index }) => {
                let (window, limit) = windows.get(index).copied().unwrap_or(windows[0]);
                Err(ExecError::QuotaExceeded {
                    window: window.name(),
                    limit,
                    retry_after_secs: window.remaining(now).as_secs().max(1),
                })
            }
            Err(e) => Err(ExecError::BackendUnavailable(format!("quotas: {e}"))),
        }
    }
}
