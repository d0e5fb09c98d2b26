//! The report of a run killed before its end, rebuilt from the files it wrote each second
//! (`timeseries.csv`, `latency.hlog`) without the `summary.json` it writes at the end: marked
//! partial, its figures taken from the last whole second, and a note saying what is missing.
//! Pure: the files already read.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::folder::Leftovers;
use super::hlog;
use super::report::{InputError, Report};
use super::timeseries::{self, Row};
use crate::metrics::{CountStats, DeviceCounts, Phase, PhaseHistograms, Summary, THROTTLED};
use crate::results::{HostInfo, RunSummary, SUMMARY_SCHEMA, ScenarioInfo, TargetInfo, Validity};

/// What a report rebuilt from a killed run's files cannot say: it was in `summary.json`.
const NOT_RECORDED: &str = "not recorded";

/// The report of a killed run's leftovers, and the note on what it lacks. Only a
/// `timeseries.csv` that does not read stops it; a missing or unreadable `latency.hlog` leaves
/// the latencies out, said in the note.
pub fn report(leftovers: &Leftovers) -> Result<(Report, String), InputError> {
    let text = &leftovers.timeseries;
    // Cut at a line end, so at a character boundary.
    let rows = timeseries::read(&text[..whole_lines(text.as_bytes()).len()]).map_err(InputError::Series)?;
    let latency = match &leftovers.latency_hlog {
        Some(bytes) => hlog::read(whole_lines(bytes)).map_err(InputError::Latency),
        None => Err(InputError::Missing("latency.hlog")),
    };
    let mut missing = vec!["summary.json (the run did not finish)".to_string()];
    if let Err(error) = &latency {
        missing.push(format!("the latencies ({error})"));
    }
    let started_at = latency.as_ref().ok().and_then(|log| log.base_time);
    let totals = latency.as_ref().map(hlog::LatencyLog::totals);
    let last = rows.last().cloned().unwrap_or_default();
    let note = format!(
        "partial report rebuilt by `report render` from the files written each second, up to {:.0} s; missing: {}; \
         not known without it: the plan, target and host, validity, [slo] gates, replies by status but 429, \
         retries, hubs and conformance checks",
        last.elapsed_s,
        missing.join(", ")
    );
    let summary = summary_of(&last, totals.as_ref().ok(), started_at, &leftovers.dir, &note);
    let intervals = latency.as_ref().map(super::intervals::LatencyIntervals::of_log).unwrap_or_default();
    let latency = totals.map_err(|_| InputError::Missing("latency.hlog"));
    Ok((Report { summary, series: Ok(rows), latency, intervals }, note))
}

/// The figures of the last whole second, around the metadata only the run knew.
fn summary_of(
    last: &Row,
    totals: Option<&PhaseHistograms>,
    started_at: Option<Duration>,
    dir: &std::path::Path,
    note: &str,
) -> RunSummary {
    let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut results = measured(last);
    if let Some(totals) = totals {
        results.set_phases(totals);
    }
    RunSummary {
        schema: SUMMARY_SCHEMA.to_string(),
        scenario: ScenarioInfo {
            name,
            file: NOT_RECORDED.into(),
            devices: last.started,
            arrival: NOT_RECORDED.into(),
            duration_seconds: None,
            overrides: Vec::new(),
        },
        target: TargetInfo { kind: NOT_RECORDED.into(), address: String::new(), id_scope: String::new() },
        host: HostInfo {
            hostname: NOT_RECORDED.into(),
            cpus: 0,
            os: NOT_RECORDED.into(),
            dpsbench_version: NOT_RECORDED.into(),
        },
        started_at: started_at
            .map_or_else(|| NOT_RECORDED.into(), |since| crate::timestamp::rfc3339(SystemTime::UNIX_EPOCH + since)),
        duration_seconds: last.elapsed_s,
        partial: true,
        validity: Validity {
            valid: false,
            reasons: vec![Validity::NOT_JUDGED.to_string()],
            // Measured each second, so known; the verdict is not (see the note).
            schedule_lag_p99_us: totals.map_or(0, |t| t.get(Phase::ScheduleLag).value_at_quantile(0.99)),
            runtime_stall_p99_us: 0,
            machine_stall_p99_us: None,
            steal_percent: None,
            target_stalls: None,
        },
        open_files_limit: 0,
        notes: vec![note.to_string()],
        results,
        conformance: BTreeMap::new(),
        emulator: None,
        generator: None,
        slo: None,
        shard: None,
        merged: None,
        misbehave: Vec::new(),
    }
}

