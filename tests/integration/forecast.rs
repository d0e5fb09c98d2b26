//! The dry run agrees with the run (issue 35): for plans against the embedded emulator and a
//! standalone one whose file the scenario names, the forecast's duration, its assigned and
//! given-up counts and its 429s hold in the real run, within the tolerance the README states;
//! and a plan longer than its run limit is flagged by the dry run as the run announces it.

use std::path::Path;

use serde_json::Value;

use crate::support::binary::{TV1_GROUP_KEY, dpsbench, spawn_emulator, temp_dir, text, write};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

/// The README's tolerance: the run's duration within 25 % of the forecast's plus 2 s ...
const DURATION_SHARE: f64 = 0.25;
const DURATION_SLACK: f64 = 2.0;
/// ... each outcome count (started, assigned, given up, aborted) within 10 % of the devices that
/// start plus 2 ...
const COUNT_SHARE: f64 = 0.10;
const COUNT_SLACK: f64 = 2.0;
/// ... and 429 replies within 20 % plus 10 (none forecast: none in the run).
const THROTTLED_SHARE: f64 = 0.20;
const THROTTLED_SLACK: f64 = 10.0;

/// What a dry run forecast, read from its `expect` and `outcome` lines.
#[derive(Debug)]
struct Forecast {
    seconds: f64,
    throttled: u64,
    assigned: u64,
    gave_up: u64,
    aborted: u64,
    started: u64,
}

/// The number that follows `before` in `line`.
fn number_after(line: &str, before: &str) -> Option<f64> {
    let rest = &line[line.find(before)? + before.len()..];
    rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
}

/// The number that precedes `after` in `line` (`139 assigned`).
fn number_before(line: &str, after: &str) -> Option<u64> {
    let head = &line[..line.find(after)?];
    head.trim_end().rsplit(' ').next()?.parse().ok()
}

fn read_forecast(dry: &str) -> Forecast {
    let line = |start: &str| dry.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start}: {dry}"));
    let (expect, outcome) = (line("expect "), line("outcome "));
    let throttled = match expect.contains("429 throttling certain") {
        true => {
            number_after(expect, "429 throttling certain (").unwrap_or_else(|| panic!("no 429 count: {expect}")) as u64
        }
        false => 0,
    };
    let seconds = number_after(expect, "; about ").unwrap_or_else(|| panic!("no duration: {expect}"));
    let count = |after: &str| number_before(outcome, after).unwrap_or_else(|| panic!("no {after}: {outcome}"));
    Forecast {
        seconds,
        throttled,
        assigned: count(" assigned"),
        gave_up: count(" give up"),
        aborted: count(" aborted at the run limit"),
        started: count(" that start"),
    }
}

/// Runs `scenario` with `--dry-run` and then for real; checks the forecast against the run's
/// summary within the tolerance; returns the dry run's text and the run's stderr.
fn forecast_holds(name: &str, scenario: &Path, dir: &Path) -> (String, String) {
    let key = [("BENCH_KEY", TV1_GROUP_KEY)];
    let dry = dpsbench(&["run", scenario.to_str().unwrap(), "--dry-run"], &key);
    assert_eq!(dry.status.code(), Some(0), "{name}: {}", text(&dry.stderr));
    let printed = text(&dry.stdout);
    let forecast = read_forecast(&printed);

    let out = dir.join(format!("out-{name}"));
    let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &key);
    assert!(matches!(run.status.code(), Some(0 | 1)), "{name}: {}", text(&run.stderr));
    let summary = read_summary(&out);
    let devices = &summary["devices"];
    let got = |v: &Value| v.as_u64().unwrap_or(0);
    let gave_up = got(&summary["failures"]["status_429"]);
    let throttled = got(&summary["statuses"]["429"]);
    let seconds = summary["duration_seconds"].as_f64().unwrap();
    let context = format!("{name}: forecast {forecast:?}\n{printed}\nrun {devices}, 429s {throttled}, {seconds} s");

    let count_slack = forecast.started as f64 * COUNT_SHARE + COUNT_SLACK;
    let near = |forecast: u64, actual: u64| (forecast as f64 - actual as f64).abs() <= count_slack;
    assert!(near(forecast.started, got(&devices["total"])), "started: {context}");
    assert!(near(forecast.assigned, got(&devices["assigned"])), "assigned: {context}");
    assert!(near(forecast.gave_up, gave_up), "given up: {context}");
    assert!(near(forecast.aborted, got(&devices["aborted"])), "aborted: {context}");
    assert_eq!(forecast.throttled > 0, throttled > 0, "any 429: {context}");
    let throttled_slack = forecast.throttled as f64 * THROTTLED_SHARE + THROTTLED_SLACK;
    assert!((forecast.throttled as f64 - throttled as f64).abs() <= throttled_slack, "429s: {context}");
    let duration_slack = forecast.seconds * DURATION_SHARE + DURATION_SLACK;
    assert!((forecast.seconds - seconds).abs() <= duration_slack, "duration: {context}");
    (printed, text(&run.stderr))
}

