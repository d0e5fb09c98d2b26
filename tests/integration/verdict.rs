//! No verdict on nothing (issue 35): a judging emulator that judged no client, a gate on a
//! figure the current run has no sample of, a baseline given twice, a failing control taken for
//! a harness bug, and `--exit-after` counting a run's preflight; each through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::binary::{KillOnDrop, TV1_GROUP_KEY, dpsbench, temp_dir, text, wait_for_exit};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

const SCOPE: &str = "0ne00VRDCT1";

/// A run of 10 devices against the embedded emulator, its report folder in `dir/name`.
fn small_run(dir: &Path, name: &str) -> PathBuf {
    let scenario = Scenario::embedded(name)
        .target("retry_after_seconds", 0)
        .devices(10)
        .rate(200.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, &format!("{name}.toml"));
    let out = dir.join(name);
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    out
}

/// A copy of the run in `from` as a run in which every device failed: `assigned` has no sample.
fn every_device_failed(from: &Path, to: &Path) -> PathBuf {
    let mut summary = read_summary(from);
    let devices = summary["devices"]["total"].clone();
    summary["devices"]["assigned"] = 0.into();
    summary["devices"]["failed"] = devices;
    summary["flows_per_second"] = 0.0.into();
    let nothing = serde_json::json!({ "count": 0, "min_us": 0, "mean_us": 0, "p50_us": 0, "p90_us": 0,
        "p99_us": 0, "p999_us": 0, "max_us": 0 });
    summary["phases"]["assigned"] = nothing;
    std::fs::create_dir_all(to).unwrap();
    std::fs::write(to.join("summary.json"), summary.to_string()).unwrap();
    to.to_path_buf()
}

