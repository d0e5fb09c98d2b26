//! The verdict on whether the generator kept its plan: typed reasons ([`InvalidReason`]) with
//! the thresholds they rest on named once, rendered into `summary.json`'s prose; and what the
//! summary says of the target's stalls. Pure: takes the run's figures, reads nothing.

use std::fmt;

use super::stall::Readings;
use crate::device::{Misbehaviour, RetryProfile};
use crate::metrics::{Phase, Summary};
use crate::results::{TargetStalls, Validity};
use crate::scenario::{Load, Plan};

/// The share of the machine's cores under which a run left CPU to spare: a late probe thread is
/// then the machine's doing, not the generator's (the probe shares the cores it uses).
pub(super) const SPARE_CPU_SHARE: f64 = 0.75;
/// The hypervisor's share of the CPU time (steal, percent) at which the machine is named even
/// when the run used every core.
pub(super) const HOST_STEAL_PERCENT: f64 = 5.0;
/// The steal (percent) worth a word in a reason.
pub(super) const STEAL_WORTH_SAYING_PERCENT: f64 = 1.0;
/// The machine held the starts back when a plain sleeping thread woke at least 1/this as late as
/// they were (the probe's lag times this reaches the lag outside the stalls).
pub(super) const MACHINE_LAG_FACTOR: u64 = 2;
/// The target's stalls excuse a lag only when at most 1/this of the starts fell within them
/// (then the figure of the rest says whether the generator kept its plan).
pub(super) const STALLS_EXCUSE_AT_MOST_ONE_IN: u64 = 2;

/// The misbehaviours whose requests come before their `retry-after` on purpose: under them the
/// early requests are the failing control's point, not a harness bug.
const EARLY_ON_PURPOSE: [Misbehaviour; 2] = [Misbehaviour::PollEarly, Misbehaviour::IgnoreThrottleRetryAfter];

/// Why a run is invalid: each renders as the sentence `summary.json` gives.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum InvalidReason {
    /// The schedule lag p99 (outside the target's stalls, when they excused the rest) exceeds
    /// `run.max_schedule_lag_p99_ms`.
    ScheduleLag { lag_us: u64, outside_stalls: bool, bound_us: u64, cause: LagCause },
    /// Requests sent before their `retry-after` had passed, under dpsbench's own retry profile.
    EarlyRequests(u64),
}

/// Who held the starts back, and the advice that follows.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum LagCause {
    /// The open-files limit imposed an in-flight cap the scenario did not ask for.
    OpenFilesLimit { limit: u64, cap: u64 },
    /// The machine itself: a plain thread woke `machine_p99_us` late; the hypervisor's steal
    /// when worth saying.
    Host { machine_p99_us: u64, steal_percent: Option<f64> },
    /// The generator, at the scenario's in-flight cap.
    InFlightCap(u64),
    /// The generator, with no cap to raise.
    Generator,
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReason::ScheduleLag { lag_us, outside_stalls, bound_us, cause } => {
                let outside = if *outside_stalls { " outside the target's stalls" } else { "" };
                write!(
                    f,
                    "schedule lag p99{outside} {} exceeds run.max_schedule_lag_p99_ms ({}): {cause}",
                    millis(*lag_us),
                    millis(*bound_us)
                )
            }
            InvalidReason::EarlyRequests(count) => {
                write!(f, "{count} requests were sent before their retry-after had passed (a harness bug)")
            }
        }
    }
}

impl fmt::Display for LagCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LagCause::OpenFilesLimit { limit, cap } => write!(
                f,
                "the open-files limit of {limit} allowed only {cap} devices in flight, so starts waited for a free \
                 slot (raise the hard limit, ulimit -Hn, or lower the rate)"
            ),
            LagCause::Host { machine_p99_us, steal_percent } => {
                let steal = steal_percent.map(|p| format!("; the hypervisor took {p}% of its CPU time"));
                write!(
                    f,
                    "this machine woke a plain sleeping thread outside the generator's runtime {} late at p99{}: the \
                     host, not the generator's load, held the starts back (run on a quieter or dedicated machine)",
                    millis(*machine_p99_us),
                    steal.unwrap_or_default()
                )
            }
            LagCause::InFlightCap(cap) => write!(
                f,
                "the generator could not keep the arrival plan (raise run.max_in_flight from {cap}, lower the rate, \
                 or add generator capacity)"
            ),
            LagCause::Generator => {
                write!(f, "the generator could not keep the arrival plan (lower the rate or add generator capacity)")
            }
        }
    }
}

/// Judges whether the generator kept its plan, and names the side at fault when it did not.
/// `limit_cap` is the open-files limit and the in-flight cap it imposed, when it imposed one the
/// scenario did not ask for. A lag that only the target's stalls (`target_stalls`) pushed over
/// the bound leaves the run valid: outside them the plan was kept, and `assigned`, measured from
/// each intended start, shows the stall in full.
pub(super) fn validity(
    plan: &Plan,
    results: &Summary,
    readings: &Readings,
    target_stalls: Option<TargetStalls>,
    limit_cap: Option<(u64, u64)>,
) -> Validity {
    let reasons = invalid_reasons(plan, results, readings, target_stalls.as_ref(), limit_cap);
    Validity {
        valid: reasons.is_empty(),
        reasons: reasons.iter().map(InvalidReason::to_string).collect(),
        schedule_lag_p99_us: results.phase(Phase::ScheduleLag).map(|p| p.p99_us).unwrap_or(0),
        runtime_stall_p99_us: readings.runtime_p99_us,
        machine_stall_p99_us: readings.machine_p99_us,
        steal_percent: readings.steal_percent,
        target_stalls,
    }
}

