//! Run metrics: HDR histograms per phase plus counters, folded from finished flows, and the
//! serialisable [`Summary`] they produce.
//!
//! Sans-IO: no clock, no files. Latencies are microseconds with 3 significant digits up to one
//! hour. `assigned` and `end_to_end` are measured from the device's **intended** start (so a
//! stalled generator cannot hide latency); `assigned_raw` from its actual start, side by side.
//! Collectors merge exactly ([`Metrics::merge`]), so per-worker collectors can be combined.
//! [`Phase`] (in `phase`) names the measured phases; `summary` holds the serialisable figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::device::{FailureKind, FlowReport, Outcome, Step};

mod phase;
mod summary;

pub use phase::Phase;
pub use summary::{CountStats, DeviceCounts, PayloadCounts, PersonalityCounts, PhaseStats, SourceCounts, Summary};

/// Highest latency tracked: one hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// A start later than this behind its intended instant counts as late. Tokio's timer has 1 ms
/// resolution, so every start may lag up to about 1 ms without the plan being missed.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("bounds 1..1h with 3 digits are valid")
}

/// Folded results of many flows.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// One histogram per phase, indexed by [`Phase`].
    phases: [Histogram<u64>; Phase::ALL.len()],
    register_attempts: Histogram<u64>,
    polls_per_device: Histogram<u64>,
    failures: BTreeMap<String, u64>,
    statuses: BTreeMap<u16, u64>,
    retry_after_seconds: BTreeMap<u32, u64>,
    hubs: BTreeMap<String, u64>,
    sources: BTreeMap<String, SourceCounts>,
    personalities: BTreeMap<&'static str, PersonalityCounts>,
    payloads: PayloadCounts,
    assigned: u64,
    failed: u64,
    aborted: u64,
    stray_replies: u64,
    early_requests: u64,
    late_starts: u64,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
    /// Since the last [`Metrics::take_interval`].
    interval: Interval,
}

/// What happened in one interval (a second of the time series).
#[derive(Debug, Clone)]
struct Interval {
    assigned_latency: Histogram<u64>,
    assigned: u64,
    failed: u64,
}

impl Interval {
    fn new() -> Self {
        Self { assigned_latency: histogram(), assigned: 0, failed: 0 }
    }
}

