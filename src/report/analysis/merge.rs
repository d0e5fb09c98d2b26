//! `dpsbench report merge`: the report folders of a plan's shards added up into one, as if one
//! process had run the whole plan.
//!
//! Exact where it can be: outcomes and counters are added, every phase's histogram is the sum
//! of the shards' `latency.hlog` intervals (percentiles are computed from the added histograms,
//! never averaged), the merged `latency.hlog` and `timeseries.csv` add the shards' intervals of
//! the same index from the plan's start instant (exact for shards of one `--start-at`; never
//! re-binned by wall clock), per-device count distributions are rebuilt from their exact buckets. Pure: report
//! folders in, bytes out; the CLI reads and writes the files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::conformance::passive::CheckCounts;
use crate::metrics::{Phase, PhaseHistograms, Summary};
use crate::report::format::folder::ReportFolder;
use crate::report::format::hlog::{self, LatencyLog};
use crate::report::format::timeseries;
use crate::results::{EmulatorCounts, HostInfo, MergeInfo, MergedShard, RunSummary, ShardInfo, TargetStalls, Validity};

#[path = "merge_series.rs"]
mod series;

/// Why shards cannot be merged; each names the folder.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no shard folders given")]
    Empty,
    #[error("{0}: not a shard of a plan: its summary.json has no `shard` (written by a dpsbench before sharding)")]
    NotAShard(PathBuf),
    #[error("{folder}: a shard of another plan: plan hash {found}, not {expected} of {first}")]
    DifferentPlan { folder: PathBuf, found: String, expected: String, first: PathBuf },
    #[error("{folder}: a shard of another run of the plan: --start-at {found}, not {expected} of {first}")]
    DifferentStart { folder: PathBuf, found: String, expected: String, first: PathBuf },
    #[error("{folder}: shard {index} of {found}, but {first} is of {expected} shards")]
    DifferentCount { folder: PathBuf, index: u64, found: u64, expected: u64, first: PathBuf },
    #[error("{folder}: shard {index} is given twice (also {other})")]
    Duplicate { folder: PathBuf, index: u64, other: PathBuf },
    #[error("{0}: no latency.hlog, so its histograms cannot be added (percentiles are never averaged)")]
    NoLatencyLog(PathBuf),
    #[error("{folder}: latency.hlog: {error}")]
    Hlog { folder: PathBuf, error: hlog::HlogError },
    #[error("{folder}: started_at: {error}")]
    StartedAt { folder: PathBuf, error: crate::timestamp::TimestampError },
    #[error("{folder}: timeseries.csv: {reason}")]
    Series { folder: PathBuf, reason: String },
}

/// The merged report folder's files.
#[derive(Debug, Clone)]
pub struct Merged {
    pub summary: RunSummary,
    pub latency_hlog: Vec<u8>,
    pub timeseries_csv: Vec<u8>,
}

/// One shard, read and checked.
struct ShardRun<'a> {
    folder: &'a ReportFolder,
    shard: &'a ShardInfo,
    log: LatencyLog,
    /// When its clock started, on the wall clock (since the epoch): what its log and series
    /// count from.
    base: Duration,
    /// Its `started_at`, since the epoch.
    started: Duration,
}

/// Merges the report folders of shards of one plan. Refuses shards of different plans or shard
/// counts, a shard given twice, a folder that is no shard or lacks its `latency.hlog`.
pub fn merge(folders: &[ReportFolder]) -> Result<Merged, MergeError> {
    let shards = check(folders)?;
    let first = &shards[0];
    let count = first.shard.count;
    let present: Vec<u64> = shards.iter().map(|s| s.shard.index).collect();
    let missing: Vec<u64> = (0..count).filter(|k| !present.contains(k)).collect();

    let mut totals = PhaseHistograms::new();
    for shard in &shards {
        totals.add_all(&shard.log.totals());
    }
    // Every shard counts its intervals from the plan's start instant: one instant for shards
    // of one `--start-at`, so interval k is the same span in each and rows add exactly.
    let base = shards.iter().map(|s| s.base).min().expect("at least one shard");
    let shifts: Vec<u64> = shards.iter().map(|s| series::shift(s.base, base)).collect();
    let logs: Vec<(&LatencyLog, u64)> = shards.iter().zip(&shifts).map(|(s, shift)| (&s.log, *shift)).collect();
    let intervals = series::by_interval(&logs);
    let mut latency_hlog = hlog::header(UNIX_EPOCH + base);
    for (index, latencies) in &intervals {
        let start = crate::metrics::INTERVAL * *index as u32;
        latency_hlog.extend(hlog::interval(start, crate::metrics::INTERVAL, latencies));
    }
    let mut timeseries_csv = timeseries::header();
    for shard in &shards {
        // Checked up front so an unreadable series names its folder (a missing one is skipped).
        if let Some(text) = &shard.folder.timeseries {
            timeseries::read(text).map_err(|reason| MergeError::Series { folder: shard.folder.dir.clone(), reason })?;
        }
    }
    let inputs: Vec<(&str, u64)> =
        shards.iter().zip(&shifts).map(|(s, shift)| (s.folder.timeseries.as_deref().unwrap_or(""), *shift)).collect();
    timeseries_csv.extend(series::merged_rows(&inputs, &intervals));

    // The merged run spans the earliest shard's start to the latest one's end, on the wall clock.
    let started = shards.iter().map(|s| s.started).min().expect("at least one shard");
    let end = shards
        .iter()
        .map(|s| s.started + Duration::from_secs_f64(s.folder.summary.duration_seconds.max(0.0)))
        .max()
        .expect("at least one shard");
    let summary = summary(&shards, &totals, started, end.saturating_sub(started), missing);
    Ok(Merged { summary, latency_hlog, timeseries_csv })
}

