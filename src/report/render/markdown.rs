//! `report.md`: the run's summary for a CI job page (GitHub's job summary, a merge request
//! comment). Pure: a [`RunSummary`] in, Markdown bytes out.

use std::fmt::Write as _;

use super::lines::{certificates_line, generator_line, machine_stall, rates_line};
use super::text::micros;
use crate::results::RunSummary;
use crate::slo::SloVerdict;

/// `report.md` of a run.
pub fn report(summary: &RunSummary) -> Vec<u8> {
    let mut out = String::new();
    header(&mut out, summary);
    outcomes(&mut out, summary);
    latencies(&mut out, summary);
    retries(&mut out, summary);
    conformance(&mut out, summary);
    if let Some(slo) = &summary.slo {
        gates(&mut out, slo);
    }
    out.into_bytes()
}

fn header(out: &mut String, summary: &RunSummary) {
    let _ = writeln!(out, "# dpsbench run `{}`\n", summary.scenario.name);
    let verdict = match (&summary.validity.valid, &summary.slo) {
        (false, _) if summary.validity.not_judged() => {
            "⚠️ **partial report, not judged**: rebuilt from what a killed run wrote each second"
        }
        (false, _) => "❌ **invalid run**: the generator could not keep its plan; its numbers describe the generator",
        (true, Some(slo)) if !slo.passed => "❌ **SLO gates failed**",
        (true, _) if summary.all_assigned() => "✅ every device assigned",
        (true, _) => "⚠️ not every device was assigned",
    };
    let _ = writeln!(out, "{verdict}\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| scenario | `{}` ({}) |", summary.scenario.file, summary.scenario.arrival);
    if let Some(typed) = summary.scenario.typed_overrides() {
        let _ = writeln!(out, "| overrides | `{typed}` |");
    }
    let _ = writeln!(out, "| target | {} `{}` |", summary.target.kind, summary.target.address);
    let host = &summary.host;
    let _ = writeln!(
        out,
        "| host | {} ({} CPUs, {}, dpsbench {}) |",
        host.hostname, host.cpus, host.os, host.dpsbench_version
    );
    let _ = writeln!(out, "| started | {} |", summary.started_at);
    if let Some(shards) = shards(summary) {
        let _ = writeln!(out, "| shards | {shards} |");
    }
    let partial = summary.partial_reason().map(|why| format!(" (partial: {why})")).unwrap_or_default();
    let _ = writeln!(out, "| duration | {:.1} s{partial} |", summary.duration_seconds);
    let validity = &summary.validity;
    let valid =
        if validity.valid { "valid".to_string() } else { format!("**invalid**: {}", validity.reasons.join("; ")) };
    let _ = writeln!(
        out,
        "| validity | {valid} (schedule lag p99 {}, runtime stall p99 {}{}) |",
        micros(validity.schedule_lag_p99_us),
        micros(validity.runtime_stall_p99_us),
        machine_stall(validity)
    );
    if let Some(rates) = rates_line(summary) {
        let _ = writeln!(out, "| rates | {rates} |");
    }
    if let Some(cost) = &summary.generator {
        let _ = writeln!(out, "| generator | {} |", generator_line(cost));
    }
    if let Some(line) = certificates_line(&summary.results.certificates) {
        let _ = writeln!(out, "| certificates | {line} |");
    }
    for note in &summary.notes {
        let _ = writeln!(out, "| note | {note} |");
    }
    let _ = writeln!(out, "\nCharts, and these tables: [report.html](report.html).\n");
    let empty = super::no_data::charts_without_data(&summary.results, None);
    for chart in &empty {
        let _ = writeln!(out, "- chart {}", chart.line());
    }
    if !empty.is_empty() {
        let _ = writeln!(out);
    }
}

/// What a shard or a merge of shards was; `None` for an unsharded run.
fn shards(summary: &RunSummary) -> Option<String> {
    let shard = summary.shard.as_ref()?;
    if let Some(merged) = &summary.merged {
        let total = merged.shards.len() + merged.missing.len();
        let missing = match merged.missing.as_slice() {
            [] => String::new(),
            list => {
                let list: Vec<String> = list.iter().map(u64::to_string).collect();
                format!(", **missing {}**", list.join(", "))
            }
        };
        return Some(format!(
            "merged from {} of {total} shards{missing}, plan `{}`",
            merged.shards.len(),
            shard.plan_hash
        ));
    }
    (shard.count > 1).then(|| {
        let offset = shard.start_offset_seconds.map(|o| format!(", {:+.1} ms from --start-at", o * 1000.0));
        format!("shard {} of {}, plan `{}`{}", shard.index, shard.count, shard.plan_hash, offset.unwrap_or_default())
    })
}

