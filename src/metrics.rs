//! Run metrics: HDR histograms per phase plus counters, folded from finished flows, and the
//! serialisable [`Summary`] they produce.
//!
//! Sans-IO: no clock, no files. Latencies are microseconds with 3 significant digits up to one
//! hour. `assigned` and `end_to_end` are measured from the device's **intended** start (so a
//! stalled generator cannot hide latency); `assigned_raw` from its actual start, side by side.
//! Collectors merge exactly ([`Metrics::merge`]), so per-worker collectors can be combined.
//! [`Phase`] (in `phase`) names the measured phases; `summary` holds the serialisable figures.
//! On a run's [`IntervalClock`] each figure of a finished flow also counts in the time series'
//! interval of its event (`intervals`), whenever the flow reported it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::device::{FailureKind, FlowReport, Outcome, Step, Timings};

mod certificates;
mod counts;
mod histograms;
mod intervals;
mod live;
mod phase;
mod rates;
mod reasons;
mod record;
mod summary;

pub use certificates::CertificateCounts;
pub use counts::add_counts;
pub use histograms::PhaseHistograms;
use intervals::Interval;
pub use intervals::{Binned, FlowEvents, INTERVAL, IntervalClock, IntervalSpan, IntervalStats, IntervalTaken};
pub use live::{LIVE_BUCKETS_US, LiveBuckets};
pub use phase::Phase;
pub use rates::{AssignmentTenths, Rates, WallClock};
pub use record::DeviceRecord;
pub use summary::{CountStats, DeviceCounts, PayloadCounts, PersonalityCounts, PhaseStats, SourceCounts, Summary};

/// Highest latency tracked: one hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// A start later than this behind its intended instant counts as late: a margin for the wake-up
/// of a worker that is busy with another device's handshake when the start falls due (the
/// arrival timer itself is a timerfd, with the kernel's precision).
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// What a run's arrival plan adds to the summary of its metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedStarts {
    /// Devices the plan had but never started (arrivals stopped early).
    pub not_started: u64,
    /// Whether starts followed an arrival schedule (an open model); a closed model has none, so
    /// no schedule lag either.
    pub scheduled: bool,
    /// Devices a second the plan offers (none for a closed model).
    pub offered_per_second: Option<f64>,
}

/// An empty latency histogram as every phase uses: microseconds, 1 µs to one hour, 3 significant
/// digits. Histograms read back from `latency.hlog` are added into these.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("bounds 1..1h with 3 digits are valid")
}

fn histogram() -> Histogram<u64> {
    latency_histogram()
}

/// The reply status of throttling.
pub const THROTTLED: u16 = 429;

