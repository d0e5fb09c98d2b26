//! The client report: what `--client-report` writes (clients.json, clients.md,
//! clients.junit.xml), as data and as pure writers `&ClientReport -> bytes`, its JUnit through
//! the check report both catalogues share (`grading`). Evidence names a check and a
//! registration ID, never a token or key. It knows nothing of connections: the judge fills it.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::catalogue::{ClientCheck, Entry};
use crate::grading::report::{CheckReport, CheckRow, StatedCheck};
use crate::grading::{Grade, Level};

/// The schema name of clients.json.
pub const CLIENTS_SCHEMA: &str = "dpsbench.clients/v1";

/// Everything the judge found, per check and for the detailed clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    pub schema: String,
    /// Connections judged (each CONNECT to its close).
    pub connections: u64,
    /// Whether a client broke a must-check (the exit status is 1 then).
    pub must_broken: bool,
    pub checks: Vec<CheckResult>,
    /// Per-client detail: the first few clients that broke checks (the first few clients while
    /// none did) and those named with `--client-detail`.
    pub clients: Vec<ClientDetail>,
    /// Clients named with `--client-detail` that never connected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_but_unseen: Vec<String>,
    /// TLS handshakes that failed, by reason: why a client may never have been judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_failures: Vec<TlsFailure>,
}

/// Failed TLS handshakes with one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFailure {
    /// The TLS library's error (an alert the client sent, what it did not offer) or the deadline.
    pub reason: String,
    pub handshakes: u64,
    /// What it most likely means (a client that does not trust the emulator's CA, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<String>,
}

impl TlsFailure {
    /// The failures of the emulator's handshake counters (`(reason, count)`, as
    /// `HandshakeFailures::snapshot` gives them).
    pub fn of(counted: &[(String, u64)]) -> Vec<Self> {
        counted
            .iter()
            .map(|(reason, handshakes)| TlsFailure {
                reason: reason.clone(),
                handshakes: *handshakes,
                meaning: crate::emulator::activity::hint(reason).map(str::to_string),
            })
            .collect()
    }

    /// `3 TLS handshakes failed: received fatal alert: UnknownCA (the client does not trust ...)`.
    pub fn line(&self) -> String {
        let plural = if self.handshakes == 1 { "" } else { "s" };
        let meaning = self.meaning.as_ref().map(|m| format!(" ({m})")).unwrap_or_default();
        format!("{} TLS handshake{plural} failed: {}{meaning}", self.handshakes, self.reason)
    }
}

/// A check's verdict over every connection judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// No connection gave the check a chance (no X.509 device, no 429, no reconnect).
    NotJudged,
}

impl Verdict {
    /// The verdict of a check judged on `judged` connections, `violations` of them broken.
    pub fn of(judged: u64, violations: u64) -> Self {
        match (judged, violations) {
            (0, _) => Verdict::NotJudged,
            (_, 0) => Verdict::Pass,
            _ => Verdict::Fail,
        }
    }

    /// What it comes to in the check report both catalogues share.
    pub fn grade(self) -> Grade {
        match self {
            Verdict::Pass => Grade::Pass,
            Verdict::Fail => Grade::Fail,
            Verdict::NotJudged => Grade::Skipped,
        }
    }
}

/// One check over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub check: StatedCheck,
    pub source: String,
    /// The dpsbench misbehaviours that fail it on purpose.
    pub failed_by: Vec<String>,
    pub verdict: Verdict,
    /// Connections (or TLS handshakes) on which it was judged.
    pub judged: u64,
    pub violations: u64,
    /// The first violations: registration ID (none for a refused TLS handshake) and evidence.
    pub examples: Vec<Example>,
}

/// One violation seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub registration_id: Option<String>,
    pub evidence: String,
}

/// One client's checks over its connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDetail {
    pub registration_id: String,
    pub connections: u64,
    /// IDs of the checks judged on its connections, and of those it broke.
    pub passed: Vec<String>,
    pub broken: Vec<String>,
    /// What it did wrong, check by check (the first lines).
    pub evidence: Vec<Example>,
}

impl ClientReport {
    pub fn new(
        connections: u64,
        checks: Vec<CheckResult>,
        clients: Vec<ClientDetail>,
        named_but_unseen: Vec<String>,
    ) -> Self {
        let must_broken = checks.iter().any(|c| c.check.level == Level::Must && c.verdict == Verdict::Fail);
        let tls_failures = Vec::new();
        Self {
            schema: CLIENTS_SCHEMA.into(),
            connections,
            must_broken,
            checks,
            clients,
            named_but_unseen,
            tls_failures,
        }
    }

    /// Whether it holds no verdict: no connection was judged and no handshake broke a check.
    /// Such a report is no pass: the client never got as far as being judged.
    pub fn judged_nothing(&self) -> bool {
        self.connections == 0 && !self.must_broken
    }

    /// Why no client was judged, in one line: the TLS failures seen, or that none connected.
    pub fn why_nothing_judged(&self) -> String {
        if self.tls_failures.is_empty() {
            return "no client connection sent CONNECT (and no TLS handshake failed): did the client reach this \
                    address?"
                .into();
        }
        let lines: Vec<String> = self.tls_failures.iter().map(TlsFailure::line).collect();
        format!("no client got past its TLS handshake: {}", lines.join("; "))
    }

