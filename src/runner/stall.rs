//! Watching the runtime, the machine and the target while a run goes on, so the verdict can name
//! the side at fault when the plan was not kept: the generator (its runtime saturated), the
//! machine (a thread outside the runtime woke late too: the hypervisor or other processes), or
//! the target (it stopped answering, then answered every waiting device at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;

use super::timer::PreciseTimer;
use crate::device::driver::now;
use crate::device::{TargetWatch, Timings};
use crate::host::CpuTicks;

/// No answer from the target for this long while devices wait on it, the runtime running
/// meanwhile (no probe late by half of it): the target has stalled.
const SILENCE: Duration = Duration::from_millis(250);

/// A probe this late or less is on time (a start this late is not late either); after a target
/// stall, this many on time in a row (100 ms) say the generator has caught up with the answers
/// that came at once.
const ON_TIME: Duration = crate::metrics::LATE_AFTER;
const CAUGHT_UP_PROBES: u32 = 10;

/// What the monitor measured over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Readings {
    /// p99 of how late the runtime served a precise 10 ms timer, microseconds.
    pub runtime_p99_us: u64,
    /// p99 of how late a plain thread outside the runtime woke from a 10 ms sleep.
    pub machine_p99_us: Option<u64>,
    /// The share of the machine's CPU time the hypervisor took meanwhile (Linux `steal`).
    pub steal_percent: Option<f64>,
    /// The share of the machine's cores this process used over the run (the runner's reading,
    /// given to [`StallMonitor::stop`]).
    pub cpu_share: Option<f64>,
}

/// Measures runtime saturation: how late a precise 10 ms timer is served while the run goes on
/// (tokio's own timer would add its 1 ms tick and millisecond park to every reading); beside it
/// the same on a thread of its own, and the target's stalls as the devices see them.
pub(super) struct StallMonitor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Histogram<u64>>,
    machine: MachineProbe,
    steal_before: Option<CpuTicks>,
}

impl StallMonitor {
    const PERIOD: Duration = Duration::from_millis(10);

    /// Starts the probes; `target` (the run's devices' watch) and `stalls` (where the target's
    /// stalls are written) when the run watches its target.
    pub(super) fn start(target: Option<(Arc<TargetWatch>, Arc<TargetStalls>)>) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut stalls = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut timer = PreciseTimer::new();
            let mut watching = target.map(|(watch, stalls)| TargetWatching::new(watch, stalls));
            loop {
                let due = now() + Self::PERIOD;
                tokio::select! {
                    () = timer.sleep_until(due) => {
                        let woke = now();
                        let late = woke.saturating_duration_since(due);
                        stalls.saturating_record((late.as_micros() as u64).max(1));
                        if let Some(watching) = &mut watching {
                            watching.probe(woke, late);
                        }
                    }
                    _ = stopped.changed() => {
                        if let Some(watching) = watching {
                            watching.end(now());
                        }
                        return stalls;
                    }
                }
            }
        });
        Self { stop, task, machine: MachineProbe::start(Self::PERIOD), steal_before: CpuTicks::read() }
    }

    /// Stops the probes; returns what they measured, beside `cpu_share` (see [`Readings`]).
    pub(super) async fn stop(self, cpu_share: Option<f64>) -> Readings {
        let _ = self.stop.send(true);
        let runtime_p99_us = match self.task.await {
            Ok(stalls) if !stalls.is_empty() => stalls.value_at_quantile(0.99),
            _ => 0,
        };
        let steal_percent =
            self.steal_before.zip(CpuTicks::read()).and_then(|(before, after)| after.steal_since(before));
        Readings { runtime_p99_us, machine_p99_us: self.machine.stop(), steal_percent, cpu_share }
    }
}

/// A thread of its own sleeping `period` at a time and recording how late it woke: what this
/// machine gives any thread (the floor under the runtime's figure). It wakes 100 times a second
/// and does nothing else; it ends when the probe is stopped or dropped.
struct MachineProbe {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Histogram<u64>>>,
}

