//! Times as people read them in messages and reports.

/// Unix seconds as `2026-12-07 06:50:48 UTC`; `None` past what a date can say.
pub fn utc_seconds(secs: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_read_as_utc() {
        assert_eq!(super::utc_seconds(1_700_000_000).as_deref(), Some("2023-11-14 22:13:20 UTC"));
        assert_eq!(super::utc_seconds(i64::MAX), None);
    }
}
