//! The conformance suite: every probe the catalogue names against one target, each bounded by its
//! own deadline, with waivers and the exclusion of billable probes applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::catalogue::{CATALOGUE, Check, Kind};
use super::probes::table::PROBES;
use super::probes::{ProbeTarget, Verdict};
use crate::grading::report::StatedCheck;
use crate::grading::{Grade, Level};

/// Identifies the format of `conformance.json`.
/// v2: the `inconclusive` status, with `blocked_by`, and `probes`, the probes whose verdicts
/// stand.
pub const CONFORMANCE_SCHEMA: &str = "dpsbench.conformance/v2";

/// Whether the check `id` is judged by probes that create registrations (billable on a real DPS
/// instance).
pub fn billable(id: &str) -> bool {
    super::catalogue::find(id).is_some_and(Check::billable)
}

/// What to run and what to skip.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// Check ID -> reason: skipped, with the reason in every report.
    pub waivers: BTreeMap<String, String>,
    /// Skip probes that create registrations.
    pub exclude_billable: bool,
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Could not be exercised: `blocked_by` names the check or probe in the way. A must-check
    /// that is inconclusive has not passed (exit 1), but it has not failed either.
    Inconclusive,
    Skipped,
    Waived,
}

impl Status {
    /// What it comes to in the check report both catalogues share: a waived check is skipped.
    pub fn grade(self) -> Grade {
        match self {
            Status::Pass => Grade::Pass,
            Status::Fail => Grade::Fail,
            Status::Inconclusive => Grade::Inconclusive,
            Status::Skipped | Status::Waived => Grade::Skipped,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub check: StatedCheck,
    pub kind: Kind,
    pub status: Status,
    /// What was observed (pass or fail), or why it did not run.
    pub evidence: String,
    /// For an inconclusive check: the check or probe that kept it from being exercised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// The probes whose verdicts produced this result (a passive check's is the probe whose
    /// flow it watched); empty when none ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<String>,
    pub seconds: f64,
}

/// Everything `conformance.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConformanceReport {
    pub schema: String,
    pub target: String,
    pub id_scope: String,
    pub started_at: String,
    pub duration_seconds: f64,
    pub results: Vec<CheckResult>,
}

impl ConformanceReport {
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// Failed checks of level must: any makes the suite fail (exit 1).
    pub fn must_failures(&self) -> usize {
        self.results.iter().filter(|r| r.status == Status::Fail && r.check.level == Level::Must).count()
    }

    /// Inconclusive checks of level must: not passed, so any makes the suite fail (exit 1) too.
    pub fn must_inconclusive(&self) -> usize {
        self.results.iter().filter(|r| r.status == Status::Inconclusive && r.check.level == Level::Must).count()
    }

    /// Must-checks the suite skipped (waived ones are deliberate and not counted).
    pub fn must_skipped(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.status == Status::Skipped && r.check.level == Level::Must)
    }

    /// The overall verdict, one line: not conformant (why), or conformant, saying whether that
    /// rests on every must-check or leaves skipped ones unjudged.
    pub fn verdict(&self) -> String {
        if let Some(why) = self.why_not_passed() {
            return format!("Verdict: {why}");
        }
        let skipped: Vec<&str> = self.must_skipped().map(|r| r.check.id.as_str()).collect();
        match skipped.as_slice() {
            [] => "Verdict: conformant: every must-check passed (or was waived)".into(),
            ids => format!(
                "Verdict: conformant in what was judged, but {} must-check(s) were skipped and not judged: {}",
                ids.len(),
                ids.join(", ")
            ),
        }
    }

    /// Whether every must-check passed (or was skipped or waived): exit 0.
    pub fn passed(&self) -> bool {
        self.must_failures() == 0 && self.must_inconclusive() == 0
    }

    /// One line saying why the suite did not pass, `None` when it did.
    pub fn why_not_passed(&self) -> Option<String> {
        if self.passed() {
            return None;
        }
        let blockers: std::collections::BTreeSet<&str> = self
            .results
            .iter()
            .filter(|r| r.status == Status::Inconclusive && r.check.level == Level::Must)
            .filter_map(|r| r.blocked_by.as_deref())
            .collect();
        let blockers: Vec<&str> = blockers.into_iter().collect();
        Some(match (self.must_failures(), self.must_inconclusive()) {
            (failed, 0) => format!("not conformant: {failed} must-check(s) failed"),
            (0, open) => {
                format!("not shown conformant: {open} must-check(s) inconclusive, blocked by {}", blockers.join(", "))
            }
            (failed, open) => format!(
                "not conformant: {failed} must-check(s) failed; {open} more inconclusive, blocked by {}",
                blockers.join(", ")
            ),
        })
    }
}

