//! Issue 10: four `run --shard K/4` processes against one `dpsbench emulator`, merged with
//! `report merge`, checked by readers independent of the code that wrote and merged the files
//! (the Python HdrHistogram port for the histograms, devices.csv for the registration IDs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::binary::{
    KillOnDrop, Scratch, TV1_GROUP_KEY, deterministic_emulator, dpsbench, spawn_emulator, temp_dir, text,
    wait_for_exit, write,
};
use crate::support::python::tools_python;
use crate::support::scenario::Scenario;
use crate::support::schema::{check_schema, read_summary};

const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");
const SHARDS: u64 = 4;
const DEVICES: u64 = 203;

/// Waits for `child` up to `limit`; its exit code (the child is killed on drop past it).
fn wait(child: &mut KillOnDrop, limit: Duration) -> Option<i32> {
    let status = wait_for_exit(child, limit).unwrap_or_else(|| panic!("a shard did not finish within {limit:?}"));
    status.code()
}

/// The Python reader's view of a latency.hlog: per phase, every value's count.
fn decoded(python: &str, hlog: &Path) -> Value {
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/read_hlog.py"))
        .arg(hlog)
        .arg("--counts")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}: {}", hlog.display(), text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn summary(dir: &Path) -> Value {
    read_summary(dir)
}

/// Registration IDs in a devices.csv, in file order.
fn registration_ids(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("devices.csv")).unwrap();
    text.lines().skip(1).map(|line| line.split(',').next().unwrap().to_string()).collect()
}

/// Runs the four shards against one emulator; returns the temp dir and the shards' folders.
fn run_shards() -> (Scratch, Vec<PathBuf>) {
    let dir = temp_dir("shards");
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00SHARD1\"\nhubs = [\"hub-a.azure-devices.net\", \"hub-b.azure-devices.net\"]\n\
             retry_after_seconds = 0\nassign_delay_ms = 10\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    );
    let (_emulator, port) = spawn_emulator(&config, &dir.join("ca.pem"));
    let scenario = Scenario::dps("sharded", "127.0.0.1", "0ne00SHARD1")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(DEVICES)
        .device("registration_id", "sh-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .arrival("model", "poisson")
        .rate(150.0)
        .arrival("seed", 11)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "sharded.toml");
    let start_at = dpsbench::timestamp::rfc3339(SystemTime::now() + Duration::from_secs(3));
    let folders: Vec<PathBuf> = (0..SHARDS).map(|k| dir.join(format!("shard-{k}"))).collect();
    run_shards_of(&scenario, &folders, &start_at, &["--devices-csv"]);
    (dir, folders)
}

