//! Conformance report writers: pure functions from a [`ConformanceReport`] to text.

use std::fmt::Write as _;

use super::Level;
use super::suite::{ConformanceReport, Status};

/// `conformance.json`.
pub fn json(report: &ConformanceReport) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(report).expect("a report always serialises");
    bytes.push(b'\n');
    bytes
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `conformance.junit.xml`: one testcase per check; failures carry the observed evidence;
/// skipped and waived checks are `<skipped>` with their reason.
pub fn junit(report: &ConformanceReport) -> String {
    let tests = report.results.len();
    let failures = report.count(Status::Fail);
    let skipped = report.count(Status::Skipped) + report.count(Status::Waived);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"dpsbench conformance\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        report.duration_seconds
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"dpsbench conformance {}\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\" timestamp=\"{}\">",
        xml_escape(&report.target),
        report.duration_seconds,
        xml_escape(&report.started_at)
    );
    let _ = writeln!(out, "    <properties>");
    let _ = writeln!(out, "      <property name=\"target\" value=\"{}\"/>", xml_escape(&report.target));
    let _ = writeln!(out, "      <property name=\"id_scope\" value=\"{}\"/>", xml_escape(&report.id_scope));
    let _ = writeln!(out, "    </properties>");
    for result in &report.results {
        let level = level_name(result.level);
        let _ = write!(
            out,
            "    <testcase classname=\"dpsbench.conformance.{}\" name=\"{} {}\" time=\"{:.3}\">",
            serde_json::to_value(result.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            xml_escape(&result.id),
            xml_escape(&result.title),
            result.seconds
        );
        let evidence = xml_escape(&result.evidence);
        match result.status {
            Status::Pass => {
                let _ = write!(out, "<system-out>{evidence}</system-out>");
            }
            Status::Fail => {
                let _ = write!(
                    out,
                    "<failure type=\"{level}\" message=\"{level}: {evidence}\">{evidence}\n(verifies: {})</failure>",
                    xml_escape(&result.statement)
                );
            }
            Status::Skipped | Status::Waived => {
                let _ = write!(out, "<skipped message=\"{evidence}\"/>");
            }
        }
        let _ = writeln!(out, "</testcase>");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Must => "must",
        Level::Should => "should",
    }
}

fn status_mark(status: &Status) -> &'static str {
    match status {
        Status::Pass => "✅ pass",
        Status::Fail => "❌ fail",
        Status::Skipped => "⏭️ skipped",
        Status::Waived => "⚠️ waived",
    }
}

/// `conformance.md`: fit for a CI job summary.
pub fn markdown(report: &ConformanceReport) -> String {
    let mut out = String::from("# DPS MQTT conformance\n\n");
    let _ = writeln!(
        out,
        "Target `{}` (ID scope `{}`), {} in {:.1} s: **{} passed, {} failed ({} must), {} skipped, {} waived**.\n",
        report.target,
        report.id_scope,
        report.started_at,
        report.duration_seconds,
        report.count(Status::Pass),
        report.count(Status::Fail),
        report.must_failures(),
        report.count(Status::Skipped),
        report.count(Status::Waived)
    );
    out.push_str("| Result | Check | Level | Title | Evidence |\n|---|---|---|---|---|\n");
    for r in &report.results {
        let evidence = r.evidence.replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            status_mark(&r.status),
            r.id,
            level_name(r.level),
            r.title,
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
            Status::Skipped => "skip",
            Status::Waived => "waived",
        };
        let evidence: String = r.evidence.chars().take(110).collect();
        let _ = writeln!(out, "{status:<6} {:<13} {:<6} {}\n{:>28}{evidence}", r.id, level_name(r.level), r.title, "");
    }
    let _ = writeln!(
        out,
        "\n{} passed, {} failed ({} must), {} skipped, {} waived in {:.1} s",
        report.count(Status::Pass),
        report.count(Status::Fail),
        report.must_failures(),
        report.count(Status::Skipped),
        report.count(Status::Waived),
        report.duration_seconds
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::Kind;
    use crate::conformance::suite::CheckResult;

    fn report() -> ConformanceReport {
        let result = |id: &str, status, evidence: &str| CheckResult {
            id: id.into(),
            title: "A <title> & more".into(),
            statement: "§1".into(),
            level: Level::Must,
            kind: Kind::Probe,
            status,
            evidence: evidence.into(),
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
        assert!(xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""), "{xml}");
        assert!(xml.contains("name=\"DPS-TLS-001 A &lt;title&gt; &amp; more\""), "{xml}");
        assert!(
            xml.contains("<failure type=\"must\" message=\"must: CONNACK 0 on &quot;1883&quot; | &lt;x&gt;\">"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message=\"waived: lab\"/>"), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 3);
    }

    #[test]
    fn markdown_escapes_pipes() {
        let md = markdown(&report());
        assert!(md.contains("**1 passed, 1 failed (1 must), 0 skipped, 1 waived**"), "{md}");
        assert!(md.contains("CONNACK 0 on \"1883\" \\| <x>"), "{md}");
    }

    /// Every status, both levels and kinds, and evidence that needs escaping in XML and Markdown.
    fn every_status() -> ConformanceReport {
        let result = |id: &str, level, kind, status, evidence: &str| CheckResult {
            id: id.into(),
            title: format!("Title of {id} with <angle> & \"quotes\""),
            statement: "§3: it's <documented> & \"quoted\"".into(),
            level,
            kind,
            status,
            evidence: evidence.into(),
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