/// One interval's figures, for the time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalStats {
    pub assigned: u64,
    pub failed: u64,
    /// Percentiles of `assigned` (from intended start) among devices assigned in the interval.
    pub assigned_p50_us: u64,
    pub assigned_p99_us: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            phases: Phase::ALL.map(|_| histogram()),
            register_attempts: Histogram::new(3).expect("3 significant digits are valid"),
            polls_per_device: Histogram::new(3).expect("3 significant digits are valid"),
            failures: BTreeMap::new(),
            statuses: BTreeMap::new(),
            retry_after_seconds: BTreeMap::new(),
            hubs: BTreeMap::new(),
            sources: BTreeMap::new(),
            personalities: BTreeMap::new(),
            payloads: PayloadCounts::default(),
            assigned: 0,
            failed: 0,
            aborted: 0,
            stray_replies: 0,
            early_requests: 0,
            late_starts: 0,
            first_start: None,
            last_end: None,
            interval: Interval::new(),
        }
    }

    /// The figures since the previous call, and a fresh interval.
    pub fn take_interval(&mut self) -> IntervalStats {
        let interval = std::mem::replace(&mut self.interval, Interval::new());
        let h = &interval.assigned_latency;
        let quantile = |q| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        IntervalStats {
            assigned: interval.assigned,
            failed: interval.failed,
            assigned_p50_us: quantile(0.5),
            assigned_p99_us: quantile(0.99),
        }
    }

    /// Failed devices so far, by failure kind.
    pub fn failures(&self) -> &BTreeMap<String, u64> {
        &self.failures
    }

    pub fn late_starts(&self) -> u64 {
        self.late_starts
    }

    fn phase(&mut self, phase: Phase, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_MICROS);
        self.phases[phase.index()].saturating_record(micros);
    }

    /// Folds one finished flow in (whatever observed it: passive checks are tallied apart).
    pub fn record<O>(&mut self, report: &FlowReport<O>) {
        let t = &report.timings;
        let between = |from: Option<Instant>, to: Option<Instant>| Some(to?.saturating_duration_since(from?));
        let measured = [
            (Phase::ScheduleLag, Some(t.start.saturating_duration_since(t.intended_start))),
            (Phase::TcpConnect, between(Some(t.start), t.tcp_connected)),
            (Phase::TlsHandshake, between(t.tcp_connected, t.tls_done)),
            (Phase::WebSocketUpgrade, between(t.tls_done, t.ws_upgraded)),
            (Phase::Connack, between(t.connect_sent, t.connack)),
            (Phase::Suback, between(t.subscribe_sent, t.suback)),
            (Phase::RegisterAccepted, between(t.register_sent, t.register_accepted)),
            (Phase::Assigned, between(Some(t.intended_start), t.assigned)),
            (Phase::AssignedRaw, between(Some(t.start), t.assigned)),
            (Phase::EndToEnd, between(Some(t.intended_start), t.end)),
        ];
        for (phase, duration) in measured {
            if let Some(duration) = duration {
                self.phase(phase, duration);
            }
        }
        for poll in &t.polls {
            self.phase(Phase::Poll, *poll);
        }
        self.register_attempts.saturating_record(report.register_attempts.into());
        self.polls_per_device.saturating_record(report.polls.into());
        for status in &report.statuses {
            *self.statuses.entry(*status).or_default() += 1;
        }
        for seconds in &report.retry_after_seconds {
            *self.retry_after_seconds.entry(*seconds).or_default() += 1;
        }
        self.stray_replies += u64::from(report.stray_replies);
        if let Some(source) = report.source_address {
            let counts = self.sources.entry(source.to_string()).or_default();
            counts.connections += 1;
            match &report.outcome {
                Outcome::Assigned { .. } => counts.assigned += 1,
                Outcome::Failed(FailureKind::Connect | FailureKind::Timeout(Step::TcpConnect)) => {
                    counts.connect_errors += 1;
                    counts.failed += 1;
                }
                Outcome::Failed(FailureKind::Aborted) => {}
                Outcome::Failed(_) => counts.failed += 1,
            }
        }
        self.early_requests += u64::from(report.early_requests);
        let personality = self.personalities.entry(report.personality.name()).or_default();
        personality.devices += 1;
        match &report.outcome {
            Outcome::Assigned { .. } => personality.assigned += 1,
            Outcome::Failed(FailureKind::Aborted) => {}
            Outcome::Failed(_) => personality.failed += 1,
        }
        if let Some(matching) = report.payload_returned {
            self.payloads.returned += 1;
            self.payloads.matching += u64::from(matching);
        }
        if t.start.saturating_duration_since(t.intended_start) > LATE_AFTER {
            self.late_starts += 1;
        }
        match &report.outcome {
            Outcome::Assigned { hub, .. } => {
                self.assigned += 1;
                self.interval.assigned += 1;
                if let Some(assigned) = t.assigned {
                    let micros = u64::try_from((assigned - t.intended_start).as_micros()).unwrap_or(MAX_MICROS);
                    self.interval.assigned_latency.saturating_record(micros.clamp(1, MAX_MICROS));
                }
                *self.hubs.entry(hub.clone()).or_default() += 1;
            }
            Outcome::Failed(FailureKind::Aborted) => self.aborted += 1,
            Outcome::Failed(kind) => {
                self.failed += 1;
                self.interval.failed += 1;
                *self.failures.entry(kind.label()).or_default() += 1;
            }
        }
        self.first_start = self.first_start.min(Some(t.start)).or(Some(t.start));
        let end = t.end.unwrap_or(t.start);
        self.last_end = self.last_end.max(Some(end));
    }

    /// Adds another collector's results; histograms merge exactly.
    pub fn merge(&mut self, other: &Metrics) {
        for (mine, theirs) in self.phases.iter_mut().zip(&other.phases) {
            mine.add(theirs).expect("same bounds");
        }
        self.register_attempts.add(&other.register_attempts).expect("auto-resizing histograms accept any value");
        self.polls_per_device.add(&other.polls_per_device).expect("auto-resizing histograms accept any value");
        let sum = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
            for (key, count) in from {
                *into.entry(key.clone()).or_default() += count;
            }
        };
        sum(&mut self.failures, &other.failures);
        sum(&mut self.hubs, &other.hubs);
        for (name, counts) in &other.personalities {
            self.personalities.entry(name).or_default().add(counts);
        }
        self.payloads.returned += other.payloads.returned;
        self.payloads.matching += other.payloads.matching;
        for (source, counts) in &other.sources {
            self.sources.entry(source.clone()).or_default().add(counts);
        }
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        for (seconds, count) in &other.retry_after_seconds {
            *self.retry_after_seconds.entry(*seconds).or_default() += count;
        }
        self.assigned += other.assigned;
        self.failed += other.failed;
        self.aborted += other.aborted;
        self.stray_replies += other.stray_replies;
        self.early_requests += other.early_requests;
        self.late_starts += other.late_starts;
        self.interval.assigned += other.interval.assigned;
        self.interval.failed += other.interval.failed;
        self.interval.assigned_latency.add(&other.interval.assigned_latency).expect("same bounds");
        self.first_start = [self.first_start, other.first_start].into_iter().flatten().min();
        self.last_end = self.last_end.max(other.last_end);
    }

    pub fn assigned(&self) -> u64 {
        self.assigned
    }

    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Flows that reported (assigned, failed or aborted).
    pub fn finished(&self) -> u64 {
        self.assigned + self.failed + self.aborted
    }

    /// Assigned devices per second, from the first start to the last end.
    pub fn flows_per_second(&self) -> f64 {
        match (self.first_start, self.last_end) {
            (Some(first), Some(last)) if last > first => self.assigned as f64 / (last - first).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// p99 of a phase so far, in microseconds (0 when empty).
    pub fn p99_us(&self, phase: Phase) -> u64 {
        let h = &self.phases[phase.index()];
        if h.is_empty() { 0 } else { h.value_at_quantile(0.99) }
    }

    /// The summary of everything recorded. `total` counts devices planned, including any that
    /// never finished.
    pub fn summary(&self, total: u64) -> Summary {
        Summary {
            devices: DeviceCounts {
                total,
                assigned: self.assigned,
                failed: self.failed,
                aborted: self.aborted,
                not_finished: total.saturating_sub(self.finished()),
                not_started: 0,
            },
            flows_per_second: (self.flows_per_second() * 10.0).round() / 10.0,
            phases: Phase::ALL
                .iter()
                .map(|p| (p.as_str().to_string(), PhaseStats::of(&self.phases[p.index()])))
                .collect(),
            register_attempts: CountStats::of(&self.register_attempts),
            polls_per_device: CountStats::of(&self.polls_per_device),
            failures: self.failures.clone(),
            statuses: self.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            retry_after_seconds: self.retry_after_seconds.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            hubs: self.hubs.clone(),
            source_addresses: self.sources.clone(),
            personalities: self.personalities.iter().map(|(name, c)| (name.to_string(), *c)).collect(),
            payloads: self.payloads,
            stray_replies: self.stray_replies,
            early_requests: self.early_requests,
            late_starts: self.late_starts,
        }
    }
}

#[cfg(test)]
mod tests;
