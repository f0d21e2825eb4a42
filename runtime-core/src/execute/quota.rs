//! Invocation quotas in the execute path: per tenant + extension, per minute and
//! per day, with per-install overrides. Checked after the install is resolved and
//! before anything is loaded, so a throttled request costs two counter updates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::error::ExecError;
use crate::store::{QuotaCharge, QuotaKey, QuotaStore, QuotaWindow};

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
    /// The minute is charged first: a request refused by the minute window does
    /// not use up the day.
    pub async fn admit(
        &self,
        tenant: &str,
        extension: &str,
        install_config: &BTreeMap<String, String>,
    ) -> Result<(), ExecError> {
        let now = SystemTime::now();
        for (window, default, key) in [
            (QuotaWindow::Minute, self.limits.per_minute, PER_MINUTE_KEY),
            (QuotaWindow::Day, self.limits.per_day, PER_DAY_KEY),
        ] {
            let limit = install_config
                .get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default);
            if limit == 0 {
                continue;
            }
            let counter = QuotaKey::at(tenant, extension, window, now);
            match self.store.charge(&counter, limit).await {
                Ok(QuotaCharge::Allowed { .. }) => {}
                Ok(QuotaCharge::Exhausted) => {
                    return Err(ExecError::QuotaExceeded {
                        window: window.name(),
                        limit,
                        retry_after_secs: window.remaining(now).as_secs().max(1),
                    });
                }
                Err(e) => return Err(ExecError::BackendUnavailable(format!("quotas: {e}"))),
            }
        }
        Ok(())
    }
}
