//! Rates named for what they are: assignments in each tenth of a second of the wall clock, from
//! which the peak one-second rate follows, and the span of assignments, over which the achieved
//! rate is taken (from the first assignment to the last: neither the wait for the first nor the
//! run's tail after the last dilutes it). The offered rate comes from the plan (the runner adds it).
//!
//! The data the rates are derived from is kept in [`Rates`] itself ([`AssignmentTenths`], the
//! first and last assignment instants), on the wall clock, so shards of one plan add up exactly
//! ([`Rates::add`]) and the merged rates are recomputed, never copied from one shard.
//!
//! Reads no clock: instants reach the wall clock through the caller's reading of both
//! ([`WallClock`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Width of a bucket: the peak one-second rate is this precise.
const TENTH: Duration = Duration::from_millis(100);
/// Buckets in one second, for the peak one-second rate.
const PER_SECOND: usize = 10;
/// Most tenths a merge spans (a week): parts of one plan run together, and parts further apart
/// than this are no one run's rates (nor worth an array of millions of zeros).
const MAX_TENTHS: u64 = 7 * 86_400 * 10;

/// Rates of a run, in `summary.json` as `rates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Devices a second the arrival plan offers on average (none for a closed model). The whole
    /// plan's rate, also in a shard's summary.
    #[serde(default)]
    pub offered_per_second: Option<f64>,
    /// Assignments a second from the first assignment to the last: the run's one achieved rate
    /// (`flows_per_second` holds the same figure).
    #[serde(default)]
    pub achieved_per_second: f64,
    /// Most assignments in any one second (ten consecutive tenths of the wall clock).
    #[serde(default)]
    pub peak_one_second: u64,
    /// The first and the last assignment, microseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_assignment_unix_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_assignment_unix_us: Option<u64>,
    /// Assignments in each tenth of a second of the wall clock.
    #[serde(default, skip_serializing_if = "AssignmentTenths::is_empty")]
    pub assigned_by_tenth: AssignmentTenths,
}

impl Rates {
    /// Whether the data the rates derive from is here: a summary of an older dpsbench has the
    /// rates but not it (then no merge can recompute them).
    pub fn derivable(&self) -> bool {
        let assigned = self.assigned_by_tenth.total();
        let none = assigned == 0 && self.peak_one_second == 0 && self.achieved_per_second == 0.0;
        none || (self.first_assignment_unix_us.is_some() && self.last_assignment_unix_us.is_some() && assigned > 0)
    }

    /// Adds another part of the same plan (a shard): assignments per tenth added, the span from
    /// the earliest first to the latest last assignment, the derived rates recomputed. The
    /// offered rate is the plan's: the first one known stands.
    pub fn add(&mut self, other: &Rates) {
        let Rates {
            offered_per_second,
            achieved_per_second: _,
            peak_one_second: _,
            first_assignment_unix_us,
            last_assignment_unix_us,
            assigned_by_tenth,
        } = other;
        self.offered_per_second = self.offered_per_second.or(*offered_per_second);
        self.first_assignment_unix_us =
            [self.first_assignment_unix_us, *first_assignment_unix_us].into_iter().flatten().min();
        self.last_assignment_unix_us = self.last_assignment_unix_us.max(*last_assignment_unix_us);
        self.assigned_by_tenth.add(assigned_by_tenth);
        self.derive();
    }

    /// The rates of two parts, when both carry their data and span at most a week together;
    /// `None` (unknown) otherwise: never a rate derived from missing data.
    pub fn added(&self, other: &Rates) -> Option<Rates> {
        if !(self.derivable() && other.derivable() && self.assigned_by_tenth.fits_with(&other.assigned_by_tenth)) {
            return None;
        }
        let mut sum = self.clone();
        sum.add(other);
        Some(sum)
    }

