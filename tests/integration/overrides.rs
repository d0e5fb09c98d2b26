//! `dpsbench run`'s overrides and the quick run without a scenario file (issue 24, item 1),
//! through the real binary: what the flags change, what summary.json says ran, and the exit 2
//! that names the flag when a value does not hold or a flag does not apply.

use serde_json::Value;

use crate::support::binary::{TV1_GROUP_KEY, dpsbench, temp_dir, text, write};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

fn summary_in(out: &std::path::Path) -> Value {
    read_summary(out)
}

/// A quick run finished: exit 0, or 3 when the only complaint is the schedule lag of a
/// generator on a busy machine (a quick run keeps the 10 ms default, and tests share the cores).
fn assert_ran(run: &std::process::Output, out: &std::path::Path) -> Value {
    let summary = summary_in(out);
    let lag_only = summary["validity"]["reasons"]
        .as_array()
        .is_some_and(|reasons| reasons.iter().all(|r| r.as_str().unwrap().starts_with("schedule lag p99")));
    match run.status.code() {
        Some(0) => {}
        Some(3) if lag_only => {}
        other => panic!("exit {other:?}: {}\n{}", text(&run.stdout), text(&run.stderr)),
    }
    summary
}

/// The flags of `summary.json`'s `scenario.overrides`, with the fields they set.
fn overrides(summary: &Value) -> Vec<(String, String, String)> {
    let listed = summary["scenario"]["overrides"].as_array().unwrap_or_else(|| panic!("no overrides: {summary}"));
    listed
        .iter()
        .map(|o| {
            let field = |name: &str| o[name].as_str().unwrap().to_string();
            (field("flag"), field("value"), field("field"))
        })
        .collect()
}

#[test]
fn a_quick_run_needs_no_scenario_file() {
    let dir = temp_dir("quick");
    let out = dir.join("out");
    let run = dpsbench(&["run", "--count", "30", "--rate", "100", "--out", out.to_str().unwrap(), "--quiet"], &[]);
    let summary = assert_ran(&run, &out);
    let schema: Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/reports/summary.schema.json")))
            .unwrap();
    crate::support::schema::check_schema(&schema, &summary, "summary");
    assert_eq!((summary["devices"]["total"].as_u64(), summary["devices"]["assigned"].as_u64()), (Some(30), Some(30)));
    assert_eq!(summary["target"]["kind"], "embedded");
    let scenario = &summary["scenario"];
    assert_eq!((scenario["name"].as_str(), scenario["file"].as_str()), (Some("quick"), Some("(command line)")));
    assert_eq!((scenario["devices"].as_u64(), scenario["arrival"].as_str()), (Some(30), Some("constant 100/s")));
    assert_eq!(
        overrides(&summary),
        [
            ("--count".into(), "30".into(), "devices.count".into()),
            ("--rate".into(), "100".into(), "arrival.rate".into())
        ]
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("`--count 30 --rate 100`"), "report.md says what ran:\n{markdown}");
}

#[test]
fn a_quick_run_with_concurrency_alone_is_closed() {
    let dir = temp_dir("quick-closed");
    let out = dir.join("out");
    let run = dpsbench(&["run", "--concurrency", "4", "--count", "12", "--out", out.to_str().unwrap(), "-q"], &[]);
    let summary = assert_ran(&run, &out);
    assert_eq!(summary["scenario"]["arrival"], "closed, 4 in flight");
    assert_eq!(summary["devices"]["assigned"], 12);
}

