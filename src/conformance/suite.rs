//! The conformance suite: every probe the catalogue names against one target, each bounded by its
//! own deadline, with waivers and the exclusion of billable probes applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::probes::table::PROBES;
use super::probes::{ProbeTarget, Verdict};
use super::{CATALOGUE, Check, Kind, Level};

/// Identifies the format of `conformance.json`.
pub const CONFORMANCE_SCHEMA: &str = "dpsbench.conformance/v1";

/// Whether the check `id` is judged by probes that create registrations (billable on a real DPS
/// instance).
pub fn billable(id: &str) -> bool {
    super::find(id).is_some_and(Check::billable)
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
    Waived,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub statement: String,
    pub level: Level,
    pub kind: Kind,
    pub status: Status,
    /// What was observed (pass or fail), or why it did not run.
    pub evidence: String,
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
        self.results.iter().filter(|r| r.status == Status::Fail && r.level == Level::Must).count()
    }
}

/// Runs the suite against `target`: each probe of the table, in order, when any check it judges
/// is wanted.
pub async fn run_suite(target: &ProbeTarget, options: &SuiteOptions) -> ConformanceReport {
    let started = Instant::now();
    let started_at = crate::timestamp::rfc3339(SystemTime::now());
    let mut verdicts: BTreeMap<&'static str, (Verdict, f64)> = BTreeMap::new();
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
            add(&mut verdicts, id, (verdict, seconds));
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

/// Adds a probe's verdict on `id` to what earlier probes found: a failure stands, passes add up
/// (the CleanSession 0 probe adds to the lifecycle's DPS-MQTT-001).
fn add(verdicts: &mut BTreeMap<&'static str, (Verdict, f64)>, id: &'static str, found: (Verdict, f64)) {
    let combined = match (verdicts.remove(id), found) {
        (Some((Verdict::Fail(a), s)), _) => (Verdict::Fail(a), s),
        (_, (Verdict::Fail(b), seconds)) => (Verdict::Fail(b), seconds),
        (Some((Verdict::Pass(a), s)), (Verdict::Pass(b), seconds)) => (Verdict::Pass(format!("{a}; {b}")), s + seconds),
        (_, other) => other,
    };
    verdicts.insert(id, combined);
}

fn over_time(limit: Duration) -> Verdict {
    Verdict::Fail(format!("the probe did not finish within its deadline of {} s", limit.as_secs()))
}

fn result(check: &Check, options: &SuiteOptions, verdict: Option<(Verdict, f64)>) -> CheckResult {
    let (status, evidence, seconds) = if let Some(reason) = options.waivers.get(check.id) {
        (Status::Waived, format!("waived: {reason}"), 0.0)
    } else {
        match verdict {
            Some((Verdict::Pass(e), s)) => (Status::Pass, e, s),
            Some((Verdict::Fail(e), s)) => (Status::Fail, e, s),
            Some((Verdict::Skipped(e), s)) => (Status::Skipped, e, s),
            None if options.exclude_billable && check.billable() => {
                (Status::Skipped, "excluded: its probe creates registrations (--exclude-billable)".into(), 0.0)
            }
            None => (Status::Skipped, "no probe produced a result".into(), 0.0),
        }
    };
    CheckResult {
        id: check.id.into(),
        title: check.title.into(),
        statement: check.statement.into(),
        level: check.level,
        kind: check.kind,
        status,
        evidence,
        seconds: (seconds * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_of_several_probes_add_up_and_a_failure_stands() {
        let mut verdicts = BTreeMap::new();
        add(&mut verdicts, "DPS-MQTT-001", (Verdict::Pass("lifecycle".into()), 1.0));
        add(&mut verdicts, "DPS-MQTT-001", (Verdict::Pass("CleanSession 0".into()), 2.0));
        assert_eq!(verdicts["DPS-MQTT-001"], (Verdict::Pass("lifecycle; CleanSession 0".into()), 3.0));
        add(&mut verdicts, "DPS-MQTT-001", (Verdict::Fail("SessionPresent 1".into()), 0.5));
        add(&mut verdicts, "DPS-MQTT-001", (Verdict::Pass("later".into()), 1.0));
        assert_eq!(verdicts["DPS-MQTT-001"], (Verdict::Fail("SessionPresent 1".into()), 0.5));
    }

    #[test]
    fn billable_comes_from_the_probes_that_judge_a_check() {
        assert!(billable("DPS-FLOW-005") && billable("DPS-TOPIC-002") && billable("DPS-THR-001"));
        assert!(!billable("DPS-AUTH-001") && !billable("DPS-NOPE-001"));
    }
}