/// Reads every folder's shard, log and start; refuses what cannot be merged.
fn check(folders: &[ReportFolder]) -> Result<Vec<ShardRun<'_>>, MergeError> {
    let mut shards: Vec<ShardRun<'_>> = Vec::new();
    for folder in folders {
        let dir = || folder.dir.clone();
        let shard = folder.summary.shard.as_ref().ok_or_else(|| MergeError::NotAShard(dir()))?;
        if let Some(first) = shards.first() {
            if shard.plan_hash != first.shard.plan_hash {
                return Err(MergeError::DifferentPlan {
                    folder: dir(),
                    found: shard.plan_hash.clone(),
                    expected: first.shard.plan_hash.clone(),
                    first: first.folder.dir.clone(),
                });
            }
            if shard.start_at != first.shard.start_at {
                return Err(MergeError::DifferentStart {
                    folder: dir(),
                    found: shard.start_at.clone().unwrap_or_else(|| "none".into()),
                    expected: first.shard.start_at.clone().unwrap_or_else(|| "none".into()),
                    first: first.folder.dir.clone(),
                });
            }
            if shard.count != first.shard.count {
                return Err(MergeError::DifferentCount {
                    folder: dir(),
                    index: shard.index,
                    found: shard.count,
                    expected: first.shard.count,
                    first: first.folder.dir.clone(),
                });
            }
        }
        if let Some(other) = shards.iter().find(|s| s.shard.index == shard.index) {
            return Err(MergeError::Duplicate { folder: dir(), index: shard.index, other: other.folder.dir.clone() });
        }
        let bytes = folder.latency_hlog.as_ref().ok_or_else(|| MergeError::NoLatencyLog(dir()))?;
        let log = hlog::read(bytes).map_err(|error| MergeError::Hlog { folder: dir(), error })?;
        let started = crate::timestamp::parse_rfc3339(&folder.summary.started_at)
            .map_err(|error| MergeError::StartedAt { folder: dir(), error })?;
        let started = started.duration_since(UNIX_EPOCH).unwrap_or_default();
        let base = log.base_time.unwrap_or(started);
        shards.push(ShardRun { folder, shard, log, base, started });
    }
    if shards.is_empty() {
        return Err(MergeError::Empty);
    }
    shards.sort_by_key(|s| s.shard.index);
    Ok(shards)
}

