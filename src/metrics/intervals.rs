//! The intervals of a run's time series: interval k is `[origin + k s, origin + (k + 1) s)`,
//! where the origin is the plan's start instant (`--start-at`, which every shard of a plan
//! shares), so the shards' interval k is one span of the wall clock and a merge adds like with
//! like. An event counts in the interval its instant falls in; one whose interval was already
//! handed out (a device that reported after the row was written) counts in the first interval
//! still open, so nothing is lost and the intervals add up to the run's totals.
//!
//! Sans-IO: instants in, counts out; the caller reads the clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Phase, PhaseHistograms};

/// The width of an interval: one row of `timeseries.csv`, one interval of `latency.hlog`.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Where a run's intervals start: instants to interval indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalClock {
    origin: Instant,
}

impl IntervalClock {
    /// Intervals counted from `origin` (the plan's start instant).
    pub fn new(origin: Instant) -> Self {
        Self { origin }
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The interval `at` falls in; an instant before the origin counts in the first.
    pub fn index(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        since.as_secs() / INTERVAL.as_secs()
    }

    /// The instant interval `index` ends (the next one starts).
    pub fn end(&self, index: u64) -> Instant {
        self.origin + INTERVAL * u32::try_from(index + 1).unwrap_or(u32::MAX)
    }
}

/// The span of one interval a tick closes, measured from the origin, and the origin on the wall
/// clock (what `latency.hlog`'s `BaseTime` and `timeseries.csv`'s `elapsed_s` count from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntervalSpan {
    /// k: the interval is `[origin + k s, origin + (k + 1) s)`.
    pub index: u64,
    /// Where the interval starts, since the origin (k s).
    pub start: Duration,
    /// Where it ends, since the origin: (k + 1) s, or the run's end for the last interval.
    pub end: Duration,
    /// The origin, microseconds since the Unix epoch.
    pub origin_unix_us: u64,
}

/// Values binned by interval index, each handed out once, in order (see the module header).
#[derive(Debug, Clone)]
pub struct Binned<T> {
    /// The first interval not yet handed out.
    open_from: u64,
    bins: BTreeMap<u64, T>,
}

impl<T: Default> Default for Binned<T> {
    fn default() -> Self {
        Self { open_from: 0, bins: BTreeMap::new() }
    }
}

impl<T: Default> Binned<T> {
    /// The bin of interval `index`, or of the first open one when `index` was handed out.
    pub fn at(&mut self, index: u64) -> &mut T {
        self.bins.entry(index.max(self.open_from)).or_default()
    }

    /// Hands out interval `index` with every earlier interval not handed out yet added in by
    /// `add` (`None` when nothing fell in any): from then on their events count in the next.
    pub fn take(&mut self, index: u64, add: impl Fn(&mut T, T)) -> Option<T> {
        let later = self.bins.split_off(&(index + 1));
        let earlier = std::mem::replace(&mut self.bins, later);
        self.open_from = self.open_from.max(index + 1);
        let mut values = earlier.into_values();
        let mut taken = values.next()?;
        for value in values {
            add(&mut taken, value);
        }
        Some(taken)
    }

    /// Hands out every interval not yet handed out, added up (see [`Binned::take`]).
    pub fn take_all(&mut self, add: impl Fn(&mut T, T)) -> Option<T> {
        let last = *self.bins.last_key_value()?.0;
        self.take(last, add)
    }

    /// The bin of interval `index` as [`Binned::at`] places it, made by `make` when new.
    pub fn at_with(&mut self, index: u64, make: impl FnOnce() -> T) -> &mut T {
        self.bins.entry(index.max(self.open_from)).or_insert_with(make)
    }

    /// The first interval not yet handed out.
    pub fn open_from(&self) -> u64 {
        self.open_from
    }

    /// Every bin not yet handed out, by index.
    pub fn pending(&self) -> impl Iterator<Item = (&u64, &T)> {
        self.bins.iter()
    }
}

/// What the collector of finished flows places in one interval: each figure at the instant of
/// its event (an assignment, a failure, a phase's end), whenever the device reported it.
#[derive(Debug, Clone, Default)]
pub(super) struct Interval {
    pub(super) latencies: PhaseHistograms,
    pub(super) assigned: u64,
    pub(super) failed: u64,
    pub(super) aborted: u64,
    pub(super) late_starts: u64,
    /// Failed devices by kind.
    pub(super) failures: BTreeMap<String, u64>,
}

