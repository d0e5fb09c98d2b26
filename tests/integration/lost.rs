//! Issue 35, "nothing lost": runs started in the same second never share a default folder; a
//! report file that cannot be written (a file-size limit, as a full disk) leaves no cut-short
//! summary.json and the table still printed; a closed stdout and stderr end no run; `conform
//! --out` is checked before any probe; `report render` rebuilds a killed run's report, marked
//! partial, from its per-second files.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::support::binary::{BIN, KillOnDrop, dpsbench, temp_dir, text, wait_for_exit, write};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

/// A small embedded run, its schedule-lag ceiling generous for a loaded machine.
fn plan(dir: &Path, name: &str, devices: u64, rate: f64) -> PathBuf {
    Scenario::embedded(name)
        .target("retry_after_seconds", 0)
        .devices(devices)
        .rate(rate)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, &format!("{name}.toml"))
}

/// Waits up to 120 s for `child` and returns its output (stdout and stderr piped).
fn output_of(mut child: KillOnDrop, what: &str) -> Output {
    let status = wait_for_exit(&mut child, Duration::from_secs(120)).unwrap_or_else(|| panic!("{what} hangs"));
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).unwrap();
    }
    Output { status, stdout: stdout.into_bytes(), stderr: stderr.into_bytes() }
}

/// The exit status `run` gives the summary it wrote: 3 invalid, 0 every device assigned (no
/// gates here), else 1.
fn status_of(summary: &Value) -> i32 {
    let devices = &summary["devices"];
    match (summary["validity"]["valid"].as_bool(), summary["partial"].as_bool()) {
        (Some(false), _) => 3,
        (_, Some(false)) if devices["assigned"] == devices["total"] => 0,
        _ => 1,
    }
}

#[test]
fn two_runs_started_in_the_same_second_without_out_each_get_their_own_folder() {
    let dir = temp_dir("lost-same-second");
    let scenario = plan(&dir, "together", 20, 50.0);
    // Started just after a second begins, so both name their folder in that second (both names
    // are made at start, well within the second even on a loaded machine).
    let into_second = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_millis();
    std::thread::sleep(Duration::from_millis(u64::from(1050 - into_second)));
    let runs: Vec<KillOnDrop> = (0..2)
        .map(|_| {
            KillOnDrop(
                Command::new(BIN)
                    .args(["run", scenario.to_str().unwrap(), "--quiet"])
                    .current_dir(&dir)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let mut folders = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        let output = output_of(run, "a run");
        let stdout = text(&output.stdout);
        let summary_line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("summary: "))
            .unwrap_or_else(|| panic!("run {i} names its summary.json: {stdout}{}", text(&output.stderr)));
        let folder = dir.join(Path::new(summary_line).parent().unwrap());
        let summary = read_summary(&folder);
        assert_eq!(output.status.code(), Some(status_of(&summary)), "run {i}: {}", text(&output.stderr));
        folders.push((folder, summary["started_at"].clone()));
    }
    assert_ne!(folders[0].0, folders[1].0, "each run has its own folder");
    let made: Vec<_> = std::fs::read_dir(dir.join("reports")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(made.len(), 2, "two folders: {made:?}");
    for (folder, started_at) in &folders {
        assert_eq!(&read_summary(folder)["started_at"], started_at, "{} holds its own run", folder.display());
    }
}

#[test]
fn a_summary_that_cannot_be_written_leaves_no_cut_short_file_and_the_table_is_printed() {
    let dir = temp_dir("lost-file-size");
    let scenario = plan(&dir, "limited", 20, 50.0);
    let out = dir.join("out");
    let first = dpsbench(&["run", scenario.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()], &[]);
    assert!(out.join("summary.json").is_file(), "{}", text(&first.stderr));
    let old = std::fs::read(out.join("summary.json")).unwrap();
    assert!(old.len() > 4096, "summary.json is larger than the limit below: {} bytes", old.len());
    // A real write failure: files may not grow past 4 KiB (SIGXFSZ ignored, so a write past the
    // limit fails with EFBIG as one on a full disk fails with ENOSPC).
    let limited = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 4; exec '{BIN}' run '{}' --quiet --force --out '{}'",
            scenario.display(),
            out.display()
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&limited.stdout), text(&limited.stderr));
    assert_eq!(limited.status.code(), Some(2), "the exit status says the write failed: {stderr}");
    assert!(stderr.contains("cannot write") && stderr.contains("summary.json"), "{stderr}");
    assert!(stdout.contains("assigned") && stdout.contains("devices"), "the result table is printed: {stdout}");
    assert!(!stdout.contains("summary: "), "no summary.json is claimed: {stdout}");
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), old, "the previous summary.json stays whole");
    let temporary: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(temporary.is_empty(), "no temporary file is left: {temporary:?}");

    // Without an old report there is no summary.json at all, never an empty or cut one.
    let fresh = dir.join("fresh");
    let limited = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 4; exec '{BIN}' run '{}' --quiet --out '{}'",
            scenario.display(),
            fresh.display()
        ))
        .output()
        .unwrap();
    assert_eq!(limited.status.code(), Some(2), "{}", text(&limited.stderr));
    assert!(!fresh.join("summary.json").exists(), "no cut-short summary.json");
    assert!(text(&limited.stdout).contains("assigned"), "{}", text(&limited.stdout));
}

