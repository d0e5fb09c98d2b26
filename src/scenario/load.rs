//! The *when* and *until* of a scenario: `[arrival]` resolved into a load model, the stop
//! condition, and the guard on plans aimed off this machine.

use std::time::Duration;

use serde::Deserialize;

use super::FieldError;
use crate::arrival::{ArrivalPlan, Stage};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSection {
    /// `constant` (default), `stages`, `poisson`, `burst` or `closed`.
    #[serde(default)]
    pub model: ArrivalModel,
    /// Devices started per second (constant, poisson).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Stages such as `"30s:0->500/s"`, `"2m:500/s"` (stages).
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    /// Window in which every device starts (burst).
    #[serde(default)]
    pub within_seconds: Option<f64>,
    /// Devices in flight at all times (closed).
    #[serde(default)]
    pub concurrency: Option<u64>,
    /// Seed of the random plans (poisson, burst).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The arrival models `[arrival] model` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalModel {
    #[default]
    Constant,
    Stages,
    Poisson,
    Burst,
    Closed,
}

impl ArrivalModel {
    /// The name a scenario gives.
    pub fn name(self) -> &'static str {
        match self {
            ArrivalModel::Constant => "constant",
            ArrivalModel::Stages => "stages",
            ArrivalModel::Poisson => "poisson",
            ArrivalModel::Burst => "burst",
            ArrivalModel::Closed => "closed",
        }
    }

    /// The `[arrival]` fields this model takes.
    fn fields(self) -> &'static [&'static str] {
        match self {
            ArrivalModel::Constant => &["rate"],
            ArrivalModel::Poisson => &["rate", "seed"],
            ArrivalModel::Stages => &["stages"],
            ArrivalModel::Burst => &["within_seconds", "seed"],
            ArrivalModel::Closed => &["concurrency"],
        }
    }
}

/// How devices are started: on an open arrival plan, or closed (one starts as one finishes).
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    Open(ArrivalPlan),
    Closed { concurrency: u64 },
}

impl Load {
    /// One line for humans: `constant 200/s`, `closed, 50 in flight`, ...
    pub fn describe(&self) -> String {
        match self {
            Load::Open(ArrivalPlan::Constant { rate }) => format!("constant {rate}/s"),
            Load::Open(ArrivalPlan::Stages(stages)) => {
                format!("{} stages, peak {}/s", stages.len(), Load::Open(ArrivalPlan::Stages(stages.clone())).peak())
            }
            Load::Open(ArrivalPlan::Poisson { rate, .. }) => format!("poisson {rate}/s"),
            Load::Open(ArrivalPlan::Burst { devices, within, .. }) => {
                format!("burst of {devices} within {} s", within.as_secs_f64())
            }
            Load::Closed { concurrency } => format!("closed, {concurrency} in flight"),
        }
    }

    fn peak(&self) -> f64 {
        match self {
            Load::Open(plan) => plan.peak_rate(),
            Load::Closed { .. } => 0.0,
        }
    }
}

/// When the run stops starting devices: after `devices`, or after `duration`, whichever first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    pub devices: u64,
    pub duration: Option<Duration>,
}

/// A target off this machine needs an explicit device count and an open plan that stays under
/// the ceiling on new devices per second (which the target section requires).
pub(super) fn guard_production(load: &Load, count: Option<u64>, ceiling: f64) -> Result<(), FieldError> {
    let off = "the target is not on this machine";
    if count.is_none() {
        return Err(FieldError::new("devices.count", format!("{off}: give the number of devices explicitly")));
    }
    let peak = match load {
        Load::Open(plan) => plan.peak_rate(),
        Load::Closed { .. } => {
            return Err(FieldError::new(
                "arrival.model",
                format!("{off}: use an open plan with an explicit rate, not a closed model"),
            ));
        }
    };
    if peak > ceiling {
        return Err(FieldError::new(
            "arrival",
            format!("the plan peaks at {peak} devices/s, above target.max_devices_per_second = {ceiling}"),
        ));
    }
    Ok(())
}

