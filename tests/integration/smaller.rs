//! Issue 35's smaller items, each through the real binary: a legend name laid out whole, the
//! `end_to_end` row saying what it counts, the quick run's source named once, each progress
//! line once, a shard's own offered rate, and charts with no data saying so and why.

use std::path::{Path, PathBuf};

use crate::reports::{browser, dump_dom};
use crate::support::binary::{dpsbench, temp_dir, text};
use crate::support::scenario::Scenario;

const DEVICES: u64 = 20;

/// Runs `DEVICES` devices against the embedded emulator with every connection reset after its
/// register request (each device fails `connection_lost_register`); the report folder, and
/// what the run printed on stdout.
fn every_device_failed(dir: &Path) -> (PathBuf, String) {
    let scenario = Scenario::embedded("all-fail")
        .target("retry_after_seconds", 0)
        .target("faults.reset_after_register", 1.0)
        .devices(DEVICES)
        .rate(100.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, "all-fail.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains(&format!("failures: connection_lost_register={DEVICES}")), "{stdout}");
    (out, stdout)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A legend name is never cut short: in a browser, every name of every legend (among them
/// `connection_lost_register`, once cut to `connection_lost_registe`) ends inside its chart.
#[test]
fn issue_35_a_long_failure_kind_is_whole_in_the_legend() {
    let dir = temp_dir("legend");
    let (out, _) = every_device_failed(&dir);
    let html = read(out.join("report.html"));
    assert!(html.contains("<title>connection_lost_register</title>"), "the entry's title is the whole name");
    let Some(browser) = browser() else { return };
    let (console, dom) = dump_dom(&browser, &dir, &format!("file://{}", out.join("report.html").display()));
    assert!(console.is_empty(), "the page logged to the console: {console:#?}");
    let attribute = |name: &str| -> u64 {
        let value = dom.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next());
        value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name} in {}", &dom[..dom.len().min(500)]))
    };
    let names = attribute("data-legend-names");
    assert!(names >= 4, "the phases, rates, in-flight and failures legends: {names} names");
    assert_eq!(attribute("data-legend-names-whole"), names, "a legend name was cut short");
}

/// `end_to_end` holds the failed and aborted devices too, and every table of it says so.
#[test]
fn issue_35_end_to_end_says_it_counts_failed_and_aborted_devices() {
    let dir = temp_dir("end-to-end");
    let (out, stdout) = every_device_failed(&dir);
    let said = format!(
        "end_to_end counts every device that ended, from its intended start: 0 assigned, {DEVICES} failed and 0 aborted"
    );
    let row = stdout.lines().position(|l| l.starts_with("end_to_end ")).expect("an end_to_end row");
    assert_eq!(stdout.lines().nth(row + 1), Some(said.as_str()), "{stdout}");
    assert!(read(out.join("report.md")).contains(&format!("\n{said}\n")), "report.md");
    assert!(read(out.join("report.html")).contains(&format!("<p class=\"note\">{said}</p>")), "report.html");
}

/// An empty run draws no blank chart: each chart without data says "no data" and why.
#[test]
fn issue_35_a_run_in_which_every_device_failed_says_why_a_chart_has_no_data() {
    let dir = temp_dir("no-data");
    let (out, _) = every_device_failed(&dir);
    let why = format!("no data: no device was assigned ({DEVICES} failed, 0 aborted, 0 not finished)");
    let html = read(out.join("report.html"));
    assert!(
        html.contains(&format!(
            "<p class=\"no-chart\" id=\"latency-assigned\">Time to assignment by percentile: {why}</p>"
        )),
        "{html}"
    );
    assert!(!html.contains("<figure class=\"chart\" id=\"latency-assigned\""), "no blank chart");
    let markdown = read(out.join("report.md"));
    assert!(markdown.contains(&format!("- chart Time to assignment by percentile: {why}\n")), "{markdown}");
}

/// The quick run's scenario is named `quick (command line)`, never `quick ((command line))`,
/// in the dry run and in report.html.
#[test]
fn issue_35_the_quick_run_names_its_source_once() {
    let dir = temp_dir("quick-source");
    let dry = dpsbench(&["run", "--count", "3", "--rate", "100", "--dry-run"], &[]);
    let stdout = text(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{stdout}{}", text(&dry.stderr));
    assert!(stdout.lines().any(|l| l == "scenario    quick (command line)"), "{stdout}");
    let out = dir.join("out");
    let run = dpsbench(&["run", "--count", "3", "--rate", "100", "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert!(matches!(run.status.code(), Some(0 | 3)), "{}", text(&run.stderr));
    let html = read(out.join("report.html"));
    assert!(html.contains("<td>quick (command line), constant 100/s"), "{html}");
    assert!(!html.contains("((") && !stdout.contains("(("), "a doubled parenthesis");
}

/// Each progress line appears once: on a stderr that is no terminal, no two lines share their
/// time or repeat, the run's first tick and its last (partial) second among them.
#[test]
fn issue_35_each_progress_line_appears_once() {
    let dir = temp_dir("progress-once");
    // 50 devices at 20/s that finish at once: ticks at one and two seconds (the first closes
    // the run's first interval), and at the end, half a second later.
    let scenario = Scenario::embedded("progress")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 0)
        .devices(50)
        .rate(20.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "progress.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 3)), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[') && l.contains(" started ")).collect();
    assert!(lines.len() >= 3, "a line each second and at the end: {stderr}");
    let times: Vec<&str> = lines.iter().map(|l| &l[..l.find(']').expect("a time") + 1]).collect();
    let mut distinct = times.clone();
    distinct.dedup();
    assert_eq!(distinct, times, "two progress lines share a time:\n{stderr}");
    assert!(lines.last().is_some_and(|l| l.contains("assigned 50 ")), "the last line is the end's: {stderr}");
}

/// A shard's rates line offers the shard's own share of the plan beside what it achieved, and
/// names the plan's rate as the plan's.
#[test]
fn issue_35_a_shard_offers_its_own_rate_beside_its_achieved_one() {
    let dir = temp_dir("shard-rate");
    let out = dir.join("out");
    let args = ["run", "--count", "30", "--rate", "30", "--shard", "1/3", "--out", out.to_str().unwrap(), "--quiet"];
    let output = dpsbench(&args, &[]);
    let stdout = text(&output.stdout);
    assert!(matches!(output.status.code(), Some(0 | 3)), "{stdout}{}", text(&output.stderr));
    let offered = "shard 1 of 3 offered 10.0/s (its share of the plan's 30.0/s); achieved ";
    let rates = stdout.lines().find(|l| l.starts_with("rates ")).expect("a rates line");
    assert!(rates.contains(offered), "{rates}");
    assert!(read(out.join("report.md")).contains(&format!("| rates | {offered}")), "report.md");
}