#[test]
fn a_gate_on_a_latency_the_current_run_never_measured_trips_and_a_baseline_given_twice_is_refused() {
    let dir = temp_dir("verdict-compare");
    let baseline = small_run(&dir, "baseline");
    let failed = every_device_failed(&baseline, &dir.join("failed"));
    let (baseline_arg, failed_arg) = (baseline.to_str().unwrap(), failed.to_str().unwrap());
    let output = dpsbench(&["report", "compare", baseline_arg, failed_arg, "--fail-if", "assigned.p99 > +10%"], &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    let verdict = stdout.lines().find(|l| l.contains("--fail-if assigned.p99")).unwrap();
    assert!(verdict.starts_with("TRIPPED") && verdict.contains("no samples"), "{verdict}");
    let row = stdout.lines().find(|l| l.starts_with("assigned.p99 ")).unwrap();
    assert!(row.contains("no samples") && !row.contains("(-100.0%)"), "no sample is no improvement: {row}");
    let json =
        dpsbench(&["report", "compare", baseline_arg, failed_arg, "--json", "--fail-if", "assigned.p50 < 0ms"], &[]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["tripped"], true, "{json}");
    let p99 = json["figures"].as_array().unwrap().iter().find(|f| f["name"] == "assigned.p99").unwrap();
    assert_eq!(p99["current"], Value::Null, "{p99}");

    // A baseline given twice would count twice in the mean and the spread: refused, named.
    let twice = dpsbench(&["report", "compare", baseline_arg, baseline_arg, failed_arg], &[]);
    let stderr = text(&twice.stderr);
    assert_eq!(twice.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("the baseline run {baseline_arg} is given twice")), "{stderr}");
    let other_path = dir.join(".").join("baseline");
    let twice = dpsbench(&["report", "compare", baseline_arg, other_path.to_str().unwrap(), failed_arg], &[]);
    assert_eq!(twice.status.code(), Some(2), "the same folder by another path: {}", text(&twice.stderr));
    // A run compared with itself is still one baseline and one current run.
    let same = dpsbench(&["report", "compare", baseline_arg, baseline_arg, "--fail-if", "assigned.p99 > +10%"], &[]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
}

/// An emulator config with one enrollment group keyed by [`TV1_GROUP_KEY`].
fn emulator_config(dir: &Path) -> PathBuf {
    crate::support::binary::write(
        dir,
        "emulator.toml",
        &format!(
            "id_scope = \"{SCOPE}\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 1\n\
             assign_delay_ms = 200\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    )
}

/// Stops `emulator` with SIGTERM; returns its exit code and stderr.
fn stop(mut emulator: KillOnDrop) -> (Option<i32>, String) {
    let status = Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = wait_for_exit(&mut emulator, Duration::from_secs(30)).expect("the emulator stops on SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut stderr).unwrap();
    (exited.code(), stderr)
}

#[test]
fn a_client_report_that_judged_no_client_is_no_pass_and_names_the_tls_failures() {
    let dir = temp_dir("verdict-no-client");
    let report = dir.join("clients");
    let args = ["--client-report", report.to_str().unwrap()];
    let (emulator, port) =
        crate::support::binary::spawn_emulator_with(&emulator_config(&dir), &dir.join("ca.pem"), &args);
    // A device that trusts another CA: it aborts every handshake with the emulator.
    crate::support::binary::write_certificates(&dir);
    let scenario = Scenario::loopback("wrong-ca", port.parse().unwrap(), SCOPE, "trust.pem")
        .devices(1)
        .device("group_key_env", "BENCH_KEY")
        .rate(1.0)
        .write(&dir, "wrong-ca.toml");
    let run = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap(), "--quiet"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    assert_eq!(run.status.code(), Some(2), "the run's preflight stops it: {}", text(&run.stderr));
    let (code, stderr) = stop(emulator);
    assert_eq!(code, Some(3), "no client judged is its own exit status: {stderr}");
    let line = stderr.lines().find(|l| l.contains("client checks")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("NO VERDICT") && line.contains("no client got past its TLS handshake"), "{line}");
    assert!(line.contains("does not trust this emulator's certificate"), "{line}");
    let markdown = std::fs::read_to_string(report.join("clients.md")).unwrap();
    assert!(markdown.contains("**NO VERDICT**") && !markdown.contains("**pass**"), "{markdown}");
    let json: Value = serde_json::from_slice(&std::fs::read(report.join("clients.json")).unwrap()).unwrap();
    assert_eq!(json["connections"], 0, "{json}");
    assert!(json["tls_failures"][0]["handshakes"].as_u64().unwrap() >= 1, "{json}");
    let junit = crate::support::python::read_junit(&report.join("clients.junit.xml"));
    let errors = junit["suites"][0]["errors"].as_u64().unwrap();
    assert!(errors > 0, "a JUnit reader sees no green: {junit}");
}

#[test]
fn exit_after_counts_the_fleets_connections_not_the_runs_preflight() {
    let dir = temp_dir("verdict-exit-after");
    let report = dir.join("clients");
    let args = ["--client-report", report.to_str().unwrap(), "--exit-after", "2"];
    let (mut emulator, port) =
        crate::support::binary::spawn_emulator_with(&emulator_config(&dir), &dir.join("ca.pem"), &args);
    // Two devices half a second apart, after the preflight (on by default): the emulator must
    // serve both before it stops.
    let scenario = Scenario::loopback("fleet", port.parse().unwrap(), SCOPE, "ca.pem")
        .devices(2)
        .device("registration_id", "fw-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .rate(2.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "fleet.toml");
    let run = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap(), "--quiet"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    assert_eq!(run.status.code(), Some(0), "{}{}", text(&run.stdout), text(&run.stderr));
    let status = wait_for_exit(&mut emulator, Duration::from_secs(30)).expect("the emulator exits after 2");
    assert_eq!(status.code(), Some(0));
    let json: Value = serde_json::from_slice(&std::fs::read(report.join("clients.json")).unwrap()).unwrap();
    assert_eq!(json["connections"], 3, "the preflight is judged, but not counted by --exit-after: {json}");
}

#[test]
fn a_failing_control_that_polls_early_is_a_failing_control_not_an_invalid_run() {
    let dir = temp_dir("verdict-control");
    let scenario = Scenario::embedded("control")
        .target("retry_after_seconds", 1)
        .target("assign_delay_ms", 300)
        .devices(5)
        .rate(50.0)
        .device("misbehave", vec!["poll_early"])
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "control.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "a failing control never passes: {stdout}{}", text(&output.stderr));
    assert!(!stdout.contains("INVALID RUN") && !stdout.contains("harness bug"), "{stdout}");
    let note = stdout.lines().find(|l| l.starts_with("note: a failing control")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(note.contains("misbehave = poll_early") && note.contains("before their retry-after"), "{note}");
    let summary = read_summary(&out);
    assert_eq!(summary["validity"]["valid"], true, "{}", summary["validity"]);
    assert!(summary["early_requests"].as_u64().unwrap() > 0, "the control did poll early");
    assert_eq!(summary["misbehave"], serde_json::json!(["poll_early"]));
}

#[test]
fn a_target_that_accepts_tcp_and_never_answers_tls_stops_the_run_at_its_preflight() {
    let dir = temp_dir("verdict-silent-tls");
    crate::support::binary::write_certificates(&dir);
    // The kernel completes every TCP handshake into the backlog; nobody ever answers a byte.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let scenario = Scenario::loopback("silent", port, SCOPE, "trust.pem")
        .devices(5)
        .device("group_key_env", "BENCH_KEY")
        .rate(5.0)
        .flow("connect_timeout_ms", 1500)
        .write(&dir, "silent.toml");
    let out = dir.join("out");
    let mut run = KillOnDrop(
        Command::new(crate::support::binary::BIN)
            .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .env("BENCH_KEY", TV1_GROUP_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The first line says what the preflight checks, before it waits on the target.
    let mut stderr = std::io::BufReader::new(run.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert!(first.starts_with("dpsbench: preflight: device "), "{first}");
    assert!(first.contains(&format!("connects to 127.0.0.1:{port}")) && first.contains("CONNACK"), "{first}");
    let status = wait_for_exit(&mut run, Duration::from_secs(60)).expect("the preflight ends the run");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert_eq!(rest.trim_end().lines().count(), 1, "one line naming the symptom: {rest}");
    assert!(rest.contains("preflight") && rest.contains("never completed the TLS handshake"), "{rest}");
    assert!(rest.contains(&format!("127.0.0.1:{port}")) && rest.contains("[target].host and port"), "{rest}");
    assert!(!out.exists(), "the plan never started: {rest}");
    drop(silent);
}