/// The merged `summary.json`.
fn summary(
    shards: &[ShardRun<'_>],
    totals: &PhaseHistograms,
    started: Duration,
    span: Duration,
    missing: Vec<u64>,
) -> RunSummary {
    let first = &shards[0].folder.summary;
    let all = || shards.iter().map(|s| &s.folder.summary);
    let results = results(shards, totals, &missing);
    let mut notes = labelled(shards, |s| &s.notes);
    if results.rates.is_none() && all().any(|s| s.results.rates.is_some()) {
        notes.push(
            "rates unknown: a shard's summary.json lacks the data they are recomputed from (written by an older \
             dpsbench), or the shards ran more than a week apart"
                .into(),
        );
    }
    if all().any(|s| s.slo.is_some()) {
        notes.push(
            "the shards' [slo] verdicts are not carried over: gate the merged report with `report compare --fail-if`"
                .into(),
        );
    }
    let reasons = labelled(shards, |s| &s.validity.reasons);
    let generator = crate::results::GeneratorCost::merge(
        all().filter_map(|s| s.generator.clone()),
        results.devices.total,
        results.devices.assigned,
    );
    RunSummary {
        schema: first.schema.clone(),
        scenario: first.scenario.clone(),
        target: first.target.clone(),
        host: host(shards),
        started_at: crate::timestamp::rfc3339(UNIX_EPOCH + started),
        duration_seconds: (span.as_secs_f64() * 1000.0).round() / 1000.0,
        partial: !missing.is_empty() || all().any(|s| s.partial),
        validity: Validity {
            valid: reasons.is_empty() && all().all(|s| s.validity.valid),
            reasons,
            schedule_lag_p99_us: results.phase(Phase::ScheduleLag).map_or(0, |p| p.p99_us),
            runtime_stall_p99_us: all().map(|s| s.validity.runtime_stall_p99_us).max().unwrap_or(0),
            machine_stall_p99_us: all().filter_map(|s| s.validity.machine_stall_p99_us).max(),
            steal_percent: all().filter_map(|s| s.validity.steal_percent).reduce(f64::max),
            target_stalls: target_stalls(all()),
        },
        open_files_limit: all().map(|s| s.open_files_limit).min().unwrap_or(0),
        notes,
        results,
        conformance: conformance(shards),
        emulator: emulator(shards),
        generator,
        slo: None,
        shard: Some(ShardInfo {
            index: 0,
            count: 1,
            plan_hash: shards[0].shard.plan_hash.clone(),
            start_at: shards[0].shard.start_at.clone(),
            start_offset_seconds: worst_offset(shards),
        }),
        merged: Some(merge_info(shards, missing)),
        misbehave: first.misbehave.clone(),
    }
}

/// Every shard's lines of one list (notes, validity reasons), each prefixed with its shard.
/// The shards' target stalls. Each shard watched the target on its own, so one stall of the
/// target shows in every shard: the merged count and lengths are each the largest over the
/// shards and the starts within add up. The lag outside the stalls is the largest shard's p99, an upper bound
/// of the whole plan's (no part of a union lies above the largest of its parts' p99 more than 1 %
/// of the time); the shards' histograms of it are not kept.
fn target_stalls<'a>(shards: impl Iterator<Item = &'a RunSummary>) -> Option<TargetStalls> {
    shards.filter_map(|s| s.validity.target_stalls.clone()).reduce(|a, b| TargetStalls {
        count: a.count.max(b.count),
        seconds: a.seconds.max(b.seconds),
        longest_seconds: a.longest_seconds.max(b.longest_seconds),
        starts_within: a.starts_within + b.starts_within,
        schedule_lag_p99_outside_us: a.schedule_lag_p99_outside_us.max(b.schedule_lag_p99_outside_us),
    })
}