    /// Recomputes the achieved and peak rates from the data they are derived from.
    fn derive(&mut self) {
        let assigned = self.assigned_by_tenth.total();
        self.achieved_per_second = match (self.first_assignment_unix_us, self.last_assignment_unix_us) {
            // N assignments span N - 1 gaps (as N arrivals do for the offered rate).
            (Some(first), Some(last)) if last > first => {
                let rate = assigned.saturating_sub(1) as f64 / ((last - first) as f64 / 1e6);
                (rate * 10.0).round() / 10.0
            }
            _ => 0.0,
        };
        self.peak_one_second = self.assigned_by_tenth.peak(PER_SECOND);
    }
}

/// Assignments per tenth of a second, `counts[k]` in the tenth `first_tenth + k` (tenths since
/// the Unix epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentTenths {
    pub first_tenth: u64,
    pub counts: Vec<u64>,
}

impl AssignmentTenths {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The first tenth past the last, `None` when that overflows (a file edited by hand).
    fn end(&self) -> Option<u64> {
        self.first_tenth.checked_add(self.counts.len() as u64)
    }

    /// Whether the two span at most [`MAX_TENTHS`] together (and neither overflows).
    fn fits_with(&self, other: &AssignmentTenths) -> bool {
        if self.is_empty() || other.is_empty() {
            return self.end().is_some() && other.end().is_some();
        }
        match (self.end(), other.end()) {
            (Some(a), Some(b)) => a.max(b) - self.first_tenth.min(other.first_tenth) <= MAX_TENTHS,
            _ => false,
        }
    }

    /// Adds `other`'s counts tenth by tenth.
    pub fn add(&mut self, other: &AssignmentTenths) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        let first = self.first_tenth.min(other.first_tenth);
        let end = (self.first_tenth + self.counts.len() as u64).max(other.first_tenth + other.counts.len() as u64);
        let mut counts = vec![0; (end - first) as usize];
        for part in [&*self, other] {
            let offset = (part.first_tenth - first) as usize;
            for (slot, count) in counts[offset..].iter_mut().zip(&part.counts) {
                *slot += count;
            }
        }
        *self = AssignmentTenths { first_tenth: first, counts };
    }

    /// Most assignments in any `width` consecutive tenths.
    fn peak(&self, width: usize) -> u64 {
        let mut window: u64 = self.counts.iter().take(width).sum();
        let mut peak = window;
        for k in width..self.counts.len() {
            window = window + self.counts[k] - self.counts[k - width];
            peak = peak.max(window);
        }
        peak
    }
}

/// One reading of both clocks, taken by the caller (the runner, once a run): the instant it
/// was read and the same moment on the wall clock. Every instant of a run maps to the wall clock
/// through it, so instants keep their order and spacing, and the tenths of processes on one
/// machine line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    instant: Instant,
    unix_us: u64,
}

impl WallClock {
    /// `instant` and `wall` read at the same moment.
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        Self { instant, unix_us: wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64 }
    }

    /// `at` on the wall clock, in microseconds since the Unix epoch.
    pub fn unix_micros(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.unix_us + after.as_micros() as u64,
            None => self.unix_us.saturating_sub(self.instant.duration_since(at).as_micros() as u64),
        }
    }
}

/// Assignment instants as they happen (on the wall clock), for [`Rates`].
#[derive(Debug, Clone, Default)]
pub(super) struct AssignmentClock {
    by_tenth: BTreeMap<u64, u64>,
    first_assigned_unix_us: Option<u64>,
    last_assigned_unix_us: Option<u64>,
}

impl AssignmentClock {
    pub(super) fn record(&mut self, assigned: Option<Instant>, wall: &WallClock) {
        if let Some(at) = assigned.map(|at| wall.unix_micros(at)) {
            *self.by_tenth.entry(at / TENTH.as_micros() as u64).or_default() += 1;
            self.first_assigned_unix_us = self.first_assigned_unix_us.min(Some(at)).or(Some(at));
            self.last_assigned_unix_us = self.last_assigned_unix_us.max(Some(at));
        }
    }

