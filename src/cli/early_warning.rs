//! The early word on a run going wrong: when every device of the first seconds failed the same
//! way, one line on stderr says so and why, instead of leaving it to the end. Pure: takes a tick.

use std::time::Duration;

use crate::results::Tick;

/// How long into the run the early word may come: later, the final table says it.
const WINDOW: Duration = Duration::from_secs(10);

/// The line to print when, within the first seconds, every device finished so far failed with
/// one kind and those failures are most of the devices started (failures come back faster than
/// assignments, so a few early ones at a low fault rate say nothing yet); `None` otherwise.
pub(super) fn every_device_failed_alike(tick: &Tick) -> Option<String> {
    let progress = &tick.progress;
    if progress.elapsed > WINDOW
        || progress.assigned > 0
        || progress.failed == 0
        || progress.failed * 2 <= progress.started
        || tick.failures.len() != 1
    {
        return None;
    }
    let (label, count) = tick.failures.iter().next()?;
    let reason = tick.failure_reasons.get(label).map(|r| format!(": {}", r.reason)).unwrap_or_default();
    Some(format!("dpsbench: every device so far ({count}) failed with {label}{reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{FailureKind, FailureReason};

    fn tick(assigned: u64, failures: &[(&str, u64)], seconds: u64) -> Tick {
        let mut tick = Tick::default();
        tick.progress.elapsed = Duration::from_secs(seconds);
        tick.progress.assigned = assigned;
        tick.progress.failed = failures.iter().map(|(_, n)| n).sum();
        tick.progress.started = tick.progress.failed + assigned;
        tick.failures = failures.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        tick.failure_reasons.insert("refused_5".into(), FailureReason::new(&FailureKind::Refused(5), None));
        tick
    }

    #[test]
    fn says_so_only_when_every_device_so_far_failed_the_same_way_early() {
        assert_eq!(
            every_device_failed_alike(&tick(0, &[("refused_5", 4)], 1)).as_deref(),
            Some(
                "dpsbench: every device so far (4) failed with refused_5: CONNACK 5 not authorized (wrong group key or scope?)"
            )
        );
        assert_eq!(every_device_failed_alike(&tick(1, &[("refused_5", 4)], 1)), None, "one got through");
        assert_eq!(every_device_failed_alike(&tick(0, &[("refused_5", 4), ("tls", 1)], 1)), None, "two kinds");
        assert_eq!(every_device_failed_alike(&tick(0, &[], 1)), None, "nothing finished");
        assert_eq!(every_device_failed_alike(&tick(0, &[("refused_5", 4)], 11)), None, "too late to be early");
        // Issue 24: a 3 % fault rate's first failures, while most devices are still in flight.
        let mut early = tick(0, &[("refused_5", 6)], 1);
        early.progress.started = 200;
        assert_eq!(every_device_failed_alike(&early), None, "6 of 200 started, the rest in flight");
    }
}
