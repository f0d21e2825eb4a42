//! 5-field cron (`minute hour day-of-month month day-of-week`): `*`, numbers,
//! ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`. Day-of-week 0–7 (0 and 7
//! are Sunday). As in Vixie cron, when both day fields are restricted a day
//! matches if either does.
//!
//! The plain methods work on minutes since 1970 of one wall clock (UTC, or a
//! zone's civil minutes); the `_in` methods evaluate the expression in a
//! [`Zone`] and answer UTC minutes, with its daylight-saving rules (a minute a
//! gap skips never fires, a minute an overlap repeats fires once).

use crate::clock::zone::Zone;

/// A parsed expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_any: bool,
    weekdays_any: bool,
}

/// Why a cron expression was refused; each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five whitespace-separated fields.
    #[error("expected 5 fields, found {0}")]
    FieldCount(usize),
    /// A value, range bound or step is not a number.
    #[error("{field}: bad {what} {text:?}")]
    NotANumber {
        /// The field (`minute`, `hour`, ...).
        field: &'static str,
        /// `value` or `step`.
        what: &'static str,
        /// The text found.
        text: String,
    },
    /// A step of zero.
    #[error("{field}: step 0")]
    ZeroStep {
        /// The field.
        field: &'static str,
    },
    /// A value or range outside the field's bounds, or reversed.
    #[error("{field}: {part:?} is outside {min}-{max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The list element.
        part: String,
        /// The field's lowest value.
        min: u32,
        /// The field's highest value.
        max: u32,
    },
    /// A step longer than the values its range holds: meaningless, and before
    /// this check `1-59/4294967295` overflowed the stepping arithmetic.
    #[error("{field}: step {step} in {part:?} is larger than its range ({span} values)")]
    StepTooLarge {
        /// The field.
        field: &'static str,
        /// The list element.
        part: String,
        /// The step.
        step: u32,
        /// Values in the range.
        span: u32,
    },
}

impl From<CronError> for String {
    fn from(e: CronError) -> String {
        e.to_string()
    }
}

fn field(text: &str, min: u32, max: u32, name: &'static str) -> Result<u64, CronError> {
    let number = |what: &'static str, t: &str| {
        t.parse::<u32>().map_err(|_| CronError::NotANumber {
            field: name,
            what,
            text: t.to_string(),
        })
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step = number("step", s)?;
                if step == 0 {
                    return Err(CronError::ZeroStep { field: name });
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number("value", a)?, number("value", b)?)
        } else {
            let v = number("value", range)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(CronError::OutOfRange {
                field: name,
                part: part.to_string(),
                min,
                max,
            });
        }
        // Bounded above by 64 (the bit set), so `span` cannot overflow; a step
        // beyond it is refused before any stepping arithmetic.
        let span = hi - lo + 1;
        if step > span {
            return Err(CronError::StepTooLarge {
                field: name,
                part: part.to_string(),
                step,
                span,
            });
        }
        // `checked_add`: the loop ends on overflow instead of wrapping (release)
        // or panicking (debug), whatever the step.
        let mut v = Some(lo);
        while let Some(x) = v.filter(|x| *x <= hi) {
            bits |= 1 << x;
            v = x.checked_add(step);
        }
    }
    Ok(bits)
}

