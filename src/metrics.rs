//! Run metrics: HDR histograms per phase plus counters, folded from finished flows, and the
//! serialisable [`Summary`] they produce.
//!
//! Sans-IO: no clock, no files. Latencies are microseconds with 3 significant digits up to one
//! hour. `assigned` and `end_to_end` are measured from the device's **intended** start (so a
//! stalled generator cannot hide latency); `assigned_raw` from its actual start, side by side.
//! Collectors merge exactly ([`Metrics::merge`]), so per-worker collectors can be combined.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::device::{FailureKind, FlowReport, Outcome, Step};

/// Highest latency tracked: one hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// A start later than this behind its intended instant counts as late. Tokio's timer has 1 ms
/// resolution, so every start may lag up to about 1 ms without the plan being missed.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// A measured phase of a flow: the single source of phase names (summary keys, report rows).
/// Its `as_str` and serde names are the keys of `summary.json`'s `phases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// How late the device started after its intended instant.
    ScheduleLag,
    TcpConnect,
    TlsHandshake,
    #[serde(rename = "ws_upgrade")]
    WebSocketUpgrade,
    /// CONNECT sent to CONNACK.
    Connack,
    /// SUBSCRIBE sent to SUBACK.
    Suback,
    /// First register sent to its 202.
    RegisterAccepted,
    /// Round trip of each poll.
    Poll,
    /// Intended start to assignment.
    Assigned,
    /// Actual start to assignment.
    AssignedRaw,
    /// Intended start to the flow's end.
    EndToEnd,
}

impl Phase {
    /// Every phase, in the order a flow goes through them.
    pub const ALL: [Phase; 11] = [
        Phase::ScheduleLag,
        Phase::TcpConnect,
        Phase::TlsHandshake,
        Phase::WebSocketUpgrade,
        Phase::Connack,
        Phase::Suback,
        Phase::RegisterAccepted,
        Phase::Poll,
        Phase::Assigned,
        Phase::AssignedRaw,
        Phase::EndToEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::ScheduleLag => "schedule_lag",
            Phase::TcpConnect => "tcp_connect",
            Phase::TlsHandshake => "tls_handshake",
            Phase::WebSocketUpgrade => "ws_upgrade",
            Phase::Connack => "connack",
            Phase::Suback => "suback",
            Phase::RegisterAccepted => "register_accepted",
            Phase::Poll => "poll",
            Phase::Assigned => "assigned",
            Phase::AssignedRaw => "assigned_raw",
            Phase::EndToEnd => "end_to_end",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

impl Summary {
    /// The statistics of one phase.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseStats> {
        self.phases.get(phase.as_str())
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
    fn of(h: &Histogram<u64>) -> Self {
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
    fn add(&mut self, other: &PersonalityCounts) {
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
    fn add(&mut self, other: &SourceCounts) {
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
}

impl CountStats {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self { mean: 0.0, p50: 0, p99: 0, max: 0 };
        }
        Self {
            mean: (h.mean() * 100.0).round() / 100.0,
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

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
    pub stray_replies: u64,
    /// Requests sent before the previous reply's `retry-after` had passed (see the profile).
    pub early_requests: u64,
    /// Devices that started more than 2 ms after their intended instant.
    pub late_starts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Timings;

    fn report(start: Instant, assigned_after_ms: Option<u64>) -> FlowReport {
        let mut timings = Timings::new(start, start + Duration::from_millis(2));
        timings.tcp_connected = Some(start + Duration::from_millis(3));
        let outcome = match assigned_after_ms {
            Some(ms) => {
                timings.assigned = Some(start + Duration::from_millis(ms));
                timings.end = timings.assigned;
                timings.polls = vec![Duration::from_millis(1), Duration::from_millis(4)];
                Outcome::Assigned { hub: "hub-a".into(), device_id: "d".into() }
            }
            None => {
                timings.end = Some(start + Duration::from_millis(10));
                Outcome::Failed(FailureKind::Timeout(Step::Connack))
            }
        };
        FlowReport {
            outcome,
            timings,
            register_attempts: 1,
            polls: 2,
            retry_after_seconds: vec![3],
            statuses: vec![202, 202, 200],
            stray_replies: 0,
            source_address: None,
            early_requests: 0,
            payload_returned: None,
            personality: Default::default(),
            observer: (),
        }
    }

    #[test]
    fn phase_names_are_the_summary_keys_and_all_is_in_flow_order() {
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "schedule_lag",
                "tcp_connect",
                "tls_handshake",
                "ws_upgrade",
                "connack",
                "suback",
                "register_accepted",
                "poll",
                "assigned",
                "assigned_raw",
                "end_to_end"
            ]
        );
        for (index, phase) in Phase::ALL.into_iter().enumerate() {
            assert_eq!(phase.index(), index);
            assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
            assert_eq!(serde_json::from_value::<Phase>(phase.as_str().into()).unwrap(), phase);
        }
        let keys: Vec<String> = Metrics::new().summary(0).phases.into_keys().collect();
        let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn records_phases_from_intended_and_actual_start() {
        let t0 = Instant::now();
        let mut metrics = Metrics::new();
        metrics.record(&report(t0, Some(100)));
        metrics.record(&report(t0, None));
        let summary = metrics.summary(3);
        assert_eq!(summary.devices, DeviceCounts { total: 3, assigned: 1, failed: 1, aborted: 0, not_finished: 1 });
        let assigned = &summary.phases["assigned"];
        let raw = &summary.phases["assigned_raw"];
        assert_eq!(assigned.count, 1);
        assert!((99_900..=100_100).contains(&assigned.max_us), "{assigned:?}");
        assert!((97_900..=98_100).contains(&raw.max_us), "2 ms late start: {raw:?}");
        assert_eq!(summary.phases["poll"].count, 2, "only the assigned flow polled");
        assert_eq!(summary.phases["schedule_lag"].count, 2);
        assert_eq!(summary.failures["timeout_connack"], 1);
        assert_eq!(summary.statuses["202"], 4);
        assert_eq!(summary.hubs["hub-a"], 1);
        assert_eq!(summary.late_starts, 0, "2 ms late is within the timer's resolution");
        let interval = metrics.take_interval();
        assert_eq!((interval.assigned, interval.failed), (1, 1));
        assert!((99_900..=100_100).contains(&interval.assigned_p99_us), "{interval:?}");
        assert_eq!(metrics.take_interval().assigned, 0, "a fresh interval after each take");
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let t0 = Instant::now();
        let reports: Vec<_> = (0..50).map(|i| report(t0, if i % 7 == 0 { None } else { Some(10 + i) })).collect();
        let mut one = Metrics::new();
        reports.iter().for_each(|r| one.record(r));
        let (mut a, mut b) = (Metrics::new(), Metrics::new());
        for (i, r) in reports.iter().enumerate() {
            if i % 2 == 0 { a.record(r) } else { b.record(r) }
        }
        a.merge(&b);
        assert_eq!(a.summary(50), one.summary(50));
    }
}
