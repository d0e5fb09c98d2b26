//! Aligning shards by wall-clock second: their `latency.hlog` intervals and `timeseries.csv`
//! rows, each placed in the second of the epoch it began in.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{Phase, PhaseHistograms};
use crate::report::format::hlog::LatencyLog;
use crate::report::format::timeseries::{self, Row};

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
            timeseries::read(text)
                .unwrap_or_default()
                .into_iter()
                .map(|row| ((*base + Duration::from_secs_f64(row.elapsed_s.max(0.0))).as_secs(), row))
                .collect()
        })
        .collect();
    let first = placed.iter().filter_map(|rows| rows.first().map(|r| r.0)).min();
    let last = placed.iter().filter_map(|rows| rows.last().map(|r| r.0)).max();
    let (Some(first), Some(last)) = (first, last) else { return Vec::new() };
    let mut out = Vec::new();
    for second in first..=last {
        let mut total = Row { elapsed_s: second as f64 - base_second.as_secs_f64(), ..Row::default() };
        for rows in &placed {
            if let Some((_, latest)) = rows.iter().rev().find(|(s, _)| *s <= second) {
                add_totals(&mut total, latest);
            }
            for (_, row) in rows.iter().filter(|(s, _)| *s == second) {
                add_second(&mut total, row);
            }
        }
        let assigned = seconds.get(&second).map(|h| h.get(Phase::Assigned)).filter(|h| !h.is_empty());
        total.assigned_p50_us = assigned.map_or(0, |h| h.value_at_quantile(0.5));
        total.assigned_p99_us = assigned.map_or(0, |h| h.value_at_quantile(0.99));
        out.extend(total.line());
    }
    out
}

/// Adds a shard's running totals (carried forward from its latest row) into `total`. Every
/// field is named, so a column added later does not compile until its merge is decided.
fn add_totals(total: &mut Row, latest: &Row) {
    let Row {
        elapsed_s: _,
        started,
        assigned,
        failed,
        in_flight,
        late_starts,
        assigned_in_second: _,
        failed_in_second: _,
        assigned_p50_us: _,
        assigned_p99_us: _,
        throttled,
        throttled_in_second: _,
        failures,
    } = latest;
    total.started += started;
    total.assigned += assigned;
    total.failed += failed;
    total.in_flight += in_flight;
    total.late_starts += late_starts;
    total.throttled += throttled;
    crate::metrics::add_counts(&mut total.failures, failures);
}

/// Adds a shard's counts of one second into `total` (its percentiles come from the histograms).
fn add_second(total: &mut Row, row: &Row) {
    total.assigned_in_second += row.assigned_in_second;
    total.failed_in_second += row.failed_in_second;
    total.throttled_in_second += row.throttled_in_second;
}
