//! The wall clock as Unix time, in the units the stores record (one place, so
//! every backend reads it the same way; a clock before 1970 reads as 0), instants
//! written by others (RFC 3339), and IANA time zones ([`zone`]), which schedules
//! and the manifest validator both read.

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

/// An RFC 3339 instant as another party wrote it: `Z` or a numeric offset
/// (`+05:30` names the same instant as its UTC form), and the looser forms
/// accepted before offsets were (no zone or a space for `T`: read as UTC).
/// `None` when it is not an instant.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    match text.trim().parse::<jiff::Timestamp>() {
        Ok(t) => {
            let nanos = t.as_nanosecond();
            let magnitude =
                std::time::Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).ok()?);
            if nanos >= 0 {
                UNIX_EPOCH.checked_add(magnitude)
            } else {
                UNIX_EPOCH.checked_sub(magnitude)
            }
        }
        Err(_) => humantime::parse_rfc3339_weak(text.trim()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_names_the_same_instant_as_utc() {
        let utc = parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2030-01-01T05:30:00+05:30"), Some(utc));
        assert_eq!(parse_rfc3339("2029-12-31T16:00:00-08:00"), Some(utc));
        assert_eq!(parse_rfc3339("2030-01-01 00:00:00"), Some(utc));
        assert_eq!(
            parse_rfc3339("2030-01-01T00:00:00.250Z"),
            Some(utc + std::time::Duration::from_millis(250))
        );
        assert_eq!(parse_rfc3339("tomorrow"), None);
        assert_eq!(parse_rfc3339(""), None);
    }
}
