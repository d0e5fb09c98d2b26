//! Issue 19: numbers to trust at the edges. The same plan run whole and as three shards against
//! one external emulator agrees in every figure; merges never write into an input or over a
//! report; gates refuse names that could never trip; a misconfigured run stops at its preflight
//! before any device starts; a closed stdout is no panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::binary::{
    KillOnDrop, TV1_GROUP_KEY, deterministic_emulator, dpsbench, finish, run_to, temp_dir, text, wait_for_exit, write,
};
use crate::support::scenario::{Scenario, table};
use crate::support::schema::read_summary;

const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");
const SCOPE: &str = "0ne00EDGES1";
const DEVICES: u64 = 150;

fn summary(dir: &Path) -> Value {
    read_summary(dir)
}

fn scenario(dir: &Path, port: &str) -> PathBuf {
    Scenario::dps("edges", "127.0.0.1", SCOPE)
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(DEVICES)
        .device("registration_id", "edge-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .arrival("model", "poisson")
        .rate(100.0)
        .arrival("seed", 5)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, "edges.toml")
}

/// Every leaf of a JSON value by its path (`devices.total`, `statuses.202`, ...).
fn leaves(value: &Value, path: &str, into: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                leaves(child, &if path.is_empty() { key.clone() } else { format!("{path}.{key}") }, into);
            }
        }
        other => {
            into.insert(path.to_string(), other.clone());
        }
    }
}

/// What a path of summary.json is, for comparing a whole run with its merged shards: figures
/// the plan decides (equal), measured ones (close), and what describes the run, not the work.
fn class(path: &str) -> &'static str {
    const MEASURED: [&str; 4] = ["phases.", "rates.", "flows_per_second", "late_starts"];
    const OF_THE_RUN: [&str; 14] = [
        "started_at",
        "duration_seconds",
        "host.",
        "generator.",
        "validity.",
        "shard.",
        "merged.",
        "notes",
        "open_files_limit",
        "scenario.",
        "target.",
        "schema",
        "partial",
        "conformance.",
    ];
    if OF_THE_RUN.iter().any(|p| path.starts_with(p)) {
        "run"
    } else if MEASURED.iter().any(|p| path.starts_with(p)) {
        "measured"
    } else {
        "exact"
    }
}

