//! One finished device as a row of `devices.csv` tells it.

use std::time::Duration;

use super::{Phase, single_phases};
use crate::device::{FailureKind, FlowReport, Outcome};

/// One finished device, as a row of `devices.csv` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub registration_id: String,
    pub personality: &'static str,
    /// `assigned`, `failed` or `aborted`.
    pub outcome: &'static str,
    /// The failure kind's label, for failed and aborted devices.
    pub failure_kind: Option<String>,
    /// Every phase's time in microseconds, in [`Phase::ALL`] order: `None` when not reached;
    /// for [`Phase::Poll`], the sum of the device's poll round trips.
    pub phase_us: [Option<u64>; Phase::ALL.len()],
    pub register_attempts: u32,
    pub polls: u32,
    pub hub: Option<String>,
}

impl DeviceRecord {
    pub fn of<O>(registration_id: &str, report: &FlowReport<O>) -> Self {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let mut phase_us = [None; Phase::ALL.len()];
        for (phase, duration) in single_phases(&report.timings) {
            phase_us[phase.index()] = duration.map(micros);
        }
        let polls = &report.timings.polls;
        phase_us[Phase::Poll.index()] = (!polls.is_empty()).then(|| polls.iter().copied().map(micros).sum());
        let (outcome, failure_kind, hub) = match &report.outcome {
            Outcome::Assigned { hub, .. } => ("assigned", None, Some(hub.clone())),
            Outcome::Failed(kind @ FailureKind::Aborted) => ("aborted", Some(kind.label()), None),
            Outcome::Connected => ("aborted", None, None),
            Outcome::Failed(kind) => ("failed", Some(kind.label()), None),
        };
        Self {
            registration_id: registration_id.to_string(),
            personality: report.personality.name(),
            outcome,
            failure_kind,
            phase_us,
            register_attempts: report.register_attempts,
            polls: report.polls,
            hub,
        }
    }
}
