//! The report folder of a real run, read by others: `latency.hlog` decoded by the Rust reader and
//! by an independent one (the Python HdrHistogram port), `report.html` loaded in a headless
//! browser, `devices.csv` row by row.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::binary::{TV1_GROUP_KEY, dpsbench, spawn_emulator_ready, temp_dir, text, write};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;
use dpsbench::metrics::Phase;

/// Devices at 100/s against the embedded emulator: a run of several one-second intervals.
fn throttled_scenario(devices: u32) -> Scenario {
    Scenario::embedded("reports")
        .target("retry_after_seconds", 1)
        .target("assign_delay_ms", 30)
        .devices(devices.into())
        .device("registration_id", "rep-{index:04}")
        .rate(100.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
}

/// Runs the throttled scenario into `dir/out` with `extra` arguments; returns the folder and
/// the parsed summary.json.
fn run(dir: &Path, devices: u32, extra: &[&str]) -> (PathBuf, Value) {
    let scenario = throttled_scenario(devices).write(dir, "reports.toml");
    let out = dir.join("out");
    let mut args = vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let output = dpsbench(&args, &[]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "stderr: {}", text(&output.stderr));
    let summary = read_summary(&out);
    (out, summary)
}

#[test]
fn latency_log_adds_up_to_the_summary_in_this_reader_and_an_independent_one() {
    let dir = temp_dir("hlog");
    let (out, summary) = run(&dir, 300, &[]);
    let bytes = std::fs::read(out.join("latency.hlog")).unwrap();
    assert!(bytes.starts_with(b"#[Logged with dpsbench"), "{}", text(&bytes[..200.min(bytes.len())]));
    let log = dpsbench::report::format::hlog::read(&bytes).unwrap();
    assert!(log.base_time.is_some() && log.start_time.is_some());
    let seconds: std::collections::BTreeSet<u64> = log.intervals.iter().map(|i| i.start.as_secs()).collect();
    assert!(seconds.len() >= 3, "one interval a second over a run of several: {seconds:?}");

    let totals = log.totals();
    let mut phases_seen = 0;
    for phase in Phase::ALL {
        let expected = &summary["phases"][phase.as_str()];
        let histogram = totals.get(phase);
        assert_eq!(histogram.len(), expected["count"].as_u64().unwrap(), "{phase} count");
        if histogram.is_empty() {
            continue;
        }
        phases_seen += 1;
        for (field, quantile) in [("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("p999_us", 0.999)] {
            assert_eq!(histogram.value_at_quantile(quantile), expected[field].as_u64().unwrap(), "{phase} {field}");
        }
        assert_eq!(histogram.max(), expected["max_us"].as_u64().unwrap(), "{phase} max");
    }
    assert!(phases_seen >= 9, "every phase of an MQTT flow is logged");

    let python = crate::support::python::tools_python();
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/read_hlog.py"))
        .arg(out.join("latency.hlog"))
        .output()
        .unwrap();
    assert!(output.status.success(), "the Python reader failed: {}", text(&output.stderr));
    let decoded: Value = serde_json::from_slice(&output.stdout).unwrap();
    for phase in Phase::ALL {
        let expected = &summary["phases"][phase.as_str()];
        if expected["count"] == 0 {
            assert!(decoded.get(phase.as_str()).is_none(), "{phase}: no lines for an empty phase");
            continue;
        }
        let got = &decoded[phase.as_str()];
        for field in ["count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert_eq!(got[field], expected[field], "{phase} {field} as the Python reader decodes it");
        }
        // The port's own percentile rounds the rank half up rather than up: where both rules
        // give the same rank, it must agree too.
        let count = expected["count"].as_u64().unwrap() as f64;
        for (field, quantile) in [("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("p999_us", 0.999)] {
            let same_rank = (quantile * count).ceil().max(1.0) == (quantile * count + 0.5).floor().max(1.0);
            if same_rank {
                assert_eq!(got["python_percentiles"][field], expected[field], "{phase} {field} (port's rule)");
            }
        }
    }
}

#[test]
fn devices_csv_has_one_row_per_device_agreeing_with_the_summary() {
    let dir = temp_dir("devices-csv");
    let (out, summary) = run(&dir, 120, &["--devices-csv"]);
    let mut reader = csv::Reader::from_path(out.join("devices.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name}"));
    for phase in Phase::ALL {
        column(&format!("{}_us", phase.as_str()));
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 120);
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[column("registration_id")]).collect();
    assert_eq!(ids.len(), 120, "each device once");
    assert!(ids.contains("rep-0000") && ids.contains("rep-0119"));
    let mut hubs = std::collections::BTreeMap::<String, u64>::new();
    let mut attempts = 0u64;
    let mut assigned_us = Vec::new();
    for row in &rows {
        assert_eq!(&row[column("outcome")], "assigned");
        assert_eq!(&row[column("personality")], "dpsbench");
        assert_eq!(&row[column("failure_kind")], "");
        *hubs.entry(row[column("hub")].to_string()).or_default() += 1;
        attempts += row[column("register_attempts")].parse::<u64>().unwrap();
        assigned_us.push(row[column("assigned_us")].parse::<u64>().unwrap());
        assert!(row[column("poll_us")].parse::<u64>().unwrap() > 0);
    }
    let expected_hubs: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(summary["hubs"].clone()).unwrap();
    assert_eq!(hubs, expected_hubs);
    let mean = (attempts as f64 / 120.0 * 100.0).round() / 100.0;
    assert_eq!(mean, summary["register_attempts"]["mean"].as_f64().unwrap());
    // The summary's max is the top of the histogram bucket (0.1% wide) holding the slowest.
    let slowest = *assigned_us.iter().max().unwrap() as f64;
    let max_us = summary["phases"]["assigned"]["max_us"].as_f64().unwrap();
    assert!(slowest <= max_us && slowest >= max_us * 0.998, "slowest {slowest} vs summary max {max_us}");
}

#[test]
fn report_html_draws_every_chart_in_a_headless_browser() {
    let Some(browser) = browser() else { return };
    let dir = temp_dir("browser");
    let (out, _) = run(&dir, 120, &[]);
    let page = format!("file://{}", out.join("report.html").display());
    let profile = |name: &str| format!("--user-data-dir={}", dir.join(name).display());
    let (console, dom) = dump_dom(&browser, &dir, &page);
    assert!(console.is_empty(), "the page logged to the console: {console:#?}");
    // The page's own script counts the charts whose SVG laid out with a non-empty box (and
    // logged any legend over a line to the console, checked above).
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Every chart, the latency heatmaps (`class="chart heatmap"`) among them.
    let figures = html.matches("<figure class=\"chart").count();
    assert!(figures >= 6 + 9, "{figures} charts");
    assert!(dom.contains(&format!("data-charts=\"{figures}\"")), "{}", &dom[..dom.len().min(2000)]);
    assert!(dom.contains(&format!("data-charts-drawn=\"{figures}\"")), "a chart did not draw");

    let screenshot = dir.join("report.png");
    let shot = Command::new("timeout")
        .arg("120")
        .arg(&browser)
        .args(HEADLESS)
        .args([&profile("profile-shot"), "--hide-scrollbars", "--window-size=960,3200"])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&page)
        .output()
        .unwrap();
    assert!(shot.status.success(), "screenshot failed: {}", text(&shot.stderr));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "{} bytes", png.len());
    eprintln!("report.html screenshot: {}", screenshot.display());
}

