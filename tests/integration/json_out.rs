//! Issue 33, a machine-readable result on stdout: `run --json` and `conform --json` print the
//! result's JSON (the same as the file they write) on stdout and the human lines on stderr, so a
//! script reads stdout alone and a person still sees the table.

use serde_json::Value;

use crate::support::binary::{dpsbench, temp_dir, text};
use crate::support::scenario::Scenario;

/// stdout parsed as one JSON document: nothing else may be on it.
fn stdout_json(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", text(stdout)))
}

#[test]
fn run_json_prints_the_summary_on_stdout_and_the_table_on_stderr() {
    let dir = temp_dir("json-run");
    let scenario = Scenario::embedded("json")
        .target("retry_after_seconds", 0)
        .devices(40)
        .rate(40.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "json.toml");
    let out = dir.join("out");
    let output =
        dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--json", "--quiet"], &[]);
    let (stdout, stderr) = (stdout_json(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let file: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(stdout, file, "stdout holds summary.json's content");
    assert_eq!(stdout["devices"]["assigned"], 40);
    assert!(stderr.contains("devices  40 total, 40 assigned"), "the table goes to stderr: {stderr}");
    assert!(stderr.contains(&format!("summary: {}", out.join("summary.json").display())), "{stderr}");

    // Without --json, the table is on stdout as before.
    let plain =
        dpsbench(&["run", scenario.to_str().unwrap(), "--out", dir.join("plain").to_str().unwrap(), "--quiet"], &[]);
    assert!(text(&plain.stdout).contains("devices  40 total, 40 assigned"), "{}", text(&plain.stdout));
}

#[test]
fn json_and_dry_run_do_not_go_together() {
    let output = dpsbench(&["run", "--dry-run", "--json"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--json"), "{}", text(&output.stderr));
}

#[test]
fn conform_json_prints_conformance_json_on_stdout_and_the_table_on_stderr() {
    let dir = temp_dir("json-conform");
    let out = dir.join("out");
    let output = dpsbench(&["conform", "--out", out.to_str().unwrap(), "--exclude-billable", "--json"], &[]);
    let (stdout, stderr) = (stdout_json(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let file: Value = serde_json::from_slice(&std::fs::read(out.join("conformance.json")).unwrap()).unwrap();
    assert_eq!(stdout, file, "stdout holds conformance.json's content");
    assert!(stdout["results"].as_array().is_some_and(|results| !results.is_empty()), "{stdout}");
    assert!(stderr.contains(&format!("reports: {}", out.display())), "the human lines go to stderr: {stderr}");
    assert!(stderr.contains("DPS-"), "the table of checks goes to stderr: {stderr}");
}
