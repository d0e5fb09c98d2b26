//! The *when* and *until* of a scenario: `[arrival]` resolved into a load model, the stop
//! condition, and the guard on plans aimed off this machine.

use super::*;

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

/// A target off this machine needs an explicit device count, an explicit ceiling on the rate of
/// new devices, and an open plan that stays under it.
pub(super) fn guard_production(file: &ScenarioFile, ceiling: Option<f64>) -> Result<(), FieldError> {
    let off = "the target is not on this machine";
    let Some(ceiling) = ceiling.filter(|c| c.is_finite() && *c > 0.0) else {
        return Err(("target.max_devices_per_second", format!("{off}: set a ceiling on new devices per second")));
    };
    if file.devices.count.is_none() {
        return Err(("devices.count", format!("{off}: give the number of devices explicitly")));
    }
    let peak = match load(&file.arrival, file.devices.count) {
        Ok(Load::Open(plan)) => plan.peak_rate(),
        Ok(Load::Closed { .. }) => {
            return Err((
                "arrival.model",
                format!("{off}: use an open plan with an explicit rate, not a closed model"),
            ));
        }
        Err(e) => return Err(e),
    };
    if peak > ceiling {
        return Err((
            "arrival",
            format!("the plan peaks at {peak} devices/s, above target.max_devices_per_second = {ceiling}"),
        ));
    }
    Ok(())
}

/// Resolves `[arrival]` into a load model, checking that each model has exactly its fields.
pub(super) fn load(arrival: &ArrivalSection, count: Option<u64>) -> Result<Load, FieldError> {
    let model = arrival.model.as_deref().unwrap_or("constant");
    let given: Vec<&str> = [
        ("rate", arrival.rate.is_some()),
        ("stages", arrival.stages.is_some()),
        ("within_seconds", arrival.within_seconds.is_some()),
        ("concurrency", arrival.concurrency.is_some()),
        ("seed", arrival.seed.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    let allowed: &[&str] = match model {
        "constant" => &["rate"],
        "poisson" => &["rate", "seed"],
        "stages" => &["stages"],
        "burst" => &["within_seconds", "seed"],
        "closed" => &["concurrency"],
        other => {
            return Err(("arrival.model", format!("{other:?} is not one of constant, stages, poisson, burst, closed")));
        }
    };
    if let Some(extra) = given.iter().find(|name| !allowed.contains(name)) {
        return Err((
            "arrival.model",
            format!("`{extra}` does not apply to model {model:?} (it takes {})", allowed.join(", ")),
        ));
    }
    let arrival_error = |e: crate::arrival::ArrivalError| e.to_string();
    let rate = || arrival.rate.ok_or(("arrival.rate", format!("model {model:?} needs a rate (devices per second)")));
    let seed = arrival.seed.unwrap_or(0);
    Ok(match model {
        "constant" => Load::Open(ArrivalPlan::constant(rate()?).map_err(|e| ("arrival.rate", arrival_error(e)))?),
        "poisson" => Load::Open(ArrivalPlan::poisson(rate()?, seed).map_err(|e| ("arrival.rate", arrival_error(e)))?),
        "stages" => {
            let texts =
                arrival.stages.as_ref().ok_or(("arrival.stages", "model \"stages\" needs stages".to_string()))?;
            let stages = texts
                .iter()
                .map(|t| Stage::parse(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ("arrival.stages", arrival_error(e)))?;
            Load::Open(ArrivalPlan::stages(stages).map_err(|e| ("arrival.stages", arrival_error(e)))?)
        }
        "burst" => {
            let within = arrival
                .within_seconds
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or(("arrival.within_seconds", "model \"burst\" needs a positive within_seconds".to_string()))?;
            let devices = count.ok_or(("devices.count", "model \"burst\" needs devices.count".to_string()))?;
            Load::Open(ArrivalPlan::Burst { devices, within: Duration::from_secs_f64(within), seed })
        }
        _ => {
            let concurrency = arrival
                .concurrency
                .filter(|c| *c > 0)
                .ok_or(("arrival.concurrency", "model \"closed\" needs concurrency of at least 1".to_string()))?;
            Load::Closed { concurrency }
        }
    })
}

/// Most devices the run may start: the count given, else what the plan and duration imply.
pub(super) fn stop_count(load: &Load, count: Option<u64>, duration: Option<Duration>) -> Result<u64, FieldError> {
    if count == Some(0) {
        return Err(("devices.count", "must be at least 1".into()));
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
    count.or(natural).or(from_duration).filter(|n| *n > 0).ok_or((
        "devices.count",
        "give devices.count, or run.duration_seconds with a constant or poisson plan, so the run has an end".into(),
    ))
}
