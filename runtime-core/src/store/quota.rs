//! Invocation quotas: atomic counters per (tenant, extension, window) with a
//! conditional limit, so that of many parallel requests against a quota of N
//! exactly N are allowed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::StoreError;

/// Install configuration key overriding the per-minute limit.
pub const PER_MINUTE_KEY: &str = "quota.per_minute";
/// Install configuration key overriding the per-day limit.
pub const PER_DAY_KEY: &str = "quota.per_day";

/// Checks an install's quota overrides before they are stored: each one present
/// must be a whole number (0 = unlimited), so a typo is refused at install time
/// instead of silently falling back to the default limit.
pub fn check_overrides(config: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    for key in [PER_MINUTE_KEY, PER_DAY_KEY] {
        if let Some(v) = config.get(key)
            && v.trim().parse::<u64>().is_err()
        {
            return Err(format!(
                "install config {key}: {v:?} is not a whole number (0 = unlimited)"
            ));
        }
    }
    Ok(())
}

/// The length of a quota window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaWindow {
    /// Sixty seconds, aligned to the minute.
    Minute,
    /// A UTC day.
    Day,
}

impl QuotaWindow {
    /// The window's length.
    pub fn length(self) -> Duration {
        match self {
            QuotaWindow::Minute => Duration::from_secs(60),
            QuotaWindow::Day => Duration::from_secs(86_400),
        }
    }

    /// A short stable name, part of the counter's key.
    pub fn name(self) -> &'static str {
        match self {
            QuotaWindow::Minute => "minute",
            QuotaWindow::Day => "day",
        }
    }

    /// Unix seconds at which the window holding `now` starts.
    pub fn start(self, now: SystemTime) -> u64 {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        secs - secs % self.length().as_secs()
    }

    /// How long from `now` until the next window starts (at least one second).
    pub fn remaining(self, now: SystemTime) -> Duration {
        let end = self.start(now) + self.length().as_secs();
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Duration::from_secs_f64((end as f64 - now_secs).max(1.0))
    }
}

/// The counter one request charges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    /// Tenant.
    pub tenant: String,
    /// Extension.
    pub extension: String,
    /// Window kind.
    pub window: QuotaWindow,
    /// Unix seconds at which the window starts.
    pub window_start: u64,
}

impl QuotaKey {
    /// The key of the window holding `now`.
    pub fn at(tenant: &str, extension: &str, window: QuotaWindow, now: SystemTime) -> Self {
        QuotaKey {
            tenant: tenant.into(),
            extension: extension.into(),
            window,
            window_start: window.start(now),
        }
    }

    /// Unix seconds after which the counter may be dropped (the window's end plus a day).
    pub fn expires_at(&self) -> u64 {
        self.window_start + self.window.length().as_secs() + 86_400
    }
}

/// Whether a charge was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaCharge {
    /// Counted; `used` is the counter after this charge.
    Allowed {
        /// Invocations counted in the window, this one included.
        used: u64,
    },
    /// The counter is at its limit; nothing was counted.
    Exhausted,
}

/// What charging several counters at once decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    /// Every counter was charged.
    Allowed,
    /// The counter at this index of the charges is at its limit. Stores that
    /// decide atomically charged none of them; the default
    /// [`QuotaStore::charge_all`] charged the ones before it.
    Exhausted {
        /// Which of the charges refused.
        index: usize,
    },
}

/// Atomic quota counters.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Adds one to the counter unless it has reached `limit` (atomically: the
    /// condition and the increment are one operation).
    async fn charge(&self, key: &QuotaKey, limit: u64) -> Result<QuotaCharge, StoreError>;
    /// Adds one to every counter of `charges` unless one of them has reached its
    /// limit, in which case none is charged: all or nothing, decided in one
    /// operation (one round trip) by the stores that can. This default charges
    /// them one by one and stops at the first refusal, so the counters before it
    /// stay charged.
    async fn charge_all(&self, charges: &[(QuotaKey, u64)]) -> Result<QuotaDecision, StoreError> {
        for (index, (key, limit)) in charges.iter().enumerate() {
            if self.charge(key, *limit).await? == QuotaCharge::Exhausted {
                return Ok(QuotaDecision::Exhausted { index });
            }
        }
        Ok(QuotaDecision::Allowed)
    }
    /// The counter's value (0 when it does not exist).
    async fn used(&self, key: &QuotaKey) -> Result<u64, StoreError>;
}
