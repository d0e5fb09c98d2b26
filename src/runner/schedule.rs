//! The arrival loop: starts devices as the load model says until the stop condition, collects
//! their reports, prepares the devices that start next while it waits (see `prepare`), and
//! watches the runtime for saturation.

use super::prepare::{DevicePreparer, FILL_BATCH, Lookahead};
use super::timer::PreciseTimer;
use super::*;
use crate::arrival::ArrivalPlan;
use crate::shard::Part;

/// Starts devices as the load model says until the stop condition, and collects their reports.
/// Returns the metrics, the passive checks' tally, the devices started and never started, how the run
/// ended, and its length.
#[allow(clippy::too_many_arguments)] // gathered into a struct by the arrival loop's own change
pub(super) async fn schedule(
    plan: &Plan,
    options: &RunOptions,
    in_flight_cap: Option<u64>,
    target: &Target,
    settings: BTreeMap<Personality, Arc<FlowSettings>>,
    mut devices: Lookahead<DevicePreparer>,
    mut interrupts: watch::Receiver<u32>,
    mut on_tick: impl FnMut(Tick),
) -> (Metrics, PassiveTally, Started, Ending, Duration) {
    let mut metrics = Metrics::new();
    let mut checks = PassiveTally::default();
    // One OS entropy draw per run; each device's RNG is seeded from it.
    let mut seeds = StdRng::from_os_rng();
    let mut tasks = JoinSet::new();
    let begin: Instant = now() + Duration::from_millis(10);
    let mut deadline = tokio::time::Instant::from_std(begin + plan.max_duration);
    let arrivals_end = plan.stop.duration.map(|d| begin + d);
    let mut starts = Starts::new(&options.part, begin);
    let shard_devices = options.part.devices();
    let in_flight_cap = in_flight_cap.unwrap_or(u64::MAX);
    let mut started = 0u64;
    // Future starts wait on a timer with the kernel's precision: a device never starts before
    // its instant, and its lag is how late the runtime served it (tokio's own sleep alone ends
    // up to 2 ms late by design).
    let mut timer = PreciseTimer::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ending = Ending::Complete;
    let mut draining = false;
    let (abort, aborted) = watch::channel(false);
    let mut interrupts_open = true;
    // Devices finished since the last tick, handed over with it (for devices.csv).
    let mut finished = Vec::new();
    let closed = matches!(plan.load, Load::Closed { .. });
    // Set when a device could not be prepared: no device starts after it.
    let mut unprepared = None;
    loop {
        // Start every device already due. The timer (1 ms resolution) is only for future
        // starts: going through it for each due start would cap starts near one per tick.
        let started_before = started;
        let next_start = loop {
            let in_flight = tasks.len() as u64;
            let next = (started < shard_devices && !draining && unprepared.is_none())
                .then(|| starts.next_at(now(), in_flight))
                .flatten()
                .filter(|at| arrivals_end.is_none_or(|end| *at < end));
            match next {
                Some(intended) if intended <= now() && in_flight < in_flight_cap => {
                    let identity = match devices.take(&now).expect("the lookahead covers every device of the shard") {
                        Ok(identity) => identity,
                        Err(error) => {
                            unprepared = Some(format!(
                                "arrivals stopped after {started} starts: the next device could not be prepared: {error}"
                            ));
                            ending = Ending::Unprepared;
                            continue;
                        }
                    };
                    let settings = settings[&identity.personality].clone();
                    let (target, aborted) = (target.clone(), aborted.clone());
                    let rng = DeviceRng::from_rng(&mut seeds);
                    tasks.spawn(async move {
                        // A closed model has no plan to be late against: a device is due when
                        // it starts.
                        let intended = if closed { now() } else { intended };
                        let checks = CheckLog::default();
                        let registration_id = identity.registration_id.to_string();
                        let report =
                            run_device_observed(&target, settings, identity, intended, aborted, rng, checks).await;
                        (registration_id, report)
                    });
                    starts.started();
                    started += 1;
                }
                next => break next,
            }
        };
        if next_start.is_none() && tasks.is_empty() {
            break;
        }
        // Off the hot path: while it waits, the loop prepares the devices that start next, each
        // only if it is ready before the next start is due (a closed model has no due instant).
        let more = !draining && unprepared.is_none() && started < shard_devices;
        let due = if closed { None } else { next_start };
        if more && (closed || due.is_some()) && arrivals_end.is_none_or(|end| now() < end) {
            if started > started_before {
                // The devices just started wait in this worker's LIFO slot, which no other worker
                // may take: they run first, so preparing delays none of them.
                tokio::task::yield_now().await;
            }
            devices.fill(due, FILL_BATCH, &now);
        }
        // A start that finds no free slot waits for one: it then runs late, and its lag says by
        // how much.
        let may_start = next_start.is_some() && (tasks.len() as u64) < in_flight_cap;
        tokio::select! {
            () = timer.sleep_until(next_start.unwrap_or(begin)), if may_start => {
                // Due now: the loop's top starts it.
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((registration_id, report)) = joined {
                    if options.device_records {
                        finished.push(DeviceRecord::of(&registration_id, &report));
                    }
                    metrics.record(&report);
                    metrics.note_failure(&registration_id, &report);
                    checks.record(&report.observer);
                }
            }
            _ = ticker.tick() => {
                let tick = tick(&mut metrics, &mut finished, begin, started, tasks.len() as u64, draining);
                on_tick(tick);
            }
            changed = interrupts.changed(), if interrupts_open => {
                if changed.is_err() {
                    // The sender is gone: no interrupt can come any more.
                    interrupts_open = false;
                    continue;
                }
                let count = *interrupts.borrow_and_update();
                ending = Ending::Interrupted;
                if count >= 2 || draining {
                    break;
                }
                // First interrupt: no more arrivals; in-flight devices get the drain period.
                draining = true;
                deadline = deadline.min(tokio::time::Instant::now() + plan.drain);
                let tick = tick(&mut metrics, &mut finished, begin, started, tasks.len() as u64, draining);
                on_tick(tick);
            }
            () = sleep_until(deadline) => {
                if ending == Ending::Complete {
                    ending = Ending::TimedOut;
                }
                break;
            }
        }
    }
    // Devices still in flight stop where they are and report as aborted, with the phases they
    // completed; any that do not answer within a second are dropped (not finished).
    let _ = abort.send(true);
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok((registration_id, report)) = joined {
                if options.device_records {
                    finished.push(DeviceRecord::of(&registration_id, &report));
                }
                metrics.record(&report);
                metrics.note_failure(&registration_id, &report);
                checks.record(&report.observer);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), collect).await;
    tasks.shutdown().await;
    // Only this shard's own devices count: the other shards start the rest.
    let not_started = starts.remaining(shard_devices.saturating_sub(started), plan.stop.duration, now() - begin);
    let last = tick(&mut metrics, &mut finished, begin, started, 0, draining);
    on_tick(last);
    let counts = Started {
        started,
        not_started,
        prepared_late: devices.behind(),
        most_prepared: devices.most_held(),
        unprepared,
    };
    (metrics, checks, counts, ending, now().saturating_duration_since(begin))
}

