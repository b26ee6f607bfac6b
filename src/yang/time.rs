//! The wall-clock form of the YANG `date-and-time` type (ietf-yang-types): UTC, whole seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats a time as a YANG `date-and-time` (RFC 3339) in UTC, e.g. `2026-11-18T11:06:40Z`.
/// Times before the epoch print as the epoch.
pub fn date_and_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(date_and_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(date_and_time(t), "2026-11-18T11:06:40Z");
        // A leap day, and the last second of a year.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(date_and_time(t), "2000-02-29T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(date_and_time(t), "2024-12-31T23:59:59Z");
        // Sub-second parts are dropped; times before the epoch print as the epoch.
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(date_and_time(t), "1970-01-01T00:00:01Z");
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(date_and_time(t), "1970-01-01T00:00:00Z");
    }
}
