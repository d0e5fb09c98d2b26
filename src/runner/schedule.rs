//! The arrival loop: starts devices as the load model says until the stop condition, collects
//! their reports and prepares the devices that start next while it waits (see `prepare`).

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::sleep_until;

use super::ended::{Arrivals, Ending, Panicked, Started};
use super::options::RunOptions;
use super::prepare::{DevicePreparer, FILL_BATCH, Lookahead};
use super::series::{Counting, Series};
use super::stall::{LagOutsideStalls, TargetStalls};
use super::start::START_LEAD;
use super::timer::PreciseTimer;
use crate::arrival::ArrivalPlan;
use crate::conformance::CheckLog;
use crate::conformance::passive::PassiveTally;
use crate::device::driver::now;
use crate::device::{DeviceRng, FlowReport, FlowSettings, Personality, Target, run_device_observed};
use crate::metrics::{DeviceRecord, Metrics, Phase, PhaseHistograms, WallClock};
use crate::results::{Progress, Tick};
use crate::scenario::{Load, Plan};
use crate::shard::Part;

/// How long past its `--start-at` instant a shard still keeps that instant as the plan's zero.
const MISSED_START: Duration = Duration::from_secs(1);

/// What a device task hands back: its registration ID and its report.
type Finished = (String, FlowReport<Counting<CheckLog>>);

/// The arrival loop of one run: when devices start (`starts`), which start next (`devices`),
/// the tasks in flight, and what it folded from those that finished (`collected`).
pub(super) struct ArrivalLoop<'a> {
    plan: &'a Plan,
    target: &'a Target,
    settings: BTreeMap<Personality, Arc<FlowSettings>>,
    devices: Lookahead<DevicePreparer>,
    in_flight_cap: u64,
    /// This shard's devices (the plan's, unsharded).
    shard_devices: u64,
    closed: bool,
    /// The plan's zero.
    begin: Instant,
    /// The time series' intervals, from the plan's start instant.
    series: Series,
    arrivals_end: Option<Instant>,
    starts: Starts,
    /// One OS entropy draw per run; each device's RNG is seeded from it.
    seeds: StdRng,
    tasks: JoinSet<Finished>,
    abort: watch::Sender<bool>,
    aborted: watch::Receiver<bool>,
    started: u64,
    ending: Ending,
    draining: bool,
    /// Set when a device could not be prepared: no device starts after it.
    unprepared: Option<String>,
    collected: Collected,
    /// Interval histograms the ticks' receiver is done with, emptied, to record the next
    /// interval into (see [`ArrivalLoop::recycling`]).
    spares: Option<mpsc::UnboundedReceiver<PhaseHistograms>>,
}

impl<'a> ArrivalLoop<'a> {
    /// A loop over this shard's devices (`options`), whose zero is the start instant
    /// (`--start-at`; [`START_LEAD`] from now unless set, or now when that instant passed more
    /// than [`MISSED_START`] ago). The time series' intervals count from the start instant
    /// either way, so every shard of a plan has the same.
    pub(super) fn new(
        plan: &'a Plan,
        options: &RunOptions,
        in_flight_cap: Option<u64>,
        target: &'a Target,
        settings: BTreeMap<Personality, Arc<FlowSettings>>,
        devices: Lookahead<DevicePreparer>,
    ) -> Self {
        // One reading of both clocks places every instant of the run on the wall clock.
        let (instant, wall_now) = (now(), std::time::SystemTime::now());
        let wall = WallClock::new(instant, wall_now);
        let origin = match options.start_at.map(|at| at.duration_since(wall_now)) {
            Some(Ok(ahead)) => instant + ahead,
            Some(Err(behind)) => instant.checked_sub(behind.duration()).unwrap_or(instant),
            None => instant + START_LEAD,
        };
        // A zero just past (a wake-up late under load) stays the plan's: the devices already due
        // start at once, late, and every shard keeps the plan's instants. A start missed by
        // more than a second moves the zero to now, as if the shard had been told to start then.
        let begin = if origin + MISSED_START >= instant { origin } else { instant };
        // The instant as typed when there is one: every shard's log then names the same.
        let origin_unix_us = match options.start_at.map(|at| at.duration_since(std::time::UNIX_EPOCH)) {
            Some(Ok(since)) => u64::try_from(since.as_micros()).unwrap_or(u64::MAX),
            _ => wall.unix_micros(origin),
        };
        let series = Series::new(origin, origin_unix_us);
        let (abort, aborted) = watch::channel(false);
        Self {
            plan,
            target,
            settings,
            devices,
            in_flight_cap: in_flight_cap.unwrap_or(u64::MAX),
            shard_devices: options.part.devices(),
            closed: matches!(plan.load, Load::Closed { .. }),
            begin,
            arrivals_end: plan.stop.duration.map(|d| begin + d),
            starts: Starts::new(&options.part, begin),
            seeds: StdRng::from_os_rng(),
            tasks: JoinSet::new(),
            abort,
            aborted,
            started: 0,
            ending: Ending::Complete,
            draining: false,
            unprepared: None,
            collected: Collected::new(options.device_records, wall, Metrics::new().on_clock(series.clock())),
            series,
            spares: None,
        }
    }

