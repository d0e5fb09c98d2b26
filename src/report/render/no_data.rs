//! Which charts of `report.html` have nothing to draw, and why: said in words ("no data: no
//! device was assigned") in the page and in `report.md`, never drawn as a blank chart. Decided
//! from the run's summary, and from its per-second rows where the renderer has them. Pure.

use crate::metrics::{Phase, Summary};
use crate::report::format::timeseries::Row;

/// A chart with nothing to draw: its element ID, its title, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NoData {
    pub id: &'static str,
    pub title: &'static str,
    pub why: String,
}

impl NoData {
    /// `Time to assignment by percentile: no data: no device was assigned (…)`.
    pub fn line(&self) -> String {
        format!("{}: no data: {}", self.title, self.why)
    }
}

/// The charts of a run that would be blank, in page order. `rows` are the run's per-second
/// rows when the caller has them (`report.md` does not); the failures chart says its own
/// "none failed".
pub(super) fn charts_without_data(r: &Summary, rows: Option<&[Row]>) -> Vec<NoData> {
    let d = &r.devices;
    let nothing_started = (d.total == 0).then(|| "no device was started".to_string());
    let measured = |phase: Phase| r.phase(phase).is_some_and(|p| p.count > 0);
    let mut empty = Vec::new();
    let mut add = |id, title, why: Option<String>| {
        if let Some(why) = why {
            empty.push(NoData { id, title, why });
        }
    };
    let unassigned =
        format!("no device was assigned ({} failed, {} aborted, {} not finished)", d.failed, d.aborted, d.not_finished);
    add(
        "latency-assigned",
        "Time to assignment by percentile",
        (!measured(Phase::Assigned)).then(|| nothing_started.clone().unwrap_or(unassigned)),
    );
    let others = Phase::ALL.into_iter().filter(|p| !matches!(p, Phase::Assigned | Phase::AssignedRaw));
    let no_phase = others.clone().all(|p| !measured(p));
    add(
        "latency-phases",
        "Phases by percentile",
        no_phase.then(|| nothing_started.clone().unwrap_or_else(|| "no phase was measured".into())),
    );
    // One row is one point: no line to draw (a rate needs two).
    let too_short = rows
        .is_some_and(|rows| rows.len() < 2)
        .then(|| "the run ended before its first second (one row in timeseries.csv)".to_string());
    for (id, title) in [("over-time", "Rates over the run"), ("in-flight", "Devices in flight")] {
        add(id, title, nothing_started.clone().or_else(|| too_short.clone()));
    }
    let finished = d.assigned + d.failed + d.aborted;
    let per_device = || match (&nothing_started, finished) {
        (Some(why), _) => why.clone(),
        (None, 0) => "no device finished".into(),
        (None, _) => "summary.json has no per-device counts (an older dpsbench wrote it)".into(),
    };
    add(
        "register-attempts",
        "Register attempts per device",
        r.register_attempts.devices_by_count.is_empty().then(per_device),
    );
    add("polls", "Polls per device", r.polls_per_device.devices_by_count.is_empty().then(per_device));
    empty
}

/// Why `phase` has no latency over time: nothing started, nothing assigned (for the assignment
/// phases), none measured, or (`logged` false, or measured but absent) `latency.hlog` holds no
/// interval for it.
pub(super) fn phase_without_data(r: &Summary, phase: Phase, logged: bool) -> String {
    let d = &r.devices;
    let count = r.phase(phase).map_or(0, |p| p.count);
    match (d.total, count, phase) {
        (0, _, _) => "no device was started".into(),
        (_, 0, Phase::Assigned | Phase::AssignedRaw) => {
            format!(
                "no device was assigned ({} failed, {} aborted, {} not finished)",
                d.failed, d.aborted, d.not_finished
            )
        }
        (_, 0, _) => format!("the run measured no {phase} (a count of 0 in summary.json)"),
        _ if !logged => "latency.hlog holds no interval".into(),
        (_, count, _) => format!("latency.hlog holds no interval for it, although summary.json counts {count}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(edits: serde_json::Value) -> Summary {
        let mut summary = crate::report::tests::summary();
        summary["register_attempts"]["devices_by_count"] = serde_json::json!({ "1": 1000 });
        summary["polls_per_device"]["devices_by_count"] = serde_json::json!({ "1": 1000 });
        for (field, value) in edits.as_object().expect("an object") {
            summary[field] = value.clone();
        }
        serde_json::from_value::<crate::results::RunSummary>(summary).expect("a RunSummary").results
    }

    #[test]
    fn a_clean_run_has_data_for_every_chart() {
        assert_eq!(charts_without_data(&summary(serde_json::json!({})), None), []);
    }

    #[test]
    fn a_run_in_which_every_device_failed_says_why_time_to_assignment_has_no_data() {
        let r = summary(serde_json::json!({
            "devices": { "total": 20, "assigned": 0, "failed": 20, "aborted": 0, "not_finished": 0 },
            "phases": { "tcp_connect": {
                "count": 20, "min_us": 200, "mean_us": 300, "p50_us": 300, "p90_us": 400, "p99_us": 500,
                "p999_us": 600, "max_us": 600
            } },
            "polls_per_device": { "mean": 0.0, "p50": 0, "p99": 0, "max": 0, "devices_by_count": { "0": 20 } }
        }));
        let empty = charts_without_data(&r, None);
        let ids: Vec<&str> = empty.iter().map(|e| e.id).collect();
        assert_eq!(ids, ["latency-assigned"]);
        assert_eq!(
            empty[0].line(),
            "Time to assignment by percentile: no data: no device was assigned (20 failed, 0 aborted, 0 not finished)"
        );
    }

    #[test]
    fn a_run_that_started_nothing_has_no_data_anywhere_and_says_so() {
        let r = summary(serde_json::json!({
            "devices": { "total": 0, "assigned": 0, "failed": 0, "aborted": 0, "not_finished": 0 },
            "phases": {},
            "register_attempts": { "mean": 0.0, "p50": 0, "p99": 0, "max": 0 },
            "polls_per_device": { "mean": 0.0, "p50": 0, "p99": 0, "max": 0 }
        }));
        let empty = charts_without_data(&r, Some(&[]));
        assert_eq!(empty.len(), 6, "{empty:#?}");
        assert!(empty.iter().all(|e| e.why == "no device was started"), "{empty:#?}");
        assert_eq!(phase_without_data(&r, Phase::Assigned, true), "no device was started");
    }

    #[test]
    fn a_phase_without_latency_over_time_says_why() {
        let r = summary(serde_json::json!({}));
        assert_eq!(
            phase_without_data(&r, Phase::WebSocketUpgrade, true),
            "the run measured no ws_upgrade (a count of 0 in summary.json)"
        );
        assert_eq!(
            phase_without_data(&r, Phase::Assigned, true),
            "latency.hlog holds no interval for it, although summary.json counts 1000"
        );
    }
}