/// An embedded plan that a loaded machine keeps valid.
fn embedded(name: &str) -> Scenario {
    Scenario::embedded(name).run("max_duration_seconds", 60).run("max_schedule_lag_p99_ms", 5000)
}

/// Against the embedded emulator: the storm (300 devices at Poisson 60/s against 120 a
/// minute: 139 assigned and 161 given up after dpsbench's 5 retries, in about 10 s), a burst
/// over the full bucket whose devices retry long enough, and a plan within its quota.
#[test]
fn the_dry_run_forecasts_the_embedded_emulators_runs() {
    let dir = temp_dir("forecast-embedded");
    let cases = [
        (
            "storm",
            embedded("storm")
                .target("registrations_per_minute", 120)
                .devices(300)
                .arrival("model", "poisson")
                .arrival("rate", 60.0)
                .arrival("seed", 7),
        ),
        (
            "burst",
            embedded("burst")
                .target("registrations_per_minute", 120)
                .target("assign_delay_ms", 100)
                .devices(140)
                .arrival("model", "burst")
                .arrival("within_seconds", 1)
                .arrival("seed", 1)
                .flow("max_retries", 100),
        ),
        (
            "within",
            embedded("within")
                .target("registrations_per_minute", 1000)
                .target("assign_delay_ms", 500)
                .devices(200)
                .rate(50.0),
        ),
    ];
    for (name, scenario) in cases {
        let (printed, _) = forecast_holds(name, &scenario.write(&dir, &format!("{name}.toml")), &dir);
        if name == "storm" {
            // The bucket starts full (120) and the retry profile gives up: not "about 91 s".
            assert!(printed.contains("bucket of 120, full at the start"), "{printed}");
            assert!(printed.contains("give up") && !printed.contains("to register everyone"), "{printed}");
        }
        if name == "within" {
            assert!(printed.contains("no throttling (the plan fits the quota)"), "{printed}");
        }
    }
}

/// Against a standalone emulator whose file the scenario names: the README walkthrough's plan
/// (200 devices at 50/s against examples/emulator.toml, whose bucket of 1,000 starts full: no
/// 429, about 5 s), and the same plan against a quota of 120 a minute.
#[test]
fn the_dry_run_forecasts_a_standalone_emulators_runs_from_its_file() {
    let dir = temp_dir("forecast-standalone");
    let shipped = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/emulator.toml"));
    let throttling = shipped.replace("registrations_per_minute = 1000", "registrations_per_minute = 120");
    assert_ne!(throttling, shipped, "the test lowers the shipped file's quota");
    for (name, config) in [("walkthrough", shipped), ("quota", throttling.as_str())] {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let config = write(&folder, "emulator.toml", config);
        let (_emulator, port) = spawn_emulator(&config, &folder.join("ca.pem"));
        let scenario = Scenario::loopback(name, port.parse().unwrap(), "0ne00EXMPL1", "ca.pem")
            .target("emulator_config", "emulator.toml")
            .target("dps_units", 1)
            .devices(200)
            .device("registration_id", "remote-{index:04}")
            .device("group_key_file", "group-key.txt")
            .rate(50.0)
            .run("max_duration_seconds", 120)
            .run("max_schedule_lag_p99_ms", 5000)
            .write(&folder, "scenario.toml");
        let key = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/group-key.txt"));
        write(&folder, "group-key.txt", key);
        let (printed, _) = forecast_holds(name, &scenario, &folder);
        assert!(printed.contains("emulator.toml); the emulator's bucket of"), "{printed}");
        if name == "walkthrough" {
            assert!(printed.contains("no throttling (the plan fits the quota)"), "{printed}");
        } else {
            assert!(printed.contains("429 throttling certain"), "{printed}");
        }
    }
}

/// A plan longer than its run limit: the dry run says how many will start, in the words the
/// run announces it with, and its forecast starts that many and aborts those still in flight.
#[test]
fn the_dry_run_flags_a_plan_longer_than_its_run_limit_as_the_run_does() {
    let dir = temp_dir("forecast-limit");
    let scenario = Scenario::embedded("long")
        .target("retry_after_seconds", 1)
        .target("assign_delay_ms", 100)
        .devices(1000)
        .rate(50.0)
        .run("max_duration_seconds", 3)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "long.toml");
    let (dry, stderr) = forecast_holds("long", &scenario, &dir);
    let flagged = dry.lines().find_map(|l| l.strip_prefix("limit       ")).unwrap_or_else(|| panic!("{dry}"));
    assert_eq!(
        flagged,
        "the plan has 1,000 devices; at constant 50/s for at most 3 s, about 150 will start (the rest count as \
         not started)"
    );
    assert_eq!(read_forecast(&dry).started, 150, "{dry}");
    assert!(stderr.contains(&format!("dpsbench: {flagged}\n")), "the run announces the same: {stderr}");
}
