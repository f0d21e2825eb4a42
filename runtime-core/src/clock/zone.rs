//! The IANA time zone a schedule's cron is evaluated in (`Europe/Berlin`, `UTC`).
//!
//! Zones come from the IANA database compiled into the binary (jiff's bundled
//! tzdb), never from the host's `/usr/share/zoneinfo`: Lambda images may lack
//! it, and a schedule must fire at the same instants in `up`, on Lambda and in
//! tests.
//!
//! Cron matching happens on *civil minutes*: minutes since 1970-01-01T00:00 of
//! the zone's wall clock, so [`crate::schedule::Cron::matches`] and
//! [`crate::schedule::Cron::next_after`] work unchanged on them. This module maps between
//! civil minutes and UTC (epoch) minutes, with the daylight-saving rules of
//! EventBridge Scheduler (see docs/events-and-schedules.md): a wall-clock
//! minute skipped by a spring-forward gap has no instant (the firing is
//! skipped), and one repeated by a fall-back overlap has only its first
//! instant (the firing happens once, before the clocks go back).

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};

/// The name stored for UTC (and for an empty zone or `Etc/UTC`).
pub const UTC_NAME: &str = "UTC";

/// Why a time zone name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// Not a zone of the IANA database.
    #[error(
        "unknown time zone {0:?}: expected an IANA time zone name like \"Europe/Berlin\" or \"UTC\""
    )]
    Unknown(String),
}

impl ZoneError {
    /// A stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            ZoneError::Unknown(_) => "unknown_time_zone",
        }
    }
}

/// A schedule's time zone: the jiff zone and its canonical name.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    tz: TimeZone,
    name: String,
}