impl Cron {
    /// Parses five whitespace-separated fields.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        if f.len() != 5 {
            return Err(CronError::FieldCount(f.len()));
        }
        let mut weekdays = field(f[4], 0, 7, "day-of-week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        Ok(Cron {
            minutes: field(f[0], 0, 59, "minute")?,
            hours: field(f[1], 0, 23, "hour")? as u32,
            days: field(f[2], 1, 31, "day-of-month")? as u32,
            months: field(f[3], 1, 12, "month")? as u16,
            weekdays: weekdays as u8,
            days_any: f[2] == "*",
            weekdays_any: f[4] == "*",
        })
    }

    /// Whether the minute starting at `epoch_minute` fires: minutes since 1970
    /// on the clock the expression is read on (UTC, or a zone's civil minutes).
    pub fn matches(&self, epoch_minute: i64) -> bool {
        let minute = epoch_minute.rem_euclid(60) as u32;
        let hour = (epoch_minute.div_euclid(60)).rem_euclid(24) as u32;
        self.minutes & (1 << minute) != 0
            && self.hours & (1 << hour) != 0
            && self.day_matches(epoch_minute.div_euclid(1440))
    }

    /// Whether any minute of day `days` (since 1970) can fire: its month, and its
    /// day of month and weekday (either one when both are restricted, as cron does).
    fn day_matches(&self, days: i64) -> bool {
        let (_, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7) as u32;
        let day_ok = match (self.days_any, self.weekdays_any) {
            (false, false) => self.days & (1 << day) != 0 || self.weekdays & (1 << weekday) != 0,
            _ => self.days & (1 << day) != 0 && self.weekdays & (1 << weekday) != 0,
        };
        self.months & (1 << month) != 0 && day_ok
    }

    /// The first firing minute strictly after `epoch_minute`, within about 5 years.
    pub fn next_after(&self, epoch_minute: i64) -> Option<i64> {
        self.next_after_until(epoch_minute, epoch_minute + FIVE_YEARS_MINUTES)
    }

    /// [`Cron::next_after`] looking no further than minute `end`.
    fn next_after_until(&self, epoch_minute: i64, end: i64) -> Option<i64> {
        let mut m = epoch_minute + 1;
        while m <= end {
            // Skip whole days and hours that cannot match, so a yearly schedule (or
            // one that never fires, such as 30 February) is decided in thousands of
            // steps, not millions.
            if !self.day_matches(m.div_euclid(1440)) {
                m = (m.div_euclid(1440) + 1) * 1440;
                continue;
            }
            let hour = (m.div_euclid(60)).rem_euclid(24) as u32;
            if self.hours & (1 << hour) == 0 {
                m = (m.div_euclid(60) + 1) * 60;
                continue;
            }
            if self.matches(m) {
                return Some(m);
            }
            m += 1;
        }
        None
    }

    /// The smallest gap between consecutive firings, in minutes, over up to 2000
    /// firings from the start of a leap year (enough to see every minute/hour gap
    /// and the day boundary).
    pub fn min_gap_minutes(&self) -> Option<i64> {
        // 2024-01-01T00:00Z, a leap year: covers every month and day boundary.
        let start = 19_723 * 1440;
        let mut prev = self.next_after(start - 1)?;
        let mut gap = i64::MAX;
        for _ in 0..2000 {
            let Some(next) = self.next_after(prev) else {
                break;
            };
            gap = gap.min(next - prev);
            if next - start > 366 * 1440 {
                break;
            }
            prev = next;
        }
        (gap != i64::MAX).then_some(gap)
    }
}

/// How far [`Cron::next_after`] looks.
const FIVE_YEARS_MINUTES: i64 = 5 * 366 * 1440;

/// How far [`Cron::min_gap_minutes_in`] looks for offset changes: 28 years, the
/// period after which dates fall on the same weekdays again, so every pairing
/// of a cron's days with a rule like "last Sunday of March" is seen.
const TRANSITION_HORIZON_MINUTES: i64 = 28 * 366 * 1440;

impl Cron {
    /// Whether the UTC minute `epoch_minute` fires when the expression is read
    /// on `zone`'s wall clock: the civil minute shown then matches, and this is
    /// its first instant (an overlap's repeat does not fire again).
    pub fn matches_in(&self, epoch_minute: i64, zone: &Zone) -> bool {
        let civil = zone.civil_minute(epoch_minute);
        self.matches(civil) && zone.first_instant(civil) == Some(epoch_minute)
    }