/// Runs `scenario` as one shard per folder of `folders` (shard k of their count into the k-th),
/// all with `--start-at start_at` and `extra` arguments; each must exit 0.
fn run_shards_of(scenario: &Path, folders: &[PathBuf], start_at: &str, extra: &[&str]) {
    let mut children: Vec<KillOnDrop> = folders
        .iter()
        .enumerate()
        .map(|(k, out)| {
            KillOnDrop(
                Command::new(BIN)
                    .args(["run", scenario.to_str().unwrap(), "--quiet"])
                    .args(extra)
                    .arg("--out")
                    .arg(out)
                    .args(["--shard", &format!("{k}/{}", folders.len()), "--start-at", start_at])
                    .env("BENCH_KEY", TV1_GROUP_KEY)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for (k, child) in children.iter_mut().enumerate() {
        assert_eq!(wait(child, Duration::from_secs(90)), Some(0), "{}: shard {k}", out_name(&folders[k]));
    }
}

fn out_name(folder: &Path) -> String {
    folder.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

#[test]
fn four_shards_merge_into_the_plan_exactly() {
    let python = tools_python();
    let (dir, folders) = run_shards();
    let merged = dir.join("merged");
    let mut args: Vec<&str> = vec!["report", "merge"];
    args.extend(folders.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let output = dpsbench(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", text(&output.stdout), text(&output.stderr));

    // Devices: the plan's count, every one assigned; one plan hash across the shards.
    let result = summary(&merged);
    assert_eq!(result["devices"]["total"], DEVICES);
    assert_eq!(result["devices"]["assigned"], DEVICES);
    assert_eq!(result["partial"], false);
    assert_eq!(result["merged"]["missing"], serde_json::json!([]));
    let hashes: BTreeSet<String> =
        folders.iter().map(|f| summary(f)["shard"]["plan_hash"].as_str().unwrap().to_string()).collect();
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    for (k, folder) in folders.iter().enumerate() {
        let shard = summary(folder);
        assert_eq!(shard["shard"]["index"], k as u64);
        assert_eq!(shard["devices"]["total"], (DEVICES - k as u64).div_ceil(SHARDS));
        assert!(shard["shard"]["start_offset_seconds"].as_f64().unwrap().abs() < 0.5, "{}", shard["shard"]);
    }
    let schema: Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/reports/summary.schema.json")))
            .unwrap();
    check_schema(&schema, &result, "merged summary.json");
    for name in ["latency.hlog", "timeseries.csv", "report.md", "report.html", "devices.csv"] {
        assert!(merged.join(name).is_file(), "no merged {name}");
    }

    // The generator's CPU is the shards' CPU added, per device over the plan's devices.
    let cpu = |s: &Value| {
        s["generator"]["cpu_user_seconds"].as_f64().unwrap() + s["generator"]["cpu_system_seconds"].as_f64().unwrap()
    };
    let shards_cpu: f64 = folders.iter().map(|f| cpu(&summary(f))).sum();
    assert!((cpu(&result) - shards_cpu).abs() < 0.005, "{} vs {shards_cpu}", result["generator"]);
    let per_device = result["generator"]["cpu_us_per_device"].as_f64().unwrap();
    assert!((per_device - cpu(&result) * 1e6 / DEVICES as f64).abs() < 1.0, "{}", result["generator"]);

    // Every merged phase histogram is the sum of the shards', value by value, as the Python
    // HdrHistogram port decodes them; the merged summary's percentiles are those of the sum.
    let shards: Vec<Value> = folders.iter().map(|f| decoded(&python, &f.join("latency.hlog"))).collect();
    let whole = decoded(&python, &merged.join("latency.hlog"));
    let phases = whole.as_object().unwrap();
    assert!(phases.contains_key("assigned") && phases.contains_key("tls_handshake"), "{whole}");
    for (phase, stats) in phases {
        let mut added: BTreeMap<String, u64> = BTreeMap::new();
        for shard in &shards {
            for (value, count) in shard[phase]["counts"].as_object().into_iter().flatten() {
                *added.entry(value.clone()).or_default() += count.as_u64().unwrap();
            }
        }
        let merged_counts: BTreeMap<String, u64> =
            stats["counts"].as_object().unwrap().iter().map(|(v, c)| (v.clone(), c.as_u64().unwrap())).collect();
        assert_eq!(merged_counts, added, "{phase}: the merged histogram is not the shards' sum");
        let reported = &result["phases"][phase];
        for figure in ["count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert_eq!(reported[figure], stats[figure], "{phase} {figure}");
        }
    }
    assert_eq!(whole["assigned"]["count"], DEVICES);

    // Registration IDs: disjoint across shards, together the plan's, each shard its own indexes.
    let mut all = BTreeSet::new();
    for (k, folder) in folders.iter().enumerate() {
        for id in registration_ids(folder) {
            let index: u64 = id.strip_prefix("sh-").unwrap().parse().unwrap();
            assert_eq!(index % SHARDS, k as u64, "{id} ran in shard {k}");
            assert!(all.insert(id.clone()), "{id} ran in two shards");
        }
    }
    let expected: BTreeSet<String> = (0..DEVICES).map(|i| format!("sh-{i:03}")).collect();
    assert_eq!(all, expected);
    assert_eq!(registration_ids(&merged).len() as u64, DEVICES);

    // Refusals name the folder (exit 2); a missing shard makes the result partial (exit 1).
    let refused = dir.join("refused");
    let (first, refused) = (folders[0].to_str().unwrap(), refused.to_str().unwrap());
    let twice = dpsbench(&["report", "merge", first, first, "--out", refused], &[]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(text(&twice.stderr).contains("shard 0 is given twice"), "{}", text(&twice.stderr));
    let not_a_report = dpsbench(&["report", "merge", first, dir.to_str().unwrap(), "--out", refused], &[]);
    assert_eq!(not_a_report.status.code(), Some(2));
    assert!(text(&not_a_report.stderr).contains(&format!("{} is not a dpsbench report folder", dir.display())));
    let partial_dir = dir.join("partial");
    let mut args: Vec<&str> = vec!["report", "merge"];
    args.extend(folders[..3].iter().map(|f| f.to_str().unwrap()));
    args.extend(["--out", partial_dir.to_str().unwrap()]);
    let partial = dpsbench(&args, &[]);
    assert_eq!(partial.status.code(), Some(1), "{}", text(&partial.stderr));
    let partial = summary(&partial_dir);
    assert_eq!(partial["partial"], true);
    assert_eq!(partial["merged"]["missing"], serde_json::json!([3]));
}

/// Starts `started` per row of a timeseries.csv: each row's running total less the previous one's.
fn started_per_row(csv: &str) -> Vec<u64> {
    let rows = dpsbench::report::format::timeseries::read(csv).unwrap();
    let mut before = 0;
    rows.iter().map(|row| row.started - std::mem::replace(&mut before, row.started)).collect()
}

/// Issue 35: three shards of a flat 120/s plan started with `--start-at` on a whole second merge
/// to a flat series, in every repeat: each shard's interval k is `[start + k s, start + (k + 1) s)`
/// (its rows end at whole seconds from the start, its log's intervals start on them), so the
/// merge adds rows of the same interval and every merged row starts the plan's 120.
#[test]
fn three_shards_of_a_flat_plan_merge_to_a_flat_series_in_every_repeat() {
    const RATE: u64 = 120;
    const SECONDS: u64 = 4;
    let dir = temp_dir("flat-shards");
    let (_emulator, port) = deterministic_emulator(&dir, "0ne00FLAT35");
    let scenario = Scenario::dps("flat", "127.0.0.1", "0ne00FLAT35")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(RATE * SECONDS)
        .device("registration_id", "flat-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .rate(RATE as f64)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "flat.toml");
    for repeat in 0..2 {
        // The next whole second at least two seconds ahead, as `date -d +2sec +%H:%M:%SZ` gives.
        let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let start = Duration::from_secs(now.as_secs() + 3);
        let start_at = dpsbench::timestamp::rfc3339(std::time::UNIX_EPOCH + start);
        let folders: Vec<PathBuf> = (0..3).map(|k| dir.join(format!("r{repeat}-shard-{k}"))).collect();
        run_shards_of(&scenario, &folders, &start_at, &[]);
        for (k, folder) in folders.iter().enumerate() {
            // Each shard: intervals from the start instant, whole seconds, 40 starts in each.
            let hlog =
                dpsbench::report::format::hlog::read(&std::fs::read(folder.join("latency.hlog")).unwrap()).unwrap();
            assert_eq!(hlog.base_time, Some(start), "repeat {repeat}, shard {k}: the log counts from --start-at");
            assert!(hlog.intervals.iter().all(|i| i.start.subsec_nanos() == 0), "repeat {repeat}, shard {k}");
            let csv = std::fs::read_to_string(folder.join("timeseries.csv")).unwrap();
            let rows = dpsbench::report::format::timeseries::read(&csv).unwrap();
            for (index, row) in rows.iter().enumerate().take(rows.len() - 1) {
                assert_eq!(
                    row.elapsed_s,
                    (index + 1) as f64,
                    "repeat {repeat}, shard {k}: row {index} ends on its interval\n{csv}"
                );
            }
            let started = started_per_row(&csv);
            assert_eq!(started[..SECONDS as usize], [RATE / 3; SECONDS as usize], "repeat {repeat}, shard {k}\n{csv}");
        }
        let merged = dir.join(format!("r{repeat}-merged"));
        let mut args: Vec<&str> = vec!["report", "merge"];
        args.extend(folders.iter().map(|f| f.to_str().unwrap()));
        args.extend(["--out", merged.to_str().unwrap()]);
        let output = dpsbench(&args, &[]);
        assert_eq!(output.status.code(), Some(0), "{}\n{}", text(&output.stdout), text(&output.stderr));
        let csv = std::fs::read_to_string(merged.join("timeseries.csv")).unwrap();
        let started = started_per_row(&csv);
        assert_eq!(started[..SECONDS as usize], [RATE; SECONDS as usize], "repeat {repeat}: the merged series\n{csv}");
        assert!(
            started[SECONDS as usize..].iter().all(|n| *n == 0),
            "repeat {repeat}: every start was in the plan's 4 s\n{csv}"
        );
        assert_eq!(started.iter().sum::<u64>(), RATE * SECONDS);
        let hlog = dpsbench::report::format::hlog::read(&std::fs::read(merged.join("latency.hlog")).unwrap()).unwrap();
        assert_eq!(hlog.base_time, Some(start), "repeat {repeat}: the merged log counts from --start-at");
    }
}

#[test]
fn an_emulator_over_three_processes_shares_one_address_and_stops_them_all() {
    let dir = temp_dir("emulator-processes");
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00PROCS1\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 0\n\
             assign_delay_ms = 10\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    );
    let mut emulator = KillOnDrop(
        Command::new(BIN)
            .args(["emulator", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--processes", "3"])
            .arg("--ca-out")
            .arg(dir.join("ca.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(emulator.stdout.take().unwrap()), &mut ready).unwrap();
    assert!(ready.contains("3 processes sharing the address"), "{ready}");
    let port = ready.split_whitespace().find_map(|w| w.strip_prefix("127.0.0.1:")).unwrap().to_string();
    let scenario = Scenario::dps("spread", "127.0.0.1", "0ne00PROCS1")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(150)
        .device("registration_id", "spread-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .rate(300.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "spread.toml");
    let out = dir.join("out");
    let run =
        dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[("BENCH_KEY", TV1_GROUP_KEY)]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));

    // SIGTERM to the first process stops every process; each reports what it served.
    let status = Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(wait(&mut emulator, Duration::from_secs(30)), Some(0));
    let mut served = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut served).unwrap();
    let registrations: Vec<u64> = served
        .lines()
        .filter_map(|line| line.split(", ").find_map(|part| part.strip_suffix(" registrations")))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(registrations.len(), 3, "{served}");
    assert_eq!(registrations.iter().sum::<u64>(), 150, "{served}");
    assert!(registrations.iter().filter(|n| **n > 0).count() >= 2, "the kernel spread connections: {served}");
}

#[test]
fn a_start_in_the_past_and_a_bad_shard_are_refused_with_exit_2() {
    let dir = temp_dir("shard-flags");
    let scenario = Scenario::embedded("s").devices(10).arrival("model", "closed").arrival("concurrency", 2);
    let scenario = scenario.write(&dir, "s.toml");
    let scenario = scenario.to_str().unwrap();
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let past = dpsbench(&["run", scenario, "--out", out, "--start-at", "2020-01-01T00:00:00Z"], &[]);
    assert_eq!(past.status.code(), Some(2));
    assert!(text(&past.stderr).contains("--start-at 2020-01-01T00:00:00.0000000Z is"), "{}", text(&past.stderr));
    let bad = dpsbench(&["run", scenario, "--out", out, "--shard", "4/4"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("K must be from 0 to N-1"), "{}", text(&bad.stderr));
    let idle = dpsbench(&["run", scenario, "--out", out, "--shard", "2/3"], &[]);
    assert_eq!(idle.status.code(), Some(2));
    assert!(text(&idle.stderr).contains("concurrency of 2 leaves this shard no device"), "{}", text(&idle.stderr));
    let from_env = dpsbench(&["run", scenario, "--out", out, "--quiet"], &[("DPSBENCH_SHARD", "1/3")]);
    assert_eq!(from_env.status.code(), Some(0), "{}", text(&from_env.stderr));
    assert_eq!(summary(Path::new(out))["shard"]["index"], 1);
    assert_eq!(summary(Path::new(out))["devices"]["total"], 3);
}
