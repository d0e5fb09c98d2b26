//! `--start-at`: waiting for the wall-clock instant every shard of a plan starts at, and
//! measuring how close to it this one started.

use std::time::{Duration, SystemTime};

/// The scheduler's clock starts this long after it is called (see `schedule`): the wait ends
/// this much before the instant, so the plan's zero falls on it.
pub const START_LEAD: Duration = Duration::from_millis(10);

/// Waits until `START_LEAD` before `start_at` (at once when unset or past); returns how far
/// from `start_at` the plan's zero then fell, in seconds (positive: late). `None` when unset.
pub(super) async fn wait_for_start(start_at: Option<SystemTime>) -> Option<f64> {
    let start_at = start_at?;
    // Sleep on the monotonic clock in bounded steps, re-reading the wall clock each time, so a
    // clock step during a long wait does not carry the start away from the instant.
    for _ in 0..100_000 {
        let remaining = start_at.duration_since(SystemTime::now() + START_LEAD).unwrap_or_default();
        if remaining.is_zero() {
            break;
        }
        tokio::time::sleep(remaining.min(Duration::from_secs(1))).await;
    }
    Some(offset_seconds(SystemTime::now() + START_LEAD, start_at))
}

/// `actual - intended` in seconds, negative when early, rounded to microseconds.
pub fn offset_seconds(actual: SystemTime, intended: SystemTime) -> f64 {
    let seconds = match actual.duration_since(intended) {
        Ok(late) => late.as_secs_f64(),
        Err(early) => -early.duration().as_secs_f64(),
    };
    (seconds * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_signed() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(offset_seconds(at + Duration::from_millis(3), at), 0.003);
        assert_eq!(offset_seconds(at - Duration::from_micros(250), at), -0.00025);
    }

    #[tokio::test]
    async fn an_instant_just_ahead_is_waited_for_and_unset_is_none() {
        assert_eq!(wait_for_start(None).await, None);
        let at = SystemTime::now() + Duration::from_millis(60);
        let offset = wait_for_start(Some(at)).await.expect("set");
        assert!(offset > -0.002, "{offset}");
        assert!(SystemTime::now() + START_LEAD >= at - Duration::from_millis(2));
    }
}