/// Folded results of many flows.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// One histogram per phase over the whole run.
    phases: PhaseHistograms,
    register_attempts: Histogram<u64>,
    polls_per_device: Histogram<u64>,
    failures: BTreeMap<String, u64>,
    /// By failure kind label: its reason and first examples (see `reasons.rs`).
    failure_reasons: BTreeMap<String, crate::device::FailureReason>,
    statuses: BTreeMap<u16, u64>,
    retry_after_seconds: BTreeMap<u32, u64>,
    hubs: BTreeMap<String, u64>,
    sources: BTreeMap<String, SourceCounts>,
    personalities: BTreeMap<&'static str, PersonalityCounts>,
    payloads: PayloadCounts,
    certificates: CertificateCounts,
    assigned: u64,
    failed: u64,
    aborted: u64,
    stray_replies: u64,
    early_requests: u64,
    late_starts: u64,
    /// Assignments over time, for the achieved and peak rates.
    assignment_clock: rates::AssignmentClock,
    /// Every phase's values in the coarse buckets of live views.
    live: live::LiveCounts,
    /// By interval of the time series, those not handed out yet (see `intervals`).
    intervals: Binned<Interval>,
    /// Where the intervals start; without one, everything counts in the first open interval.
    clock: Option<IntervalClock>,
    /// Histograms of an interval handed back, for the next new interval to record into: a
    /// run's ticks then allocate nothing large (about 2 MB a second zeroed otherwise).
    spare: Option<PhaseHistograms>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            phases: PhaseHistograms::new(),
            register_attempts: Histogram::new(3).expect("3 significant digits are valid"),
            polls_per_device: Histogram::new(3).expect("3 significant digits are valid"),
            failures: BTreeMap::new(),
            failure_reasons: BTreeMap::new(),
            statuses: BTreeMap::new(),
            retry_after_seconds: BTreeMap::new(),
            hubs: BTreeMap::new(),
            sources: BTreeMap::new(),
            personalities: BTreeMap::new(),
            payloads: PayloadCounts::default(),
            certificates: CertificateCounts::default(),
            assigned: 0,
            failed: 0,
            aborted: 0,
            stray_replies: 0,
            early_requests: 0,
            late_starts: 0,
            assignment_clock: rates::AssignmentClock::default(),
            live: live::LiveCounts::new(),
            intervals: Binned::default(),
            clock: None,
            spare: None,
        }
    }

    /// Collects on a run's interval clock: each figure counts in the interval of its event.
    pub fn on_clock(mut self, clock: IntervalClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Every interval not handed out yet, added up (a collector without a clock: what was
    /// recorded since the previous call).
    pub fn take_interval(&mut self) -> IntervalTaken {
        self.take_interval_reusing(PhaseHistograms::new())
    }

    /// [`Metrics::take_interval`], the next new interval recording into `spare` (emptied
    /// first): the histograms of an interval taken earlier, handed back.
    pub fn take_interval_reusing(&mut self, spare: PhaseHistograms) -> IntervalTaken {
        self.spare.get_or_insert(spare);
        let taken = self.intervals.take_all(|mine, theirs| mine.add(&theirs));
        self.taken(taken)
    }

    /// Interval `index` of the clock, with any earlier one not handed out yet; from then on a
    /// figure of those counts in the next open interval. `spare` as for
    /// [`Metrics::take_interval_reusing`].
    pub fn take_interval_at(&mut self, index: u64, spare: PhaseHistograms) -> IntervalTaken {
        self.spare.get_or_insert(spare);
        let taken = self.intervals.take(index, |mine, theirs| mine.add(&theirs));
        self.taken(taken)
    }

    fn taken(&mut self, taken: Option<Interval>) -> IntervalTaken {
        let spare = &mut self.spare;
        taken.unwrap_or_else(|| Interval::with(spare.take().unwrap_or_default())).taken()
    }

    /// The open interval `at` falls in (the first open one without a clock or an instant).
    fn interval_at(&mut self, at: Option<Instant>) -> &mut Interval {
        let index = match (self.clock, at) {
            (Some(clock), Some(at)) => clock.index(at),
            _ => self.intervals.open_from(),
        };
        let spare = &mut self.spare;
        self.intervals.at_with(index, || Interval::with(spare.take().unwrap_or_default()))
    }

    /// The whole-run histograms of every phase.
    pub fn latencies(&self) -> &PhaseHistograms {
        &self.phases
    }

    /// 429 replies received so far by devices that finished (the whole-run total; the time
    /// series counts each as it arrived).
    pub fn throttled(&self) -> u64 {
        self.statuses.get(&THROTTLED).copied().unwrap_or(0)
    }

    /// Failed devices so far, by failure kind.
    pub fn failures(&self) -> &BTreeMap<String, u64> {
        &self.failures
    }

    pub fn late_starts(&self) -> u64 {
        self.late_starts
    }

    /// Records a phase's `duration`, in the interval of `ended` (the instant the phase ended).
    fn phase(&mut self, phase: Phase, duration: Duration, ended: Option<Instant>) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_MICROS);
        self.phases.record(phase, micros);
        self.interval_at(ended).latencies.record(phase, micros);
        self.live.record(phase, micros);
    }

    /// Folds one finished flow in (whatever observed it: passive checks are tallied apart);
    /// `wall` places its assignment on the wall clock, for the rates. On a clock, each figure
    /// counts in the interval of its event: a phase where it ended, a start where it started,
    /// the outcome where it came (polls, which carry no instant, with the outcome).
    pub fn record<O>(&mut self, report: &FlowReport<O>, wall: &WallClock) {
        let t = &report.timings;
        let outcome_at = match report.outcome {
            Outcome::Assigned { .. } => t.assigned.or(t.end),
            _ => t.end,
        };
        for ((phase, duration), ended) in single_phases(t).into_iter().zip(phase_ends(t)) {
            if let Some(duration) = duration {
                self.phase(phase, duration, ended);
            }
        }
        for poll in &t.polls {
            self.phase(Phase::Poll, *poll, outcome_at);
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
                Outcome::Failed(FailureKind::Aborted) | Outcome::Connected => {}
                Outcome::Failed(_) => counts.failed += 1,
            }
        }
        self.early_requests += u64::from(report.early_requests);
        let personality = self.personalities.entry(report.personality.name()).or_default();
        personality.devices += 1;
        match &report.outcome {
            Outcome::Assigned { .. } => personality.assigned += 1,
            Outcome::Failed(FailureKind::Aborted) | Outcome::Connected => {}
            Outcome::Failed(_) => personality.failed += 1,
        }
        if let Some(outcome) = report.certificate {
            self.certificates.record(outcome);
        }
        if let Some(matching) = report.payload_returned {
            self.payloads.returned += 1;
            self.payloads.matching += u64::from(matching);
        }
        if t.start.saturating_duration_since(t.intended_start) > LATE_AFTER {
            self.late_starts += 1;
            self.interval_at(Some(t.start)).late_starts += 1;
        }
        let interval = self.interval_at(outcome_at);
        match &report.outcome {
            Outcome::Assigned { .. } => interval.assigned += 1,
            Outcome::Failed(FailureKind::Aborted) | Outcome::Connected => interval.aborted += 1,
            Outcome::Failed(kind) => {
                interval.failed += 1;
                *interval.failures.entry(kind.label()).or_default() += 1;
            }
        }
        match &report.outcome {
            Outcome::Assigned { hub, .. } => {
                self.assigned += 1;
                *self.hubs.entry(hub.clone()).or_default() += 1;
            }
            // A connect-only flow (a preflight) is never part of a run's results; were one
            // recorded, it would count as stopped before its end.
            Outcome::Failed(FailureKind::Aborted) | Outcome::Connected => self.aborted += 1,
            Outcome::Failed(kind) => {
                self.failed += 1;
                *self.failures.entry(kind.label()).or_default() += 1;
            }
        }
        let assigned = t.assigned.filter(|_| matches!(report.outcome, Outcome::Assigned { .. }));
        self.assignment_clock.record(assigned, wall);
    }

    /// Adds another collector's results; histograms merge exactly. Every field is named, so a
    /// field added to `Metrics` does not compile until its merge is decided.
    pub fn merge(&mut self, other: &Metrics) {
        let Metrics {
            phases,
            register_attempts,
            polls_per_device,
            failures,
            failure_reasons,
            statuses,
            retry_after_seconds,
            hubs,
            sources,
            personalities,
            payloads,
            certificates,
            assigned,
            failed,
            aborted,
            stray_replies,
            early_requests,
            late_starts,
            assignment_clock,
            live,
            intervals,
            clock: _,
            spare: _,
        } = other;
        self.phases.add_all(phases);
        self.register_attempts.add(register_attempts).expect("auto-resizing histograms accept any value");
        self.polls_per_device.add(polls_per_device).expect("auto-resizing histograms accept any value");
        counts::add_counts(&mut self.failures, failures);
        counts::add_counts(&mut self.hubs, hubs);
        self.merge_reasons(failure_reasons);
        for (name, counts) in personalities {
            self.personalities.entry(name).or_default().add(counts);
        }
        self.payloads.returned += payloads.returned;
        self.payloads.matching += payloads.matching;
        self.certificates.add(certificates);
        for (source, counts) in sources {
            self.sources.entry(source.clone()).or_default().add(counts);
        }
        for (status, count) in statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        for (seconds, count) in retry_after_seconds {
            *self.retry_after_seconds.entry(*seconds).or_default() += count;
        }
        self.assigned += assigned;
        self.failed += failed;
        self.aborted += aborted;
        self.stray_replies += stray_replies;
        self.early_requests += early_requests;
        self.late_starts += late_starts;
        for (index, interval) in intervals.pending() {
            let spare = &mut self.spare;
            self.intervals.at_with(*index, || Interval::with(spare.take().unwrap_or_default())).add(interval);
        }
        self.assignment_clock.merge(assignment_clock);
        self.live.add(live);
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

    /// Every phase's latencies so far in the coarse buckets of [`LIVE_BUCKETS_US`], counted as
    /// they were recorded (no histogram is walked).
    pub fn live_buckets(&self) -> Vec<LiveBuckets> {
        self.live.buckets()
    }

    /// p99 of a phase so far, in microseconds (0 when empty).
    pub fn p99_us(&self, phase: Phase) -> u64 {
        let h = self.phases.get(phase);
        if h.is_empty() { 0 } else { h.value_at_quantile(0.99) }
    }

    /// The summary of everything recorded. `total` counts devices planned, including any that
    /// never finished.
    pub fn summary(&self, total: u64) -> Summary {
        self.summary_of(total, &PlannedStarts { not_started: 0, scheduled: true, offered_per_second: None })
    }

    /// The summary of a run that started `total` devices as its arrival plan said (`starts`),
    /// assembled once: the plan's figures go in beside the measured ones.
    pub fn summary_of(&self, total: u64, starts: &PlannedStarts) -> Summary {
        let mut rates = self.assignment_clock.rates();
        rates.offered_per_second = starts.offered_per_second;
        // Without an arrival schedule there is no lag behind one (every start is on time).
        let phases = Phase::ALL.iter().filter(|p| starts.scheduled || **p != Phase::ScheduleLag);
        Summary {
            devices: DeviceCounts {
                total,
                assigned: self.assigned,
                failed: self.failed,
                aborted: self.aborted,
                not_finished: total.saturating_sub(self.finished()),
                not_started: starts.not_started,
            },
            flows_per_second: rates.achieved_per_second,
            phases: phases.map(|p| (p.as_str().to_string(), PhaseStats::of(self.phases.get(*p)))).collect(),
            register_attempts: CountStats::of(&self.register_attempts),
            polls_per_device: CountStats::of(&self.polls_per_device),
            failures: self.failures.clone(),
            failure_reasons: self.failure_reasons.clone(),
            rates: Some(rates),
            statuses: self.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            retry_after_seconds: self.retry_after_seconds.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            hubs: self.hubs.clone(),
            source_addresses: self.sources.clone(),
            personalities: self.personalities.iter().map(|(name, c)| (name.to_string(), *c)).collect(),
            payloads: self.payloads,
            certificates: self.certificates.clone(),
            stray_replies: self.stray_replies,
            early_requests: self.early_requests,
            late_starts: self.late_starts,
        }
    }
}

/// The time of every phase a flow goes through once (all but [`Phase::Poll`]), `None` for a
/// phase it did not complete.
pub fn single_phases(t: &Timings) -> [(Phase, Option<Duration>); 10] {
    let between = |from: Option<Instant>, to: Option<Instant>| Some(to?.saturating_duration_since(from?));
    [
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
    ]
}

/// The instant each phase of [`single_phases`] ended, in its order.
fn phase_ends(t: &Timings) -> [Option<Instant>; 10] {
    [
        Some(t.start),
        t.tcp_connected,
        t.tls_done,
        t.ws_upgraded,
        t.connack,
        t.suback,
        t.register_accepted,
        t.assigned,
        t.assigned,
        t.end,
    ]
}

#[cfg(test)]
mod tests;