/// The compiled-in database, built once per process.
fn database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            tz: TimeZone::UTC,
            name: UTC_NAME.into(),
        }
    }

    /// Looks `name` up, ignoring ASCII case and surrounding spaces. Empty, `UTC`
    /// and `Etc/UTC` are UTC; anything else must be in the IANA database (a
    /// link such as `Asia/Calcutta` is accepted and named by its primary zone,
    /// `Asia/Kolkata`, as ECMAScript canonicalises it).
    pub fn parse(name: &str) -> Result<Zone, ZoneError> {
        let trimmed = name.trim();
        if trimmed.is_empty()
            || trimmed.eq_ignore_ascii_case("UTC")
            || trimmed.eq_ignore_ascii_case("Etc/UTC")
        {
            return Ok(Zone::utc());
        }
        let unknown = || ZoneError::Unknown(name.to_string());
        let tz = database().get(trimmed).map_err(|_| unknown())?;
        // jiff answers `Etc/Unknown` with its "unknown" zone, which has no IANA
        // name: that is not a zone a schedule can run in.
        let canonical = tz
            .primary_iana_name()
            .or_else(|| tz.iana_name())
            .ok_or_else(unknown)?
            .to_string();
        if canonical == UTC_NAME || canonical.eq_ignore_ascii_case("Etc/UTC") {
            return Ok(Zone::utc());
        }
        Ok(Zone {
            tz,
            name: canonical,
        })
    }

    /// The canonical name (what a schedule stores and EventBridge Scheduler gets).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is UTC (civil minutes are epoch minutes).
    pub fn is_utc(&self) -> bool {
        self.name == UTC_NAME
    }

    /// The wall-clock offset from UTC at `epoch_minute`, in seconds (0 outside
    /// jiff's range, years -9999 to 9999, which no schedule reaches).
    fn offset_secs_at(&self, epoch_minute: i64) -> i64 {
        Timestamp::from_second(epoch_minute.saturating_mul(60))
            .map(|ts| i64::from(self.tz.to_offset(ts).seconds()))
            .unwrap_or(0)
    }

    /// The civil minute the zone's wall clock shows during the UTC minute
    /// `epoch_minute`.
    pub fn civil_minute(&self, epoch_minute: i64) -> i64 {
        if self.is_utc() {
            return epoch_minute;
        }
        (epoch_minute * 60 + self.offset_secs_at(epoch_minute)).div_euclid(60)
    }

    /// The UTC minute in which civil minute `civil` first starts: `None` when a
    /// gap (spring forward) skips it, the earlier of the two when an overlap
    /// (fall back) repeats it.
    pub fn first_instant(&self, civil: i64) -> Option<i64> {
        if self.is_utc() {
            return Some(civil);
        }
        let local = TimeZone::UTC.to_datetime(Timestamp::from_second(civil.checked_mul(60)?).ok()?);
        let offset = match self.tz.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.seconds(),
            AmbiguousOffset::Gap { .. } => return None,
            // The larger offset is the earlier instant (UTC = local - offset).
            AmbiguousOffset::Fold { before, after } => before.seconds().max(after.seconds()),
        };
        // The civil minute spans UTC seconds [60c - offset, 60c - offset + 60);
        // the UTC minute starting inside it is the ceiling (offsets of whole
        // minutes, all of today's, make this exact; it keeps the mapping a
        // round trip for the odd historical offset in seconds too).
        let start = civil * 60 - i64::from(offset);
        Some(start.div_euclid(60) + i64::from(start.rem_euclid(60) != 0))
    }

    /// The UTC minutes at which the zone's offset changes, after `from` and up
    /// to `until` (epoch minutes), in order.
    pub fn transitions(&self, from: i64, until: i64) -> Vec<i64> {
        if self.is_utc() {
            return Vec::new();
        }
        let Ok(start) = Timestamp::from_second(from.saturating_mul(60)) else {
            return Vec::new();
        };
        self.tz
            .following(start)
            .map(|t| t.timestamp().as_second().div_euclid(60))
            .take_while(|m| *m <= until)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch minute of a UTC date and time (tests only), through jiff.
    pub(crate) fn utc_minute(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        let dt = jiff::civil::date(y, mo, d).at(h, mi, 0, 0);
        TimeZone::UTC.to_timestamp(dt).unwrap().as_second() / 60
    }

    #[test]
    fn names_are_canonical_and_unknown_ones_refused() {
        for (given, stored) in [
            ("", "UTC"),
            ("  ", "UTC"),
            ("UTC", "UTC"),
            ("utc", "UTC"),
            ("Etc/UTC", "UTC"),
            ("Europe/Berlin", "Europe/Berlin"),
            (" europe/berlin ", "Europe/Berlin"),
            ("AMERICA/NEW_YORK", "America/New_York"),
            ("Asia/Calcutta", "Asia/Kolkata"),
            ("Asia/Kathmandu", "Asia/Kathmandu"),
        ] {
            assert_eq!(Zone::parse(given).unwrap().name(), stored, "{given:?}");
        }
        for bad in [
            "Europe/Berlen",
            "New York",
            "Etc/Unknown",
            "+02:00",
            "UTC+2",
            "Mars/Olympus_Mons",
            "../../etc/passwd",
        ] {
            let e = Zone::parse(bad).unwrap_err();
            assert_eq!(e.code(), "unknown_time_zone");
            assert!(e.to_string().contains("Europe/Berlin"), "{bad}: {e}");
        }
    }

    /// The 2027 transitions of Europe/Berlin, from the database: summer time
    /// starts 2027-03-28 01:00 UTC (02:00 CET → 03:00 CEST) and ends
    /// 2027-10-31 01:00 UTC (03:00 CEST → 02:00 CET).
    #[test]
    fn berlin_2027_transitions_and_civil_minutes() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let year = berlin.transitions(utc_minute(2027, 1, 1, 0, 0), utc_minute(2028, 1, 1, 0, 0));
        assert_eq!(
            year,
            [
                utc_minute(2027, 3, 28, 1, 0),
                utc_minute(2027, 10, 31, 1, 0)
            ]
        );
        // Winter: UTC+1; summer: UTC+2.
        let noon = utc_minute(2027, 1, 15, 12, 0);
        assert_eq!(berlin.civil_minute(noon), noon + 60);
        let summer = utc_minute(2027, 7, 15, 12, 0);
        assert_eq!(berlin.civil_minute(summer), summer + 120);
        // Spring: civil 02:30 on 2027-03-28 does not exist.
        assert_eq!(berlin.first_instant(utc_minute(2027, 3, 28, 2, 30)), None);
        assert_eq!(
            berlin.first_instant(utc_minute(2027, 3, 28, 3, 0)),
            Some(utc_minute(2027, 3, 28, 1, 0))
        );
        // Autumn: civil 02:30 on 2027-10-31 happens at 00:30 UTC (CEST) and
        // again at 01:30 UTC (CET); the first is its instant.
        let twice = utc_minute(2027, 10, 31, 2, 30);
        assert_eq!(
            berlin.first_instant(twice),
            Some(utc_minute(2027, 10, 31, 0, 30))
        );
        assert_eq!(berlin.civil_minute(utc_minute(2027, 10, 31, 0, 30)), twice);
        assert_eq!(berlin.civil_minute(utc_minute(2027, 10, 31, 1, 30)), twice);
        // UTC is the identity, with no transitions.
        let utc = Zone::utc();
        assert_eq!(
            (utc.civil_minute(noon), utc.first_instant(noon)),
            (noon, Some(noon))
        );
        assert!(utc.transitions(0, i64::from(i32::MAX)).is_empty());
    }

    /// Offsets that are not whole hours map exactly too.
    #[test]
    fn quarter_hour_offsets_round_trip() {
        let kathmandu = Zone::parse("Asia/Kathmandu").unwrap();
        let m = utc_minute(2027, 5, 1, 0, 0);
        let civil = kathmandu.civil_minute(m);
        assert_eq!(civil, m + 5 * 60 + 45);
        assert_eq!(kathmandu.first_instant(civil), Some(m));
    }
}