    /// The result of `check`.
    pub fn check(&self, check: ClientCheck) -> &CheckResult {
        let id = check.id();
        self.checks.iter().find(|c| c.check.id == id).expect("a report holds every check of the catalogue")
    }

    /// IDs of the checks that failed.
    pub fn failed(&self) -> Vec<&str> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail).map(|c| c.check.id.as_str()).collect()
    }
}

impl CheckResult {
    pub(super) fn new(entry: &Entry, judged: u64, violations: u64, examples: Vec<Example>) -> Self {
        Self {
            check: StatedCheck {
                id: entry.id.into(),
                title: entry.title.into(),
                statement: entry.statement.into(),
                level: entry.level,
            },
            source: entry.source.to_string(),
            failed_by: entry.failed_by.iter().map(|m| m.name().to_string()).collect(),
            verdict: Verdict::of(judged, violations),
            judged,
            violations,
            examples,
        }
    }
}

impl ClientDetail {
    pub(super) fn new(registration_id: &str) -> Self {
        Self {
            registration_id: registration_id.into(),
            connections: 0,
            passed: Vec::new(),
            broken: Vec::new(),
            evidence: Vec::new(),
        }
    }
}

/// `clients.json`.
pub fn json(report: &ClientReport) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(report).expect("a report always serialises");
    bytes.push(b'\n');
    bytes
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::NotJudged => "not judged",
    }
}

fn example_line(example: &Example) -> String {
    match &example.registration_id {
        Some(id) => format!("{id}: {}", example.evidence),
        None => example.evidence.clone(),
    }
}

/// `clients.junit.xml`: one testcase per check; a broken check is a `<failure>` (a should-check's
/// too, so CI shows it; its message says it is a should) listing the first clients that broke
/// it; a check no client gave a chance is `<skipped>`, or, when no client was judged at all, a
/// must-check is an `<error>` saying why.
pub fn junit(report: &ClientReport) -> String {
    check_report(report).junit()
}

/// The report as rows of graded checks, the model every JUnit file of dpsbench is written from.
pub fn check_report(report: &ClientReport) -> CheckReport {
    CheckReport {
        name: "dpsbench client checks".into(),
        suite: "dpsbench.clients".into(),
        timestamp: None,
        seconds: None,
        properties: vec![("connections", report.connections.to_string())],
        rows: report.checks.iter().map(|check| row(check, report)).collect(),
    }
}

/// A check's row. When no client was judged at all, a must-check no connection gave a chance
/// is an error (inconclusive), not skipped: a CI job reading only the JUnit must not go green on a
/// device that never got as far as being judged.
fn row(check: &CheckResult, report: &ClientReport) -> CheckRow {
    let nothing_judged =
        report.judged_nothing() && check.check.level == Level::Must && check.verdict == Verdict::NotJudged;
    let grade = if nothing_judged { Grade::Inconclusive } else { check.verdict.grade() };
    let (message, detail) = match check.verdict {
        _ if nothing_judged => (format!("no client was judged: {}", report.why_nothing_judged()), String::new()),
        Verdict::Pass => (String::new(), String::new()),
        Verdict::NotJudged => ("no connection gave this check a chance".into(), String::new()),
        Verdict::Fail => {
            let message = format!(
                "{} of {} connections broke this {}-check: {}",
                check.violations,
                check.judged,
                check.check.level.name(),
                check.check.statement
            );
            (message, check.examples.iter().map(example_line).collect::<Vec<_>>().join("\n"))
        }
    };
    CheckRow {
        check: check.check.clone(),
        classname: format!("dpsbench.clients.{}", check.check.level.name()),
        grade,
        message,
        detail,
        seconds: None,
    }
}

