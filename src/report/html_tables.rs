//! The tables of `report.html`: the run, its outcomes, per-phase percentiles, retries,
//! failures, conformance violations and validity, from `summary.json`. Pure.

use std::fmt::Write as _;

use super::html::{cell_micros, escape};
use crate::metrics::Phase;
use crate::runner::RunSummary;

/// Writes every table of the run into `out`.
pub(super) fn write_tables(out: &mut String, s: &RunSummary) {
    let r = &s.results;
    let validity = if s.validity.valid {
        "valid".to_string()
    } else {
        format!("<span class=\"invalid\">INVALID: {}</span>", escape(&s.validity.reasons.join("; ")))
    };
    table(
        out,
        "Run",
        &["", ""],
        &[
            vec![
                "scenario".into(),
                escape(&format!("{} ({}), {}", s.scenario.name, s.scenario.file, s.scenario.arrival)),
            ],
            vec![
                "target".into(),
                escape(&format!("{} {} (id scope {})", s.target.kind, s.target.address, s.target.id_scope)),
            ],
            vec![
                "host".into(),
                escape(&format!(
                    "{}, {} CPUs, {}, dpsbench {}",
                    s.host.hostname, s.host.cpus, s.host.os, s.host.dpsbench_version
                )),
            ],
            vec!["started".into(), escape(&s.started_at)],
            vec![
                "duration".into(),
                format!(
                    "{:.1} s{}",
                    s.duration_seconds,
                    s.partial_reason().map(|why| format!(" (partial: {why})")).unwrap_or_default()
                ),
            ],
            vec!["validity".into(), validity],
            vec![
                "schedule lag p99 / runtime stall p99".into(),
                format!(
                    "{} / {}",
                    cell_micros(s.validity.schedule_lag_p99_us),
                    cell_micros(s.validity.runtime_stall_p99_us)
                ),
            ],
        ],
    );
    for note in &s.notes {
        let _ = writeln!(out, "<p>note: {}</p>", escape(note));
    }
    let d = &r.devices;
    table(
        out,
        "Outcomes",
        &["devices", "assigned", "failed", "aborted", "not finished", "assigned/s", "late starts"],
        &[[d.total, d.assigned, d.failed, d.aborted, d.not_finished]
            .iter()
            .map(u64::to_string)
            .chain([format!("{:.1}", r.flows_per_second), r.late_starts.to_string()])
            .collect()],
    );
    write_latencies_and_replies(out, r);
    let violations: Vec<Vec<String>> =
        s.conformance.iter().map(|(id, c)| vec![escape(id), c.flows.to_string(), c.violations.to_string()]).collect();
    table(out, "Conformance (passive checks)", &["check", "flows", "violations"], &violations);
}

/// Per-phase percentiles, retries, replies and failures.
fn write_latencies_and_replies(out: &mut String, r: &crate::metrics::Summary) {
    let phases: Vec<Vec<String>> = Phase::ALL
        .iter()
        .filter_map(|phase| r.phase(*phase).filter(|p| p.count > 0).map(|p| (phase, p)))
        .map(|(phase, p)| {
            let mut row = vec![phase.as_str().to_string(), p.count.to_string()];
            row.extend([p.min_us, p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us].map(cell_micros));
            row
        })
        .collect();
    table(out, "Latency by phase", &["phase", "count", "min", "p50", "p90", "p99", "p99.9", "max"], &phases);
    let counts = |name: &str, c: &crate::metrics::CountStats| {
        vec![name.to_string(), format!("{:.2}", c.mean), c.p50.to_string(), c.p99.to_string(), c.max.to_string()]
    };
    table(
        out,
        "Retries",
        &["per device", "mean", "p50", "p99", "max"],
        &[counts("register attempts", &r.register_attempts), counts("polls", &r.polls_per_device)],
    );
    let pairs = |map: &std::collections::BTreeMap<String, u64>| -> String {
        let listed: Vec<String> = map.iter().map(|(k, v)| format!("{}={v}", escape(k))).collect();
        if listed.is_empty() { "none".into() } else { listed.join(", ") }
    };
    table(
        out,
        "Replies",
        &["", ""],
        &[
            vec!["statuses".into(), pairs(&r.statuses)],
            vec!["retry-after seconds".into(), pairs(&r.retry_after_seconds)],
            vec!["early requests (before retry-after)".into(), r.early_requests.to_string()],
            vec!["stray replies".into(), r.stray_replies.to_string()],
            vec!["hubs".into(), pairs(&r.hubs)],
        ],
    );
    let failures: Vec<Vec<String>> = r.failures.iter().map(|(kind, n)| vec![escape(kind), n.to_string()]).collect();
    if failures.is_empty() {
        out.push_str("<h2>Failures</h2>\n<p>none</p>\n");
    } else {
        table(out, "Failures", &["kind", "devices"], &failures);
    }
}

fn table(out: &mut String, title: &str, headers: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "<h2>{}</h2>\n<table>", escape(title));
    if headers.iter().any(|h| !h.is_empty()) {
        let cells: String = headers.iter().map(|h| format!("<th>{}</th>", escape(h))).collect();
        let _ = writeln!(out, "<tr>{cells}</tr>");
    }
    for row in rows {
        let cells: String = row.iter().map(|cell| format!("<td>{cell}</td>")).collect();
        let _ = writeln!(out, "<tr>{cells}</tr>");
    }
    out.push_str("</table>\n");
}