/// Runs the suite against `target`: each probe of the table, in order, when any check it judges
/// is wanted.
pub async fn run_suite(target: &ProbeTarget, options: &SuiteOptions) -> ConformanceReport {
    let started = Instant::now();
    let started_at = crate::timestamp::rfc3339(SystemTime::now());
    let mut verdicts: BTreeMap<&'static str, Judged> = BTreeMap::new();
    for probe in PROBES {
        let judged: Vec<&Check> = CATALOGUE.iter().filter(|check| check.judged_by(probe)).collect();
        if judged.iter().all(|check| skipped(check, options)) {
            continue;
        }
        let limit = probe.deadline.of(target);
        let start = Instant::now();
        let found = match timeout(limit, (probe.run)(target)).await {
            Ok(found) => found,
            Err(_) => judged.iter().map(|check| (check.id, over_time(limit))).collect(),
        };
        let seconds = start.elapsed().as_secs_f64();
        for (id, verdict) in found {
            add(&mut verdicts, id, Judged { verdict, seconds, probes: vec![probe.name] });
        }
    }

    let results = CATALOGUE.iter().map(|check| result(check, options, verdicts.remove(check.id))).collect();
    ConformanceReport {
        schema: CONFORMANCE_SCHEMA.into(),
        target: target.address.to_string(),
        id_scope: target.id_scope.to_string(),
        started_at,
        duration_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        results,
    }
}

/// Whether `check` is not to be judged: waived, or billable and billable probes are excluded.
fn skipped(check: &Check, options: &SuiteOptions) -> bool {
    options.waivers.contains_key(check.id) || (options.exclude_billable && check.billable())
}

/// One check's verdict so far, and the probes that produced it.
#[derive(Debug, Clone, PartialEq)]
struct Judged {
    verdict: Verdict,
    seconds: f64,
    probes: Vec<&'static str>,
}

/// How much a verdict says about a check: a failure outweighs everything, a pass (the check was
/// exercised) outweighs an inconclusive one, which outweighs a skip.
fn weight(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Fail(_) => 3,
        Verdict::Pass(_) => 2,
        Verdict::Inconclusive { .. } => 1,
        Verdict::Skipped(_) => 0,
    }
}

/// Adds a probe's verdict on `id` to what earlier probes found: a failure stands, passes add up
/// (the CleanSession 0 probe adds to the lifecycle's DPS-MQTT-001), a pass outweighs an
/// inconclusive verdict.
fn add(verdicts: &mut BTreeMap<&'static str, Judged>, id: &'static str, found: Judged) {
    let combined = match verdicts.remove(id) {
        None => found,
        Some(known) => match (known.verdict, found.verdict) {
            (Verdict::Pass(a), Verdict::Pass(b)) => Judged {
                verdict: Verdict::Pass(format!("{a}; {b}")),
                seconds: known.seconds + found.seconds,
                probes: [known.probes, found.probes].concat(),
            },
            (a, b) if weight(&b) > weight(&a) => Judged { verdict: b, ..found },
            (a, _) => Judged { verdict: a, ..known },
        },
    };
    verdicts.insert(id, combined);
}

fn over_time(limit: Duration) -> Verdict {
    Verdict::Fail(format!("the probe did not finish within its deadline of {} s", limit.as_secs()))
}