    /// Sorts each start of an open plan by whether it fell in one of the target's `stalls`.
    pub(super) fn watching(mut self, stalls: Arc<TargetStalls>) -> Self {
        if !self.closed {
            self.collected.lag_outside_stalls = Some(LagOutsideStalls::new(stalls));
        }
        self
    }

    /// Records each interval into histograms handed back on `spares` once a tick's receiver is
    /// done with them (a fresh set when none is back): a tick then allocates nothing large on
    /// the worker that runs this loop.
    pub(super) fn recycling(mut self, spares: mpsc::UnboundedReceiver<PhaseHistograms>) -> Self {
        self.spares = Some(spares);
        self
    }

    /// Starts devices as the load model says until the stop condition, and collects their
    /// reports; `on_tick` gets a [`Tick`] each second, at the first interrupt and at the end.
    pub(super) async fn run(mut self, mut interrupts: watch::Receiver<u32>, mut on_tick: impl FnMut(Tick)) -> Arrivals {
        let mut deadline = tokio::time::Instant::from_std(self.begin + self.plan.max_duration);
        // Future starts wait on a timer with the kernel's precision: a device never starts before
        // its instant, and its lag is how late the runtime served it (tokio's own sleep alone ends
        // up to 2 ms late by design).
        let mut timer = PreciseTimer::new();
        // Each interval of the series closes a moment after its end (`series::GRACE`).
        let ticker = sleep_until(tokio::time::Instant::from_std(self.series.next_close()));
        tokio::pin!(ticker);
        let mut interrupts_open = true;
        loop {
            let started_before = self.started;
            let next_start = self.start_due();
            if next_start.is_none() && self.tasks.is_empty() {
                break;
            }
            self.prepare_ahead(next_start, started_before).await;
            // A start that finds no free slot waits for one: it then runs late, and its lag says
            // by how much.
            let may_start = next_start.is_some() && (self.tasks.len() as u64) < self.in_flight_cap;
            tokio::select! {
                () = timer.sleep_until(next_start.unwrap_or(self.begin)), if may_start => {
                    // Due now: the loop's top starts it.
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => self.collected.collect(joined),
                () = &mut ticker => {
                    // Devices due before the boundary start first, so each counts in the
                    // interval it was due in however late the loop got here.
                    self.start_due();
                    self.tick_closed(&mut on_tick);
                    ticker.as_mut().reset(tokio::time::Instant::from_std(self.series.next_close()));
                }
                changed = interrupts.changed(), if interrupts_open => {
                    if changed.is_err() {
                        // The sender is gone: no interrupt can come any more.
                        interrupts_open = false;
                        continue;
                    }
                    let count = *interrupts.borrow_and_update();
                    self.ending = Ending::Interrupted;
                    if count >= 2 || self.draining {
                        break;
                    }
                    // First interrupt: no more arrivals; in-flight devices get the drain period
                    // (the next tick says so: an interval is a whole second).
                    self.draining = true;
                    deadline = deadline.min(tokio::time::Instant::now() + self.plan.drain);
                    self.tick_closed(&mut on_tick);
                }
                () = sleep_until(deadline) => {
                    if self.ending == Ending::Complete {
                        self.ending = Ending::TimedOut;
                    }
                    break;
                }
            }
        }
        self.stop_in_flight().await;
        self.tick_to_end(&mut on_tick);
        self.end()
    }

    /// Starts every device already due; returns when the next start is due, if any is. The
    /// timer is only for future starts: going through it for each due start would cost a
    /// wake-up and a system call a start.
    fn start_due(&mut self) -> Option<Instant> {
        loop {
            let in_flight = self.tasks.len() as u64;
            let next = (self.started < self.shard_devices && !self.draining && self.unprepared.is_none())
                .then(|| self.starts.next_at(now(), in_flight))
                .flatten()
                .filter(|at| self.arrivals_end.is_none_or(|end| *at < end));
            match next {
                Some(intended) if intended <= now() && in_flight < self.in_flight_cap => self.start(intended),
                next => return next,
            }
        }
    }

    /// Starts the next device, intended at `intended`; or, when it could not be prepared, stops
    /// the arrivals.
    fn start(&mut self, intended: Instant) {
        let identity = match self.devices.take(&now).expect("the lookahead covers every device of the shard") {
            Ok(identity) => identity,
            Err(error) => {
                self.unprepared = Some(format!(
                    "arrivals stopped after {} starts: the next device could not be prepared: {error}",
                    self.started
                ));
                self.ending = Ending::Unprepared;
                return;
            }
        };
        let settings = self.settings[&identity.personality].clone();
        let (target, aborted) = (self.target.clone(), self.aborted.clone());
        let rng = DeviceRng::from_rng(&mut self.seeds);
        let closed = self.closed;
        // A start counts in the interval it was due in (a closed model's is due as it starts).
        let due = if closed { now() } else { intended };
        self.series.events().count(due, |events| events.started += 1);
        let events = self.series.events().clone();
        self.tasks.spawn(async move {
            // A closed model has no plan to be late against: a device is due when it starts.
            let intended = (!closed).then_some(intended);
            let checks = Counting::new(CheckLog::default(), events);
            let registration_id = identity.registration_id.to_string();
            let report = run_device_observed(&target, settings, identity, intended, aborted, rng, checks).await;
            (registration_id, report)
        });
        self.starts.started();
        self.started += 1;
    }

    /// Off the hot path: while it waits, the loop prepares the devices that start next, each
    /// only if it is ready before the next start is due (a closed model has no due instant).
    async fn prepare_ahead(&mut self, next_start: Option<Instant>, started_before: u64) {
        let more = !self.draining && self.unprepared.is_none() && self.started < self.shard_devices;
        let due = if self.closed { None } else { next_start };
        if more && (self.closed || due.is_some()) && self.arrivals_end.is_none_or(|end| now() < end) {
            if self.started > started_before {
                // The devices just started wait in this worker's LIFO slot, which no other worker
                // may take: they run first, so preparing delays none of them.
                tokio::task::yield_now().await;
            }
            self.devices.fill(due, FILL_BATCH, &now);
        }
    }

    /// Devices still in flight stop where they are and report as aborted, with the phases they
    /// completed; any that do not answer within a second are dropped (not finished).
    async fn stop_in_flight(&mut self) {
        let _ = self.abort.send(true);
        let (tasks, collected) = (&mut self.tasks, &mut self.collected);
        let collect = async {
            while let Some(joined) = tasks.join_next().await {
                collected.collect(joined);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), collect).await;
        self.tasks.shutdown().await;
    }

    /// Ticks every interval that has closed by now, in order.
    fn tick_closed(&mut self, on_tick: &mut impl FnMut(Tick)) {
        while self.series.due(now()) {
            on_tick(self.tick(None));
        }
    }

    /// The run has ended: ticks every interval left, the last one ending now.
    fn tick_to_end(&mut self, on_tick: &mut impl FnMut(Tick)) {
        let at = now();
        let last = self.series.clock().index(at);
        while self.series.next_index() < last {
            on_tick(self.tick(None));
        }
        on_tick(self.tick(Some(at.saturating_duration_since(self.series.clock().origin()))));
    }

    /// The next interval of the series (ending at `last_end` since the origin for the run's
    /// last), and the run through it.
    fn tick(&mut self, last_end: Option<Duration>) -> Tick {
        let spare = self.spares.as_mut().and_then(|spares| spares.try_recv().ok()).unwrap_or_default();
        let metrics = &mut self.collected.metrics;
        let closed = self.series.close(metrics, spare, last_end);
        let totals = &closed.totals;
        Tick {
            progress: Progress {
                elapsed: closed.span.end,
                started: totals.started,
                assigned: totals.assigned,
                failed: totals.failed,
                in_flight: totals.in_flight(),
                late_starts: totals.late_starts,
                throttled: totals.throttled,
                assigned_p99_us: metrics.p99_us(Phase::Assigned),
                interval: closed.taken.stats,
            },
            span: closed.span,
            latencies: closed.taken.latencies,
            finished: std::mem::take(&mut self.collected.finished),
            failures: closed.totals.failures,
            failure_reasons: metrics.failure_reasons().clone(),
            phases: metrics.live_buckets(),
            draining: self.draining,
        }
    }

    fn end(mut self) -> Arrivals {
        // Only this shard's own devices count: the other shards start the rest.
        let elapsed = now().saturating_duration_since(self.begin);
        let left = self.shard_devices.saturating_sub(self.started);
        let not_started = self.starts.remaining(left, self.plan.stop.duration, now() - self.begin);
        let started = Started {
            started: self.started,
            not_started,
            prepared_late: self.devices.behind(),
            most_prepared: self.devices.most_held(),
            unprepared: self.unprepared,
            panicked: self.collected.panicked,
        };
        Arrivals {
            metrics: self.collected.metrics,
            checks: self.collected.checks,
            started,
            ending: self.ending,
            elapsed,
            lag_outside_stalls: self.collected.lag_outside_stalls,
        }
    }
}

/// What the loop folded from the device tasks that finished.
struct Collected {
    metrics: Metrics,
    /// The run's reading of both clocks, for the metrics' rates.
    wall: WallClock,
    checks: PassiveTally,
    /// Keep a [`DeviceRecord`] of each (`devices.csv`).
    device_records: bool,
    /// Records of the devices finished since the last tick.
    finished: Vec<DeviceRecord>,
    panicked: Panicked,
    lag_outside_stalls: Option<LagOutsideStalls>,
}

impl Collected {
    fn new(device_records: bool, wall: WallClock, metrics: Metrics) -> Self {
        Self {
            metrics,
            wall,
            checks: PassiveTally::default(),
            device_records,
            finished: Vec::new(),
            panicked: Panicked::default(),
            lag_outside_stalls: None,
        }
    }

