//! `--start-at`: waiting for the wall-clock instant every shard of a plan starts at, and
//! measuring how close to it this one started.

use std::time::{Duration, SystemTime};

/// The scheduler's clock starts this long after it is called (see `schedule`): the wait ends
/// this much before the instant, so the plan's zero falls on it.
pub const START_LEAD: Duration = Duration::from_millis(10);

/// Waits until `START_LEAD` before `start_at` (at once when unset or past), or until an
/// interrupt (which the scheduler then sees too, and ends the run with nothing started); returns
/// how far from `start_at` the plan's zero then fell, in seconds (positive: late). `None` when
/// unset.
pub(super) async fn wait_for_start(
    start_at: Option<SystemTime>,
    mut interrupts: tokio::sync::watch::Receiver<u32>,
) -> Option<f64> {
    let start_at = start_at?;
    // Sleep on the monotonic clock in bounded steps, re-reading the wall clock each time, so a
    // clock step during a long wait does not carry the start away from the instant.
    for _ in 0..100_000 {
        let remaining = start_at.duration_since(SystemTime::now() + START_LEAD).unwrap_or_default();
        if remaining.is_zero() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(remaining.min(Duration::from_secs(1))) => {}
            changed = interrupts.changed() => {
                if changed.is_ok() {
                    break;
                }
                // No sender: no interrupt can come; keep waiting on the clock alone.
                interrupts = tokio::sync::watch::channel(0).1;
            }
        }
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
        let (_sender, interrupts) = tokio::sync::watch::channel(0u32);
        assert_eq!(wait_for_start(None, interrupts.clone()).await, None);
        let at = SystemTime::now() + Duration::from_millis(60);
        let offset = wait_for_start(Some(at), interrupts).await.expect("set");
        assert!(offset > -0.002, "{offset}");
        assert!(SystemTime::now() + START_LEAD >= at - Duration::from_millis(2));
    }

    #[tokio::test]
    async fn an_interrupt_ends_the_wait() {
        let (sender, interrupts) = tokio::sync::watch::channel(0u32);
        let at = SystemTime::now() + Duration::from_secs(3600);
        let waiting = tokio::spawn(wait_for_start(Some(at), interrupts));
        sender.send_modify(|count| *count += 1);
        let offset = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("ended").expect("joined");
        assert!(offset.expect("set") < -3000.0, "an hour early");
    }
}
