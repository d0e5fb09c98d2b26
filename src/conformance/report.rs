//! Conformance report writers: pure functions from a [`ConformanceReport`] to text; its JUnit
//! through the check report both catalogues share (`grading`).

use std::fmt::Write as _;

use super::catalogue::Kind;
use super::suite::{CheckResult, ConformanceReport, Status};
use crate::grading::Grade;
use crate::grading::report::{CheckReport, CheckRow};

/// `conformance.json`.
pub fn json(report: &ConformanceReport) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(report).expect("a report always serialises");
    bytes.push(b'\n');
    bytes
}

/// `conformance.junit.xml`: one testcase per check; failures carry the observed evidence;
/// inconclusive checks are `<error>` naming what blocked them (the check could not run, which
/// is not a failure of it); skipped and waived checks are `<skipped>` with their reason. A
/// testcase's classname names the kind of check and the probe whose verdict it carries:
/// `dpsbench.conformance.passive.lifecycle` is a passive check judged on the lifecycle probe.
pub fn junit(report: &ConformanceReport) -> String {
    check_report(report).junit()
}

/// The report as rows of graded checks, the model every JUnit file of dpsbench is written from.
pub fn check_report(report: &ConformanceReport) -> CheckReport {
    CheckReport {
        name: "dpsbench conformance".into(),
        suite: format!("dpsbench conformance {}", report.target),
        timestamp: Some(report.started_at.clone()),
        seconds: Some(report.duration_seconds),
        properties: vec![("target", report.target.clone()), ("id_scope", report.id_scope.clone())],
        rows: report.results.iter().map(row).collect(),
    }
}

fn row(result: &CheckResult) -> CheckRow {
    let level = result.check.level.name();
    let grade = result.status.grade();
    let message = match grade {
        Grade::Pass => String::new(),
        Grade::Fail => format!("{level}: {}", result.evidence),
        Grade::Inconclusive => {
            let blocked_by = result.blocked_by.as_deref().unwrap_or("an earlier step");
            format!("{level}: inconclusive, blocked by {blocked_by}")
        }
        Grade::Skipped => result.evidence.clone(),
    };
    let detail = match grade {
        Grade::Pass => result.evidence.clone(),
        Grade::Fail | Grade::Inconclusive => format!("{}\n(verifies: {})", result.evidence, result.check.statement),
        Grade::Skipped => String::new(),
    };
    CheckRow {
        check: result.check.clone(),
        classname: classname(result),
        grade,
        message,
        detail,
        seconds: Some(result.seconds),
    }
}

/// `dpsbench.conformance.{kind}[.{probe}]`: the kind of check, then the probes whose verdict it
/// carries (a passive check judged on the lifecycle probe says `passive.lifecycle`).
fn classname(result: &CheckResult) -> String {
    let kind = match result.kind {
        Kind::Passive => "passive",
        Kind::Probe => "probe",
    };
    match result.probes.as_slice() {
        [] => format!("dpsbench.conformance.{kind}"),
        probes => format!("dpsbench.conformance.{kind}.{}", probes.join("+")),
    }
}

fn status_mark(status: &Status) -> &'static str {
    match status {
        Status::Pass => "✅ pass",
        Status::Fail => "❌ fail",
        Status::Inconclusive => "❔ inconclusive",
        Status::Skipped => "⏭️ skipped",
        Status::Waived => "⚠️ waived",
    }
}

/// `conformance.md`: fit for a CI job summary.
pub fn markdown(report: &ConformanceReport) -> String {
    let mut out = String::from("# DPS MQTT conformance\n\n");
    let _ = writeln!(
        out,
        "Target `{}` (ID scope `{}`), {} in {:.1} s: **{}**.\n",
        report.target,
        report.id_scope,
        report.started_at,
        report.duration_seconds,
        counts(report),
    );
    let _ = writeln!(out, "**{}.**\n", report.verdict());
    out.push_str("| Result | Check | Level | Title | Evidence |\n|---|---|---|---|---|\n");
    for r in &report.results {
        let evidence = r.evidence.replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            status_mark(&r.status),
            r.check.id,
            r.check.level.name(),
            r.check.title,
            evidence
        );
    }
    out
}

/// The table `dpsbench conform` prints.
pub fn table(report: &ConformanceReport) -> String {
    let mut out = String::new();
    for r in &report.results {
        let status = match r.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Inconclusive => "INCONC",
            Status::Skipped => "skip",
            Status::Waived => "waived",
        };
        let evidence: String = r.evidence.chars().take(110).collect();
        let _ = writeln!(
            out,
            "{status:<6} {:<13} {:<6} {}\n{:>28}{evidence}",
            r.check.id,
            r.check.level.name(),
            r.check.title,
            ""
        );
    }
    let _ = writeln!(out, "\n{} in {:.1} s", counts(report), report.duration_seconds);
    out
}

