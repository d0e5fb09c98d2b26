//! What `dpsbench run --dry-run` prints: the resolved plan, what it will bill, and the
//! forecast's lines (`expect`: the quota, the throttling and the duration; `outcome`: who is
//! assigned, gives up, times out or is cut off by the run limit). Text only, from the plan and
//! its [`Forecast`].

use std::fmt::Write as _;

use super::{Basis, Forecast, Outcome, Outcomes, predict};
use crate::device::Transport;
use crate::scenario::{Plan, TargetPlan};

/// The dry run's text. A shard runs its own part of the plan: `devices` are those it starts,
/// and bills; `shard` is its `K/N` when it is one. `starts` says how many of a plan longer than
/// its run limit will start, as the run itself announces it (`None` when all can start).
pub fn dry_run(plan: &Plan, devices: u64, shard: Option<String>, starts: Option<String>) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "scenario    {}", crate::scenario::named_with_source(&plan.name, &plan.file.to_string_lossy()));
    let (target, billed) = target(plan);
    let _ = writeln!(out, "target      {target}");
    let _ = writeln!(out, "id scope    {}", plan.id_scope);
    let mix: Vec<&str> = plan.personalities.personalities().map(|p| p.name()).collect();
    let of_plan = match &shard {
        None => String::new(),
        Some(shard) => format!(", shard {shard} of the plan's {}", plan.stop.devices),
    };
    let _ = writeln!(out, "devices     up to {devices} ({}){of_plan}", mix.join(", "));
    let _ = writeln!(out, "arrivals    {}", plan.load.describe());
    let limit = plan.max_duration.as_secs();
    match plan.arrival_seconds() {
        Some(seconds) => {
            let _ = writeln!(out, "duration    arrivals end after about {seconds:.0} s; run limit {limit} s");
        }
        None => {
            let _ = writeln!(out, "duration    set by the target's speed (closed model); run limit {limit} s");
        }
    }
    if let Some(starts) = starts {
        let _ = writeln!(out, "limit       {starts}");
    }
    if billed {
        let _ = writeln!(
            out,
            "billing     {devices} registrations are billable (register requests; retries after 429 bill again; polls are free)"
        );
    }
    let forecast = predict(plan);
    let _ = writeln!(out, "{}", expect_line(&forecast));
    let whole = if shard.is_some() { " (the whole plan's, as the target sees every shard)" } else { "" };
    match forecast.outcomes {
        Outcomes::Closed => {}
        Outcomes::Known(outcome) => {
            let _ = writeln!(out, "outcome     {}{whole}", outcome_text(&outcome));
        }
        Outcomes::Range { full, empty } => {
            let _ = writeln!(out, "outcome     bucket full at the start: {}{whole}", outcome_text(&full));
            let _ = writeln!(out, "            bucket empty at the start: {}", outcome_text(&empty));
        }
    }
    out
}

/// The `target` line, and whether its registrations are billed.
fn target(plan: &Plan) -> (String, bool) {
    match &plan.target {
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
    }
}

/// The `expect` line: the quota and the model, whether 429s come, and about how long.
fn expect_line(forecast: &Forecast) -> String {
    let quota = match (&forecast.quota, forecast.basis) {
        (Some((per_minute, source)), basis) => {
            let bucket = match basis {
                Basis::Dps => format!(
                    "; DPS does not publish its bucket's size: forecast for one that starts full ({per_minute}) \
                     and one that starts empty"
                ),
                _ => format!("; the emulator's bucket of {per_minute}, full at the start"),
            };
            format!(
                "a quota of {per_minute} registrations per minute ({:.1}/s, from {source}){bucket}",
                f64::from(*per_minute) / 60.0
            )
        }
        (None, Basis::UnknownLocal) => {
            "the local target's own quota (the plan does not say it: name the emulator's file in \
             [target].emulator_config)"
                .into()
        }
        (None, _) => "no registration quota".into(),
    };
    let (throttling, duration) = match forecast.outcomes {
        Outcomes::Closed => {
            return format!("expect      {quota}; duration set by the target's speed (closed model)");
        }
        Outcomes::Known(outcome) => (throttling(forecast, &outcome), format!("about {}", duration(&outcome))),
        Outcomes::Range { full, empty } => {
            let throttling = match (full.throttled, empty.throttled) {
                (0, 0) => "no throttling (the plan fits the quota)".to_string(),
                (0, empty) => format!(
                    "no throttling if the bucket starts full, 429 throttling if it starts empty ({empty} replies \
                     429)"
                ),
                (full, empty) => format!("429 throttling certain ({full} to {empty} replies 429)"),
            };
            (throttling, format!("between about {} and {}", seconds(&full), duration(&empty)))
        }
    };
    format!("expect      {quota}: {throttling}; {duration}")
}

fn throttling(forecast: &Forecast, outcome: &Outcome) -> String {
    match (outcome.throttled, &forecast.quota) {
        (0, Some(_)) => "no throttling (the plan fits the quota)".into(),
        (0, None) => "no throttling predicted".into(),
        (n, _) => format!("429 throttling certain ({n} replies 429)"),
    }
}

fn seconds(outcome: &Outcome) -> String {
    format!("{:.0}", outcome.seconds.max(0.0))
}

/// `12 s to register everyone`, or what the devices that are not assigned wait for.
fn duration(outcome: &Outcome) -> String {
    let all = outcome.assigned == outcome.started;
    let what = if all { "to register everyone" } else { "until every device that starts has finished" };
    format!("{} s {what}", seconds(outcome))
}

/// `about 139 assigned, 161 give up, 0 time out, 0 aborted at the run limit, of 300 that start`.
fn outcome_text(outcome: &Outcome) -> String {
    format!(
        "about {} assigned, {} give up (429 after their retry profile's last retry), {} time out (the flow's \
         deadline), {} aborted at the run limit, of {} that start",
        outcome.assigned, outcome.gave_up, outcome.timed_out, outcome.aborted, outcome.started
    )
}
