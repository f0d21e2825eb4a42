//! 5-field cron (ours, Vixie semantics) → EventBridge Scheduler's `cron(...)`:
//! six fields `minutes hours day-of-month month day-of-week year`, where exactly
//! one of the two day fields must be `?` and day-of-week counts 1–7 from Sunday.
//!
//! Every field is written from the parsed bit sets as a list of values and
//! ranges (`0,15,30,45`, `9-17`), never by rewriting the text, so steps, lists
//! and 0-vs-7 Sundays all come out in AWS's own spelling. A schedule that
//! restricts both day fields (Vixie: either matches) has no AWS equivalent and is
//! refused.

use super::cron::Cron;

/// Writes the set bits of `bits` in `lo..=hi` as a comma list with `a-b` runs,
/// adding `offset` to every value; all of `lo..=hi` is `*`.
fn list(bits: u64, lo: u32, hi: u32, offset: u32) -> String {
    let set: Vec<u32> = (lo..=hi).filter(|v| bits & (1 << v) != 0).collect();
    if set.len() as u32 == hi - lo + 1 {
        return "*".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < set.len() {
        let mut j = i;
        while j + 1 < set.len() && set[j + 1] == set[j] + 1 {
            j += 1;
        }
        let (a, b) = (set[i] + offset, set[j] + offset);
        match j - i {
            0 => parts.push(a.to_string()),
            1 => parts.push(format!("{a},{b}")),
            _ => parts.push(format!("{a}-{b}")),
        }
        i = j + 1;
    }
    parts.join(",")
}

/// The EventBridge Scheduler expression for a 5-field cron, e.g.
/// `*/15 9-17 * * 1-5` → `cron(0,15,30,45 9-17 ? * 2-6 *)`.
pub fn to_aws(expr: &str) -> Result<String, String> {
    let f = Cron::parse(expr)?.fields();
    let (days, weekdays) = match (f.days_any, f.weekdays_any) {
        (true, true) => ("*".to_string(), "?".to_string()),
        (false, true) => (list(f.days as u64, 1, 31, 0), "?".to_string()),
        // AWS numbers Sunday 1 … Saturday 7.
        (true, false) => ("?".to_string(), list(f.weekdays as u64, 0, 6, 1)),
        (false, false) => {
            return Err(
                "restricting both day-of-month and day-of-week (either matches) cannot be \
                 expressed in EventBridge Scheduler; restrict only one"
                    .into(),
            );
        }
    };
    Ok(format!(
        "cron({} {} {} {} {} *)",
        list(f.minutes, 0, 59, 0),
        list(f.hours as u64, 0, 23, 0),
        days,
        list(f.months as u64, 1, 12, 0),
        weekdays
    ))
}

#[cfg(test)]
mod tests {
    use super::to_aws;

    #[test]
    fn five_fields_become_six_with_one_question_mark() {
        for (ours, aws) in [
            (
                "*/5 * * * *",
                "cron(0,5,10,15,20,25,30,35,40,45,50,55 * * * ? *)",
            ),
            ("0 3 * * *", "cron(0 3 * * ? *)"),
            ("*/15 9-17 * * 1-5", "cron(0,15,30,45 9-17 ? * 2-6 *)"),
            // Sunday is 0 or 7 in cron, 1 in AWS; a set wrapping the week is a list.
            ("0 0 * * 0", "cron(0 0 ? * 1 *)"),
            ("0 0 * * 7", "cron(0 0 ? * 1 *)"),
            ("0 0 * * 5-7", "cron(0 0 ? * 1,6,7 *)"),
            ("0 0 * * 0-6", "cron(0 0 ? * * *)"),
            ("30 4 1,15 */3 *", "cron(30 4 1,15 1,4,7,10 ? *)"),
            ("5/20 1,2,3 L * *", "error"),
        ] {
            match to_aws(ours) {
                Ok(got) => assert_eq!(got, aws, "{ours}"),
                Err(_) => assert_eq!(aws, "error", "{ours}"),
            }
        }
        assert!(
            to_aws("0 0 1 * 1")
                .unwrap_err()
                .contains("restrict only one")
        );
        assert_eq!(
            to_aws("5/20 0 1-31 * *").unwrap(),
            "cron(5,25,45 0 * * ? *)"
        );
    }
}
