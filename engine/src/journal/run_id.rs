//! Run ids: the UTC start time to the millisecond and a short random suffix,
//! `20261124T004512.123Z-3fa2c1`. They sort by time as plain strings.

use std::time::{SystemTime, UNIX_EPOCH};

/// A new id for a run starting now.
pub fn new() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{}-{}-{:?}", now.as_nanos(), std::process::id(), std::thread::current().id());
    let suffix = &contract::diff::sha256_hex(seed.as_bytes())[..6];
    format!("{}-{suffix}", timestamp(now.as_millis() as u64))
}

/// `YYYYMMDDTHHMMSS.mmmZ` for Unix milliseconds.
fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z", rest / 3600, rest % 3600 / 60, rest % 60, ms % 1000)
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Whether `id` looks like a run id (and so is safe as a file name).
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_utc_timestamps_that_sort() {
        assert_eq!(timestamp(0), "19700101T000000.000Z");
        assert_eq!(timestamp(1_795_480_712_345), "20261124T003832.345Z");
        assert_eq!(timestamp(951_782_400_000), "20000229T000000.000Z", "leap day");
        let (a, b) = (new(), new());
        assert!(is_valid(&a) && a.len() == 27, "{a}");
        assert_ne!(a, b, "random suffix");
        assert!(!is_valid("../x") && !is_valid("") && !is_valid(".hidden"));
    }
}
