//! The serialisable figures of a run: the measured part of `summary.json`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::counts::add_counts;

use super::Phase;

/// The measured part of `summary.json` (the runner adds run metadata around it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub devices: DeviceCounts,
    pub flows_per_second: f64,
    /// Keyed by [`Phase::as_str`]; a string map so the keys stay sorted by name in the file.
    pub phases: BTreeMap<String, PhaseStats>,
    pub register_attempts: CountStats,
    pub polls_per_device: CountStats,
    /// Failed devices by failure kind label.
    pub failures: BTreeMap<String, u64>,
    /// By failure kind label: a one-line reason and the first examples.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failure_reasons: BTreeMap<String, crate::device::FailureReason>,
    /// The offered, achieved (first to last assignment) and peak one-second rates (absent from
    /// summaries written before they were measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<super::rates::Rates>,
    /// Replies received by status code.
    pub statuses: BTreeMap<String, u64>,
    /// `retry-after` values received (seconds) and how often.
    pub retry_after_seconds: BTreeMap<String, u64>,
    /// Assigned devices by hub.
    pub hubs: BTreeMap<String, u64>,
    /// Connections and errors per source address (when a pool is configured).
    pub source_addresses: BTreeMap<String, SourceCounts>,
    /// Devices by SDK personality.
    pub personalities: BTreeMap<String, PersonalityCounts>,
    /// Custom allocation payloads that came back in `registrationState.payload`.
    pub payloads: PayloadCounts,
    /// Operational certificates asked for at registration (absent when no device asked).
    #[serde(default, skip_serializing_if = "super::CertificateCounts::is_empty")]
    pub certificates: super::CertificateCounts,
    pub stray_replies: u64,
    /// Requests sent before the previous reply's `retry-after` had passed (see the profile).
    pub early_requests: u64,
    /// Devices that started more than 2 ms after their intended instant.
    pub late_starts: u64,
}

impl Summary {
    /// The statistics of one phase.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseStats> {
        self.phases.get(phase.as_str())
    }

    /// Adds another part of the same plan (a shard's results): every count added, reasons and
    /// examples united, the per-device distributions rebuilt from their added buckets, the rates
    /// recomputed from their added data. Phase percentiles cannot be added from percentiles:
    /// [`Summary::set_phases`] sets them from the added histograms.
    ///
    /// Every field is named here, so a field added to `Summary` does not compile until its merge
    /// is decided.
    pub fn add(&mut self, other: &Summary) {
        let Summary {
            devices,
            flows_per_second: _,
            phases: _,
            register_attempts,
            polls_per_device,
            failures,
            failure_reasons,
            rates,
            statuses,
            retry_after_seconds,
            hubs,
            source_addresses,
            personalities,
            payloads,
            certificates,
            stray_replies,
            early_requests,
            late_starts,
        } = other;
        self.devices.add(devices);
        self.register_attempts.add(register_attempts);
        self.polls_per_device.add(polls_per_device);
        for (mine, theirs) in [
            (&mut self.failures, failures),
            (&mut self.statuses, statuses),
            (&mut self.retry_after_seconds, retry_after_seconds),
            (&mut self.hubs, hubs),
        ] {
            add_counts(mine, theirs);
        }
        add_reasons(&mut self.failure_reasons, failure_reasons);
        // Rates are recomputed from both parts' data, or unknown: never one part's copy.
        self.rates = match (&self.rates, rates) {
            (Some(mine), Some(theirs)) => mine.added(theirs),
            _ => None,
        };
        self.flows_per_second = self.rates.as_ref().map_or(0.0, |r| r.achieved_per_second);
        for (address, counts) in source_addresses {
            self.source_addresses.entry(address.clone()).or_default().add(counts);
        }
        for (name, counts) in personalities {
            self.personalities.entry(name.clone()).or_default().add(counts);
        }
        self.payloads.returned += payloads.returned;
        self.payloads.matching += payloads.matching;
        self.certificates.add(certificates);
        self.stray_replies += stray_replies;
        self.early_requests += early_requests;
        self.late_starts += late_starts;
    }

    /// Sets every phase's statistics from its whole-run histogram.
    pub fn set_phases(&mut self, histograms: &super::PhaseHistograms) {
        self.phases = histograms.iter().map(|(p, h)| (p.as_str().to_string(), PhaseStats::of(h))).collect();
    }

    /// Replies 429 received (throttled requests).
    pub fn throttled(&self) -> u64 {
        self.statuses.get(&super::THROTTLED.to_string()).copied().unwrap_or(0)
    }
}

