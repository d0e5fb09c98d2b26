//! What a run hands out each second, for live output and the files that grow as it goes.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{DeviceRecord, IntervalSpan, IntervalStats, LiveBuckets, PhaseHistograms};

/// A progress snapshot, for live output: the run through the interval a tick closes, every
/// figure counted at the instant of its event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Where the interval ends, since the plan's start instant.
    pub elapsed: Duration,
    pub started: u64,
    pub assigned: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub late_starts: u64,
    /// 429 replies so far (as they arrived).
    pub throttled: u64,
    /// `assigned` p99 over the whole run so far.
    pub assigned_p99_us: u64,
    /// What happened in the interval.
    pub interval: IntervalStats,
}

/// A snapshot each second, closing one interval of the time series: progress plus failures by
/// kind so far.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    pub progress: Progress,
    /// The interval this tick closes (its index and span from the plan's start instant).
    pub span: IntervalSpan,
    /// Every phase's latencies that ended in the interval (for `latency.hlog`).
    pub latencies: PhaseHistograms,
    /// Devices that finished since the previous tick (for `devices.csv`; empty unless the run's
    /// options ask for `device_records`).
    pub finished: Vec<DeviceRecord>,
    /// Failed devices by kind, through the interval.
    pub failures: BTreeMap<String, u64>,
    /// By failure kind label: its reason and first examples, so far.
    pub failure_reasons: BTreeMap<String, crate::device::FailureReason>,
    /// Every phase's latencies so far, in coarse buckets (for live metrics).
    pub phases: Vec<LiveBuckets>,
    /// Set once when the run begins draining after an interrupt.
    pub draining: bool,
}