    /// The first UTC minute strictly after `epoch_minute` that fires in `zone`,
    /// within about 5 years of wall-clock time.
    pub fn next_after_in(&self, epoch_minute: i64, zone: &Zone) -> Option<i64> {
        let start = zone.civil_minute(epoch_minute);
        self.next_in_until(epoch_minute, zone, start + FIVE_YEARS_MINUTES)
    }

    /// [`Cron::next_after_in`] searching the wall clock only up to civil minute
    /// `civil_end`.
    fn next_in_until(&self, epoch_minute: i64, zone: &Zone, civil_end: i64) -> Option<i64> {
        let mut civil = zone.civil_minute(epoch_minute);
        loop {
            civil = self.next_after_until(civil, civil_end)?;
            // A gap skips the minute; in an overlap's second pass the minutes
            // ahead on the wall clock already fired in the first one.
            match zone.first_instant(civil) {
                Some(m) if m > epoch_minute => return Some(m),
                _ => {}
            }
        }
    }

    /// The smallest gap between consecutive firings in `zone`, in real (UTC)
    /// minutes: [`Cron::min_gap_minutes`] on the wall clock, and the firings
    /// within a day of each offset change from `from_epoch_minute` over the
    /// next 28 years. Only a change can make real gaps differ from wall-clock
    /// ones: spring forward brings the firings on either side of the gap
    /// closer (`58 1` and `0 3` are 2 real minutes apart that night in Berlin),
    /// while fall back only widens them, as a repeated wall-clock minute fires
    /// once. A gap spanning a change is measured when it is shorter than a day,
    /// which is all the 5-minute rule needs (a weekly schedule's 10,020-minute
    /// spring week reads as its wall-clock 10,080).
    pub fn min_gap_minutes_in(&self, zone: &Zone, from_epoch_minute: i64) -> Option<i64> {
        let mut gap = self.min_gap_minutes()?;
        for change in zone.transitions(
            from_epoch_minute,
            from_epoch_minute + TRANSITION_HORIZON_MINUTES,
        ) {
            let civil_end = zone.civil_minute(change + 1440);
            let mut at = change - 1440;
            let mut prev: Option<i64> = None;
            while let Some(next) = self.next_in_until(at, zone, civil_end) {
                if let Some(p) = prev {
                    gap = gap.min(next - p);
                }
                if next > change {
                    break;
                }
                prev = Some(next);
                at = next;
            }
        }
        Some(gap)
    }
}

/// The allowed values of each field, for conversions (see `aws_cron`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// Bit n set = minute n.
    pub minutes: u64,
    /// Bit n set = hour n.
    pub hours: u32,
    /// Bit n set = day n of the month (1–31).
    pub days: u32,
    /// Bit n set = month n (1–12).
    pub months: u16,
    /// Bit n set = weekday n (0 = Sunday … 6).
    pub weekdays: u8,
    /// The day-of-month field was `*`.
    pub days_any: bool,
    /// The day-of-week field was `*`.
    pub weekdays_any: bool,
}

impl Cron {
    /// The expression's fields as bit sets.
    pub fn fields(&self) -> Fields {
        Fields {
            minutes: self.minutes,
            hours: self.hours,
            days: self.days,
            months: self.months,
            weekdays: self.weekdays,
            days_any: self.days_any,
            weekdays_any: self.weekdays_any,
        }
    }
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute_of(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        // Days from civil, by search around the estimate (tests only).
        let mut days = (y - 1970) * 365 + (y - 1969) / 4;
        while civil_from_days(days) < (y, mo, d) {
            days += 1;
        }
        while civil_from_days(days) > (y, mo, d) {
            days -= 1;
        }
        days * 1440 + h * 60 + mi
    }

