//! The dry run's forecast of a plan: how the target's quota will throttle it, who is assigned
//! and who gives up, and about how long it takes; and the text `dpsbench run --dry-run`
//! prints. Reads nothing and connects nowhere: the plan holds what the target is known to be.
//!
//! For the emulator (embedded, or a standalone one whose file the scenario names in
//! `[target].emulator_config`) it runs the emulator's own model (`simulate`): its token bucket,
//! full at the start, its `retry-after`, assignment delay and poll limit, against each device's
//! retry profile, over the plan's own arrival instants and up to its run limit. DPS does not
//! publish its bucket's size: for a DPS target it simulates both ends, a bucket that starts
//! empty and one that starts full with a minute's quota, and gives the range.

use std::time::Duration;

use super::{EmulatorModel, Load, Plan, TargetPlan};
use crate::device::Personality;
use crate::emulator::config::{self, PollLimit, QuotaConfig};

mod simulate;
mod text;

pub use simulate::{Device, Outcome, Service, simulate};
pub use text::dry_run;

/// DPS's quota on registrations, per unit and minute.
const DPS_UNIT_PER_MINUTE: u32 = 1000;

/// The `retry-after` DPS usually answers a register with; its assignment is read at the first
/// poll after it.
const DPS_RETRY_AFTER_SECONDS: u32 = 3;

/// The dry run's forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The registration quota the forecast assumes, a minute, and where it comes from (`None`:
    /// none, or none known).
    pub quota: Option<(u32, String)>,
    /// Whose model the forecast runs.
    pub basis: Basis,
    pub outcomes: Outcomes,
}

/// Whose model a forecast runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The emulator's: its bucket starts full.
    Emulator,
    /// DPS's, whose bucket's size is not published.
    Dps,
    /// A target on this machine whose quota the plan does not say: none assumed.
    UnknownLocal,
}

/// What the forecast predicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcomes {
    /// A closed model: its pace is the target's, not the plan's.
    Closed,
    /// One outcome: the emulator's model, or a target without a quota.
    Known(Outcome),
    /// DPS: with its bucket full at the start, and empty.
    Range { full: Outcome, empty: Outcome },
}

/// Forecasts `plan`: throttling, outcomes and duration.
pub fn predict(plan: &Plan) -> Forecast {
    let (model, basis) = model(plan);
    let quota = model
        .quota
        .filter(|_| model.source.is_some())
        .map(|q| (q.registrations_per_minute, model.source.clone().unwrap_or_default()));
    if !matches!(plan.load, Load::Open(_)) {
        return Forecast { quota, basis, outcomes: Outcomes::Closed };
    }
    let service = Service {
        retry_after_seconds: model.retry_after_seconds,
        assign_delay: model.assign_delay,
        quota: model.quota,
        poll_limit: model.poll_limit,
        starts_empty: false,
    };
    let run = |service| simulate(service, devices(plan), plan.max_duration);
    let outcomes = match basis {
        Basis::Dps => Outcomes::Range { full: run(service), empty: run(Service { starts_empty: true, ..service }) },
        Basis::Emulator | Basis::UnknownLocal => Outcomes::Known(run(service)),
    };
    Forecast { quota, basis, outcomes }
}

/// The model of the plan's target: the emulator's own, or DPS's as far as it is published.
/// `source` is `None` when the target has no quota, or none is known.
struct Model {
    source: Option<String>,
    retry_after_seconds: u32,
    assign_delay: Duration,
    quota: Option<QuotaConfig>,
    poll_limit: PollLimit,
}

impl Model {
    fn of_emulator(emulator: EmulatorModel) -> Self {
        let EmulatorModel { source, retry_after_seconds, assign_delay, quota, poll_limit } = emulator;
        let source = quota.map(|_| source);
        Self { source, retry_after_seconds, assign_delay, quota, poll_limit }
    }
}

fn model(plan: &Plan) -> (Model, Basis) {
    match &plan.target {
        TargetPlan::Embedded { settings, .. } => {
            let mut emulator = EmulatorModel::embedded(settings);
            emulator.source = "[target].registrations_per_minute".into();
            (Model::of_emulator(emulator), Basis::Emulator)
        }
        TargetPlan::Dps { emulator: Some(emulator), .. } => (Model::of_emulator(emulator.clone()), Basis::Emulator),
        // On this machine, with neither its file nor its units stated: the emulator's defaults
        // and no quota, which the dry run says it does not know.
        TargetPlan::Dps { loopback: true, dps_units: None, .. } => {
            let model = Model {
                source: None,
                retry_after_seconds: config::DEFAULT_RETRY_AFTER_SECONDS,
                assign_delay: Duration::from_millis(config::DEFAULT_ASSIGN_DELAY_MS),
                quota: None,
                poll_limit: PollLimit::default(),
            };
            (model, Basis::UnknownLocal)
        }
        // DPS publishes a rate per unit, not a burst. One unit unless stated.
        TargetPlan::Dps { dps_units, .. } => {
            let per_minute = dps_units.unwrap_or(1).saturating_mul(DPS_UNIT_PER_MINUTE);
            let source = match dps_units {
                Some(_) => "[target].dps_units",
                None => "one DPS unit ([target].dps_units unset)",
            };
            let model = Model {
                source: Some(source.into()),
                retry_after_seconds: DPS_RETRY_AFTER_SECONDS,
                assign_delay: Duration::from_secs(DPS_RETRY_AFTER_SECONDS.into()) / 2,
                quota: QuotaConfig::new(Some(per_minute), None).ok().flatten(),
                poll_limit: PollLimit::default(),
            };
            (model, Basis::Dps)
        }
    }
}

/// The devices an open plan starts within its limits (`run.duration_seconds`,
/// `run.max_duration_seconds`), in order, each with its retry profile (none for a closed model).
fn devices(plan: &Plan) -> impl Iterator<Item = Device> + '_ {
    let limit = plan.stop.duration.map_or(plan.max_duration, |d| d.min(plan.max_duration));
    let kinds: Vec<(Personality, Device)> = plan
        .personalities
        .personalities()
        .map(|p| {
            let settings = p.settings(&plan.flow);
            (p, Device { start: Duration::ZERO, retry: settings.retry, flow_limit: settings.timeouts.flow })
        })
        .collect();
    let arrivals = match &plan.load {
        Load::Open(arrivals) => Some(arrivals.arrivals()),
        Load::Closed { .. } => None,
    };
    arrivals
        .into_iter()
        .flatten()
        .take(usize::try_from(plan.stop.devices).unwrap_or(usize::MAX))
        .take_while(move |start| *start < limit)
        .enumerate()
        .map(move |(n, start)| {
            let personality = plan.personalities.of(n as u64);
            let kind = kinds.iter().find(|(p, _)| *p == personality).map_or(kinds[0].1, |(_, d)| *d);
            Device { start, ..kind }
        })
}

#[cfg(test)]
mod tests;
