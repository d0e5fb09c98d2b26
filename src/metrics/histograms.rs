//! One latency histogram per measured phase ([`PhaseHistograms`]): a run's whole-run
//! latencies, and each interval's (what `latency.hlog` holds). Plain data; no IO.

use hdrhistogram::Histogram;

use super::{Phase, histogram};

/// One latency histogram per [`Phase`]: what `latency.hlog` holds for one interval. Every value
/// recorded into a run's whole-run histograms is recorded into exactly one interval's too, so the
/// intervals of a run add up to its whole-run histograms exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseHistograms([Histogram<u64>; Phase::ALL.len()]);

impl PhaseHistograms {
    /// Empty histograms for every phase.
    pub fn new() -> Self {
        Self(Phase::ALL.map(|_| histogram()))
    }

    pub fn get(&self, phase: Phase) -> &Histogram<u64> {
        &self.0[phase.index()]
    }

    /// Every phase with its histogram, in [`Phase::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Phase, &Histogram<u64>)> {
        Phase::ALL.into_iter().zip(&self.0)
    }

    /// Adds `histogram` into `phase`'s. Fails when it holds a value above one hour, which no
    /// histogram of this crate does.
    pub fn add(&mut self, phase: Phase, histogram: &Histogram<u64>) -> Result<(), hdrhistogram::AdditionError> {
        self.0[phase.index()].add(histogram)
    }

    /// Adds every phase of `other` (histograms of the same bounds: exact).
    pub fn add_all(&mut self, other: &PhaseHistograms) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            mine.add(theirs).expect("histograms of the same bounds always add");
        }
    }

    /// Empties every phase, keeping the memory: a run's ticks pass two sets of these back and
    /// forth instead of allocating (and the kernel zeroing) about 2 MB a second.
    pub fn clear(&mut self) {
        for histogram in self.0.iter_mut().filter(|h| !h.is_empty()) {
            histogram.reset();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(Histogram::is_empty)
    }

    pub(super) fn record(&mut self, phase: Phase, micros: u64) {
        self.0[phase.index()].saturating_record(micros);
    }
}

impl Default for PhaseHistograms {
    fn default() -> Self {
        Self::new()
    }
}
