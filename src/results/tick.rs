//! What a run hands out each second, for live output and the files that grow as it goes.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{DeviceRecord, IntervalStats, LiveBuckets, PhaseHistograms};

/// A progress snapshot, for live output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub started: u64,
    pub assigned: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub late_starts: u64,
    /// 429 replies so far (received by devices that finished).
    pub throttled: u64,
    /// `assigned` p99 over the whole run so far.
    pub assigned_p99_us: u64,
    /// What happened since the previous tick.
    pub interval: IntervalStats,
}

/// A snapshot each second: progress plus failures by kind so far.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    pub progress: Progress,
    /// Every phase's latencies recorded since the previous tick (for `latency.hlog`).
    pub latencies: PhaseHistograms,
    /// Devices that finished since the previous tick (for `devices.csv`; empty unless the run's
    /// options ask for `device_records`).
    pub finished: Vec<DeviceRecord>,
    pub failures: BTreeMap<String, u64>,
    /// By failure kind label: its reason and first examples, so far.
    pub failure_reasons: BTreeMap<String, crate::device::FailureReason>,
    /// Every phase's latencies so far, in coarse buckets (for live metrics).
    pub phases: Vec<LiveBuckets>,
    /// Set once when the run begins draining after an interrupt.
    pub draining: bool,
}