    pub(super) fn merge(&mut self, other: &AssignmentClock) {
        for (tenth, count) in &other.by_tenth {
            *self.by_tenth.entry(*tenth).or_default() += count;
        }
        self.first_assigned_unix_us =
            [self.first_assigned_unix_us, other.first_assigned_unix_us].into_iter().flatten().min();
        self.last_assigned_unix_us = self.last_assigned_unix_us.max(other.last_assigned_unix_us);
    }

    /// The achieved and peak rates with the data they come from (the offered one is the plan's).
    pub(super) fn rates(&self) -> Rates {
        let assigned_by_tenth = match (self.by_tenth.first_key_value(), self.by_tenth.last_key_value()) {
            (Some((&first, _)), Some((&last, _))) => {
                let mut counts = vec![0; (last - first + 1) as usize];
                for (tenth, count) in &self.by_tenth {
                    counts[(tenth - first) as usize] = *count;
                }
                AssignmentTenths { first_tenth: first, counts }
            }
            _ => AssignmentTenths::default(),
        };
        let mut rates = Rates {
            first_assignment_unix_us: self.first_assigned_unix_us,
            last_assignment_unix_us: self.last_assigned_unix_us,
            assigned_by_tenth,
            ..Rates::default()
        };
        rates.derive();
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn achieved_spans_the_assignments_and_peak_the_busiest_second() {
        let t0 = Instant::now();
        let wall = WallClock::new(t0, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut clock = AssignmentClock::default();
        // One a second from 1 s (the wait for the first) to 10 s; a device that never got
        // assigned adds nothing.
        for n in 1..=10 {
            clock.record(Some(ms(n * 1000)), &wall);
        }
        clock.record(None, &wall);
        let mut burst = AssignmentClock::default();
        for n in 0..9 {
            burst.record(Some(ms(10_000 + n)), &wall);
        }
        clock.merge(&burst);
        let rates = clock.rates();
        assert_eq!(rates.achieved_per_second, 2.0, "19 assignments, 18 gaps over 9.008 s: {rates:?}");
        assert_eq!(rates.peak_one_second, 10, "{rates:?}");
        assert_eq!(rates.offered_per_second, None);
        assert_eq!(rates.assigned_by_tenth.total(), 19);
    }

    #[test]
    fn rates_added_from_their_data_equal_the_rates_of_the_whole() {
        // Two shards' assignments interleaved in time: the rates of the added data are those
        // one collector of every assignment computes, not either shard's.
        let t0 = Instant::now();
        let wall = WallClock::new(t0, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let (mut whole, mut even, mut odd) =
            (AssignmentClock::default(), AssignmentClock::default(), AssignmentClock::default());
        for n in 0..300u64 {
            let at = Some(t0 + Duration::from_millis(n * 7 + (n % 5) * 13));
            whole.record(at, &wall);
            if n % 2 == 0 { even.record(at, &wall) } else { odd.record(at, &wall) }
        }
        let mut merged = even.rates();
        merged.offered_per_second = Some(140.0);
        merged.add(&odd.rates());
        let mut expected = whole.rates();
        expected.offered_per_second = Some(140.0);
        assert_eq!(merged, expected);
        assert!(merged.achieved_per_second > 1.9 * even.rates().achieved_per_second, "{merged:?}");
    }

    #[test]
    fn tenths_add_across_gaps_and_the_peak_slides() {
        let mut a = AssignmentTenths { first_tenth: 100, counts: vec![1, 2] };
        a.add(&AssignmentTenths { first_tenth: 95, counts: vec![4, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 5] });
        assert_eq!(a.first_tenth, 95);
        assert_eq!(a.counts, [4, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(a.peak(10), 12, "tenths 99..=108: 4 + 3 + 5");
        assert_eq!(a.peak(1), 5);
        a.add(&AssignmentTenths::default());
        assert_eq!(a.total(), 16);
    }
}
