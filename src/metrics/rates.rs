//! Rates named for what they are: assignments in each tenth of a second, from which the peak
//! one-second rate follows, and the span of assignments, over which the achieved rate is taken
//! (from the first assignment to the last: neither the wait for the first nor the run's tail
//! after the last dilutes it). The offered rate comes from the plan (the runner adds it).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Width of a bucket: the peak one-second rate is this precise.
const BUCKET: Duration = Duration::from_millis(100);
/// Buckets in one second, for the peak one-second rate.
const PER_SECOND: u64 = 10;

/// Rates of a run, in `summary.json` as `rates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Devices a second the arrival plan offers on average (none for a closed model).
    #[serde(default)]
    pub offered_per_second: Option<f64>,
    /// Assignments a second from the first assignment to the last.
    #[serde(default)]
    pub achieved_per_second: f64,
    /// Most assignments in any one second.
    #[serde(default)]
    pub peak_one_second: u64,
}

/// Assignment instants in buckets of [`BUCKET`], and the span of starts.
#[derive(Debug, Clone, Default)]
pub(super) struct AssignmentClock {
    by_bucket: BTreeMap<u64, u64>,
    assigned: u64,
    first_assigned: Option<Instant>,
    last_assigned: Option<Instant>,
}

impl AssignmentClock {
    pub(super) fn record(&mut self, assigned: Option<Instant>) {
        if let Some(at) = assigned {
            *self.by_bucket.entry(bucket(at)).or_default() += 1;
            self.assigned += 1;
            self.first_assigned = self.first_assigned.min(Some(at)).or(Some(at));
            self.last_assigned = self.last_assigned.max(Some(at));
        }
    }

    pub(super) fn merge(&mut self, other: &AssignmentClock) {
        for (bucket, count) in &other.by_bucket {
            *self.by_bucket.entry(*bucket).or_default() += count;
        }
        self.assigned += other.assigned;
        self.first_assigned = [self.first_assigned, other.first_assigned].into_iter().flatten().min();
        self.last_assigned = self.last_assigned.max(other.last_assigned);
    }

    /// The achieved and peak rates (the offered one is the plan's).
    pub(super) fn rates(&self) -> Rates {
        let achieved = match (self.first_assigned, self.last_assigned) {
            // N assignments span N - 1 gaps (as N arrivals do for the offered rate).
            (Some(first), Some(last)) if last > first => {
                let rate = self.assigned.saturating_sub(1) as f64 / (last - first).as_secs_f64();
                (rate * 10.0).round() / 10.0
            }
            _ => 0.0,
        };
        Rates { offered_per_second: None, achieved_per_second: achieved, peak_one_second: self.peak_one_second() }
    }

    /// Most assignments in any run of [`PER_SECOND`] consecutive buckets.
    fn peak_one_second(&self) -> u64 {
        let mut peak = 0;
        for &first in self.by_bucket.keys() {
            let second: u64 = self.by_bucket.range(first..first + PER_SECOND).map(|(_, n)| n).sum();
            peak = peak.max(second);
        }
        peak
    }
}

/// The bucket of `at`, counted from a base shared by every collector of the process.
fn bucket(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    // A base a day before the first call, so instants of the run before it still count forward.
    let base = *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(86_400)).unwrap_or(now)
    });
    (at.saturating_duration_since(base).as_millis() / BUCKET.as_millis()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn achieved_spans_the_assignments_and_peak_the_busiest_second() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut clock = AssignmentClock::default();
        // One a second from 1 s (the wait for the first) to 10 s; a device that never got
        // assigned adds nothing.
        for n in 1..=10 {
            clock.record(Some(ms(n * 1000)));
        }
        clock.record(None);
        let mut burst = AssignmentClock::default();
        for n in 0..9 {
            burst.record(Some(ms(10_000 + n)));
        }
        clock.merge(&burst);
        let rates = clock.rates();
        assert_eq!(rates.achieved_per_second, 2.0, "19 assignments, 18 gaps over 9.008 s: {rates:?}");
        assert_eq!(rates.peak_one_second, 10, "{rates:?}");
        assert_eq!(rates.offered_per_second, None);
    }
}