/// "N passed, N failed (N must), N inconclusive (N must), N skipped, N waived".
fn counts(report: &ConformanceReport) -> String {
    format!(
        "{} passed, {} failed ({} must), {} inconclusive ({} must), {} skipped, {} waived",
        report.count(Status::Pass),
        report.count(Status::Fail),
        report.must_failures(),
        report.count(Status::Inconclusive),
        report.must_inconclusive(),
        report.count(Status::Skipped),
        report.count(Status::Waived)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::Level;
    use crate::grading::report::StatedCheck;

    fn report() -> ConformanceReport {
        let result = |id: &str, status, evidence: &str| CheckResult {
            check: StatedCheck {
                id: id.into(),
                title: "A <title> & more".into(),
                statement: "§1".into(),
                level: Level::Must,
            },
            kind: Kind::Probe,
            status,
            evidence: evidence.into(),
            blocked_by: None,
            probes: Vec::new(),
            seconds: 0.25,
        };
        ConformanceReport {
            schema: "dpsbench.conformance/v1".into(),
            target: "127.0.0.1:8883".into(),
            id_scope: "0ne1".into(),
            started_at: "2026-11-26T07:00:00.0000000Z".into(),
            duration_seconds: 1.5,
            results: vec![
                result("DPS-TLS-001", Status::Pass, "closed"),
                result("DPS-TLS-002", Status::Fail, "CONNACK 0 on \"1883\" | <x>"),
                result("DPS-WS-001", Status::Waived, "waived: lab"),
            ],
        }
    }

    #[test]
    fn junit_escapes_and_counts() {
        let xml = junit(&report());
        assert!(xml.contains("tests=\"3\" skipped=\"1\" failures=\"1\" errors=\"0\""), "{xml}");
        assert!(xml.contains("name=\"DPS-TLS-001 A &lt;title&gt; &amp; more\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"must: CONNACK 0 on &quot;1883&quot; | &lt;x&gt;\" type=\"must\">"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message=\"waived: lab\"/>"), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 3);
    }

    #[test]
    fn the_verdict_says_conformant_only_with_what_was_skipped() {
        let mut report = report();
        report.results.retain(|r| r.status != Status::Fail);
        assert_eq!(report.verdict(), "Verdict: conformant: every must-check passed (or was waived)");
        let mut skipped = report.results[0].clone();
        (skipped.check.id, skipped.status, skipped.check.level) = ("DPS-WS-001".into(), Status::Skipped, Level::Must);
        report.results.push(skipped);
        let md = markdown(&report);
        assert!(
            md.contains("**Verdict: conformant in what was judged, but 1 must-check(s) were skipped and not judged: DPS-WS-001.**"),
            "{md}"
        );
    }

    #[test]
    fn markdown_escapes_pipes() {
        let md = markdown(&report());
        assert!(md.contains("**1 passed, 1 failed (1 must), 0 inconclusive (0 must), 0 skipped, 1 waived**"), "{md}");
        assert!(md.contains("**Verdict: not conformant: 1 must-check(s) failed.**\n"), "{md}");
        assert!(md.contains("CONNACK 0 on \"1883\" \\| <x>"), "{md}");
    }

    /// Every status, both levels and kinds, and evidence that needs escaping in XML and Markdown.
    fn every_status() -> ConformanceReport {
        let result = |id: &str, level, kind, status, evidence: &str| CheckResult {
            check: StatedCheck {
                id: id.into(),
                title: format!("Title of {id} with <angle> & \"quotes\""),
                statement: "§3: it's <documented> & \"quoted\"".into(),
                level,
            },
            kind,
            status,
            evidence: evidence.into(),
            blocked_by: (status == Status::Inconclusive).then(|| "lifecycle (DPS-FLOW-005)".to_string()),
            probes: match (status, kind) {
                (Status::Waived, _) => Vec::new(),
                (_, Kind::Passive) => vec!["lifecycle".to_string()],
                (_, Kind::Probe) => vec![format!("probe-of-{id}")],
            },
            seconds: 0.125,
        };
        ConformanceReport {
            schema: "dpsbench.conformance/v1".into(),
            target: "dps.example:8883".into(),
            id_scope: "0ne00SNAP01".into(),
            started_at: "2026-11-26T07:00:00.0000000Z".into(),
            duration_seconds: 12.345,
            results: vec![
                result("DPS-TLS-001", Level::Must, Kind::Probe, Status::Pass, "plain-text CONNECT: connection closed"),
                result(
                    "DPS-TOPIC-002",
                    Level::Must,
                    Kind::Passive,
                    Status::Fail,
                    "reply $dps/registrations/res/202/?$rid=1-wrong | body {\"status\":\"assigning\"}\nsecond line\u{7}bell",
                ),
                result("DPS-TLS-005", Level::Should, Kind::Probe, Status::Fail, "a TLS 1.3-only client was accepted"),
                result(
                    "DPS-TOPIC-004",
                    Level::Must,
                    Kind::Passive,
                    Status::Inconclusive,
                    "inconclusive, blocked by lifecycle (DPS-FLOW-005): not observed: the lifecycle ended (timeout) before this could be checked",
                ),
                result(
                    "DPS-WS-001",
                    Level::Must,
                    Kind::Probe,
                    Status::Skipped,
                    "the target has no WebSocket endpoint (give --ws-target)",
                ),
                result("DPS-TLS-002", Level::Must, Kind::Probe, Status::Waived, "waived: the lab's <gateway> & 1883"),
            ],
        }
    }

    #[test]
    fn junit_is_pinned() {
        insta::assert_snapshot!(junit(&every_status()));
    }

    #[test]
    fn markdown_is_pinned() {
        insta::assert_snapshot!(markdown(&every_status()));
    }
}