    /// Folds in one device task that ended: its report, or, for a task that panicked and left
    /// none, a count (the device then counts as not finished, and the summary says why).
    fn collect(&mut self, joined: Result<Finished, JoinError>) {
        match joined {
            Ok((registration_id, report)) => {
                if self.device_records {
                    self.finished.push(DeviceRecord::of(&registration_id, &report));
                }
                self.metrics.record(&report, &self.wall);
                self.metrics.note_failure(&registration_id, &report);
                if let Some(lag) = &mut self.lag_outside_stalls {
                    lag.record(&report.timings);
                }
                self.checks.record(&report.observer.inner);
            }
            Err(error) if error.is_panic() => self.panicked.add(error.into_panic()),
            // Cancelled: only the loop's own shutdown cancels a task, after it stopped collecting.
            Err(_) => {}
        }
    }
}

/// The *when* of a run: the intended start of the next device under the load model.
enum Starts {
    /// Open: the arrival plan alone decides, whatever is in flight (a shard's own starts of
    /// the unsharded plan). `supply` is how many arrivals the shard's plan has left when that
    /// is known without generating them (endless for constant and Poisson plans, the shard's
    /// share of a burst); `None` for stages, counted one by one.
    Open { begin: Instant, arrivals: Box<Peekable<Box<dyn Iterator<Item = Duration> + Send>>>, supply: Option<u64> },
    /// Closed: a device starts as soon as fewer than `concurrency` are in flight.
    Closed { concurrency: u64 },
}

impl Starts {
    fn new(part: &Part, begin: Instant) -> Self {
        let shard = part.shard();
        match part.load() {
            Load::Open(plan) => {
                let starts: Box<dyn Iterator<Item = Duration> + Send> = Box::new(shard.starts(plan));
                let supply = match plan {
                    ArrivalPlan::Constant { .. } | ArrivalPlan::Poisson { .. } => Some(u64::MAX),
                    ArrivalPlan::Burst { devices, .. } => Some(shard.devices_of(*devices)),
                    ArrivalPlan::Stages(_) => None,
                };
                Starts::Open { begin, arrivals: Box::new(starts.peekable()), supply }
            }
            Load::Closed { concurrency } => Starts::Closed { concurrency: *concurrency },
        }
    }