/// The flags of a headless Chromium that loads one local page and nothing else.
const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// `page` (a file:// URL) loaded by `browser` with a profile under `dir`: what the page logged
/// to the console, and its DOM once its scripts ran.
pub(crate) fn dump_dom(browser: &Path, dir: &Path, page: &str) -> (Vec<String>, String) {
    let profile = format!("--user-data-dir={}", dir.join("profile-dom").display());
    let dumped = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args(HEADLESS)
        .args([&profile, "--enable-logging=stderr", "--v=0", "--dump-dom", page])
        .output()
        .unwrap();
    assert!(dumped.status.success(), "{} failed: {}", browser.display(), text(&dumped.stderr));
    let console = text(&dumped.stderr).lines().filter(|line| line.contains(":CONSOLE")).map(String::from).collect();
    (console, text(&dumped.stdout))
}

/// A Chromium to load pages with: $DPSBENCH_BROWSER, or Debian's chromium-headless-shell or
/// chromium on the PATH; `None` only when the user skipped the `chromium` part by name (a missing
/// browser is otherwise a failure).
pub(crate) fn browser() -> Option<PathBuf> {
    let named = std::env::var_os("DPSBENCH_BROWSER").map(PathBuf::from).filter(|path| path.is_file());
    let candidates = ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"];
    let found = named.or_else(|| candidates.into_iter().find_map(crate::support::parts::on_path));
    if found.is_none() {
        crate::support::parts::missing(
            "chromium",
            "no Chromium found (apt-get install chromium-headless-shell, or set DPSBENCH_BROWSER)",
        );
    }
    found
}