impl MachineProbe {
    fn start(period: Duration) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let weak = Arc::downgrade(&running);
        let thread = std::thread::Builder::new()
            .name("dpsbench-probe".into())
            .spawn(move || {
                let mut late = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
                while weak.upgrade().is_some_and(|running| running.load(Ordering::Relaxed)) {
                    let due = Instant::now() + period;
                    std::thread::sleep(period);
                    let micros = Instant::now().saturating_duration_since(due).as_micros() as u64;
                    late.saturating_record(micros.max(1));
                }
                late
            })
            .ok();
        Self { running, thread }
    }

    fn stop(mut self) -> Option<u64> {
        self.running.store(false, Ordering::Relaxed);
        let late = self.thread.take()?.join().ok()?;
        (!late.is_empty()).then(|| late.value_at_quantile(0.99))
    }
}

/// The windows of a run in which its target stalled: from its last answer before a silence to
/// the instant the generator had caught up with what the target then answered at once. A
/// window still open has no end yet.
#[derive(Debug, Default)]
pub(super) struct TargetStalls {
    windows: Mutex<Vec<(Instant, Option<Instant>)>>,
}

impl TargetStalls {
    /// Opens a window from `from`, or from where the previous one ended if that is later: the
    /// windows never overlap.
    fn open(&self, from: Instant) -> Instant {
        let mut windows = self.lock();
        let from = windows.last().and_then(|(_, to)| *to).map_or(from, |end| from.max(end));
        windows.push((from, None));
        from
    }

    /// Drops the open window: what looked like the target's silence was the runtime's.
    fn discard_open(&self) {
        let mut windows = self.lock();
        if let Some((_, None)) = windows.last() {
            windows.pop();
        }
    }

    fn close(&self, at: Instant) {
        if let Some((_, to @ None)) = self.lock().last_mut() {
            *to = Some(at);
        }
    }

    /// Whether `at` lies in a window (an open one reaches to now).
    pub(super) fn covers(&self, at: Instant) -> bool {
        self.lock().iter().rev().any(|(from, to)| *from <= at && to.is_none_or(|to| at <= to))
    }