fn outcomes(out: &mut String, summary: &RunSummary) {
    let r = &summary.results;
    let _ = writeln!(out, "## Outcomes\n");
    let _ = writeln!(out, "{}", super::table::outcomes(r).markdown());
    if !r.failures.is_empty() {
        let _ = writeln!(out, "| failure kind | devices |\n|---|---:|");
        for (kind, count) in &r.failures {
            let _ = writeln!(out, "| `{kind}` | {count} |");
        }
        let _ = writeln!(out);
    }
}

fn latencies(out: &mut String, summary: &RunSummary) {
    let _ = writeln!(out, "## Latency per phase\n");
    let _ = writeln!(
        out,
        "`assigned` and `end_to_end` count from each device's intended start; `assigned_raw` from its actual start.\n"
    );
    let _ = writeln!(out, "{}", super::table::phases(&summary.results).markdown());
}

fn retries(out: &mut String, summary: &RunSummary) {
    let r = &summary.results;
    let _ = writeln!(out, "## Retries\n");
    out.push_str(&super::table::retries(r).markdown());
    let throttled = r.throttled();
    let retry_after: Vec<String> = r.retry_after_seconds.iter().map(|(s, n)| format!("{s} s × {n}")).collect();
    let retry_after = if retry_after.is_empty() { "none".to_string() } else { retry_after.join(", ") };
    let _ = writeln!(
        out,
        "\n429 replies: {throttled}; retry-after received: {retry_after}; requests sent before their retry-after: {}\n",
        r.early_requests
    );
}

fn conformance(out: &mut String, summary: &RunSummary) {
    let _ = writeln!(out, "## Conformance (passive checks on every flow)\n");
    let violated: Vec<_> = summary.conformance.iter().filter(|(_, c)| c.violations > 0).collect();
    if violated.is_empty() {
        let _ = writeln!(out, "{} checks, no violations.\n", summary.conformance.len());
        return;
    }
    let _ = writeln!(out, "| check | flows | violations |\n|---|---:|---:|");
    for (id, c) in violated {
        let _ = writeln!(out, "| `{id}` | {} | {} |", c.flows, c.violations);
    }
    let _ = writeln!(out, "\nExamples with evidence are in `summary.json`.\n");
}

fn gates(out: &mut String, slo: &SloVerdict) {
    let _ = writeln!(out, "## SLO gates\n");
    let headline = match (slo.judged, slo.passed) {
        (false, _) => format!("⚠️ {}", slo.reason.as_deref().unwrap_or("not judged")),
        (true, true) => "✅ every gate held".to_string(),
        (true, false) => format!("❌ failed: {}", slo.failed().collect::<Vec<_>>().join(", ")),
    };
    let _ = writeln!(out, "{headline}\n");
    let _ = writeln!(out, "{}", super::table::gates(slo).markdown());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markdown(summary: serde_json::Value) -> String {
        let summary = serde_json::from_value(summary).expect("the test summary matches RunSummary");
        String::from_utf8(report(&summary)).expect("report.md is UTF-8")
    }

    #[test]
    fn report_md_of_a_clean_run() {
        insta::assert_snapshot!(markdown(crate::report::tests::summary()));
    }

    /// Invalid, partial, failures, violations, notes and gates that were not judged.
    #[test]
    fn report_md_of_an_invalid_run_with_failures_and_gates() {
        let mut summary = crate::report::tests::summary();
        summary["partial"] = true.into();
        summary["validity"] = serde_json::json!({
            "valid": false, "reasons": ["schedule lag p99 120.0ms exceeds 50.0ms"],
            "schedule_lag_p99_us": 120_000, "runtime_stall_p99_us": 48_000
        });
        summary["notes"] = serde_json::json!(["in flight capped at 4000 by the open-files limit"]);
        summary["devices"] =
            serde_json::json!({ "total": 450, "assigned": 400, "failed": 30, "aborted": 15, "not_finished": 5 });
        summary["failures"] = serde_json::json!({ "timeout_connack": 20, "tls": 10 });
        summary["statuses"] = serde_json::json!({ "200": 400, "202": 420, "429": 35 });
        summary["conformance"]["DPS-TOPIC-003"]["violations"] = 7.into();
        let mut slo = crate::report::tests::slo_verdict();
        slo["judged"] = false.into();
        slo["reason"] = "not judged: the run is invalid (schedule lag p99 120.0ms exceeds 50.0ms)".into();
        for gate in slo["gates"].as_object_mut().expect("an object").values_mut() {
            gate["held"] = serde_json::Value::Null;
        }
        summary["slo"] = slo;
        insta::assert_snapshot!(markdown(summary));
    }

    #[test]
    fn report_md_says_which_gates_failed() {
        let mut summary = crate::report::tests::summary();
        summary["slo"] = crate::report::tests::slo_verdict();
        let report = markdown(summary);
        assert!(report.contains("❌ **SLO gates failed**"), "{report}");
        assert!(report.contains("❌ failed: assigned_p99_ms\n"), "{report}");
        assert!(report.contains("| `phase_p99_ms.tls_handshake` | 50 | 6.800 | ✅ held |"), "{report}");
    }
}