#[test]
fn a_plan_run_whole_and_as_three_shards_agrees_in_every_figure() {
    let dir = temp_dir("edges-merge");
    let (_emulator, port) = deterministic_emulator(&dir, SCOPE);
    let plan = scenario(&dir, &port);
    finish(run_to(&plan, &dir.join("whole"), &[]), "the unsharded run");
    let start_at = dpsbench::timestamp::rfc3339(std::time::SystemTime::now() + Duration::from_secs(3));
    let shards: Vec<PathBuf> = (0..3).map(|k| dir.join(format!("shard-{k}"))).collect();
    let children: Vec<KillOnDrop> = shards
        .iter()
        .enumerate()
        .map(|(k, out)| run_to(&plan, out, &["--shard", &format!("{k}/3"), "--start-at", &start_at]))
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        finish(child, &format!("shard {k}"));
    }
    for (k, shard) in shards.iter().enumerate() {
        let s = summary(shard);
        assert_eq!(s["devices"]["not_started"], 0, "shard {k} counts only its own devices: {}", s["devices"]);
        assert_eq!(s["devices"]["total"], DEVICES / 3, "shard {k}");
    }
    let merged = dir.join("merged");
    let mut args = vec!["report", "merge"];
    args.extend(shards.iter().map(|s| s.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let output = dpsbench(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let (whole, merged_summary) = (summary(&dir.join("whole")), summary(&merged));
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(&whole, "", &mut a);
    leaves(&merged_summary, "", &mut b);
    let exact: Vec<&String> = a.keys().chain(b.keys()).filter(|p| class(p) == "exact").collect();
    assert!(exact.len() > 40, "the plan-decided figures are many: {exact:?}");
    for path in exact {
        assert_eq!(a.get(path), b.get(path), "{path}: whole run vs merged shards");
    }
    // Measured figures agree within what timing moves: each phase's count exactly, assigned
    // (dominated by the 1 s retry-after) within 5 %, the achieved rate within 15 %.
    for (phase, stats) in whole["phases"].as_object().unwrap() {
        assert_eq!(stats["count"], merged_summary["phases"][phase]["count"], "{phase} count");
    }
    let close = |path: &str, x: f64, y: f64, tolerance: f64| {
        assert!((x - y).abs() <= tolerance * x.abs().max(1e-9), "{path}: whole {x}, merged {y}");
    };
    let f = |v: &Value, path: &[&str]| path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap();
    close(
        "assigned.p50",
        f(&whole, &["phases", "assigned", "p50_us"]),
        f(&merged_summary, &["phases", "assigned", "p50_us"]),
        0.05,
    );
    let achieved = f(&merged_summary, &["rates", "achieved_per_second"]);
    close("rates.achieved", f(&whole, &["rates", "achieved_per_second"]), achieved, 0.15);
    assert_eq!(f(&merged_summary, &["flows_per_second"]), achieved, "one achieved rate");
    // Recomputed from the added data, not a shard's copy: every shard achieved about a third.
    for shard in &shards {
        assert!(f(&summary(shard), &["rates", "achieved_per_second"]) < 0.6 * achieved, "{}", shard.display());
    }
    // The merged run began when its first shard did.
    let starts: Vec<String> = shards.iter().map(|s| summary(s)["started_at"].as_str().unwrap().to_string()).collect();
    assert_eq!(merged_summary["started_at"].as_str(), starts.iter().min().map(String::as_str));
    // Throttling columns survive the merge of the time series.
    let series = std::fs::read_to_string(merged.join("timeseries.csv")).unwrap();
    let header: Vec<&str> = series.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "throttled").unwrap();
    assert!(series.lines().skip(1).all(|row| !row.split(',').nth(column).unwrap().is_empty()), "{series}");
}

#[test]
fn a_merge_never_writes_into_an_input_nor_over_a_report() {
    let dir = temp_dir("edges-out");
    let (_emulator, port) = deterministic_emulator(&dir, SCOPE);
    let plan = scenario(&dir, &port);
    let shards: Vec<PathBuf> = (0..2).map(|k| dir.join(format!("s{k}"))).collect();
    for (k, out) in shards.iter().enumerate() {
        finish(run_to(&plan, out, &["--shard", &format!("{k}/2")]), "a shard");
    }
    let (s0, s1) = (shards[0].to_str().unwrap(), shards[1].to_str().unwrap());
    let before = std::fs::read(shards[1].join("summary.json")).unwrap();
    // Into an input, spelled another way: refused, the shard untouched, merging again works.
    let other_spelling = format!("{}/../s1", s0);
    let refused = dpsbench(&["report", "merge", s0, s1, "--out", &other_spelling], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let error = text(&refused.stderr);
    assert!(error.contains("never writes into an input") && error.contains(s1), "{error}");
    assert_eq!(std::fs::read(shards[1].join("summary.json")).unwrap(), before, "the shard is untouched");
    let forced = dpsbench(&["report", "merge", s0, s1, "--out", s1, "--force"], &[]);
    assert_eq!(forced.status.code(), Some(2), "--force never makes an input writable");
    // Over another report: refused unless --force.
    let merged = dir.join("merged");
    let m = merged.to_str().unwrap();
    assert_eq!(dpsbench(&["report", "merge", s0, s1, "--out", m], &[]).status.code(), Some(0));
    let again = dpsbench(&["report", "merge", s0, s1, "--out", m], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already holds a report"), "{}", text(&again.stderr));
    assert_eq!(dpsbench(&["report", "merge", s0, s1, "--out", m, "--force"], &[]).status.code(), Some(0));
    // conform --out likewise.
    let conform = dpsbench(&["conform", "--out", s1, "--exclude-billable"], &[]);
    assert_eq!(conform.status.code(), Some(2), "{}", text(&conform.stderr));
    assert!(text(&conform.stderr).contains("already holds a report"), "{}", text(&conform.stderr));
    assert_eq!(std::fs::read(shards[1].join("summary.json")).unwrap(), before);

    // Gates whose names cannot exist are refused, listing what can.
    for (gate, listed) in [
        ("failures.status429 > 0", "status_<HTTP status, not 2xx>"),
        ("violations.DPS-NOPE-999 > 0", "DPS-TOPIC-005"),
        ("assigned.p98 > 5ms", "p99.9"),
    ] {
        let output = dpsbench(&["report", "compare", s0, s1, "--fail-if", gate], &[]);
        assert_eq!(output.status.code(), Some(2), "{gate}: {}", text(&output.stdout));
        assert!(text(&output.stderr).contains(listed), "{gate}: {}", text(&output.stderr));
    }
    let known = dpsbench(&["report", "compare", s0, s1, "--fail-if", "failures.status_503 > 0"], &[]);
    assert_eq!(known.status.code(), Some(0), "{}", text(&known.stderr));
    // Several baselines: the figures' mean and spread; a gate in standard deviations; JSON and
    // the short form (issue 24).
    let json = dpsbench(&["report", "compare", s0, s1, m, "--json", "--fail-if", "assigned.p50 > +50sd"], &[]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let value: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON only");
    assert_eq!(value["baselines"].as_array().map(Vec::len), Some(2));
    assert_eq!(value["verdicts"][0]["tripped"], false);
    let p50 = value["figures"].as_array().unwrap().iter().find(|f| f["name"] == "assigned.p50").unwrap();
    assert_eq!(p50["spread"]["runs"], 2);
    let short = dpsbench(&["report", "compare", s0, m, "--summary"], &[]);
    let full = dpsbench(&["report", "compare", s0, m], &[]);
    assert!(text(&short.stdout).lines().count() * 3 < text(&full.stdout).lines().count(), "{}", text(&short.stdout));
    let lone = dpsbench(&["report", "compare", s0, m, "--fail-if", "assigned.p50 > +2sd"], &[]);
    assert_eq!(lone.status.code(), Some(2));
    assert!(text(&lone.stderr).contains("two or more baseline runs"), "{}", text(&lone.stderr));
    // One achieved rate: report.md shows the summary's.
    let achieved = summary(&shards[0])["rates"]["achieved_per_second"].as_f64().unwrap();
    assert_eq!(summary(&shards[0])["flows_per_second"].as_f64(), Some(achieved));
    let report_md = std::fs::read_to_string(shards[0].join("report.md")).unwrap();
    assert!(report_md.contains(&format!("| {achieved:.1} |")), "{achieved} in {report_md}");
}

/// Runs `scenario` expecting the preflight to stop it: exit 2, one line naming `field`, no
/// report folder, no registration at the emulator.
fn stopped_by_preflight(scenario: &Path, out: &Path, key: &str, field: &str) {
    let output = Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .env("BENCH_KEY", key)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{field}: {stderr}");
    assert!(stderr.contains("preflight") && stderr.contains(field), "names {field}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains(key), "never the key");
    assert!(!out.exists(), "no report folder for a run that never ran");
}

#[test]
fn a_misconfigured_run_stops_at_its_preflight_naming_the_field() {
    let dir = temp_dir("edges-preflight");
    let (_emulator, port) = deterministic_emulator(&dir, SCOPE);
    // A CA that signs nothing the emulator shows.
    crate::support::binary::write_certificates(&dir);
    let wrong_ca = scenario(&dir, &port).to_string_lossy().into_owned();
    let text_of = std::fs::read_to_string(&wrong_ca).unwrap().replace("ca.pem", "trust.pem");
    let wrong_ca = write(&dir, "wrong-ca.toml", &text_of);
    stopped_by_preflight(&wrong_ca, &dir.join("r1"), TV1_GROUP_KEY, "[target].ca_certificate");
    let other_key = "c2VjcmV0LWJ1dC13cm9uZy1rZXktb2YtZW5vdWdoLWxlbmd0aC10by1iZS1hLWtleQ==";
    let plan = scenario(&dir, &port);
    stopped_by_preflight(&plan, &dir.join("r2"), other_key, "devices.group_key_env (variable BENCH_KEY)");
    let wrong_scope = std::fs::read_to_string(&plan).unwrap().replace(SCOPE, "0ne00WRONG9");
    let wrong_scope = write(&dir, "wrong-scope.toml", &wrong_scope);
    stopped_by_preflight(&wrong_scope, &dir.join("r3"), TV1_GROUP_KEY, "[target].id_scope \"0ne00WRONG9\"");
    // A closed stdout ends the run quietly with its own exit status: `true` exits at once, so
    // the run's table meets a closed pipe; pipefail gives the run's status.
    let piped = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; BENCH_KEY='{TV1_GROUP_KEY}' '{BIN}' run '{}' --quiet --out '{}' | true",
            plan.display(),
            dir.join("r4").display()
        ))
        .output()
        .unwrap();
    assert!(!text(&piped.stderr).contains("panicked"), "{}", text(&piped.stderr));
    assert_eq!(piped.status.code(), Some(0), "the run's own status: {}", text(&piped.stderr));
    assert!(dir.join("r4/summary.json").is_file(), "every file written before the table");
}

/// `--dry-run` forecasts from what the scenario states for any DPS target, on this machine too,
/// holds a stated ceiling there, and shows a shard's own devices.
#[test]
fn a_dry_run_uses_the_stated_quota_and_ceiling_on_this_machine_and_a_shards_own_devices() {
    let dir = temp_dir("edges-dry-run");
    let plan =
        || Scenario::dps("local", "127.0.0.1", SCOPE).devices(3000).device("group_key_env", "BENCH_KEY").rate(40.0);
    let key = [("BENCH_KEY", TV1_GROUP_KEY)];
    let units = plan().target("dps_units", 1).write(&dir, "units.toml");
    let output = dpsbench(&["run", units.to_str().unwrap(), "--dry-run"], &key);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(stdout.contains("429 throttling certain") && stdout.contains("[target].dps_units"), "{stdout}");
    let unstated = plan().write(&dir, "unstated.toml");
    let stdout = text(&dpsbench(&["run", unstated.to_str().unwrap(), "--dry-run"], &key).stdout);
    assert!(!stdout.contains("429 throttling certain"), "no quota is known for a local target: {stdout}");

    let over = plan().target("max_devices_per_second", 10).write(&dir, "over.toml");
    let output = dpsbench(&["run", over.to_str().unwrap(), "--dry-run"], &key);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stdout));
    assert!(text(&output.stderr).contains("target.max_devices_per_second = 10"), "{}", text(&output.stderr));

    let output = dpsbench(&["run", unstated.to_str().unwrap(), "--dry-run", "--shard", "0/2"], &key);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("up to 1500 (") && stdout.contains("shard 0/2 of the plan's 3000"), "{stdout}");
}