#[test]
fn overrides_replace_the_scenarios_fields_and_the_summary_says_so() {
    let dir = temp_dir("overrides");
    let scenario = Scenario::embedded("small")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 0)
        .devices(500)
        .device("registration_id", "ov-{index:04}")
        .rate(500.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "small.toml");
    let out = dir.join("out");
    let args = ["run", scenario.to_str().unwrap(), "--count", "15", "--rate", "40", "--duration", "20s"];
    let run = dpsbench(&[&args[..], &["--out", out.to_str().unwrap(), "-q"]].concat(), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let summary = summary_in(&out);
    assert_eq!(summary["devices"]["assigned"], 15, "--count replaced devices.count = 500");
    assert_eq!(summary["scenario"]["arrival"], "constant 40/s");
    assert_eq!(summary["scenario"]["duration_seconds"], 20.0);
    assert_eq!(summary["scenario"]["file"], scenario.to_str().unwrap());
    let flags: Vec<String> =
        overrides(&summary).into_iter().map(|(flag, value, field)| format!("{flag} {value} {field}")).collect();
    assert_eq!(flags, ["--count 15 devices.count", "--rate 40 arrival.rate", "--duration 20s run.duration_seconds"]);
    // The same scenario without flags lists none: the summary never claims an override.
    let plain = dir.join("plain");
    let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", plain.to_str().unwrap(), "-q"], &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let plain = summary_in(&plain);
    assert_eq!((overrides(&plain).len(), plain["devices"]["assigned"].as_u64()), (0, Some(500)));
}

#[test]
fn devices_from_a_list_replaces_the_pattern_and_the_count() {
    let dir = temp_dir("devices-from");
    write(&dir, "ids.csv", "registration_id\nlisted-a\nlisted-b\nlisted-c\n");
    let out = dir.join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_dpsbench"))
        .current_dir(&dir)
        .args(["run", "--devices-from", "ids.csv", "--rate", "50", "--devices-csv", "--out", "out", "-q"])
        .output()
        .unwrap();
    assert_eq!(assert_ran(&run, &out)["devices"]["assigned"], 3, "the list's length is the count");
    let devices = std::fs::read_to_string(out.join("devices.csv")).unwrap();
    let mut ids: Vec<&str> = devices.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["listed-a", "listed-b", "listed-c"]);
}

