//! The message that makes a schedule fire, and why one did not run anything.
//! Firing itself goes through the gateway's execute path
//! (`Gateway::fire_schedule`, `Gateway::fire_message`), with a fresh request id,
//! no user, and the schedule's JSON payload as the body.
//!
//! EventBridge Scheduler's input is a [`ScheduleFiring`] JSON
//! (`{"tenant","install_id","schedule_id"}`, written by
//! `stores_aws::MirroredScheduleStore`); parse it with [`ScheduleFiring::from_json`].

use serde::{Deserialize, Serialize};

use super::Schedule;

/// The message that makes a schedule fire: the input of every EventBridge
/// Scheduler schedule we create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleFiring {
    /// Tenant.
    pub tenant: String,
    /// Install id.
    pub install_id: String,
    /// The schedule's id within the install.
    pub schedule_id: String,
}

/// Largest firing message accepted (they are a few hundred bytes).
const FIRING_MAX_BYTES: usize = 8 << 10;

impl ScheduleFiring {
    /// The firing message of `schedule`.
    pub fn of(schedule: &Schedule) -> Self {
        ScheduleFiring {
            tenant: schedule.tenant.clone(),
            install_id: schedule.install_id.clone(),
            schedule_id: schedule.id.clone(),
        }
    }

    /// Parses a firing message (unknown fields are refused: it is our own format).
    pub fn from_json(bytes: &[u8]) -> Result<Self, FireError> {
        if bytes.len() > FIRING_MAX_BYTES {
            return Err(FireError::Malformed(format!(
                "{} bytes is more than {FIRING_MAX_BYTES}",
                bytes.len()
            )));
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Strict {
            tenant: String,
            install_id: String,
            schedule_id: String,
        }
        let s: Strict =
            serde_json::from_slice(bytes).map_err(|e| FireError::Malformed(e.to_string()))?;
        if s.tenant.is_empty() || s.install_id.is_empty() || s.schedule_id.is_empty() {
            return Err(FireError::Malformed("empty field".into()));
        }
        Ok(ScheduleFiring {
            tenant: s.tenant,
            install_id: s.install_id,
            schedule_id: s.schedule_id,
        })
    }
}

/// Why a firing message did not run anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FireError {
    /// Not a firing message.
    #[error("malformed firing message: {0}")]
    Malformed(String),
    /// The schedule no longer exists (deleted, or the install was removed).
    #[error("schedule not found")]
    NotFound,
    /// The schedule is disabled.
    #[error("schedule disabled")]
    Disabled,
    /// The schedule store failed; retrying may work.
    #[error("backend unavailable: {0}")]
    Backend(String),
}

impl FireError {
    /// A stable code: `malformed`, `not_found`, `disabled`, `backend_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            FireError::Malformed(_) => "malformed",
            FireError::NotFound => "not_found",
            FireError::Disabled => "disabled",
            FireError::Backend(_) => "backend_unavailable",
        }
    }

    /// Whether the caller should retry (only backend failures).
    pub fn retryable(&self) -> bool {
        matches!(self, FireError::Backend(_))
    }
}
