//! Aligning shards by interval: their `latency.hlog` intervals and `timeseries.csv` rows, each
//! placed by its interval index from the plan's start instant (the logs' `BaseTime`). Shards of
//! one plan started with `--start-at` share that instant, so interval k of every shard is one
//! span of time and the merge adds like with like, exactly; it never re-bins by wall clock.
//! Shards started without it are placed on the earliest one's intervals, each shifted by whole
//! intervals (its start's distance from the earliest, rounded).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{INTERVAL, Phase, PhaseHistograms};
use crate::report::format::hlog::LatencyLog;
use crate::report::format::timeseries::{self, Row};

/// How many whole intervals a shard whose clock started at `base` lies after `first` (the
/// earliest shard's start): 0 for shards of one `--start-at`.
pub(super) fn shift(base: Duration, first: Duration) -> u64 {
    (base.saturating_sub(first).as_secs_f64() / INTERVAL.as_secs_f64()).round() as u64
}

/// The interval a logged interval starting at `start` (since its log's base) is.
fn index_of(start: Duration) -> u64 {
    (start.as_secs_f64() / INTERVAL.as_secs_f64()).round() as u64
}

/// Every shard's intervals added up per interval index. `logs` holds each log with its shift.
pub(super) fn by_interval(logs: &[(&LatencyLog, u64)]) -> BTreeMap<u64, PhaseHistograms> {
    let mut intervals: BTreeMap<u64, PhaseHistograms> = BTreeMap::new();
    for (log, shift) in logs {
        for interval in &log.intervals {
            intervals
                .entry(index_of(interval.start) + shift)
                .or_default()
                .add(interval.phase, &interval.histogram)
                .expect("read bounded every histogram to the run's");
        }
    }
    intervals
}

/// The merged rows, one per interval from the first shard's first row to the last one's last:
/// running totals summed over shards (each carried forward from its latest row), per-interval
/// counts summed, the interval's `assigned` percentiles from the added histograms. `inputs`
/// holds each shard's (already checked) `timeseries.csv` and its shift.
pub(super) fn merged_rows(inputs: &[(&str, u64)], intervals: &BTreeMap<u64, PhaseHistograms>) -> Vec<u8> {
    let placed: Vec<Vec<(u64, Row)>> = inputs
        .iter()
        .map(|(text, shift)| {
            let rows = timeseries::read(text).unwrap_or_default();
            rows.into_iter().map(|row| (row.index() + shift, row)).collect()
        })
        .collect();
    let first = placed.iter().filter_map(|rows| rows.first().map(|r| r.0)).min();
    let last = placed.iter().filter_map(|rows| rows.last().map(|r| r.0)).max();
    let (Some(first), Some(last)) = (first, last) else { return Vec::new() };
    let mut out = Vec::new();
    for index in first..=last {
        // A whole interval ends at k + 1; a shard's last may end earlier (where it stopped).
        let mut total = Row { elapsed_s: (index + 1) as f64 * INTERVAL.as_secs_f64(), ..Row::default() };
        let mut ends = Vec::new();
        for (rows, (_, shift)) in placed.iter().zip(inputs) {
            if let Some((_, latest)) = rows.iter().rev().find(|(k, _)| *k <= index) {
                add_totals(&mut total, latest);
            }
            for (_, row) in rows.iter().filter(|(k, _)| *k == index) {
                add_second(&mut total, row);
                ends.push(row.elapsed_s + *shift as f64 * INTERVAL.as_secs_f64());
            }
        }
        if let Some(end) = ends.into_iter().reduce(f64::max) {
            total.elapsed_s = end;
        }
        let assigned = intervals.get(&index).map(|h| h.get(Phase::Assigned)).filter(|h| !h.is_empty());
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

/// Adds a shard's counts of one interval into `total` (its percentiles come from the histograms).
fn add_second(total: &mut Row, row: &Row) {
    total.assigned_in_second += row.assigned_in_second;
    total.failed_in_second += row.failed_in_second;
    total.throttled_in_second += row.throttled_in_second;
}
