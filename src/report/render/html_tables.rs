//! The tables of `report.html`: the run, its outcomes, per-phase percentiles, retries,
//! failures, conformance violations and validity, from the run's summary. Pure.

use std::fmt::Write as _;

use super::lines::{certificates_line, machine_stall};
use super::text::{escape, micros};
use crate::results::RunSummary;

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
                escape(&format!(
                    "{}, {}{}",
                    crate::scenario::named_with_source(&s.scenario.name, &s.scenario.file),
                    s.scenario.arrival,
                    s.scenario.typed_overrides().map(|typed| format!(", with {typed}")).unwrap_or_default()
                )),
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
                    "{} / {}{}",
                    micros(s.validity.schedule_lag_p99_us),
                    micros(s.validity.runtime_stall_p99_us),
                    machine_stall(&s.validity)
                ),
            ],
        ],
    );
    for note in &s.notes {
        let _ = writeln!(out, "<p>note: {}</p>", escape(note));
    }
    if let Some(line) = certificates_line(&r.certificates) {
        let _ = writeln!(out, "<p>certificates: {}</p>", escape(&line));
    }
    out.push_str(&super::table::outcomes(r).html());
    write_latencies_and_replies(out, r);
    let violations: Vec<Vec<String>> =
        s.conformance.iter().map(|(id, c)| vec![escape(id), c.flows.to_string(), c.violations.to_string()]).collect();
    table(out, "Conformance (passive checks)", &["check", "flows", "violations"], &violations);
    if let Some(slo) = &s.slo {
        let headline = match (slo.judged, slo.passed) {
            (false, _) => format!("not judged: {}", slo.reason.as_deref().unwrap_or("the run is invalid")),
            (true, true) => "every gate held".to_string(),
            (true, false) => format!("FAILED: {}", slo.failed().collect::<Vec<_>>().join(", ")),
        };
        out.push_str(&super::table::gates(slo).html());
        let _ = writeln!(out, "<p class=\"slo-verdict\">SLO gates: {}</p>", escape(&headline));
    }
}

/// Per-phase percentiles, retries, replies and failures.
fn write_latencies_and_replies(out: &mut String, r: &crate::metrics::Summary) {
    out.push_str(&super::table::phases(r).html());
    out.push_str(&super::table::retries(r).html());
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
