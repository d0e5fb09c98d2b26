//! What the arrival loop ends with: how the run ended, the devices it started (and those that
//! never did, or panicked), and what it folded from the devices that finished. Plain data for
//! the summary.

use std::time::Duration;

use super::stall::LagOutsideStalls;
use crate::conformance::passive::PassiveTally;
use crate::metrics::Metrics;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Every planned start happened and every device finished.
    Complete,
    /// Interrupted: arrivals stopped and in-flight devices drained (or were aborted).
    Interrupted,
    /// `max_duration_seconds` passed.
    TimedOut,
    /// A device could not be prepared (an X.509 certificate that could not be minted or
    /// cached): no device started after it.
    Unprepared,
}

/// What the arrival loop ends with.
pub(super) struct Arrivals {
    pub metrics: Metrics,
    /// The passive checks' tally.
    pub checks: PassiveTally,
    pub started: Started,
    pub ending: Ending,
    /// The run's length, from the plan's zero.
    pub elapsed: Duration,
    /// The starts sorted by the target's stalls, when the loop was told of them.
    pub lag_outside_stalls: Option<LagOutsideStalls>,
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
    /// Device tasks that panicked and left no report.
    pub panicked: Panicked,
}

/// Device tasks that panicked (a bug in dpsbench, not a failure of the target): how many, and
/// what the first one said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Panicked {
    pub count: u64,
    pub first: Option<String>,
}

impl Panicked {
    pub(super) fn add(&mut self, payload: Box<dyn std::any::Any + Send>) {
        self.count += 1;
        if self.first.is_none() {
            let message = match payload.downcast::<String>() {
                Ok(text) => *text,
                Err(payload) => {
                    payload.downcast::<&str>().map_or_else(|_| "(no message)".into(), |text| (*text).into())
                }
            };
            self.first = Some(message);
        }
    }

    /// The summary's note, when any task panicked.
    pub(super) fn note(&self) -> Option<String> {
        (self.count > 0).then(|| {
            format!(
                "{} device tasks panicked, so their devices count as not finished (a bug in dpsbench, not a failure of \
                 the target; the first said: {})",
                self.count,
                self.first.as_deref().unwrap_or("(no message)")
            )
        })
    }
}