/// Why the run is invalid (none when it is valid); see [`validity`].
pub(super) fn invalid_reasons(
    plan: &Plan,
    results: &Summary,
    readings: &Readings,
    target_stalls: Option<&TargetStalls>,
    limit_cap: Option<(u64, u64)>,
) -> Vec<InvalidReason> {
    let schedule_lag_p99_us = results.phase(Phase::ScheduleLag).map(|p| p.p99_us).unwrap_or(0);
    let mut reasons = Vec::new();
    let bound = plan.max_schedule_lag_p99.as_micros() as u64;
    let starts = results.phase(Phase::ScheduleLag).map_or(0, |p| p.count);
    let excused = target_stalls.filter(|t| t.starts_within.saturating_mul(STALLS_EXCUSE_AT_MOST_ONE_IN) <= starts);
    let outside_stalls = excused.map_or(schedule_lag_p99_us, |t| t.schedule_lag_p99_outside_us);
    if matches!(plan.load, Load::Open(_)) && schedule_lag_p99_us > bound && outside_stalls > bound {
        reasons.push(InvalidReason::ScheduleLag {
            lag_us: outside_stalls,
            outside_stalls: excused.is_some(),
            bound_us: bound,
            cause: lag_cause(plan, readings, outside_stalls, limit_cap),
        });
    }
    if results.early_requests > 0 && plan.flow.retry.profile == RetryProfile::Dpsbench && !early_on_purpose(plan) {
        reasons.push(InvalidReason::EarlyRequests(results.early_requests));
    }
    reasons
}

/// Whether the plan's devices send requests before their `retry-after` on purpose.
fn early_on_purpose(plan: &Plan) -> bool {
    EARLY_ON_PURPOSE.iter().any(|m| plan.flow.misbehave.has(*m))
}

/// What the summary says of a failing control (`[devices] misbehave`): its devices break client
/// checks on purpose, and the early requests they sent are that, not a harness bug. `None`
/// when the devices behave.
pub(super) fn misbehaviour_note(plan: &Plan, results: &Summary) -> Option<String> {
    let misbehave = plan.flow.misbehave.list();
    if misbehave.is_empty() {
        return None;
    }
    let names: Vec<String> = misbehave.iter().map(ToString::to_string).collect();
    let early = match results.early_requests {
        0 => String::new(),
        n if early_on_purpose(plan) => format!(", and sent {n} requests before their retry-after had passed"),
        _ => String::new(),
    };
    Some(format!(
        "a failing control: the devices break client checks on purpose ([devices] misbehave = {}){early}; a judging \
         emulator (dpsbench emulator --client-report) reports which checks they broke",
        names.join(", ")
    ))
}

/// Who held back starts `lag_us` late at p99.
fn lag_cause(plan: &Plan, readings: &Readings, lag_us: u64, limit_cap: Option<(u64, u64)>) -> LagCause {
    let machine = readings.machine_p99_us.unwrap_or(0);
    // The probe thread shares the cores: a generator using them all makes it late too, so the
    // machine is named only when the run left CPU to spare or the hypervisor took some.
    let host_held = readings.cpu_share.is_none_or(|share| share < SPARE_CPU_SHARE)
        || readings.steal_percent.is_some_and(|p| p >= HOST_STEAL_PERCENT);
    match (limit_cap, plan.max_in_flight) {
        (Some((limit, cap)), _) => LagCause::OpenFilesLimit { limit, cap },
        // The machine alone makes a sleeping thread this late: the plan was held back by the
        // host (its hypervisor, other processes), not by the generator's load.
        _ if host_held && machine.saturating_mul(MACHINE_LAG_FACTOR) >= lag_us => LagCause::Host {
            machine_p99_us: machine,
            steal_percent: readings.steal_percent.filter(|p| *p >= STEAL_WORTH_SAYING_PERCENT),
        },
        (None, Some(cap)) => LagCause::InFlightCap(cap),
        (None, None) => LagCause::Generator,
    }
}

/// What the summary says of the target's stalls: when they pushed the lag over the bound, that
/// the target, not the generator, did. It does not say the answers then came at once: a window
/// also ends when the waiting devices gave up on a target that never answered again.
pub(super) fn target_stall_note(plan: &Plan, validity: &Validity) -> Option<String> {
    let stalls = validity.target_stalls.as_ref()?;
    let bound = plan.max_schedule_lag_p99.as_micros() as u64;
    let over = validity.valid && validity.schedule_lag_p99_us > bound && stalls.schedule_lag_p99_outside_us <= bound;
    let lag = if over {
        format!(
            "; the {} starts planned in them are what put the schedule lag p99 at {} (outside them {}: the generator \
             kept its plan)",
            stalls.starts_within,
            millis(validity.schedule_lag_p99_us),
            millis(stalls.schedule_lag_p99_outside_us)
        )
    } else {
        String::new()
    };
    Some(format!(
        "the target stopped answering waiting devices {} time{} ({:.3} s in all, the longest {:.3} s, each until it \
         answered again or the waiting devices gave up, and the generator had caught up){lag}",
        stalls.count,
        if stalls.count == 1 { "" } else { "s" },
        stalls.seconds,
        stalls.longest_seconds
    ))
}

/// Microseconds as milliseconds for a message: `1234.5 ms`.
fn millis(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests;