/// A run whose preflight fails leaves an old report under `--force` whole (it is set up and
/// checked before its folder is touched); an interrupt during the preflight ends it at once;
/// an embedded emulator's outage at second 0 counts from after the preflight, which passes.
#[test]
fn the_preflight_runs_before_the_folder_is_touched_and_an_interrupt_ends_it() {
    let dir = temp_dir("edges-preflight-force");
    let (_emulator, port) = deterministic_emulator(&dir, SCOPE);
    let plan = scenario(&dir, &port);
    let out = dir.join("old");
    finish(run_to(&plan, &out, &[]), "the first run");
    let files: Vec<(String, Vec<u8>)> = ["summary.json", "timeseries.csv", "latency.hlog", "report.html"]
        .iter()
        .map(|name| (name.to_string(), std::fs::read(out.join(name)).unwrap()))
        .collect();
    let wrong_key = "c2VjcmV0LWJ1dC13cm9uZy1rZXktb2YtZW5vdWdoLWxlbmd0aC10by1iZS1hLWtleQ==";
    let output = Command::new(BIN)
        .args(["run", plan.to_str().unwrap(), "--quiet", "--force", "--out"])
        .arg(&out)
        .env("BENCH_KEY", wrong_key)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), bytes, "{name} of the old report is untouched");
    }

    // A target that accepts and never answers holds the preflight in its TLS handshake. It says
    // when the handshake began (the reachability probe before it closes without a byte; the TLS
    // connection sends its ClientHello), and holds it until the run closes it (15 s at most).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let (in_handshake, on_handshake) = std::sync::mpsc::channel();
    let held = std::thread::spawn(move || {
        for mut connection in silent.incoming().map_while(Result::ok) {
            connection.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            if std::io::Read::read(&mut connection, &mut [0u8; 1]).unwrap_or(0) > 0 {
                let _ = in_handshake.send(());
                let _ = std::io::Read::read_to_end(&mut connection, &mut Vec::new());
                return;
            }
        }
    });
    let stalled =
        std::fs::read_to_string(&plan).unwrap().replace(&format!("port = {port}"), &format!("port = {silent_port}"));
    let stalled = write(&dir, "stalled.toml", &stalled);
    let mut child = Command::new(BIN)
        .args(["run", stalled.to_str().unwrap(), "--quiet", "--out"])
        .arg(dir.join("never"))
        .env("BENCH_KEY", TV1_GROUP_KEY)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    on_handshake.recv_timeout(Duration::from_secs(10)).expect("the preflight's handshake reaches the silent target");
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(5)).expect("the interrupt did not end the preflight");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted before the run started"), "{stderr}");
    assert!(!dir.join("never").exists());
    let _ = held.join();

    let outage = Scenario::embedded("outage")
        .target("retry_after_seconds", 0)
        .target("faults.outage", table([("at_seconds", 0.into()), ("for_seconds", 1.into())]))
        .devices(20)
        .rate(10.0)
        .run("max_duration_seconds", 30)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "outage.toml");
    let output =
        dpsbench(&["run", outage.to_str().unwrap(), "--quiet", "--out", dir.join("outage").to_str().unwrap()], &[]);
    assert_ne!(output.status.code(), Some(2), "the preflight passed: {}", text(&output.stderr));
    let result = summary(&dir.join("outage"));
    assert_eq!(result["emulator"]["faults"]["outage"], 1, "the outage came after the preflight: {result}");
}

/// Issue 24, item 7: the help says what a user needs (exit codes, where formats are documented,
/// what a folder holds), and --version names the commit.
#[test]
fn help_names_exit_codes_formats_and_the_commit() {
    // Words as a reader sees them, whatever the terminal width wrapped.
    let help = |args: &[&str]| text(&dpsbench(args, &[]).stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    for command in ["emulator", "certs", "keys", "token", "run", "conform"] {
        assert!(help(&[command, "--help"]).contains("Exit status"), "{command} --help names its exit codes");
    }
    assert!(help(&["emulator", "--help"]).contains("The emulator's configuration"), "where the format is");
    assert!(help(&["report", "--help"]).contains("merge"), "report --help lists merge");
    let run = help(&["run", "--help"]);
    assert!(run.contains("report.html") && run.contains("latency.hlog"), "what --out holds: {run}");
    let version = help(&["--version"]);
    assert!(version.starts_with("dpsbench ") && version.contains("commit"), "{version}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let shells = help(&["completions", "--help"]);
    let listed = readme.lines().find(|l| l.contains("`dpsbench completions")).expect("README lists completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.contains(shell) && listed.contains(shell), "{shell}: {listed}");
    }
}