impl Interval {
    /// An empty interval recording into `latencies` (emptied first when they are not).
    pub(super) fn with(mut latencies: PhaseHistograms) -> Self {
        if !latencies.is_empty() {
            latencies.clear();
        }
        Self { latencies, assigned: 0, failed: 0, aborted: 0, late_starts: 0, failures: BTreeMap::new() }
    }

    /// Adds `other`'s figures. Every field is named, so a field added later does not compile
    /// until its merge is decided.
    pub(super) fn add(&mut self, other: &Interval) {
        let Interval { latencies, assigned, failed, aborted, late_starts, failures } = other;
        self.latencies.add_all(latencies);
        self.assigned += assigned;
        self.failed += failed;
        self.aborted += aborted;
        self.late_starts += late_starts;
        super::add_counts(&mut self.failures, failures);
    }

    /// The interval's figures; the flow events (starts, 429s) are the runner's to add.
    pub(super) fn taken(self) -> IntervalTaken {
        let h = self.latencies.get(Phase::Assigned);
        let quantile = |q| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        let stats = IntervalStats {
            assigned: self.assigned,
            failed: self.failed,
            aborted: self.aborted,
            late_starts: self.late_starts,
            assigned_p50_us: quantile(0.5),
            assigned_p99_us: quantile(0.99),
            ..IntervalStats::default()
        };
        IntervalTaken { stats, latencies: self.latencies, failures: self.failures }
    }
}

/// What [`Metrics::take_interval_at`](super::Metrics::take_interval_at) hands over: the
/// interval's figures, its latencies and its failures by kind.
#[derive(Debug, Clone, Default)]
pub struct IntervalTaken {
    pub stats: IntervalStats,
    /// Every phase's values recorded in the interval.
    pub latencies: PhaseHistograms,
    /// Devices that failed in the interval, by kind.
    pub failures: BTreeMap<String, u64>,
}

/// One interval's figures, for the time series: every one counts the events whose instant fell
/// in the interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntervalStats {
    /// Devices whose start was due in the interval (the intended start) and that started.
    pub started: u64,
    pub assigned: u64,
    pub failed: u64,
    /// Devices stopped by the run's end before their own.
    pub aborted: u64,
    /// Devices that started late (by their actual start).
    pub late_starts: u64,
    /// 429 replies received in the interval (as they arrived, not when their device finished).
    pub throttled: u64,
    /// Percentiles of `assigned` (from intended start) among devices assigned in the interval.
    pub assigned_p50_us: u64,
    pub assigned_p99_us: u64,
}

/// What happens during a device's flow and is counted as it happens (by the runner, from the
/// device's observations), not when the device finishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowEvents {
    /// Devices started, by their intended start.
    pub started: u64,
    /// 429 replies received.
    pub throttled: u64,
}

impl FlowEvents {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: FlowEvents) {
        let FlowEvents { started, throttled } = other;
        self.started += started;
        self.throttled += throttled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_fall_in_the_interval_of_their_second_from_the_origin() {
        let origin = Instant::now();
        let clock = IntervalClock::new(origin);
        let ms = |n: u64| origin + Duration::from_millis(n);
        assert_eq!(clock.index(origin), 0);
        assert_eq!(clock.index(ms(999)), 0);
        assert_eq!(clock.index(ms(1000)), 1);
        assert_eq!(clock.index(ms(59_999)), 59);
        assert_eq!(clock.end(0), ms(1000));
        assert_eq!(clock.index(clock.end(6)), 7, "an interval's end is the next one's start");
        if let Some(before) = origin.checked_sub(Duration::from_millis(3)) {
            assert_eq!(clock.index(before), 0, "before the origin: the first interval");
        }
    }

    #[test]
    fn a_bin_handed_out_takes_no_more_and_nothing_is_lost() {
        let add = |mine: &mut u64, theirs: u64| *mine += theirs;
        let mut binned: Binned<u64> = Binned::default();
        *binned.at(0) += 2;
        *binned.at(2) += 5;
        assert_eq!(binned.take(0, add), Some(2));
        assert_eq!(binned.take(1, add), None, "nothing fell in interval 1");
        // Interval 1 is out: a late event of it counts in the first open one, 2.
        *binned.at(1) += 1;
        assert_eq!(binned.pending().collect::<Vec<_>>(), [(&2, &6)]);
        *binned.at(4) += 3;
        assert_eq!(binned.take(2, add), Some(6));
        assert_eq!(binned.open_from(), 3);
        *binned.at(6) += 1;
        assert_eq!(binned.take_all(add), Some(4), "the rest, added up");
        assert_eq!(binned.take_all(add), None);
        assert_eq!(binned.open_from(), 7);
    }
}
