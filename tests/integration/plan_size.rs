//! A plan far larger than its run can start (issue 19): devices are prepared a window ahead of
//! their start, so the process stays small and starts at once, and the run says before it
//! begins how many will start. The memory and start-time goals themselves are measured by
//! `scripts/bench-plan` (see benches/README.md); the bound here only catches a plan built whole.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::binary::{Scratch, temp_dir, text};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");

/// The peak resident memory of a running process so far, in KiB (`VmHWM`), if it can be read.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A scenario of `devices` at `rate` a second, for at most `seconds`, in a fresh folder (kept
/// while the first value lives); and where its report goes.
fn scenario(name: &str, devices: u64, rate: u32, seconds: u32) -> (Scratch, PathBuf, PathBuf) {
    let dir = temp_dir(&format!("plan-size-{name}"));
    let scenario = Scenario::embedded(name)
        .target("retry_after_seconds", 0)
        .devices(devices)
        .rate(rate.into())
        .run("max_duration_seconds", seconds)
        .write(&dir, &format!("{name}.toml"));
    let out = dir.join("out");
    (dir, scenario, out)
}

#[test]
fn a_ten_million_device_plan_is_announced_and_starts_what_its_time_limit_allows() {
    let (_dir, scenario, out) = scenario("huge", 10_000_000, 20, 2);
    let mut child = Command::new(BIN)
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env_remove("DPS_GROUP_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Sampled while it runs: the peak so far, last read just before it exits. (A sampler, not a
    // wait: wait4's ru_maxrss would be exact but counts the address space the child was spawned
    // from, this test binary's, so nothing else reports the run's own peak.)
    let (mut peak_kib, began) = (0, Instant::now());
    while child.try_wait().unwrap().is_none() {
        assert!(began.elapsed() < Duration::from_secs(120), "the run did not stop within its limit");
        peak_kib = peak_rss_kib(child.id()).unwrap_or(0).max(peak_kib);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    let stderr = text(&stderr);

    // Said before the run: the announcement comes before the first progress line.
    let announced = "dpsbench: the plan has 10,000,000 devices; at constant 20/s for at most 2 s, about 40 will \
                     start (the rest count as not started)";
    let at = stderr.find(announced).unwrap_or_else(|| panic!("no announcement in:\n{stderr}"));
    let first_progress = stderr.find("] started").unwrap_or(usize::MAX);
    assert!(at < first_progress, "announced after the run began:\n{stderr}");

    // The summary says what happened: planned = started + not started.
    let summary = read_summary(&out);
    let devices = &summary["devices"];
    let (total, not_started) = (devices["total"].as_u64().unwrap(), devices["not_started"].as_u64().unwrap());
    assert!((35..=45).contains(&total), "{devices}");
    assert_eq!(total + not_started, 10_000_000, "{devices}");
    assert_eq!(summary["scenario"]["devices"], 10_000_000);
    // Built whole, ten million identities take gigabytes; prepared ahead, the run is tens of MB.
    if peak_kib > 0 {
        assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB for a run that starts 40 devices");
    }
}

#[test]
fn a_plan_its_run_can_finish_is_not_announced() {
    let (_dir, scenario, out) = scenario("fits", 20, 100, 30);
    let output =
        crate::support::binary::dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    let summary = read_summary(&out);
    assert_eq!(summary["devices"]["total"], 20, "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("will start"), "{}", text(&output.stderr));
}

#[tokio::test(start_paused = true)]
async fn a_shard_counts_only_its_own_devices_as_not_started() {
    // 100 devices at 10/s for at most 2 s: about 20 of the plan start, 5 of them shard 1/4's.
    let (_dir, path, _) = scenario("shard-not-started", 100, 10, 2);
    let plan = dpsbench::scenario::Plan::load(&path, &|_| None).unwrap();
    let mut options = dpsbench::runner::RunOptions::whole(&plan);
    options.part = dpsbench::shard::Shard::new(1, 4).unwrap().part_of(&plan).unwrap();
    let (_no_interrupts, interrupts) = tokio::sync::watch::channel(0);
    let summary = dpsbench::runner::run(&plan, &options, interrupts, |_| {}).await.unwrap();
    let devices = &summary.results.devices;
    assert!((4..=6).contains(&devices.total), "{devices:?}");
    assert_eq!(devices.total + devices.not_started, 25, "the shard's 25, not the plan's 100: {devices:?}");
}