/// Killed outright mid-run (no summary), the folder still holds every second logged so far:
/// `latency.hlog` reads back and `devices.csv` has whole rows.
#[test]
fn a_killed_run_keeps_its_latency_log_and_device_rows() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("killed");
    let scenario = Scenario::embedded("slow")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 100)
        .devices(1000)
        .device("registration_id", "k-{index:04}")
        .rate(50.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "slow.toml");
    let out = dir.join("out");
    let mut run = crate::support::binary::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_dpsbench"))
            .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--devices-csv"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The banner, then a progress line a second (at 0, 1, 2, 3 s): once the line of 3 s is out,
    // the files of 2 s are written.
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let mut line = String::new();
    for _ in 0..5 {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the run ended early");
    }
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    assert!(!out.join("summary.json").exists(), "killed before the end");
    let log = dpsbench::report::format::hlog::read(&std::fs::read(out.join("latency.hlog")).unwrap()).unwrap();
    let assigned = log.totals().get(Phase::Assigned).len();
    assert!(assigned >= 25, "about two seconds of 50 devices a second were logged: {assigned}");
    let mut reader = csv::Reader::from_path(out.join("devices.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.len() as u64 >= assigned.saturating_sub(60), "{} rows, {assigned} logged", rows.len());
    assert!(rows.iter().all(|row| row.len() == 18 && row[0].starts_with("k-")), "whole rows only");
}

/// A standalone emulator's log, as `(instant, 429s so far)` from each line that counts any:
/// its lines open with their RFC 3339 instant and count `throttled +N (TOTAL)`.
fn throttled_so_far(log: &str) -> Vec<(std::time::SystemTime, u64)> {
    log.lines()
        .filter_map(|line| {
            let (at, rest) = line.split_once(' ')?;
            let total = rest.split("throttled +").nth(1)?.split_once('(')?.1.split_once(')')?.0;
            Some((dpsbench::timestamp::parse_rfc3339(at).ok()?, total.parse().ok()?))
        })
        .collect()
}

/// Issue 35: a 429 counts in the second it arrived, not when its device finished. A standalone
/// emulator with a quota logs the 429s it sent each second; `throttled` in the run's
/// timeseries.csv (so far, at each interval's end from the plan's start instant) must lie
/// between what the emulator had logged a second before that end and what it logged a second
/// after, and the totals must be equal.
#[test]
fn throttled_in_second_follows_the_emulators_own_count_of_429s() {
    use std::time::{Duration, UNIX_EPOCH};
    let dir = temp_dir("throttled-at-event-time");
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00THR035\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 1\n\
             assign_delay_ms = 20\n[quota]\nregistrations_per_minute = 120\n\
             [[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    );
    let (mut emulator, ready) = spawn_emulator_ready(&config, &dir.join("ca.pem"), &[]);
    let port = ready.split_whitespace().find_map(|w| w.strip_prefix("127.0.0.1:")).expect("a bound address");
    let scenario = Scenario::dps("throttled", "127.0.0.1", "0ne00THR035")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(300)
        .device("registration_id", "thr-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .arrival("model", "poisson")
        .rate(60.0)
        .arrival("seed", 35)
        .run("max_duration_seconds", 90)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "throttled.toml");
    let out = dir.join("out");
    let args = ["run", scenario.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()];
    let output = dpsbench(&args, &[("BENCH_KEY", TV1_GROUP_KEY)]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "stderr: {}", text(&output.stderr));
    // The emulator logs the second that held the run's last replies within a second.
    std::thread::sleep(Duration::from_millis(2_500));
    emulator.0.kill().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut emulator.0.stderr.take().unwrap(), &mut log).unwrap();
    let logged = throttled_so_far(&log);
    let total = logged.last().map_or(0, |(_, total)| *total);
    assert!(total >= 50, "the quota throttled the run: {log}");

    let summary = read_summary(&out);
    assert_eq!(summary["statuses"]["429"].as_u64(), Some(total), "{}", summary["statuses"]);
    let rows =
        dpsbench::report::format::timeseries::read(&std::fs::read_to_string(out.join("timeseries.csv")).unwrap())
            .unwrap();
    let per_second: u64 = rows.iter().map(|row| row.throttled_in_second).sum();
    assert_eq!(per_second, total, "the intervals add up to the emulator's total");
    assert_eq!(rows.last().map(|row| row.throttled), Some(total));

    // Each row's end on the wall clock: the plan's start instant (latency.hlog's BaseTime) plus
    // its elapsed_s.
    let hlog = dpsbench::report::format::hlog::read(&std::fs::read(out.join("latency.hlog")).unwrap()).unwrap();
    let origin = UNIX_EPOCH + hlog.base_time.expect("a BaseTime");
    let logged_by = |at| logged.iter().take_while(|(t, _)| *t <= at).last().map_or(0, |(_, n)| *n);
    let logged_from = |at| logged.iter().find(|(t, _)| *t >= at).map_or(total, |(_, n)| *n);
    let mut busy = 0;
    for (k, row) in rows.iter().enumerate() {
        let end = origin + Duration::from_secs_f64(row.elapsed_s);
        let (lower, upper) = (logged_by(end - Duration::from_secs(1)), logged_from(end + Duration::from_secs(1)));
        assert!(
            (lower..=upper).contains(&row.throttled),
            "row {k} (elapsed {:.3}): {} 429s so far, but the emulator had sent {lower} a second before and \
             {upper} a second after\nrun: {:?}\nemulator: {log}",
            row.elapsed_s,
            row.throttled,
            rows.iter().map(|r| r.throttled_in_second).collect::<Vec<_>>()
        );
        busy += u64::from(row.throttled_in_second > 0);
    }
    assert!(
        busy >= 3,
        "429s came over several seconds: {:?}",
        rows.iter().map(|r| r.throttled_in_second).collect::<Vec<_>>()
    );
}
