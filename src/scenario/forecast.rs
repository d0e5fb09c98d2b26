//! The dry run's forecast of a plan: whether the target's registration quota will throttle it,
//! about how long registering everyone takes, and the text `dpsbench run --dry-run` prints. Pure
//! arithmetic on the plan; checked against real runs by the CLI contract tests.
//!
//! The model is the emulator's (and DPS's) token bucket: it starts full with a minute's quota
//! and refills at the quota's rate. Arrivals beyond the bucket plus its refill are throttled, and
//! the rest then register at the refill rate.

use std::fmt::Write as _;

use super::{Plan, TargetPlan};
use crate::device::Transport;

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

/// What `dpsbench run --dry-run` prints: the resolved plan, what it will bill and the throttling
/// to expect, without touching the network. A shard runs its own part of the plan: `devices` are
/// those it starts, and bills; `shard` is its `K/N` when it is one.
pub fn dry_run(plan: &Plan, devices: u64, shard: Option<String>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario    {}", super::named_with_source(&plan.name, &plan.file.to_string_lossy()));
    let (target, billed) = match &plan.target {
        TargetPlan::Embedded { .. } => {
            ("the embedded emulator on 127.0.0.1 (nothing leaves this machine)".to_string(), false)
        }
        TargetPlan::Dps { host, port, ca, transport, loopback, .. } => {
            let trust = match ca {
                Some((_, path)) => format!("trusting {}", path.display()),
                None => "trusting the public web roots".into(),
            };
            let transport = match transport {
                Transport::Mqtt => "MQTT over TLS 1.2".to_string(),
                Transport::WebSocket { path, .. } => format!("MQTT over WebSocket ({path}) over TLS 1.2"),
            };
            let place = if *loopback { "on this machine" } else { "NOT on this machine" };
            (format!("{host}:{port}, {transport}, {trust}; {place}"), !*loopback)
        }
    };
    let _ = writeln!(out, "target      {target}");
    let _ = writeln!(out, "id scope    {}", plan.id_scope);
    let mix: Vec<&str> = plan.personalities.personalities().map(|p| p.name()).collect();
    let of_plan = match shard {
        None => String::new(),
        Some(shard) => format!(", shard {shard} of the plan's {}", plan.stop.devices),
    };
    let _ = writeln!(out, "devices     up to {devices} ({}){of_plan}", mix.join(", "));
    let _ = writeln!(out, "arrivals    {}", plan.load.describe());
    let prediction = predict(plan);
    match plan.arrival_seconds() {
        Some(seconds) => {
            let _ = writeln!(
                out,
                "duration    arrivals end after about {seconds:.0} s; run limit {} s",
                plan.max_duration.as_secs()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "duration    set by the target's speed (closed model); run limit {} s",
                plan.max_duration.as_secs()
            );
        }
    }
    if billed {
        let _ = writeln!(
            out,
            "billing     {devices} registrations are billable (register requests; retries after 429 bill again; polls are free)"
        );
    }
    let _ = writeln!(out, "{}", forecast_line(plan, &prediction));
    out
}

/// The dry run's `expect` line: the quota, whether 429s are certain, and about how long.
fn forecast_line(plan: &Plan, prediction: &Prediction) -> String {
    let quota = match (prediction.quota, &plan.target) {
        (Some(q), _) => format!(
            "a quota of {:.0} registrations per minute ({:.1}/s, from {})",
            q.per_second * 60.0,
            q.per_second,
            q.source
        ),
        (None, TargetPlan::Embedded { .. }) => "no registration quota".into(),
        (None, _) => "the local target's own quota (the plan does not say it)".into(),
    };
    let throttling = match (prediction.quota, prediction.throttled) {
        (_, true) => "429 throttling certain",
        (Some(_), false) => "no throttling (the plan fits the quota)",
        (None, _) => "no throttling predicted",
    };
    let duration = match prediction.seconds {
        Some(seconds) => format!("about {seconds:.0} s to register everyone"),
        None => "duration set by the target's speed".into(),
    };
    format!("expect      {quota}: {throttling}; {duration}")
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
