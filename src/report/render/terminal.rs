//! The summary table `dpsbench run` and `dpsbench report merge` print at their end. Pure: a
//! [`RunSummary`] in, text out.

use std::fmt::Write as _;

use super::lines::{certificates_line, generator_line, machine_stall, rates_line};
use super::table;
use super::text::{micros, number, observed};
use crate::metrics::Phase;
use crate::results::RunSummary;

/// The summary table printed at the end of `dpsbench run`.
pub fn summary_table(summary: &RunSummary) -> String {
    let r = &summary.results;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}{} against {} ({}) in {:.1} s{}",
        summary.scenario.name,
        summary.scenario.typed_overrides().map(|typed| format!(" ({typed})")).unwrap_or_default(),
        summary.target.address,
        summary.target.kind,
        summary.duration_seconds,
        summary.partial_reason().map(|why| format!(" [PARTIAL: {why}]")).unwrap_or_default()
    );
    for note in &summary.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !summary.validity.valid {
        let _ = writeln!(out, "INVALID RUN: {}", summary.validity.reasons.join("; "));
    }
    let _ = writeln!(
        out,
        "devices  {} total, {} assigned, {} failed, {} aborted, {} not finished",
        r.devices.total, r.devices.assigned, r.devices.failed, r.devices.aborted, r.devices.not_finished,
    );
    if let Some(rates) = rates_line(summary) {
        let _ = writeln!(out, "rates    {rates}");
    }
    let throttled = r.throttled();
    let per_second = if summary.duration_seconds > 0.0 { throttled as f64 / summary.duration_seconds } else { 0.0 };
    let _ = writeln!(out, "throttled {throttled} replies 429 ({per_second:.1}/s over the run)");
    let _ = writeln!(out);
    out.push_str(&table::phases(r).terminal());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "register attempts per device: mean {:.2}, max {}; polls per device: mean {:.2}, max {}",
        r.register_attempts.mean, r.register_attempts.max, r.polls_per_device.mean, r.polls_per_device.max
    );
    let lag = match r.phase(Phase::ScheduleLag) {
        Some(_) => {
            format!("late starts: {}; schedule lag p99 {}", r.late_starts, micros(summary.validity.schedule_lag_p99_us))
        }
        None => "no schedule lag (closed model: no arrival plan to be late against)".into(),
    };
    let _ = writeln!(
        out,
        "{lag}; runtime stall p99 {}{}; early requests: {}",
        micros(summary.validity.runtime_stall_p99_us),
        machine_stall(&summary.validity),
        r.early_requests
    );
    if let Some(cost) = &summary.generator {
        let _ = writeln!(out, "{}", generator_line(cost));
    }
    if !r.failures.is_empty() {
        let failures: Vec<String> = r.failures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "failures: {}", failures.join(", "));
        for (label, reason) in &r.failure_reasons {
            let examples: Vec<&str> =
                reason.examples.iter().map(|e| e.split_once(": ").map_or(e.as_str(), |(id, _)| id)).collect();
            let _ = writeln!(out, "  {label}: {}; e.g. {}", reason.reason, examples.join(", "));
        }
    }
    let violated: Vec<String> = summary
        .conformance
        .iter()
        .filter(|(_, c)| c.violations > 0)
        .map(|(id, c)| format!("{id}={}", c.violations))
        .collect();
    if violated.is_empty() {
        let _ = writeln!(out, "conformance: {} passive checks, no violations", summary.conformance.len());
    } else {
        let _ = writeln!(out, "conformance violations: {} (examples in summary.json)", violated.join(", "));
    }
    if r.personalities.len() > 1 || !r.personalities.contains_key("dpsbench") {
        let mix: Vec<String> =
            r.personalities.iter().map(|(name, c)| format!("{name}={}/{}", c.assigned, c.devices)).collect();
        let _ = writeln!(out, "personalities (assigned/devices): {}", mix.join(", "));
    }
    if r.payloads.returned > 0 {
        let _ = writeln!(
            out,
            "payloads returned: {}, matching what was sent: {}",
            r.payloads.returned, r.payloads.matching
        );
    }
    if let Some(line) = certificates_line(&r.certificates) {
        let _ = writeln!(out, "certificates: {line}");
    }
    if !r.hubs.is_empty() {
        let hubs: Vec<String> = r.hubs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "hubs: {}", hubs.join(", "));
    }
    if let Some(slo) = &summary.slo {
        gate_lines(&mut out, slo);
    }
    out
}