    #[test]
    fn dates_and_weekdays() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        // 2024-01-01 was a Monday.
        let monday = Cron::parse("0 0 * * 1").unwrap();
        assert!(monday.matches(minute_of(2024, 1, 1, 0, 0)));
        assert!(!monday.matches(minute_of(2024, 1, 2, 0, 0)));
        let sunday7 = Cron::parse("0 0 * * 7").unwrap();
        assert!(sunday7.matches(minute_of(2024, 1, 7, 0, 0)));
    }

    #[test]
    fn next_firings() {
        let c = Cron::parse("*/15 9-17 * * 1-5").unwrap();
        let fri_17_50 = minute_of(2024, 1, 5, 17, 50);
        assert_eq!(c.next_after(fri_17_50), Some(minute_of(2024, 1, 8, 9, 0)));
        let yearly = Cron::parse("30 4 29 2 *").unwrap();
        assert_eq!(
            yearly.next_after(minute_of(2025, 1, 1, 0, 0)),
            Some(minute_of(2028, 2, 29, 4, 30))
        );
    }

    #[test]
    fn gaps_and_errors() {
        assert_eq!(
            Cron::parse("*/5 * * * *").unwrap().min_gap_minutes(),
            Some(5)
        );
        assert_eq!(
            Cron::parse("0,2 * * * *").unwrap().min_gap_minutes(),
            Some(2)
        );
        assert_eq!(Cron::parse("* * * * *").unwrap().min_gap_minutes(), Some(1));
        assert_eq!(
            Cron::parse("0 0 * * *").unwrap().min_gap_minutes(),
            Some(1440)
        );
        assert_eq!(
            Cron::parse("55 23 * * *").unwrap().min_gap_minutes(),
            Some(1440)
        );
        for bad in [
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
            "0 0 32 * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    /// Found by the fuzzer as a slow unit: a date that never comes, at any hour,
    /// walked five years minute by minute (2.6 M steps) before answering none.
    #[test]
    fn a_date_that_never_comes_is_decided_day_by_day() {
        let start = minute_of(2024, 1, 1, 0, 0);
        assert_eq!(Cron::parse("7 * 30 2 *").unwrap().next_after(start), None);
        assert_eq!(
            Cron::parse("7 * 31 4,6,9,11 *").unwrap().next_after(start),
            None
        );
        let leap = Cron::parse("7 * 29 2 *").unwrap();
        assert_eq!(leap.next_after(start), Some(minute_of(2024, 2, 29, 0, 7)));
        assert_eq!(
            leap.next_after(minute_of(2024, 3, 1, 0, 0)),
            Some(minute_of(2028, 2, 29, 0, 7))
        );
    }

    /// A step near `u32::MAX` used to overflow `v += step`
    /// (a panic in debug builds, a wrapped loop in release). Every step larger
    /// than its range is refused with a typed error before any arithmetic.
    #[test]
    fn sec_16_huge_cron_steps_are_refused_without_overflow() {
        for expr in [
            "1-59/4294967295 * * * *",
            "*/4294967295 * * * *",
            "5/4294967295 * * * *",
            "0 0-23/4294967290 * * *",
            "0 0 * * 0-7/4294967295",
            "0 0 1-31/4294967295 * *",
            "0 0 * 1-12/4294967295 *",
        ] {
            let parsed = std::panic::catch_unwind(|| Cron::parse(expr));
            let result = parsed.unwrap_or_else(|_| panic!("{expr}: parsing panicked"));
            let e = result.expect_err(expr);
            assert!(matches!(e, CronError::StepTooLarge { .. }), "{expr}: {e:?}");
            assert!(e.to_string().contains("step"), "{expr}: {e}");
        }
        // A step as long as its range fires once per range; one more is refused.
        assert!(Cron::parse("0-59/59 * * * *").is_ok());
        assert!(Cron::parse("*/60 * * * *").is_ok());
        assert!(Cron::parse("5-5/1 * * * *").is_ok());
        assert!(matches!(
            Cron::parse("*/61 * * * *"),
            Err(CronError::StepTooLarge {
                step: 61,
                span: 60,
                ..
            })
        ));
    }
}