fn tick(
    metrics: &mut Metrics,
    finished: &mut Vec<DeviceRecord>,
    begin: Instant,
    started: u64,
    in_flight: u64,
    draining: bool,
) -> Tick {
    let interval = metrics.take_interval();
    Tick {
        progress: Progress {
            elapsed: now().saturating_duration_since(begin),
            started,
            assigned: metrics.assigned(),
            failed: metrics.failed(),
            in_flight,
            late_starts: metrics.late_starts(),
            throttled: metrics.throttled(),
            assigned_p99_us: metrics.p99_us(Phase::Assigned),
            interval: interval.stats,
        },
        latencies: interval.latencies,
        finished: std::mem::take(finished),
        failures: metrics.failures().clone(),
        failure_reasons: metrics.failure_reasons().clone(),
        phases: metrics.live_buckets(),
        draining,
    }
}

/// Measures runtime saturation: how late a precise 10 ms timer is served while the run goes on
/// (tokio's own timer would add its 1 ms tick and millisecond park to every reading).
pub(super) struct StallMonitor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Histogram<u64>>,
}

impl StallMonitor {
    const PERIOD: Duration = Duration::from_millis(10);

    pub(super) fn start() -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut stalls = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut timer = PreciseTimer::new();
            loop {
                let due = now() + Self::PERIOD;
                tokio::select! {
                    () = timer.sleep_until(due) => {
                        let late = now().saturating_duration_since(due);
                        stalls.saturating_record((late.as_micros() as u64).max(1));
                    }
                    _ = stopped.changed() => return stalls,
                }
            }
        });
        Self { stop, task }
    }

    /// Stops the monitor; returns the stall p99 in microseconds.
    pub(super) async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(stalls) if !stalls.is_empty() => stalls.value_at_quantile(0.99),
            _ => 0,
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

/// Devices started, planned devices that never started, and how their preparation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Started {
    pub started: u64,
    pub not_started: u64,
    /// Starts that found their device not yet prepared, and prepared it as they started.
    pub prepared_late: u64,
    /// The most devices held prepared ahead of their start at once.
    pub most_prepared: usize,
    /// Why arrivals stopped early: a device could not be prepared.
    pub unprepared: Option<String>,
}
