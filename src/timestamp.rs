//! Wall-clock instants as text: RFC 3339 in UTC with seven fractional digits and `Z`
//! (`2020-04-10T03:11:13.0276997Z`), the form DPS writes in its bodies and dpsbench writes in
//! its reports.
//!
//! Pure: the caller passes the instant.

use std::time::{SystemTime, UNIX_EPOCH};

/// `at` in RFC 3339 UTC with seven fractional digits (an instant before 1970 reads as 1970).
pub fn rfc3339(at: SystemTime) -> String {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let utc = time::OffsetDateTime::UNIX_EPOCH + since_epoch;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.nanosecond() / 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seven_fractional_digits_in_utc() {
        let at = UNIX_EPOCH + Duration::new(1_586_488_273, 27_699_700);
        assert_eq!(rfc3339(at), "2020-04-10T03:11:13.0276997Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.0000000Z");
    }
}
