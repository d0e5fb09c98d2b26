//! The run's time series as it goes: every figure of a tick counts the events whose instant fell
//! in its interval (`metrics::IntervalClock`: interval k is `[origin + k s, origin + (k + 1) s)`
//! from the plan's start instant, the same in every shard). What happens during a flow (a 429
//! received) is counted by the device's task as it happens ([`Counting`]); what a finished
//! device reports is placed by the instants it carries (`Metrics::record`). An interval closes
//! [`GRACE`] after its end, so a device that finished just before the boundary is in it; one
//! that reports later counts in the next open interval, and the intervals still add up to the
//! run's totals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::device::driver::now;
use crate::device::{Observation, Observer};
use crate::metrics::{
    Binned, FlowEvents, INTERVAL, IntervalClock, IntervalSpan, IntervalStats, IntervalTaken, Metrics, PhaseHistograms,
    THROTTLED,
};

/// How long after its end an interval closes: devices finishing at the boundary report in it.
pub(super) const GRACE: Duration = Duration::from_millis(200);

/// Flow events counted as they happen, by interval, shared by the loop and its device tasks.
pub(super) struct LiveEvents {
    clock: IntervalClock,
    bins: Mutex<Binned<FlowEvents>>,
}

impl LiveEvents {
    fn new(clock: IntervalClock) -> Self {
        Self { clock, bins: Mutex::new(Binned::default()) }
    }

    /// Counts an event at `at` (`count` adds it to its interval's figures).
    pub(super) fn count(&self, at: Instant, count: impl FnOnce(&mut FlowEvents)) {
        let mut bins = self.bins.lock().expect("the event bins are never held while panicking");
        count(bins.at(self.clock.index(at)));
    }

    fn take(&self, index: u64) -> FlowEvents {
        let mut bins = self.bins.lock().expect("the event bins are never held while panicking");
        bins.take(index, |mine, theirs| mine.add(theirs)).unwrap_or_default()
    }
}

/// A device's observer that counts its 429 replies as they arrive, then hands every
/// observation on to `inner` (the passive checks' log).
pub(super) struct Counting<O> {
    pub(super) inner: O,
    events: Arc<LiveEvents>,
}

impl<O> Counting<O> {
    pub(super) fn new(inner: O, events: Arc<LiveEvents>) -> Self {
        Self { inner, events }
    }
}

impl<O: Observer> Observer for Counting<O> {
    fn observe(&mut self, observation: Observation<'_>) {
        // A reply counts as the flow counts it: one that answers the request in flight.
        if let Observation::Reply { request: Some((rid, _)), topic: Some(reply), .. } = observation {
            if reply.status == THROTTLED && reply.rid == Some(rid) {
                self.events.count(now(), |events| events.throttled += 1);
            }
        }
        self.inner.observe(observation);
    }
}

/// The ticks' intervals: which closes next, and the running totals they add up to.
pub(super) struct Series {
    events: Arc<LiveEvents>,
    clock: IntervalClock,
    origin_unix_us: u64,
    next: u64,
    totals: Totals,
}

/// Every interval's figures added up so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Totals {
    pub(super) started: u64,
    pub(super) assigned: u64,
    pub(super) failed: u64,
    pub(super) aborted: u64,
    pub(super) late_starts: u64,
    pub(super) throttled: u64,
    pub(super) failures: BTreeMap<String, u64>,
}

impl Totals {
    /// Started and not finished, by the instants of their events.
    pub(super) fn in_flight(&self) -> u64 {
        self.started.saturating_sub(self.assigned + self.failed + self.aborted)
    }

    fn add(&mut self, stats: &IntervalStats, failures: &BTreeMap<String, u64>) {
        self.started += stats.started;
        self.assigned += stats.assigned;
        self.failed += stats.failed;
        self.aborted += stats.aborted;
        self.late_starts += stats.late_starts;
        self.throttled += stats.throttled;
        crate::metrics::add_counts(&mut self.failures, failures);
    }
}

/// One interval closed: its span, its figures and latencies, and the totals through it.
pub(super) struct Closed {
    pub(super) span: IntervalSpan,
    pub(super) taken: IntervalTaken,
    pub(super) totals: Totals,
}

impl Series {
    /// Intervals from `origin` (the plan's start instant), on the wall clock at `origin_unix_us`
    /// (microseconds since the Unix epoch).
    pub(super) fn new(origin: Instant, origin_unix_us: u64) -> Self {
        let clock = IntervalClock::new(origin);
        let events = Arc::new(LiveEvents::new(clock));
        Self { events, clock, origin_unix_us, next: 0, totals: Totals::default() }
    }

    pub(super) fn clock(&self) -> IntervalClock {
        self.clock
    }

    /// The counter the device tasks count their events into.
    pub(super) fn events(&self) -> &Arc<LiveEvents> {
        &self.events
    }

    /// The index of the next interval to close.
    pub(super) fn next_index(&self) -> u64 {
        self.next
    }

    /// When the next interval closes.
    pub(super) fn next_close(&self) -> Instant {
        self.clock.end(self.next) + GRACE
    }

    /// Whether the next interval has closed by `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        now >= self.next_close()
    }

    /// Closes the next interval, whole (ending at its boundary) or, for the run's last, at
    /// `last_end` since the origin. `spare`: histograms handed back, for `metrics` to reuse.
    pub(super) fn close(
        &mut self,
        metrics: &mut Metrics,
        spare: PhaseHistograms,
        last_end: Option<Duration>,
    ) -> Closed {
        let index = self.next;
        self.next += 1;
        let start = INTERVAL * index as u32;
        let end = last_end.map_or(start + INTERVAL, |end| end.max(start));
        let mut taken = metrics.take_interval_at(index, spare);
        let FlowEvents { started, throttled } = self.events.take(index);
        (taken.stats.started, taken.stats.throttled) = (started, throttled);
        self.totals.add(&taken.stats, &taken.failures);
        let span = IntervalSpan { index, start, end, origin_unix_us: self.origin_unix_us };
        Closed { span, taken, totals: self.totals.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_events_count_in_the_next_open_interval_and_totals_add_up() {
        let t0 = now();
        let mut series = Series::new(t0, 1_800_000_000_000_000);
        let mut metrics = Metrics::new().on_clock(series.clock());
        let events = series.events().clone();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        events.count(at(10), |e| e.started += 1);
        events.count(at(990), |e| e.throttled += 1);
        events.count(at(1_010), |e| e.throttled += 1);
        assert!(!series.due(at(1_100)) && series.due(at(1_000) + GRACE));
        let first = series.close(&mut metrics, PhaseHistograms::new(), None);
        assert_eq!((first.span.index, first.span.start, first.span.end), (0, Duration::ZERO, INTERVAL));
        assert_eq!((first.taken.stats.started, first.taken.stats.throttled), (1, 1));
        // A 429 of interval 0 counted after it closed goes into interval 1.
        events.count(at(500), |e| e.throttled += 1);
        let second = series.close(&mut metrics, PhaseHistograms::new(), Some(Duration::from_millis(1_400)));
        assert_eq!(second.span.end, Duration::from_millis(1_400));
        assert_eq!(second.taken.stats.throttled, 2);
        assert_eq!((second.totals.throttled, second.totals.started, second.totals.in_flight()), (3, 1, 1));
    }
}