/// The device counts, failures, 429s and late starts of the last row; what it does not hold is
/// zero or empty.
fn measured(last: &Row) -> Summary {
    let none = CountStats { mean: 0.0, p50: 0, p99: 0, max: 0, devices_by_count: BTreeMap::new() };
    let statuses = match last.throttled {
        0 => BTreeMap::new(),
        throttled => BTreeMap::from([(THROTTLED.to_string(), throttled)]),
    };
    Summary {
        devices: DeviceCounts {
            total: last.started,
            assigned: last.assigned,
            failed: last.failed,
            aborted: 0,
            not_finished: last.in_flight,
            not_started: 0,
        },
        flows_per_second: if last.elapsed_s > 0.0 { last.assigned as f64 / last.elapsed_s } else { 0.0 },
        phases: BTreeMap::new(),
        register_attempts: none.clone(),
        polls_per_device: none,
        failures: last.failures.clone(),
        failure_reasons: BTreeMap::new(),
        rates: None,
        statuses,
        retry_after_seconds: BTreeMap::new(),
        hubs: BTreeMap::new(),
        source_addresses: BTreeMap::new(),
        personalities: BTreeMap::new(),
        payloads: Default::default(),
        certificates: Default::default(),
        stray_replies: 0,
        early_requests: 0,
        late_starts: last.late_starts,
    }
}

/// `bytes` up to their last line end: a line a kill cut short is not read.
fn whole_lines(bytes: &[u8]) -> &[u8] {
    bytes.iter().rposition(|b| *b == b'\n').map_or(&[][..], |end| &bytes[..=end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Tick;

    #[test]
    fn a_killed_runs_files_make_a_partial_report_with_the_last_seconds_figures() {
        let (mut csv, mut log) = (timeseries::header(), hlog::header(SystemTime::UNIX_EPOCH + Duration::from_secs(1)));
        let mut lines = hlog::IntervalLines::new();
        for second in 1..=3u64 {
            let mut tick = Tick::default();
            tick.progress.elapsed = Duration::from_secs(second);
            tick.progress.started = second * 100;
            tick.progress.assigned = second * 90;
            tick.progress.throttled = second;
            let mut one = crate::metrics::latency_histogram();
            one.record(second * 1_000).expect("in range");
            tick.latencies.add(Phase::Assigned, &one).expect("same bounds");
            csv.extend(Row::of(&tick).line());
            log.extend(lines.lines(&tick));
        }
        // A row cut by the kill.
        csv.extend(b"4.000,400,3");
        let leftovers = Leftovers {
            dir: "reports/quick-20261207-235000".into(),
            timeseries: String::from_utf8(csv).unwrap(),
            latency_hlog: Some(log),
        };
        let (rebuilt, note) = report(&leftovers).unwrap();
        let s = &rebuilt.summary;
        assert!(s.partial && note.contains("missing: summary.json"), "{note}");
        assert_eq!((s.results.devices.total, s.results.devices.assigned), (300, 270));
        assert_eq!(s.results.throttled(), 3);
        assert_eq!(s.results.phase(Phase::Assigned).unwrap().count, 3);
        assert_eq!(s.started_at, "1970-01-01T00:00:01.0000000Z", "the log's base time");
        assert_eq!(s.scenario.name, "quick-20261207-235000");
        assert_eq!(rebuilt.series.as_ref().unwrap().len(), 3);

        let without_log = Leftovers { latency_hlog: None, ..leftovers };
        let (rebuilt, note) = report(&without_log).unwrap();
        assert!(note.contains("the latencies (the folder has no latency.hlog)"), "{note}");
        assert!(rebuilt.charted().is_err());
    }
}
