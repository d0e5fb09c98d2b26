//! Aligning shards by wall-clock second: their `latency.hlog` intervals and `timeseries.csv`
//! rows, each placed in the second of the epoch it began in.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{Phase, PhaseHistograms};
use crate::report::hlog::LatencyLog;

/// Every shard's intervals added up per wall-clock second (seconds since the epoch). `logs`
/// holds each log with its clock's start on the wall clock.
pub(super) fn by_second(logs: &[(&LatencyLog, Duration)]) -> BTreeMap<u64, PhaseHistograms> {
    let mut seconds: BTreeMap<u64, PhaseHistograms> = BTreeMap::new();
    for (log, base) in logs {
        for interval in &log.intervals {
            let second = (*base + interval.start).as_secs();
            seconds
                .entry(second)
                .or_default()
                .add(interval.phase, &interval.histogram)
                .expect("read bounded every histogram to the run's");
        }
    }
    seconds
}

/// One `timeseries.csv` row, the columns a merge adds.
#[derive(Debug, Clone, Default)]
pub(super) struct Row {
    elapsed: f64,
    started: u64,
    assigned: u64,
    failed: u64,
    in_flight: u64,
    late_starts: u64,
    assigned_in_second: u64,
    failed_in_second: u64,
    throttled: u64,
    throttled_in_second: u64,
    failures: BTreeMap<String, u64>,
}

/// Parses a `timeseries.csv` by its header's column names.
pub(super) fn rows(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let column = |name: &str| header.iter().position(|h| h == name).ok_or(format!("no column {name}"));
    let [elapsed, started, assigned, failed, in_flight, late, assigned_s, failed_s, failures] = [
        "elapsed_s",
        "started",
        "assigned",
        "failed",
        "in_flight",
        "late_starts",
        "assigned_in_second",
        "failed_in_second",
        "failures",
    ]
    .map(column);
    let (elapsed, started, assigned, failed, in_flight, late, assigned_s, failed_s, failures) =
        (elapsed?, started?, assigned?, failed?, in_flight?, late?, assigned_s?, failed_s?, failures?);
    // Written since throttling was counted per second: a series of an older dpsbench has none.
    let throttled = column("throttled").ok();
    let throttled_s = column("throttled_in_second").ok();
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        let at = |column: usize| record.get(column).unwrap_or("");
        let number = |column: usize| {
            at(column).parse::<u64>().map_err(|_| format!("row {}: {:?} is not a count", line + 1, at(column)))
        };
        rows.push(Row {
            elapsed: at(elapsed).parse().map_err(|_| format!("row {}: bad elapsed_s", line + 1))?,
            started: number(started)?,
            assigned: number(assigned)?,
            failed: number(failed)?,
            in_flight: number(in_flight)?,
            late_starts: number(late)?,
            assigned_in_second: number(assigned_s)?,
            failed_in_second: number(failed_s)?,
            throttled: throttled.map(number).transpose()?.unwrap_or(0),
            throttled_in_second: throttled_s.map(number).transpose()?.unwrap_or(0),
            failures: at(failures)
                .split_whitespace()
                .filter_map(|pair| {
                    let (kind, n) = pair.rsplit_once('=')?;
                    Some((kind.to_string(), n.parse().ok()?))
                })
                .collect(),
        });
    }
    Ok(rows)
}

/// The merged rows, one per wall-clock second from the first shard's first row to the last
/// one's last: running totals summed over shards (each carried forward from its latest row),
/// per-second counts summed, the second's `assigned` percentiles from the added histograms.
/// `inputs` holds each shard's (already checked) `timeseries.csv` and its clock's wall start.
pub(super) fn merged_rows(
    inputs: &[(&str, Duration)],
    base_second: Duration,
    seconds: &BTreeMap<u64, PhaseHistograms>,
) -> Vec<u8> {
    let placed: Vec<Vec<(u64, Row)>> = inputs
        .iter()
        .map(|(text, base)| {
            rows(text)
                .unwrap_or_default()
                .into_iter()
                .map(|row| ((*base + Duration::from_secs_f64(row.elapsed.max(0.0))).as_secs(), row))
                .collect()
        })
        .collect();
    let first = placed.iter().filter_map(|rows| rows.first().map(|r| r.0)).min();
    let last = placed.iter().filter_map(|rows| rows.last().map(|r| r.0)).max();
    let (Some(first), Some(last)) = (first, last) else { return Vec::new() };
    let names: Vec<String> = csv::Reader::from_reader(&super::super::timeseries_header()[..])
        .headers()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default();
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for second in first..=last {
        let mut total = Row { elapsed: second as f64 - base_second.as_secs_f64(), ..Row::default() };
        for rows in &placed {
            if let Some((_, latest)) = rows.iter().rev().find(|(s, _)| *s <= second) {
                total.started += latest.started;
                total.assigned += latest.assigned;
                total.failed += latest.failed;
                total.in_flight += latest.in_flight;
                total.late_starts += latest.late_starts;
                total.throttled += latest.throttled;
                for (kind, n) in &latest.failures {
                    *total.failures.entry(kind.clone()).or_default() += n;
                }
            }
            for (_, row) in rows.iter().filter(|(s, _)| *s == second) {
                total.assigned_in_second += row.assigned_in_second;
                total.failed_in_second += row.failed_in_second;
                total.throttled_in_second += row.throttled_in_second;
            }
        }
        let assigned = seconds.get(&second).map(|h| h.get(Phase::Assigned)).filter(|h| !h.is_empty());
        let quantile = |q: f64| assigned.map_or(0, |h| h.value_at_quantile(q));
        let record: Vec<String> = names
            .iter()
            .map(|name| match name.as_str() {
                "elapsed_s" => format!("{:.3}", total.elapsed),
                "started" => total.started.to_string(),
                "assigned" => total.assigned.to_string(),
                "failed" => total.failed.to_string(),
                "in_flight" => total.in_flight.to_string(),
                "late_starts" => total.late_starts.to_string(),
                "assigned_in_second" => total.assigned_in_second.to_string(),
                "failed_in_second" => total.failed_in_second.to_string(),
                "assigned_p50_us" => quantile(0.5).to_string(),
                "assigned_p99_us" => quantile(0.99).to_string(),
                "throttled" => total.throttled.to_string(),
                "throttled_in_second" => total.throttled_in_second.to_string(),
                "failures" => total.failures.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" "),
                other => unreachable!("timeseries.csv column {other} has no merge: add it here"),
            })
            .collect();
        writer.write_record(&record).expect("writing CSV into memory cannot fail");
    }
    writer.into_inner().expect("flushing CSV into memory cannot fail")
}