#[test]
fn a_closed_stdout_and_stderr_end_no_run_and_it_writes_its_report() {
    let dir = temp_dir("lost-closed-pipe");
    // About 5 s of progress lines on stderr, one a second, after the reader has gone.
    let scenario = plan(&dir, "piped", 300, 60.0);
    let out = dir.join("out");
    let piped = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; '{BIN}' run '{}' --out '{}' 2>&1 | head -3", scenario.display(), out.display()))
        .output()
        .unwrap();
    assert_eq!(text(&piped.stdout).lines().count(), 3, "the reader took three lines: {}", text(&piped.stdout));
    assert!(out.join("summary.json").is_file(), "the run wrote its report (exit {:?})", piped.status.code());
    assert!(out.join("report.md").is_file() && out.join("report.html").is_file());
    let summary = read_summary(&out);
    assert_eq!(summary["devices"]["total"], 300, "the whole plan ran");
    assert_eq!(piped.status.code(), Some(status_of(&summary)), "the run's own exit status, no panic");
}

#[test]
fn conform_checks_out_before_its_first_probe() {
    let dir = temp_dir("lost-conform-out");
    let file = write(&dir, "a-file", "");
    let out = file.join("conformance");
    let began = Instant::now();
    let output = dpsbench(&["conform", "--out", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("--out {}", out.display())) && stderr.contains("is a file"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "no emulator started, no probe ran: {stderr}");
    assert!(began.elapsed() < Duration::from_secs(10), "fails fast: {:?}", began.elapsed());
}

/// The last whole row of `timeseries.csv` by column name, read without dpsbench's reader.
fn last_row(csv: &str) -> std::collections::HashMap<String, String> {
    let whole = &csv[..csv.rfind('\n').map_or(0, |end| end + 1)];
    let mut lines = whole.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let last = lines.last().expect("a second was written");
    header.iter().map(|h| h.to_string()).zip(last.split(',').map(str::to_string)).collect()
}

/// The outcome table's cells by column in report.md.
fn outcomes(report_md: &str) -> std::collections::HashMap<String, String> {
    let cells =
        |line: &str| -> Vec<String> { line.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect() };
    let mut lines = report_md.lines().skip_while(|l| !l.starts_with("| devices | assigned"));
    let header = cells(lines.next().expect("an outcomes table"));
    let row = cells(lines.nth(1).expect("its row"));
    header.into_iter().zip(row).collect()
}

#[test]
fn report_render_rebuilds_a_killed_runs_report_marked_partial_from_its_per_second_files() {
    let dir = temp_dir("lost-killed");
    let scenario = plan(&dir, "killed", 3000, 300.0);
    let out = dir.join("out");
    let mut run = KillOnDrop(
        Command::new(BIN)
            .args(["run", scenario.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Killed once three seconds are written (bounded: 60 s).
    let series = out.join("timeseries.csv");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&series).map_or(0, |t| t.lines().count()) < 4 {
        assert!(Instant::now() < deadline, "the run never wrote three seconds");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(!out.join("summary.json").exists(), "the run was killed before its end");

    let output = dpsbench(&["report", "render", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("partial") && stderr.contains("missing: summary.json"), "{stderr}");
    let report_md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report_md.contains("(partial: "), "marked partial: {report_md}");
    assert!(report_md.contains("missing: summary.json"), "says what is missing: {report_md}");
    // Its validity was never judged: the report says so and never reads as valid.
    assert!(report_md.contains("partial report, not judged"), "{report_md}");
    assert!(report_md.contains("| validity | **invalid**: not judged"), "{report_md}");
    assert!(out.join("report.html").is_file());
    assert!(!out.join("summary.json").exists(), "render writes no summary it does not have");

    let row = last_row(&std::fs::read_to_string(&series).unwrap());
    let table = outcomes(&report_md);
    assert_eq!(table["devices"], row["started"], "devices started: {table:?} {row:?}");
    assert_eq!(table["assigned"], row["assigned"], "{table:?} {row:?}");
    assert_eq!(table["failed"], row["failed"], "{table:?} {row:?}");
    assert!(row["assigned"].parse::<u64>().unwrap() > 0, "figures from a run that assigned devices: {row:?}");
}