fn result(check: &Check, options: &SuiteOptions, judged: Option<Judged>) -> CheckResult {
    let probes = judged.as_ref().map(|j| j.probes.iter().map(|p| p.to_string()).collect()).unwrap_or_default();
    let mut blocked_by = None;
    let (status, evidence, seconds) = if let Some(reason) = options.waivers.get(check.id) {
        (Status::Waived, format!("waived: {reason}"), 0.0)
    } else {
        match judged.map(|j| (j.verdict, j.seconds)) {
            Some((Verdict::Pass(e), s)) => (Status::Pass, e, s),
            Some((Verdict::Fail(e), s)) => (Status::Fail, e, s),
            Some((Verdict::Skipped(e), s)) => (Status::Skipped, e, s),
            Some((Verdict::Inconclusive { blocked_by: by, reason }, s)) => {
                let evidence = format!("inconclusive, blocked by {by}: {reason}");
                blocked_by = Some(by);
                (Status::Inconclusive, evidence, s)
            }
            None if options.exclude_billable && check.billable() => {
                (Status::Skipped, "excluded: its probe creates registrations (--exclude-billable)".into(), 0.0)
            }
            None => (Status::Skipped, "no probe produced a result".into(), 0.0),
        }
    };
    CheckResult {
        check: StatedCheck {
            id: check.id.into(),
            title: check.title.into(),
            statement: check.statement.into(),
            level: check.level,
        },
        kind: check.kind,
        status,
        evidence,
        blocked_by,
        probes,
        seconds: (seconds * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_of_several_probes_add_up_and_a_failure_stands() {
        let judged = |verdict, seconds, probe| Judged { verdict, seconds, probes: vec![probe] };
        let mut verdicts = BTreeMap::new();
        add(&mut verdicts, "DPS-MQTT-001", judged(Verdict::Pass("lifecycle".into()), 1.0, "lifecycle"));
        add(&mut verdicts, "DPS-MQTT-001", judged(Verdict::Pass("CleanSession 0".into()), 2.0, "clean-session-0"));
        assert_eq!(
            verdicts["DPS-MQTT-001"],
            Judged {
                verdict: Verdict::Pass("lifecycle; CleanSession 0".into()),
                seconds: 3.0,
                probes: vec!["lifecycle", "clean-session-0"]
            }
        );
        add(&mut verdicts, "DPS-MQTT-001", judged(Verdict::Fail("SessionPresent 1".into()), 0.5, "clean-session-0"));
        add(&mut verdicts, "DPS-MQTT-001", judged(Verdict::Pass("later".into()), 1.0, "lifecycle"));
        assert_eq!(verdicts["DPS-MQTT-001"], judged(Verdict::Fail("SessionPresent 1".into()), 0.5, "clean-session-0"));
    }

    #[test]
    fn a_pass_outweighs_an_inconclusive_verdict_and_an_inconclusive_one_a_skip() {
        let blocked = || Verdict::Inconclusive { blocked_by: "lifecycle".into(), reason: "not observed".into() };
        let judged = |verdict, probe| Judged { verdict, seconds: 1.0, probes: vec![probe] };
        let mut verdicts = BTreeMap::new();
        add(&mut verdicts, "DPS-MQTT-001", judged(blocked(), "lifecycle"));
        add(&mut verdicts, "DPS-MQTT-001", judged(Verdict::Pass("seen".into()), "clean-session-0"));
        assert_eq!(verdicts["DPS-MQTT-001"], judged(Verdict::Pass("seen".into()), "clean-session-0"));
        add(&mut verdicts, "DPS-WS-001", judged(Verdict::Skipped("no endpoint".into()), "websocket"));
        add(&mut verdicts, "DPS-WS-001", judged(blocked(), "lifecycle"));
        assert_eq!(verdicts["DPS-WS-001"], judged(blocked(), "lifecycle"));
    }

    #[test]
    fn a_must_check_inconclusive_fails_the_suite_and_says_why_in_one_line() {
        let check = find_check("DPS-TOPIC-002");
        let blocked = Judged {
            verdict: Verdict::Inconclusive {
                blocked_by: "lifecycle (DPS-FLOW-005)".into(),
                reason: "not observed".into(),
            },
            seconds: 1.0,
            probes: vec!["lifecycle"],
        };
        let result = result(check, &SuiteOptions::default(), Some(blocked));
        assert_eq!(result.status, Status::Inconclusive);
        assert_eq!(result.blocked_by.as_deref(), Some("lifecycle (DPS-FLOW-005)"));
        let report = ConformanceReport {
            schema: CONFORMANCE_SCHEMA.into(),
            target: "127.0.0.1:8883".into(),
            id_scope: "0ne1".into(),
            started_at: String::new(),
            duration_seconds: 1.0,
            results: vec![result],
        };
        assert_eq!(report.must_failures(), 0);
        assert!(!report.passed());
        assert_eq!(
            report.why_not_passed().as_deref(),
            Some("not shown conformant: 1 must-check(s) inconclusive, blocked by lifecycle (DPS-FLOW-005)")
        );
    }

    fn find_check(id: &str) -> &'static Check {
        crate::conformance::find(id).expect("a catalogued ID")
    }

    #[test]
    fn billable_comes_from_the_probes_that_judge_a_check() {
        assert!(billable("DPS-FLOW-005") && billable("DPS-TOPIC-002") && billable("DPS-THR-001"));
        assert!(!billable("DPS-AUTH-001") && !billable("DPS-NOPE-001"));
    }
}