/// The `[slo]` verdict under the summary table: a headline, then one line per gate.
fn gate_lines(out: &mut String, slo: &crate::slo::SloVerdict) {
    let _ = writeln!(out);
    let headline = match (slo.judged, slo.passed) {
        (false, _) => format!("SLO gates NOT JUDGED: {}", slo.reason.as_deref().unwrap_or("the run is invalid")),
        (true, true) => "SLO gates PASSED".to_string(),
        (true, false) => "SLO gates FAILED".to_string(),
    };
    let _ = writeln!(out, "{headline}");
    for (name, gate) in &slo.gates {
        let verdict = match gate.held {
            Some(true) => "held",
            Some(false) => "FAILED",
            None => "-",
        };
        let _ = writeln!(
            out,
            "  {name:<32} limit {:>10}  observed {:>10}  {verdict}",
            number(gate.limit),
            observed(gate.observed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{slo_verdict, summary};

    fn table(summary: serde_json::Value) -> String {
        summary_table(&serde_json::from_value(summary).expect("the test summary matches RunSummary"))
    }

    #[test]
    fn summary_table_of_a_clean_run() {
        insta::assert_snapshot!(table(summary()));
    }

    /// Every optional line: notes, an invalid and partial run, failures, violations, a mix of
    /// personalities and returned payloads.
    #[test]
    fn summary_table_of_an_interrupted_invalid_run_with_failures() {
        let mut summary = summary();
        let edits = serde_json::json!({
            "partial": true,
            "duration_seconds": 4.5,
            "validity": {
                "valid": false, "reasons": ["schedule lag p99 120.0ms exceeds 50.0ms"],
                "schedule_lag_p99_us": 120_000, "runtime_stall_p99_us": 48_000
            },
            "notes": ["in flight capped at 4000 by the open-files limit"],
            "devices": { "total": 450, "assigned": 400, "failed": 30, "aborted": 15, "not_finished": 5 },
            "flows_per_second": 88.9,
            "statuses": { "200": 400, "202": 800, "429": 36 },
            "failures": { "timeout_connack": 20, "tls": 10 },
            "failure_reasons": {
                "timeout_connack": {
                    "reason": "no answer within the connack deadline (target overloaded or silent?)",
                    "examples": ["dev-000007", "dev-000012"]
                },
                "tls": {
                    "reason": "TLS handshake failed: certificate signed by an unknown issuer (is [target].ca_certificate the emulator's --ca-out?)",
                    "examples": ["dev-000001: invalid peer certificate: UnknownIssuer"]
                }
            },
            "conformance": {
                "DPS-TOPIC-002": { "flows": 450, "violations": 0, "examples": [] },
                "DPS-TOPIC-003": { "flows": 450, "violations": 7, "examples": [] }
            },
            "personalities": {
                "dpsbench": { "devices": 225, "assigned": 200, "failed": 15 },
                "python": { "devices": 225, "assigned": 200, "failed": 15 }
            },
            "payloads": { "returned": 400, "matching": 398 },
            "register_attempts": { "mean": 1.25, "p50": 1, "p99": 3, "max": 4 },
            "early_requests": 12,
            "late_starts": 310,
            "generator": {
                "cpu_user_seconds": 0.061, "cpu_system_seconds": 0.034, "cpu_us_per_device": 211.1,
                "includes_emulator": false, "flows_per_core_second": 4210.5
            }
        });
        for (field, value) in edits.as_object().expect("an object") {
            summary[field] = value.clone();
        }
        insta::assert_snapshot!(table(summary));
    }

    #[test]
    fn summary_table_with_slo_gates() {
        let mut summary = summary();
        summary["slo"] = slo_verdict();
        insta::assert_snapshot!(table(summary));
    }
}
