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
