//! 5-field cron: parsing, matching, the next firing, the EventBridge form.

use runtime_core::clock::zone::Zone;
use runtime_core::schedule::aws_cron;
use runtime_core::schedule::cron::{Cron, Fields};

/// Inputs name instants within ±1900 years of 1970 (the zone database's range
/// and far beyond any schedule); the default is 2024-01-01T00:00Z.
const MAX_ABS_MINUTE: i64 = 1_000_000_000;
const DEFAULT_START: i64 = 19_723 * 1440;

/// How far the check walks minute by minute to confirm nothing fires earlier.
const SCAN_MINUTES: i64 = 20_000;

/// The input is up to three lines: a cron expression, a time zone, a start minute
/// (since 1970). An accepted expression allows at least one value per field, only
/// values in range; written back from its fields it parses to the same schedule;
/// the EventBridge form exists unless both day fields are restricted; the next
/// firing after the start is later, fires, and (within 20,000 minutes) nothing
/// fires in between; in a zone, the next firing is later and fires there.
pub fn cron(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let expr = lines.next().unwrap_or_default();
    let zone = lines.next();
    let start = lines
        .next()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(DEFAULT_START)
        .clamp(-MAX_ABS_MINUTE, MAX_ABS_MINUTE);

    let Ok(cron) = Cron::parse(expr) else {
        assert!(aws_cron::to_aws(expr).is_err());
        return;
    };
    let f = cron.fields();
    assert!(f.minutes != 0 && f.minutes >> 60 == 0, "{f:?}");
    assert!(f.hours != 0 && f.hours >> 24 == 0, "{f:?}");
    assert!(f.days != 0 && f.days & 1 == 0, "{f:?}");
    assert!(
        f.months != 0 && f.months & 1 == 0 && f.months >> 13 == 0,
        "{f:?}"
    );
    assert!(f.weekdays != 0 && f.weekdays >> 7 == 0, "{f:?}");

    let written = write(&f);
    let again = Cron::parse(&written).unwrap_or_else(|e| panic!("{written:?} refused: {e}"));
    assert_eq!(again.fields(), f, "{expr:?} written back as {written:?}");

    assert_eq!(
        aws_cron::to_aws(expr).is_ok(),
        f.days_any || f.weekdays_any,
        "{expr:?}"
    );

    if let Some(next) = cron.next_after(start) {
        assert!(
            next > start && cron.matches(next),
            "{expr:?} after {start}: {next}"
        );
        if next - start <= SCAN_MINUTES {
            assert!(
                (start + 1..next).all(|m| !cron.matches(m)),
                "{expr:?} fires before {next}"
            );
        }
    }
    if let Some(Ok(zone)) = zone.map(Zone::parse)
        && let Some(next) = cron.next_after_in(start, &zone)
    {
        assert!(
            next > start && cron.matches_in(next, &zone),
            "{expr:?} in {}: {next}",
            zone.name()
        );
    }
}

/// The fields as an expression: `*` where the field was `*`, else a list.
fn write(f: &Fields) -> String {
    let list = |bits: u64, lo: u32, hi: u32, any: bool| {
        if any {
            return "*".to_string();
        }
        (lo..=hi)
            .filter(|v| bits & (1 << v) != 0)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    [
        list(f.minutes, 0, 59, false),
        list(u64::from(f.hours), 0, 23, false),
        list(u64::from(f.days), 1, 31, f.days_any),
        list(u64::from(f.months), 1, 12, false),
        list(u64::from(f.weekdays), 0, 6, f.weekdays_any),
    ]
    .join(" ")
}
