//! Wall-clock instants as text: RFC 3339 in UTC with seven fractional digits and `Z`
//! (`2020-04-10T03:11:13.0276997Z`), the form DPS writes in its bodies and dpsbench writes in
//! its reports.
//!
//! [`parse_rfc3339`] reads any RFC 3339 instant back (`--start-at`, `started_at`).
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

/// An RFC 3339 text that is not one; carries the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 instant (e.g. 2026-11-26T15:30:00Z or 2026-11-26T16:30:00+01:00)")]
pub struct TimestampError(pub String);

/// Parses an RFC 3339 instant with any offset and up to nine fractional digits.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, TimestampError> {
    let bad = || TimestampError(text.to_string());
    let parsed =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).map_err(|_| bad())?;
    let nanos = parsed.unix_timestamp_nanos();
    let nanos = u64::try_from(nanos).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + std::time::Duration::from_nanos(nanos))
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

    #[test]
    fn parses_what_it_writes_and_other_offsets() {
        let at = UNIX_EPOCH + Duration::new(1_586_488_273, 27_699_700);
        assert_eq!(parse_rfc3339(&rfc3339(at)), Ok(at));
        assert_eq!(parse_rfc3339("2020-04-10T03:11:13Z"), Ok(UNIX_EPOCH + Duration::from_secs(1_586_488_273)));
        assert_eq!(
            parse_rfc3339("2020-04-10T05:11:13.5+02:00"),
            Ok(UNIX_EPOCH + Duration::from_millis(1_586_488_273_500))
        );
        assert_eq!(parse_rfc3339("2020-04-10t03:11:13z"), parse_rfc3339("2020-04-10T03:11:13Z"));
    }

    #[test]
    fn refuses_what_is_not_an_instant() {
        for bad in ["", "2020-04-10", "2020-04-10T03:11:13", "2020-13-10T03:11:13Z", "1969-12-31T23:59:59Z", "now"] {
            assert_eq!(parse_rfc3339(bad), Err(TimestampError(bad.to_string())), "{bad}");
        }
    }
}
