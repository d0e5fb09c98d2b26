//! A run's summary, assembled once from its parts: the plan, the options it ran with, the
//! context it set up and what it measured; and the parts the runner works out (the shard a run
//! was, the emulator's counters, the host). The verdict is `validity`'s. (The types are
//! `results`'.)

use super::context::RunContext;
use super::ended::{Arrivals, Ending, Started};
use super::options::RunOptions;
use super::stall::Readings;
use super::validity;
use crate::emulator::{Service, ServiceStats};
use crate::metrics::PlannedStarts;
use crate::results::{
    CpuTime, EmulatorCounts, GeneratorCost, HostInfo, RunSummary, SUMMARY_SCHEMA, ScenarioInfo, ShardInfo, TargetInfo,
};
use crate::scenario::{Load, Plan};

/// What a run measured and said, for its summary.
pub(super) struct Measured {
    /// When the plan's zero fell, RFC 3339.
    pub started_at: String,
    /// How far from `--start-at` it fell (see `start`).
    pub start_offset_seconds: Option<f64>,
    pub arrivals: Arrivals,
    /// The process's CPU time over the run.
    pub cpu_used: CpuTime,
    pub readings: Readings,
    /// What the embedded emulator served.
    pub emulator: Option<EmulatorCounts>,
    /// What setting up said.
    pub notes: Vec<String>,
}

/// The summary of a run of `plan` as `options` said, in `context`: every field filled here,
/// once.
pub(super) fn assemble(plan: &Plan, options: &RunOptions, context: &RunContext, measured: Measured) -> RunSummary {
    let Measured { started_at, start_offset_seconds, arrivals, cpu_used, readings, emulator, mut notes } = measured;
    let Arrivals { metrics, checks, started, ending, elapsed, lag_outside_stalls } = arrivals;
    notes.extend(preparation_note(plan, &started));
    notes.extend(started.panicked.note());
    let planned = PlannedStarts {
        not_started: started.not_started,
        scheduled: !matches!(plan.load, Load::Closed { .. }),
        offered_per_second: plan.offered_rate(),
    };
    let results = metrics.summary_of(started.started, &planned);
    let generator = GeneratorCost::new(cpu_used, started.started, results.devices.assigned, emulator.is_some());
    let budget = &context.budget;
    let limit_cap = budget.note.is_some().then_some(budget.in_flight_cap).flatten().map(|cap| (budget.limit, cap));
    let target_stalls = lag_outside_stalls.and_then(|lag| lag.stalls());
    let validity = validity::validity(plan, &results, &readings, target_stalls, limit_cap);
    notes.extend(validity::target_stall_note(plan, &validity));
    notes.extend(validity::misbehaviour_note(plan, &results));
    let slo = (!plan.slo.is_empty()).then(|| {
        let invalid = (!validity.valid).then(|| validity.reasons.join("; "));
        plan.slo.judge(&results, invalid.as_deref())
    });
    RunSummary {
        schema: SUMMARY_SCHEMA.into(),
        scenario: ScenarioInfo {
            name: plan.name.clone(),
            file: plan.file.display().to_string(),
            devices: plan.stop.devices,
            arrival: plan.load.describe(),
            duration_seconds: plan.stop.duration.map(|d| d.as_secs_f64()),
            overrides: options.overrides.clone(),
        },
        target: TargetInfo {
            kind: context.target.kind.into(),
            address: context.target.target.address.to_string(),
            id_scope: plan.id_scope.to_string(),
        },
        host: context.host.clone(),
        started_at,
        duration_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        partial: ending != Ending::Complete,
        validity,
        open_files_limit: budget.limit,
        notes,
        results,
        conformance: checks.counts(),
        emulator,
        generator: Some(generator),
        slo,
        shard: Some(ShardInfo::of(plan, options, start_offset_seconds)),
        merged: None,
        misbehave: plan.flow.misbehave.list(),
    }
}

/// What the summary says about preparing devices, when it is worth a word: arrivals stopped by
/// a device that could not be prepared, or starts of an open plan that found their device not
/// yet prepared (their schedule lag includes its preparation).
fn preparation_note(plan: &Plan, started: &Started) -> Option<String> {
    if let Some(unprepared) = &started.unprepared {
        return Some(unprepared.clone());
    }
    let open = matches!(plan.load, Load::Open(_));
    (open && started.prepared_late > 0).then(|| {
        format!(
            "{} starts found their device not yet prepared (the arrival loop had no time to prepare ahead) and \
             prepared it as they started; their schedule lag includes it",
            started.prepared_late
        )
    })
}

impl ShardInfo {
    pub(super) fn of(plan: &Plan, options: &RunOptions, start_offset_seconds: Option<f64>) -> Self {
        let shard = options.part.shard();
        Self {
            index: shard.index,
            count: shard.count,
            plan_hash: crate::shard::plan_hash(plan),
            start_at: options.start_at.map(crate::timestamp::rfc3339),
            start_offset_seconds,
        }
    }
}

impl HostInfo {
    /// The machine this process runs on.
    pub(super) fn current() -> Self {
        Self {
            hostname: crate::host::name(),
            cpus: crate::host::cpus(),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            dpsbench_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl EmulatorCounts {
    pub(super) fn of(service: &Service) -> Self {
        let s = &service.stats;
        Self {
            connections: ServiceStats::get(&s.connections),
            connects_refused: ServiceStats::get(&s.connects_refused),
            registrations: ServiceStats::get(&s.registrations),
            polls: ServiceStats::get(&s.polls),
            throttled: ServiceStats::get(&s.throttled),
            faults: service.faults.counts.snapshot(),
        }
    }
}