/// Resolves `[arrival]` into a load model, checking that each model has exactly its fields.
pub(super) fn load(arrival: &ArrivalSection, count: Option<u64>) -> Result<Load, FieldError> {
    let model = arrival.model;
    let given = [
        ("rate", arrival.rate.is_some()),
        ("stages", arrival.stages.is_some()),
        ("within_seconds", arrival.within_seconds.is_some()),
        ("concurrency", arrival.concurrency.is_some()),
        ("seed", arrival.seed.is_some()),
    ];
    let allowed = model.fields();
    if let Some((extra, _)) = given.iter().find(|(name, present)| *present && !allowed.contains(name)) {
        return Err(FieldError::new(
            "arrival.model",
            format!("`{extra}` does not apply to model {:?} (it takes {})", model.name(), allowed.join(", ")),
        ));
    }
    let arrival_error =
        |field: &'static str| move |e: crate::arrival::ArrivalError| FieldError::new(field, e.to_string());
    let rate = || {
        arrival.rate.ok_or_else(|| {
            FieldError::new("arrival.rate", format!("model {:?} needs a rate (devices per second)", model.name()))
        })
    };
    let seed = arrival.seed.unwrap_or(0);
    Ok(match model {
        ArrivalModel::Constant => Load::Open(ArrivalPlan::constant(rate()?).map_err(arrival_error("arrival.rate"))?),
        ArrivalModel::Poisson => {
            Load::Open(ArrivalPlan::poisson(rate()?, seed).map_err(arrival_error("arrival.rate"))?)
        }
        ArrivalModel::Stages => {
            let texts = arrival
                .stages
                .as_ref()
                .ok_or_else(|| FieldError::new("arrival.stages", "model \"stages\" needs stages"))?;
            let stages = texts
                .iter()
                .map(|t| Stage::parse(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(arrival_error("arrival.stages"))?;
            Load::Open(ArrivalPlan::stages(stages).map_err(arrival_error("arrival.stages"))?)
        }
        ArrivalModel::Burst => {
            let within = arrival.within_seconds.filter(|s| s.is_finite() && *s > 0.0).ok_or_else(|| {
                FieldError::new("arrival.within_seconds", "model \"burst\" needs a positive within_seconds")
            })?;
            let devices =
                count.ok_or_else(|| FieldError::new("devices.count", "model \"burst\" needs devices.count"))?;
            Load::Open(ArrivalPlan::Burst { devices, within: Duration::from_secs_f64(within), seed })
        }
        ArrivalModel::Closed => {
            let concurrency = arrival.concurrency.filter(|c| *c > 0).ok_or_else(|| {
                FieldError::new("arrival.concurrency", "model \"closed\" needs concurrency of at least 1")
            })?;
            Load::Closed { concurrency }
        }
    })
}

/// Most devices the run may start: the count given, else what the plan and duration imply.
pub(super) fn stop_count(load: &Load, count: Option<u64>, duration: Option<Duration>) -> Result<u64, FieldError> {
    if count == Some(0) {
        return Err(FieldError::new("devices.count", "must be at least 1"));
    }
    let natural = match load {
        Load::Open(plan) => plan.natural_count(),
        Load::Closed { .. } => None,
    };
    let from_duration = match (load, duration) {
        // Enough for the duration; Poisson gets six standard deviations of headroom.
        (Load::Open(ArrivalPlan::Constant { rate }), Some(d)) => Some((rate * d.as_secs_f64()).ceil() as u64 + 1),
        (Load::Open(ArrivalPlan::Poisson { rate, .. }), Some(d)) => {
            let mean = rate * d.as_secs_f64();
            Some((mean + 6.0 * mean.sqrt()).ceil() as u64 + 10)
        }
        _ => None,
    };
    count.or(natural).or(from_duration).filter(|n| *n > 0).ok_or_else(|| {
        FieldError::new(
            "devices.count",
            "give devices.count, or run.duration_seconds with a constant or poisson plan, so the run has an end",
        )
    })
}