fn labelled(shards: &[ShardRun<'_>], pick: fn(&RunSummary) -> &Vec<String>) -> Vec<String> {
    shards
        .iter()
        .flat_map(|s| pick(&s.folder.summary).iter().map(move |line| format!("shard {}: {line}", s.shard.index)))
        .collect()
}

/// The hosts the shards ran on: their names, and the cores of each machine counted once.
fn host(shards: &[ShardRun<'_>]) -> HostInfo {
    let first = &shards[0].folder.summary.host;
    let hosts: Vec<&HostInfo> = distinct_hosts(shards).collect();
    HostInfo {
        hostname: hosts.iter().map(|h| h.hostname.as_str()).collect::<Vec<_>>().join(","),
        cpus: hosts.iter().map(|h| h.cpus).sum(),
        os: first.os.clone(),
        dpsbench_version: first.dpsbench_version.clone(),
    }
}

/// Passive conformance counts added check by check, the first examples kept.
fn conformance(shards: &[ShardRun<'_>]) -> BTreeMap<String, CheckCounts> {
    let mut added: BTreeMap<String, CheckCounts> = BTreeMap::new();
    for shard in shards {
        for (id, counts) in &shard.folder.summary.conformance {
            added.entry(id.clone()).or_default().add(counts);
        }
    }
    added
}

/// The embedded emulators' counters added (none when no shard had one).
fn emulator(shards: &[ShardRun<'_>]) -> Option<EmulatorCounts> {
    shards.iter().filter_map(|s| s.folder.summary.emulator.clone()).reduce(|mut a, b| {
        a.add(&b);
        a
    })
}

fn merge_info(shards: &[ShardRun<'_>], missing: Vec<u64>) -> MergeInfo {
    let shards = shards
        .iter()
        .map(|s| MergedShard {
            index: s.shard.index,
            folder: s.folder.dir.display().to_string(),
            hostname: s.folder.summary.host.hostname.clone(),
            started_at: s.folder.summary.started_at.clone(),
            start_offset_seconds: s.shard.start_offset_seconds,
        })
        .collect();
    MergeInfo { shards, missing }
}

/// Each host the shards ran on, once.
fn distinct_hosts<'a>(shards: &'a [ShardRun<'a>]) -> impl Iterator<Item = &'a HostInfo> {
    let mut seen = std::collections::BTreeSet::new();
    shards.iter().map(|s| &s.folder.summary.host).filter(move |h| seen.insert(h.hostname.as_str()))
}

/// The start offset furthest from the instant, of any shard.
fn worst_offset(shards: &[ShardRun<'_>]) -> Option<f64> {
    shards.iter().filter_map(|s| s.shard.start_offset_seconds).max_by(|a, b| a.abs().total_cmp(&b.abs()))
}

/// The measured part: every shard's results added ([`Summary::add`]), phases from the added
/// histograms.
fn results(shards: &[ShardRun<'_>], totals: &PhaseHistograms, missing: &[u64]) -> Summary {
    let mut merged = shards[0].folder.summary.results.clone();
    for shard in &shards[1..] {
        merged.add(&shard.folder.summary.results);
    }
    merged.set_phases(totals);
    // Only the phases the shards report (a closed model reports no schedule lag).
    merged.phases.retain(|name, _| shards.iter().any(|s| s.folder.summary.results.phases.contains_key(name)));
    // The devices of shards not given never started here: planned = total + not_started.
    let planned = shards[0].folder.summary.scenario.devices;
    let count = shards[0].shard.count;
    let absent: u64 =
        missing.iter().filter_map(|&k| crate::shard::Shard::new(k, count).ok()).map(|s| s.devices_of(planned)).sum();
    merged.devices.not_started += absent;
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const HASH: &str = "sha256:00112233445566778899aabbccddeeff";

    /// A shard's folder: the fixture summary as shard `index` of `count`, started at `start`
    /// (seconds since the epoch), its `assigned` phase the values `assigned_us`, one a second.
    fn shard(index: u64, count: u64, start: u64, assigned_us: &[u64]) -> ReportFolder {
        let mut json = crate::report::tests::summary();
        json["shard"] = serde_json::json!({
            "index": index, "count": count, "plan_hash": HASH,
            "start_at": "2026-11-26T15:00:00Z", "start_offset_seconds": 0.001 * index as f64
        });
        json["started_at"] = crate::timestamp::rfc3339(UNIX_EPOCH + Duration::from_secs(start)).into();
        json["devices"]["total"] = (assigned_us.len() as u64).into();
        json["devices"]["assigned"] = (assigned_us.len() as u64).into();
        let summary: RunSummary = serde_json::from_value(json).expect("the fixture is a summary");
        let base: SystemTime = UNIX_EPOCH + Duration::from_millis(start * 1000 + 250);
        let mut log = hlog::header(base);
        for (second, micros) in assigned_us.iter().enumerate() {
            let mut latencies = PhaseHistograms::new();
            let mut one = crate::metrics::latency_histogram();
            one.record(*micros).expect("in range");
            latencies.add(Phase::Assigned, &one).expect("same bounds");
            log.extend(hlog::interval(Duration::from_secs(second as u64), Duration::from_secs(1), &latencies));
        }
        let series = "elapsed_s,started,assigned,failed,in_flight,late_starts,assigned_in_second,failed_in_second,\
                      assigned_p50_us,assigned_p99_us,failures\n1.000,1,0,0,1,0,0,0,0,0,\n1.730,1,1,0,0,0,1,0,5,5,\n";
        ReportFolder {
            dir: PathBuf::from(format!("shard-{index}")),
            summary,
            timeseries: Some(series.into()),
            latency_hlog: Some(log),
        }
    }

    #[test]
    fn percentiles_come_from_the_added_histograms_and_counts_add_up() {
        // Shard 0: 99 fast flows; shard 1: one slow one. Averaging the shards' p99s would give
        // about 50 ms; the whole run's p99 is the fast value.
        let merged = merge(&[shard(0, 2, 1000, &[1_000; 99]), shard(1, 2, 1000, &[100_000])]).expect("mergeable");
        let summary = &merged.summary;
        let assigned = summary.results.phase(Phase::Assigned).expect("assigned");
        assert_eq!(assigned.count, 100);
        assert_eq!(assigned.p99_us, 1_000);
        assert_eq!(assigned.max_us, 100_031, "the highest equivalent value of 100 ms");
        assert_eq!(summary.results.devices.assigned, 100);
        assert_eq!(summary.results.devices.total, 100);
        assert!(!summary.partial);
        let info = summary.merged.as_ref().expect("merge info");
        assert_eq!(info.shards.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
        assert!(info.missing.is_empty());
        assert_eq!(summary.shard.as_ref().map(|s| (s.index, s.count)), Some((0, 1)));
        // The merged log holds the same values.
        let log = hlog::read(&merged.latency_hlog).expect("the merged log reads back");
        assert_eq!(log.totals().get(Phase::Assigned).len(), 100);
    }

    #[test]
    fn logs_and_series_add_by_interval_from_the_start_instant() {
        // Two shards of one start instant: interval k of each adds into the merged k, row by row.
        let merged = merge(&[shard(0, 2, 1000, &[10, 20]), shard(1, 2, 1000, &[30])]).expect("mergeable");
        let log = hlog::read(&merged.latency_hlog).expect("reads back");
        let starts: Vec<(u64, u64)> = log.intervals.iter().map(|i| (i.start.as_secs(), i.histogram.len())).collect();
        assert_eq!(starts, [(0, 2), (1, 1)]);
        assert_eq!(log.base_time, Some(Duration::from_millis(1_000_250)), "the shards' start instant, exactly");
        let series = String::from_utf8(merged.timeseries_csv).expect("text");
        let rows: Vec<&str> = series.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{series}");
        assert!(rows[0].starts_with("1.000,2,0,0,2,0,0,0,"), "{series}");
        // The last interval ends where the later shard stopped.
        assert!(rows[1].starts_with("1.730,2,2,0,0,0,2,0,"), "{series}");

        // Shard 1 started 2 s after shard 0 (no shared --start-at): its interval 0 is the
        // merged interval 2, whole intervals apart, never re-binned.
        let merged = merge(&[shard(0, 2, 1000, &[10, 20]), shard(1, 2, 1002, &[30])]).expect("mergeable");
        let log = hlog::read(&merged.latency_hlog).expect("reads back");
        let starts: Vec<u64> = log.intervals.iter().map(|i| i.start.as_secs()).collect();
        assert_eq!(starts, [0, 1, 2]);
        let series = String::from_utf8(merged.timeseries_csv).expect("text");
        let rows: Vec<&str> = series.lines().skip(1).collect();
        assert_eq!(rows.len(), 4, "{series}");
        assert!(rows[0].starts_with("1.000,1,0,0,1,"), "{series}");
        assert!(rows[1].starts_with("1.730,1,1,0,0,0,1,"), "{series}");
        assert!(rows[2].starts_with("3.000,2,1,0,1,"), "{series}");
        assert!(rows[3].starts_with("3.730,2,2,0,0,0,1,"), "{series}");
        // From the first shard's start to the last one's end: 2 s more than one shard's length.
        let one = shard(0, 2, 1000, &[10]).summary.duration_seconds;
        assert!((merged.summary.duration_seconds - (one + 2.0)).abs() < 1e-6, "{}", merged.summary.duration_seconds);
    }

    #[test]
    fn refuses_what_cannot_be_merged_naming_the_folder() {
        let other_plan = {
            let mut folder = shard(1, 2, 1000, &[10]);
            folder.summary.shard.as_mut().expect("set").plan_hash = "sha256:ffffffffffffffffffffffffffffffff".into();
            folder
        };
        let error = merge(&[shard(0, 2, 1000, &[10]), other_plan]).unwrap_err().to_string();
        assert!(error.starts_with("shard-1: a shard of another plan"), "{error}");
        let error = merge(&[shard(0, 2, 1000, &[10]), shard(0, 2, 1000, &[10])]).unwrap_err().to_string();
        assert_eq!(error, "shard-0: shard 0 is given twice (also shard-0)");
        let error = merge(&[shard(0, 2, 1000, &[10]), shard(1, 3, 1000, &[10])]).unwrap_err().to_string();
        assert!(error.contains("shard 1 of 3, but shard-0 is of 2 shards"), "{error}");
        let mut no_log = shard(0, 2, 1000, &[10]);
        no_log.latency_hlog = None;
        assert!(matches!(merge(&[no_log]), Err(MergeError::NoLatencyLog(_))));
        let mut unsharded = shard(0, 2, 1000, &[10]);
        unsharded.summary.shard = None;
        assert!(merge(&[unsharded]).unwrap_err().to_string().contains("not a shard of a plan"));
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    }

    #[test]
    fn missing_shards_make_the_result_partial() {
        let merged = merge(&[shard(0, 4, 1000, &[10]), shard(2, 4, 1000, &[10])]).expect("mergeable");
        assert!(merged.summary.partial);
        assert_eq!(merged.summary.merged.expect("info").missing, [1, 3]);
    }
}