/// Adds `theirs` reasons into `mine`, kind by kind.
pub(super) fn add_reasons(
    mine: &mut BTreeMap<String, crate::device::FailureReason>,
    theirs: &BTreeMap<String, crate::device::FailureReason>,
) {
    for (label, reason) in theirs {
        mine.entry(label.clone()).or_default().add(reason);
    }
}

/// Device counts of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCounts {
    pub total: u64,
    pub assigned: u64,
    pub failed: u64,
    /// Devices stopped by the end of the run (interrupt, drain deadline, max duration), with
    /// the phases they completed recorded.
    pub aborted: u64,
    /// Started devices that never reported at all.
    pub not_finished: u64,
    /// Planned devices that never started (a run stopped early, or starts held back by the
    /// in-flight cap until the end): planned = `total` + `not_started`.
    #[serde(default)]
    pub not_started: u64,
}

impl DeviceCounts {
    /// Adds another part's counts (each shard counts only its own devices).
    pub fn add(&mut self, other: &DeviceCounts) {
        let DeviceCounts { total, assigned, failed, aborted, not_finished, not_started } = other;
        self.total += total;
        self.assigned += assigned;
        self.failed += failed;
        self.aborted += aborted;
        self.not_finished += not_finished;
        self.not_started += not_started;
    }
}

/// Latency percentiles of one phase, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl PhaseStats {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self { count: 0, min_us: 0, mean_us: 0, p50_us: 0, p90_us: 0, p99_us: 0, p999_us: 0, max_us: 0 };
        }
        Self {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean().round() as u64,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Devices of one SDK personality.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalityCounts {
    pub devices: u64,
    pub assigned: u64,
    pub failed: u64,
}

impl PersonalityCounts {
    pub fn add(&mut self, other: &PersonalityCounts) {
        self.devices += other.devices;
        self.assigned += other.assigned;
        self.failed += other.failed;
    }
}

/// Custom allocation payloads returned with the assignment, and how many equal what was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadCounts {
    pub returned: u64,
    pub matching: u64,
}

/// What happened on one source address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCounts {
    pub connections: u64,
    pub assigned: u64,
    pub failed: u64,
    /// TCP connect failures (refused, unreachable, port exhaustion, timeout).
    pub connect_errors: u64,
}

impl SourceCounts {
    pub fn add(&mut self, other: &SourceCounts) {
        self.connections += other.connections;
        self.assigned += other.assigned;
        self.failed += other.failed;
        self.connect_errors += other.connect_errors;
    }
}

/// Distribution of a per-device count (register attempts, polls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountStats {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    /// Devices by count (e.g. `{"1": 950, "2": 50}`), for the distribution chart. Counts up to
    /// 2,047 are exact; above, they share buckets 0.1% wide. Absent from summaries before it.
    /// String keys: JSON's, and integer keys do not survive `RunSummary`'s flattening.
    #[serde(default)]
    pub devices_by_count: BTreeMap<String, u64>,
}

impl CountStats {
    /// Adds another part's distribution: rebuilt from both parts' buckets (exact up to 2,047).
    pub fn add(&mut self, other: &CountStats) {
        let mut added = Histogram::<u64>::new(3).expect("3 significant digits are valid");
        for stats in [&*self, other] {
            for (value, devices) in &stats.devices_by_count {
                if let Ok(value) = value.parse::<u64>() {
                    added.saturating_record_n(value, *devices);
                }
            }
        }
        *self = CountStats::of(&added);
    }

    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self { mean: 0.0, p50: 0, p99: 0, max: 0, devices_by_count: BTreeMap::new() };
        }
        Self {
            mean: (h.mean() * 100.0).round() / 100.0,
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
            devices_by_count: h
                .iter_recorded()
                .map(|v| (h.highest_equivalent(v.value_iterated_to()).to_string(), v.count_at_value()))
                .collect(),
        }
    }
}
