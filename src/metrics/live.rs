//! The coarse latency buckets of live views (Prometheus).

use super::Phase;

/// Upper bounds of the coarse latency buckets of live views (Prometheus): 1 ms to 5 min, three
/// a decade.
pub const LIVE_BUCKETS_US: [u64; 18] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    300_000_000,
];

/// One phase's latencies folded into [`LIVE_BUCKETS_US`]: cumulative counts (values at or
/// below each bound), the count and the sum of everything recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBuckets {
    pub phase: Phase,
    /// One count per bound of [`LIVE_BUCKETS_US`], cumulative.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_us: u64,
}

/// Every phase's values counted into the coarse buckets as they are recorded, so a live view
/// reads them without walking a histogram (walking every phase's histogram once a second held a
/// worker for about a millisecond). Exact: each value counts in the first bucket whose bound it
/// does not exceed, and its sum is the sum of the values themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LiveCounts([PhaseCounts; Phase::ALL.len()]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PhaseCounts {
    /// Values at or below each bound and above the one before; the last slot holds those above
    /// every bound (Prometheus' `+Inf` only).
    per_bucket: [u64; LIVE_BUCKETS_US.len() + 1],
    count: u64,
    sum_us: u64,
}

impl LiveCounts {
    pub(super) fn new() -> Self {
        Self([PhaseCounts::default(); Phase::ALL.len()])
    }

    pub(super) fn record(&mut self, phase: Phase, micros: u64) {
        let counts = &mut self.0[phase.index()];
        counts.per_bucket[LIVE_BUCKETS_US.partition_point(|bound| *bound < micros)] += 1;
        counts.count += 1;
        counts.sum_us = counts.sum_us.saturating_add(micros);
    }

    pub(super) fn add(&mut self, other: &LiveCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            let PhaseCounts { per_bucket, count, sum_us } = theirs;
            for (bucket, added) in mine.per_bucket.iter_mut().zip(per_bucket) {
                *bucket += added;
            }
            mine.count += count;
            mine.sum_us = mine.sum_us.saturating_add(*sum_us);
        }
    }

    /// Every phase's buckets, cumulative as Prometheus reads them.
    pub(super) fn buckets(&self) -> Vec<LiveBuckets> {
        Phase::ALL
            .iter()
            .zip(&self.0)
            .map(|(phase, counts)| {
                let cumulative = counts.per_bucket[..LIVE_BUCKETS_US.len()]
                    .iter()
                    .scan(0u64, |sum, count| {
                        *sum += count;
                        Some(*sum)
                    })
                    .collect();
                LiveBuckets { phase: *phase, cumulative, count: counts.count, sum_us: counts.sum_us }
            })
            .collect()
    }
}