#[test]
fn target_points_a_scenario_at_a_standalone_emulator() {
    let dir = temp_dir("target-flag");
    let config = crate::emulator_cli::one_group_config(&dir, "0ne00OVER01");
    let ca = dir.join("ca.pem");
    let (_emulator, ready) = crate::emulator_cli::start_with(&config, &ca, &["--ws-listen", "127.0.0.1:0"]);
    // "listening on 127.0.0.1:P, MQTT over WebSocket on 127.0.0.1:W (...)"
    let ports: Vec<&str> = ready.split_whitespace().filter_map(|w| w.strip_prefix("127.0.0.1:")).collect();
    let (port, ws_port) = match ports[..] {
        [port, ws_port] => (port.trim_end_matches(','), ws_port),
        _ => panic!("two addresses expected in {ready:?}"),
    };
    let target = format!("mqtts://127.0.0.1:{port}");
    // A quick run at the standalone emulator, with what a remote target takes from the flags.
    let remote_run = |target: &str, count: &str, out: &std::path::Path| {
        let ca = ca.to_str().unwrap();
        let flags = ["--target", target, "--id-scope", "0ne00OVER01", "--ca", ca, "--key-env", "BENCH_KEY"];
        let rest = ["--count", count, "--rate", "40", "--out", out.to_str().unwrap(), "-q"];
        let run = dpsbench(&[&["run"][..], &flags, &rest].concat(), &[("BENCH_KEY", TV1_GROUP_KEY)]);
        assert_ran(&run, out)
    };
    let out = dir.join("out");
    let summary = remote_run(&target, "8", &out);
    assert_eq!((summary["target"]["kind"].as_str(), summary["devices"]["assigned"].as_u64()), (Some("dps"), Some(8)));
    assert_eq!(summary["target"]["address"], format!("127.0.0.1:{port}"));
    let flags: Vec<String> =
        overrides(&summary).into_iter().map(|(flag, value, _)| format!("{flag} {value}")).collect();
    assert!(
        flags.contains(&format!("--target {target}")) && flags.contains(&"--key-env BENCH_KEY".into()),
        "{flags:?}"
    );
    // The same devices over MQTT over WebSocket: wss:// makes the transport WebSocket.
    let ws = dir.join("ws");
    let ws_target = format!("wss://127.0.0.1:{ws_port}");
    let summary = remote_run(&ws_target, "3", &ws);
    assert_eq!(summary["devices"]["assigned"], 3);
    assert_eq!(summary["target"]["address"], format!("127.0.0.1:{ws_port}"));
    assert!(summary["phases"]["ws_upgrade"]["count"].as_u64().unwrap_or(0) >= 3, "{}", summary["phases"]);
    // Back to the embedded emulator from a dps scenario: its address and CA are dropped.
    let remote = Scenario::dps("remote", "127.0.0.1", "0ne00OVER01")
        .target("port", 1)
        .devices(4)
        .device("group_key_env", "BENCH_KEY")
        .rate(40.0)
        .write(&dir, "remote.toml");
    let back = dir.join("back");
    let run = dpsbench(
        &["run", remote.to_str().unwrap(), "--target", "embedded", "--out", back.to_str().unwrap(), "-q"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    assert_eq!(assert_ran(&run, &back)["target"]["kind"], "embedded");
}

#[test]
fn a_bad_override_is_exit_2_naming_the_flag_and_leaves_nothing() {
    let dir = temp_dir("bad-overrides");
    let closed = Scenario::embedded("c").devices(5).arrival("model", "closed").arrival("concurrency", 2);
    let closed = closed.write(&dir, "closed.toml");
    let stages = Scenario::embedded("s").arrival("model", "stages").arrival("stages", vec!["1s:5/s"]);
    let stages = stages.write(&dir, "stages.toml");
    let (closed, stages) = (closed.to_str().unwrap(), stages.to_str().unwrap());
    let out = dir.join("out");
    let out_arg = out.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 10] = [
        (&["--rate", "0"], &["--rate 0", "arrival.rate"]),
        (&["--count", "0"], &["--count 0", "devices.count", "at least 1"]),
        (&[closed, "--rate", "5"], &["--rate 5", "\"closed\"", "--concurrency"]),
        (&[stages, "--rate", "5"], &["--rate 5", "\"stages\"", "arrival.stages"]),
        (&["--concurrency", "3", "--rate", "5"], &["--concurrency 3", "\"constant\"", "--rate"]),
        (&["--duration", "0"], &["--duration 0s", "run.duration_seconds"]),
        (&["--duration", "soon"], &["--duration", "\"soon\""]),
        (&["--ca", "ca.pem"], &["--ca", "embedded emulator"]),
        (&["--target", "mqtts://127.0.0.1:8883"], &["--target mqtts://127.0.0.1:8883", "--id-scope"]),
        (&["--devices-from", "missing.csv"], &["--devices-from", "missing.csv"]),
    ];
    for (flags, expected) in cases {
        let args = [&["run"][..], flags, &["--out", out_arg]].concat();
        let run = dpsbench(&args, &[]);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: expected {part:?} in {stderr}");
        }
        assert!(!out.exists(), "{args:?} left {} behind", out.display());
    }
    // The dry run says what the flags replaced, beside the plan they make.
    let dry = dpsbench(&["run", closed, "--concurrency", "7", "--dry-run"], &[]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let printed = text(&dry.stdout);
    assert!(printed.contains("overrides   --concurrency 7 (arrival.concurrency)"), "{printed}");
    assert!(printed.contains("closed, 7 in flight"), "{printed}");
    let bad_target = dpsbench(&["run", "--target", "http://x", "--dry-run"], &[]);
    assert_eq!(bad_target.status.code(), Some(2));
    assert!(text(&bad_target.stderr).contains("--target"), "{}", text(&bad_target.stderr));
}
