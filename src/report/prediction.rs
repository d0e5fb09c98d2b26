//! What a dry run predicts: whether the target's registration quota will throttle the plan, and
//! about how long registering everyone takes. Pure arithmetic on the plan; checked against real
//! runs by the CLI contract tests.
//!
//! The model is the emulator's (and DPS's) token bucket: it starts full with a minute's quota
//! and refills at the quota's rate. Arrivals beyond the bucket plus its refill are throttled, and
//! the rest then register at the refill rate.

use crate::scenario::{Plan, TargetPlan};

/// A registration quota: a bucket of `burst` tokens refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub burst: f64,
    pub per_second: f64,
    /// Where the figures come from, for the dry run's line.
    pub source: &'static str,
}

/// The dry run's forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The registration quota, when the plan says one (`None`: no quota, or unknown).
    pub quota: Option<Quota>,
    /// Whether 429s are certain.
    pub throttled: bool,
    /// About how long until every device is assigned, in seconds (`None` for a closed model).
    pub seconds: Option<f64>,
}

/// The quota a plan's target enforces, as far as the plan says.
pub fn quota(plan: &Plan) -> Option<Quota> {
    match &plan.target {
        TargetPlan::Embedded { settings, .. } => settings.quota.map(|q| Quota {
            burst: f64::from(q.registrations_per_minute),
            per_second: f64::from(q.registrations_per_minute) / 60.0,
            source: "[target].registrations_per_minute",
        }),
        // On this machine, unless the scenario states its units: the emulator's own
        // configuration decides, which the plan does not say.
        TargetPlan::Dps { loopback: true, dps_units: None, .. } => None,
        // DPS publishes a rate per unit, not a burst: assume none. One unit unless stated.
        TargetPlan::Dps { dps_units, .. } => Some(Quota {
            burst: 0.0,
            per_second: f64::from(dps_units.unwrap_or(1)) * 1000.0 / 60.0,
            source: if dps_units.is_some() { "[target].dps_units" } else { "one DPS unit ([target].dps_units unset)" },
        }),
    }
}

/// Forecasts `plan`: throttling and duration.
pub fn predict(plan: &Plan) -> Prediction {
    let quota = quota(plan);
    let Some(arrivals) = plan.arrival_seconds() else {
        return Prediction { quota, throttled: false, seconds: None };
    };
    let devices = plan.stop.devices as f64;
    // After its register request a device waits for the assignment: retry-after when the
    // target assigns later than at once, then one more round trip.
    let wait = match &plan.target {
        TargetPlan::Embedded { settings, .. } if !settings.assign_delay.is_zero() => {
            settings.assign_delay.as_secs_f64().max(f64::from(settings.retry_after_seconds))
        }
        TargetPlan::Embedded { .. } => 0.0,
        TargetPlan::Dps { .. } => 3.0,
    };
    let throttled = quota.is_some_and(|q| devices > q.burst + q.per_second * arrivals);
    let registering = match quota {
        Some(q) if throttled => ((devices - q.burst) / q.per_second).max(arrivals),
        _ => arrivals,
    };
    Prediction { quota, throttled, seconds: Some(registering + wait) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScenarioFile;

    fn plan(text: &str) -> Plan {
        let file: ScenarioFile = crate::toml_file::parse(text).expect("a valid scenario");
        Plan::resolve(file, std::path::Path::new("t.toml"), &|_| Some("AAAA".into())).expect("a valid plan")
    }

    #[test]
    fn no_quota_no_throttling_and_the_arrivals_set_the_duration() {
        let p = predict(&plan(
            "name = \"q\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 1\nassign_delay_ms = 200\n\
             [devices]\ncount = 1001\n[arrival]\nrate = 200\n",
        ));
        assert_eq!((p.quota, p.throttled), (None, false));
        assert!((p.seconds.unwrap() - 6.0).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn a_burst_over_the_bucket_is_throttled_and_drains_at_the_refill_rate() {
        let p = predict(&plan(
            "name = \"s\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 1\nassign_delay_ms = 200\n\
             registrations_per_minute = 1200\n[devices]\ncount = 2000\n[arrival]\nmodel = \"burst\"\nwithin_seconds = 5\n",
        ));
        assert!(p.throttled, "{p:?}");
        assert!((p.seconds.unwrap() - 41.0).abs() < 0.01, "(2000 - 1200) / 20 + 1: {p:?}");
        let within = predict(&plan(
            "name = \"s\"\n[target]\nkind = \"embedded\"\nregistrations_per_minute = 1200\n[devices]\ncount = 1000\n\
             [arrival]\nrate = 100\n",
        ));
        assert!(!within.throttled, "1,000 fit the full bucket: {within:?}");
    }
}
