//! A run's latencies second by second, kept sparse: for each phase and each second of the run
//! (a `latency.hlog` interval's start, whole seconds since `BaseTime`), the values recorded with
//! their counts, each value its HDR bucket's highest equivalent, as HdrHistogram's readers report
//! recorded values. Adding a window's seconds gives exactly the histogram of those intervals
//! added up. What `report.html` draws its heatmaps from and embeds for window selection. Pure.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::hlog::LatencyLog;
use crate::metrics::{Phase, PhaseHistograms};

/// The counts of one second of one phase: value (microseconds, its bucket's highest
/// equivalent) to count.
pub type Counts = BTreeMap<u64, u64>;

/// Every phase's seconds, each second's counts added over the intervals that start in it
/// (one per shard in a merged log).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencyIntervals {
    phases: BTreeMap<Phase, BTreeMap<u64, Counts>>,
}

impl LatencyIntervals {
    /// Every interval of a `latency.hlog` read back.
    pub fn of_log(log: &LatencyLog) -> Self {
        let mut intervals = Self::default();
        for interval in &log.intervals {
            intervals.add(interval.phase, interval.start.as_secs(), &interval.histogram);
        }
        intervals
    }

    /// Adds the recorded values of `histogram` to `phase`'s second `second`.
    pub fn add(&mut self, phase: Phase, second: u64, histogram: &Histogram<u64>) {
        if histogram.is_empty() {
            return;
        }
        let counts = self.phases.entry(phase).or_default().entry(second).or_default();
        for step in histogram.iter_recorded() {
            *counts.entry(histogram.highest_equivalent(step.value_iterated_to())).or_default() += step.count_at_value();
        }
    }

    /// Adds every phase of one interval starting in `second`.
    pub fn add_all(&mut self, second: u64, latencies: &PhaseHistograms) {
        for (phase, histogram) in latencies.iter() {
            self.add(phase, second, histogram);
        }
    }

    /// `phase`'s seconds with their counts, in time order; empty when it recorded nothing.
    pub fn of_phase(&self, phase: Phase) -> Option<&BTreeMap<u64, Counts>> {
        self.phases.get(&phase)
    }

    /// The phases that recorded anything, in [`Phase`] order.
    pub fn phases(&self) -> impl Iterator<Item = (Phase, &BTreeMap<u64, Counts>)> {
        self.phases.iter().map(|(phase, seconds)| (*phase, seconds))
    }

    /// The run's seconds, first to last, over every phase; `None` when nothing was recorded.
    pub fn span(&self) -> Option<(u64, u64)> {
        let firsts = self.phases.values().filter_map(|s| s.keys().next().copied());
        let lasts = self.phases.values().filter_map(|s| s.keys().next_back().copied());
        Some((firsts.min()?, lasts.max()?))
    }
}

/// The value at `quantile` of `counts` by nearest rank (rank = ⌈quantile × n⌉, at least 1), the
/// definition `summary.json` uses; `None` when empty.
pub fn value_at_quantile(counts: &Counts, quantile: f64) -> Option<u64> {
    let total: u64 = counts.values().sum();
    let rank = ((quantile * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    counts
        .iter()
        .find(|(_, count)| {
            seen += **count;
            seen >= rank
        })
        .map(|(value, _)| *value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second's counts hold what its histogram holds: adding them back gives the same
    /// percentiles as the histogram, and two intervals of one second add up.
    #[test]
    fn a_seconds_counts_give_the_histograms_percentiles() {
        let mut histogram = crate::metrics::latency_histogram();
        for i in 1..=5_000u64 {
            histogram.record(i * i).expect("in range");
        }
        let mut intervals = LatencyIntervals::default();
        intervals.add(Phase::Assigned, 3, &histogram);
        intervals.add(Phase::Assigned, 3, &histogram);
        histogram.add(histogram.clone()).expect("same bounds");
        let counts = &intervals.of_phase(Phase::Assigned).expect("recorded")[&3];
        for quantile in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(value_at_quantile(counts, quantile), Some(histogram.value_at_quantile(quantile)), "{quantile}");
        }
        assert_eq!(counts.values().sum::<u64>(), histogram.len());
        assert_eq!(intervals.span(), Some((3, 3)));
        assert_eq!(intervals.of_phase(Phase::Poll), None);
    }
}