    /// When the next device should start, or `None` when no start is due (plan exhausted, or
    /// every closed-model slot taken).
    fn next_at(&mut self, now: Instant, in_flight: u64) -> Option<Instant> {
        match self {
            Starts::Open { begin, arrivals, .. } => arrivals.peek().map(|offset| *begin + *offset),
            Starts::Closed { concurrency } => (in_flight < *concurrency).then_some(now),
        }
    }

    fn started(&mut self) {
        if let Starts::Open { arrivals, supply, .. } = self {
            arrivals.next();
            *supply = supply.map(|left| left.saturating_sub(1));
        }
    }

    /// How many of the next `left` planned devices never started, after `elapsed`: an open
    /// plan's arrivals still due within `duration`; for a closed model, all `left` unless the
    /// duration had passed (then none was planned any more).
    fn remaining(&mut self, left: u64, duration: Option<Duration>, elapsed: Duration) -> u64 {
        match self {
            // Without a duration every arrival left was due: those of a plan that says how many
            // it has are not generated one by one (ten million would take a while).
            Starts::Open { supply: Some(supply), .. } if duration.is_none() => left.min(*supply),
            Starts::Open { arrivals, .. } => {
                arrivals.take(left as usize).take_while(|offset| duration.is_none_or(|d| *offset < d)).count() as u64
            }
            Starts::Closed { .. } if duration.is_some_and(|d| elapsed >= d) => 0,
            Starts::Closed { .. } => left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_device_task_that_panics_is_counted_and_said_never_dropped() {
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        for n in 0..2 {
            tasks.spawn(async move {
                if n < 2 {
                    panic!("device {n} hit a bug");
                }
                unreachable!("every task of this test panics")
            });
        }
        let mut collected = Collected::new(true, WallClock::new(now(), std::time::SystemTime::now()), Metrics::new());
        while let Some(joined) = tasks.join_next().await {
            collected.collect(joined);
        }
        assert_eq!(collected.panicked.count, 2);
        assert_eq!(collected.metrics.finished(), 0, "a task that panicked left no report to fold");
        assert!(collected.finished.is_empty());
        let note = collected.panicked.note().expect("panics are said in the summary");
        assert!(note.starts_with("2 device tasks panicked, so their devices count as not finished"), "{note}");
        assert!(note.contains("the first said: device ") && note.contains(" hit a bug"), "{note}");
        assert_eq!(Panicked::default().note(), None, "nothing is said when no task panicked");
    }
}
