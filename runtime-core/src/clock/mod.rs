//! The wall clock as Unix time, in the units the stores record (one place, so
//! every backend reads it the same way; a clock before 1970 reads as 0), and IANA
//! time zones ([`zone`]), which schedules and the manifest validator both read.

use std::time::{SystemTime, UNIX_EPOCH};

pub mod zone;

/// Seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