/// `clients.md`: the verdict, a table of every check, the first clients that broke each one,
/// and the detailed clients.
pub fn markdown(report: &ClientReport) -> String {
    let mut out = String::from("# dpsbench client checks\n\n");
    let broken: Vec<&CheckResult> = report.checks.iter().filter(|c| c.verdict == Verdict::Fail).collect();
    let verdict = match (report.must_broken, broken.is_empty()) {
        _ if report.judged_nothing() => "**NO VERDICT**: no client was judged",
        (true, _) => "**FAIL**: a client broke a must-check",
        (false, false) => "**pass** on every must-check; should-checks broken below",
        (false, true) => "**pass**: no client broke a check",
    };
    let _ = writeln!(out, "{verdict} ({} connections judged).\n", report.connections);
    if report.judged_nothing() {
        let _ = writeln!(out, "{}.\n", report.why_nothing_judged());
    }
    if !report.tls_failures.is_empty() {
        out.push_str("TLS handshakes that failed:\n\n");
        for failure in &report.tls_failures {
            let _ = writeln!(out, "- {}", failure.line());
        }
        out.push('\n');
    }
    out.push_str("| Check | Level | Verdict | Judged | Broken | Title |\n|---|---|---|---:|---:|---|\n");
    for check in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            check.check.id,
            check.check.level.name(),
            verdict_name(check.verdict),
            check.judged,
            check.violations,
            check.check.title.replace('|', "\\|")
        );
    }
    if !broken.is_empty() {
        out.push_str("\n## Broken checks\n");
        for check in broken {
            let _ =
                writeln!(out, "\n### {} ({})\n\n{}\n", check.check.id, check.check.level.name(), check.check.statement);
            let _ = writeln!(out, "Source: {}.\n", check.source);
            for example in &check.examples {
                let _ = writeln!(out, "- {}", example_line(example));
            }
        }
    }
    if !report.clients.is_empty() {
        out.push_str("\n## Clients in detail\n\n| Registration ID | Connections | Broken |\n|---|---:|---|\n");
        for client in &report.clients {
            let broken = if client.broken.is_empty() { "none".to_string() } else { client.broken.join(", ") };
            let _ = writeln!(out, "| {} | {} | {} |", client.registration_id, client.connections, broken);
        }
    }
    if !report.named_but_unseen.is_empty() {
        let _ =
            writeln!(out, "\nNamed with --client-detail but never connected: {}.", report.named_but_unseen.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::client_checks::CATALOGUE;

    /// A report where one must-check and one should-check broke and one was never judged.
    fn report() -> ClientReport {
        let checks = CATALOGUE
            .iter()
            .map(|entry| match entry.check {
                ClientCheck::PollAfterRetryAfter => {
                    let example = Example {
                        registration_id: Some("fw-001".into()),
                        evidence: "the next request came 1000 ms before the retry-after of 3 s ran out".into(),
                    };
                    CheckResult::new(entry, 4, 2, vec![example])
                }
                ClientCheck::CleanSession => {
                    let example =
                        Example { registration_id: Some("fw-000".into()), evidence: "CONNECT CleanSession 0".into() };
                    CheckResult::new(entry, 4, 4, vec![example])
                }
                ClientCheck::Tls12 => {
                    let example = Example {
                        registration_id: None,
                        evidence: "a TLS handshake from 127.0.0.1 offered no TLS 1.2".into(),
                    };
                    CheckResult::new(entry, 5, 1, vec![example])
                }
                ClientCheck::CertificateCn | ClientCheck::WaitAfterThrottle | ClientCheck::ReconnectBackoff => {
                    CheckResult::new(entry, 0, 0, Vec::new())
                }
                _ => CheckResult::new(entry, 4, 0, Vec::new()),
            })
            .collect();
        let client = ClientDetail {
            registration_id: "fw-001".into(),
            connections: 1,
            passed: vec!["DPS-CLIENT-MQTT-001".into()],
            broken: vec!["DPS-CLIENT-FLOW-001".into()],
            evidence: Vec::new(),
        };
        ClientReport::new(4, checks, vec![client], vec!["fw-999".into()])
    }

    #[test]
    fn markdown_is_pinned() {
        insta::assert_snapshot!(markdown(&report()));
    }

    #[test]
    fn junit_is_pinned() {
        insta::assert_snapshot!(junit(&report()));
    }

    #[test]
    fn a_report_that_judged_no_client_is_no_pass_and_says_why() {
        let checks = CATALOGUE.iter().map(|entry| CheckResult::new(entry, 0, 0, Vec::new())).collect();
        let mut report = ClientReport::new(0, checks, Vec::new(), Vec::new());
        assert!(report.judged_nothing());
        assert!(report.why_nothing_judged().contains("no client connection sent CONNECT"));
        report.tls_failures = TlsFailure::of(&[("received fatal alert: UnknownCA".into(), 2)]);
        let why = report.why_nothing_judged();
        assert!(why.contains("2 TLS handshakes failed: received fatal alert: UnknownCA"), "{why}");
        assert!(why.contains("does not trust this emulator's certificate"), "{why}");
        let markdown = markdown(&report);
        assert!(markdown.starts_with("# dpsbench client checks\n\n**NO VERDICT**"), "{markdown}");
        assert!(!markdown.contains("**pass**") && markdown.contains("UnknownCA"), "{markdown}");
        // The JUnit fails a CI job: every must-check is an error saying why, none a silent skip.
        let rows = check_report(&report).rows;
        for row in &rows {
            let expected = if row.check.level == Level::Must { Grade::Inconclusive } else { Grade::Skipped };
            assert_eq!(row.grade, expected, "{}", row.check.id);
        }
        assert!(rows.iter().any(|r| r.message.contains("UnknownCA")));
        let parsed: ClientReport = serde_json::from_slice(&json(&report)).unwrap();
        assert_eq!(parsed, report);
    }

    #[test]
    fn json_round_trips_and_says_a_must_check_broke() {
        let report = report();
        assert!(report.must_broken);
        let parsed: ClientReport = serde_json::from_slice(&json(&report)).unwrap();
        assert_eq!(parsed, report);
        assert_eq!(report.failed(), ["DPS-CLIENT-TLS-001", "DPS-CLIENT-MQTT-004", "DPS-CLIENT-FLOW-001"]);
    }
}
