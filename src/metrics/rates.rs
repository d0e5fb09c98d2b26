//! Rates named for what they are: assignments in each tenth of a second, from which the rate
//! achieved over the arrival window (first start to last start, without the ramp-down tail) and
//! the peak one-second rate follow. The offered rate comes from the plan (the runner adds it).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Width of a bucket: edges of the arrival window are this precise.
const BUCKET: Duration = Duration::from_millis(100);
/// Buckets in one second, for the peak one-second rate.
const PER_SECOND: u64 = 10;

/// Rates of a run, in `summary.json` as `rates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Devices a second the arrival plan offers on average (none for a closed model).
    #[serde(default)]
    pub offered_per_second: Option<f64>,
    /// Assignments a second between the first start and the last start.
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
    first_start: Option<Instant>,
    last_start: Option<Instant>,
}

impl AssignmentClock {
    pub(super) fn record(&mut self, start: Instant, assigned: Option<Instant>) {
        self.first_start = self.first_start.min(Some(start)).or(Some(start));
        self.last_start = self.last_start.max(Some(start));
        if let Some(at) = assigned {
            *self.by_bucket.entry(bucket(at)).or_default() += 1;
        }
    }

    pub(super) fn merge(&mut self, other: &AssignmentClock) {
        for (bucket, count) in &other.by_bucket {
            *self.by_bucket.entry(*bucket).or_default() += count;
        }
        self.first_start = [self.first_start, other.first_start].into_iter().flatten().min();
        self.last_start = self.last_start.max(other.last_start);
    }

    /// The achieved and peak rates (the offered one is the plan's).
    pub(super) fn rates(&self) -> Rates {
        let achieved = match (self.first_start, self.last_start) {
            (Some(first), Some(last)) => {
                let window = (last - first).max(BUCKET);
                let assigned: u64 = self.by_bucket.range(bucket(first)..=bucket(first + window)).map(|(_, n)| n).sum();
                (assigned as f64 / window.as_secs_f64() * 10.0).round() / 10.0
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
    fn achieved_counts_the_arrival_window_and_peak_the_busiest_second() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut clock = AssignmentClock::default();
        // Arrivals over 2 s; 10 assignments in the window, 5 in the tail after it.
        for n in 0..10 {
            clock.record(ms(n * 200), Some(ms(n * 200 + 50)));
        }
        let mut tail = AssignmentClock::default();
        for n in 0..5 {
            tail.record(ms(1800), Some(ms(3000 + n)));
        }
        clock.merge(&tail);
        let rates = clock.rates();
        assert!((rates.achieved_per_second - 10.0 / 1.8).abs() < 0.7, "{rates:?}");
        assert_eq!(rates.peak_one_second, 5, "{rates:?}");
        assert_eq!(rates.offered_per_second, None);
    }
}