    /// How many windows and how long they lasted in all and at the longest.
    pub(super) fn extent(&self) -> (u64, Duration, Duration) {
        let windows = self.lock();
        let lengths = windows.iter().filter_map(|(from, to)| Some(to.as_ref()?.saturating_duration_since(*from)));
        let (total, longest) = lengths.fold((Duration::ZERO, Duration::ZERO), |(t, l), d| (t + d, l.max(d)));
        (windows.len() as u64, total, longest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, Option<Instant>)>> {
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The schedule lag of the starts outside a run's target stalls, for the verdict: those inside
/// a window were held back by answers the target sent at once, not by the generator's load.
pub(super) struct LagOutsideStalls {
    stalls: Arc<TargetStalls>,
    starts_within: u64,
    lag: Histogram<u64>,
}

impl LagOutsideStalls {
    pub(super) fn new(stalls: Arc<TargetStalls>) -> Self {
        Self { stalls, starts_within: 0, lag: crate::metrics::latency_histogram() }
    }

    /// Sorts one finished device's start by its intended instant (as the plan had it).
    pub(super) fn record(&mut self, timings: &Timings) {
        if self.stalls.covers(timings.intended_start) {
            self.starts_within += 1;
        } else {
            let lag = timings.start.saturating_duration_since(timings.intended_start);
            self.lag.saturating_record((lag.as_micros() as u64).max(1));
        }
    }

    /// The run's target stalls, when there were any.
    pub(super) fn stalls(&self) -> Option<crate::results::TargetStalls> {
        let (count, total, longest) = self.stalls.extent();
        (count > 0).then(|| crate::results::TargetStalls {
            count,
            seconds: (total.as_secs_f64() * 1000.0).round() / 1000.0,
            longest_seconds: (longest.as_secs_f64() * 1000.0).round() / 1000.0,
            starts_within: self.starts_within,
            schedule_lag_p99_outside_us: if self.lag.is_empty() { 0 } else { self.lag.value_at_quantile(0.99) },
        })
    }
}

/// The monitor's view of the target, probe by probe.
struct TargetWatching {
    watch: Arc<TargetWatch>,
    stalls: Arc<TargetStalls>,
    state: Seen,
    /// The target's last answer and the latest probe since: a silence while the runtime itself
    /// stood still is not the target's.
    latest_since_answer: (Instant, Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Answering,
    /// Silent since this instant.
    Silent(Instant),
    /// Answering again since `resumed` after a silence from `since`; `on_time` probes on time in
    /// a row since.
    CatchingUp {
        since: Instant,
        resumed: Instant,
        on_time: u32,
    },
}

impl TargetWatching {
    fn new(watch: Arc<TargetWatch>, stalls: Arc<TargetStalls>) -> Self {
        let answered = watch.last_answer();
        Self { watch, stalls, state: Seen::Answering, latest_since_answer: (answered, Duration::ZERO) }
    }

    fn probe(&mut self, now: Instant, late: Duration) {
        let answered = self.watch.last_answer();
        if answered > self.latest_since_answer.0 {
            self.latest_since_answer = (answered, Duration::ZERO);
        }
        let runtime_late = &mut self.latest_since_answer.1;
        *runtime_late = (*runtime_late).max(late);
        let runtime_stood_still = *runtime_late >= SILENCE / 2;
        self.state = match self.state {
            Seen::Answering => match self.watch.silence(now) {
                Some(silence) if silence >= SILENCE && !runtime_stood_still => {
                    Seen::Silent(self.stalls.open(now - silence))
                }
                _ => Seen::Answering,
            },
            // The runtime itself stood still meanwhile: the devices could not read what came.
            Seen::Silent(_) if runtime_stood_still => {
                self.stalls.discard_open();
                Seen::Answering
            }
            // Answers again, or nobody waits any more (the waits timed out).
            Seen::Silent(since) if answered > since || self.watch.silence(now).is_none() => {
                Seen::CatchingUp { since, resumed: now, on_time: 0 }
            }
            Seen::Silent(since) => Seen::Silent(since),
            // Caught up: on time again, or as long after the answers resumed as the silence
            // lasted (past that, lateness is the generator's, whatever began it).
            Seen::CatchingUp { since, resumed, on_time } => {
                let on_time = if late > ON_TIME { 0 } else { on_time + 1 };
                if on_time >= CAUGHT_UP_PROBES || now.saturating_duration_since(resumed) >= resumed - since {
                    self.stalls.close(now);
                    Seen::Answering
                } else {
                    Seen::CatchingUp { since, resumed, on_time }
                }
            }
        };
    }

    fn end(self, now: Instant) {
        if self.state != Seen::Answering {
            self.stalls.close(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_while_devices_wait_opens_a_window_the_catch_up_closes() {
        let watch = Arc::new(TargetWatch::new());
        let stalls = Arc::new(TargetStalls::default());
        let mut seen = TargetWatching::new(watch.clone(), stalls.clone());
        let t0 = watch.last_answer();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let waiting = watch.awaiting();
        let began = watch.silence(t0 + Duration::from_secs(10)).map(|s| t0 + Duration::from_secs(10) - s).unwrap();
        let on_time = Duration::from_micros(100);
        for ms in (10..=240).step_by(10) {
            seen.probe(at(ms), on_time);
        }
        assert_eq!(stalls.extent().0, 0, "240 ms of silence is not yet a stall");
        seen.probe(began + Duration::from_millis(260), on_time);
        assert!(matches!(seen.state, Seen::Silent(_)), "{:?}", seen.state);
        assert!(
            stalls.covers(began + Duration::from_millis(100)) && stalls.covers(at(5_000)),
            "an open window reaches to now"
        );
        watch.answered(at(1_000));
        seen.probe(at(1_010), Duration::from_millis(30));
        assert!(matches!(seen.state, Seen::CatchingUp { on_time: 0, .. }), "{:?}", seen.state);
        seen.probe(at(1_020), on_time);
        seen.probe(at(1_030), Duration::from_millis(5));
        assert!(matches!(seen.state, Seen::CatchingUp { on_time: 0, .. }), "a late probe starts the count again");
        for ms in (1_040..=1_120).step_by(10) {
            seen.probe(at(ms), on_time);
        }
        assert!(matches!(seen.state, Seen::CatchingUp { on_time: 9, .. }), "nine on time in a row");
        seen.probe(at(1_130), on_time);
        assert_eq!(seen.state, Seen::Answering);
        drop(waiting);
        let (count, total, _) = stalls.extent();
        assert_eq!((count, total), (1, at(1_130) - began));
        assert!(stalls.covers(at(1_050)) && !stalls.covers(at(1_131)));
    }

    /// A watch with one device waiting from now, its monitor, and that instant.
    fn one_waiting() -> (Arc<TargetWatch>, Arc<TargetStalls>, TargetWatching, Instant) {
        let watch = Arc::new(TargetWatch::new());
        let stalls = Arc::new(TargetStalls::default());
        let seen = TargetWatching::new(watch.clone(), stalls.clone());
        std::mem::forget(watch.awaiting());
        let began = watch.last_answer().max(crate::device::driver::now());
        (watch, stalls, seen, began)
    }

    #[test]
    fn catching_up_lasts_no_longer_than_the_silence_did() {
        let (watch, stalls, mut seen, began) = one_waiting();
        let at = |ms: u64| began + Duration::from_millis(ms);
        seen.probe(at(300), Duration::from_micros(100));
        watch.answered(at(400));
        seen.probe(at(410), Duration::from_millis(50));
        // A generator that never catches up: the window still ends, 410 ms after the answers resumed.
        let mut ms = 420;
        while seen.state != Seen::Answering && ms < 5_000 {
            seen.probe(at(ms), Duration::from_millis(50));
            ms += 10;
        }
        assert!((820..=850).contains(&ms), "closed at {ms} ms");
        assert!(!stalls.covers(at(900)), "the generator's own lateness after it is not excused");
    }

    #[test]
    fn a_silence_while_the_runtime_itself_is_late_is_not_the_targets() {
        let (_watch, stalls, mut seen, t0) = one_waiting();
        seen.probe(t0 + Duration::from_millis(300), Duration::from_millis(200));
        seen.probe(t0 + Duration::from_millis(310), Duration::from_micros(100));
        assert_eq!(stalls.extent().0, 0, "the runtime froze: the devices could not read what came");
        // A window already open is dropped when the runtime stands still within it.
        let (_watch, stalls, mut seen, t0) = one_waiting();
        seen.probe(t0 + Duration::from_millis(300), Duration::from_micros(100));
        assert_eq!(stalls.extent().0, 1);
        seen.probe(t0 + Duration::from_millis(600), Duration::from_millis(290));
        assert_eq!((stalls.extent().0, seen.state), (0, Seen::Answering));
    }

    #[test]
    fn windows_never_overlap() {
        let stalls = TargetStalls::default();
        let t0 = crate::device::driver::now();
        stalls.open(t0);
        stalls.close(t0 + Duration::from_millis(500));
        assert_eq!(stalls.open(t0 + Duration::from_millis(300)), t0 + Duration::from_millis(500));
        stalls.close(t0 + Duration::from_millis(900));
        assert_eq!(stalls.extent(), (2, Duration::from_millis(900), Duration::from_millis(500)));
    }
}
