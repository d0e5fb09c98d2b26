//! The conformance suite: every probe of the catalogue against one target, each bounded by its
//! own deadline, with waivers and the exclusion of billable probes applied.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::probes::{self, ProbeTarget, Verdict};
use super::{CATALOGUE, Check, Kind, Level, PassiveCheck};

/// Identifies the format of `conformance.json`.
pub const CONFORMANCE_SCHEMA: &str = "dpsbench.conformance/v1";

/// Checks whose probes create registrations (billable on a real DPS instance): the lifecycle
/// carries every passive check.
pub fn billable(id: &str) -> bool {
    PassiveCheck::ALL.iter().any(|c| c.id() == id)
        || ["DPS-FLOW-005", "DPS-FLOW-006", "DPS-MQTT-002", "DPS-FLOW-004", "DPS-THR-001", "DPS-WS-001"].contains(&id)
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

/// Runs the suite against `target`.
pub async fn run_suite(target: &ProbeTarget, options: &SuiteOptions) -> ConformanceReport {
    let started = Instant::now();
    let started_at = crate::messages::format_timestamp(SystemTime::now());
    let mut verdicts: BTreeMap<&'static str, (Verdict, f64)> = BTreeMap::new();
    let mut suite = Runner { target, options, verdicts: &mut verdicts };
    let deadline = target.deadline;
    suite.one("DPS-TLS-001", deadline * 2, probes::tls::plain_mqtt_refused(target)).await;
    suite.one("DPS-TLS-002", deadline * 2, probes::tls::plain_port_not_served(target)).await;
    suite.one("DPS-TLS-003", deadline * 2, probes::tls::tls12_negotiated(target)).await;
    suite.one("DPS-TLS-004", deadline * 3, probes::tls::old_tls_refused(target)).await;
    suite.one("DPS-TLS-005", deadline * 2, probes::tls::tls13_alone_refused(target)).await;
    suite.lifecycle(deadline * 6).await;
    suite.session(deadline * 5).await;
    suite.one("DPS-MQTT-003", deadline * 3, probes::session::qos2_granted_as_1(target)).await;
    suite.one("DPS-MQTT-006", deadline * 3, probes::session::other_filters_refused(target)).await;
    suite.one("DPS-MQTT-007", deadline * 3, probes::session::wildcard_subtopics_refused(target)).await;
    suite.one("DPS-MQTT-008", deadline * 3, probes::session::undocumented_topic_refused(target)).await;
    suite.one("DPS-AUTH-001", deadline * 4, probes::auth::wrong_signature(target)).await;
    suite.one("DPS-AUTH-002", deadline * 4, probes::auth::expired_token(target)).await;
    suite.one("DPS-AUTH-003", deadline * 4, probes::auth::wrong_scope(target)).await;
    suite.one("DPS-AUTH-004", deadline * 4, probes::auth::client_id_mismatch(target)).await;
    suite.one("DPS-AUTH-005", deadline * 4, probes::auth::x509_cn_mismatch(target)).await;
    suite.one("DPS-FLOW-004", deadline * 8, probes::flow::status_only_forward(target)).await;
    suite.one("DPS-FLOW-006", deadline * 8, probes::flow::every_dialect(target)).await;
    suite.one("DPS-WS-001", deadline * 15, probes::websocket::lifecycle_over_websocket(target)).await;
    suite.one("DPS-WS-002", deadline * 3, probes::websocket::wrong_subprotocol_refused(target)).await;
    // Last: it spends the registration quota.
    let throttle_deadline = deadline * (target.throttle_requests + 2);
    suite.one("DPS-THR-001", throttle_deadline, probes::flow::throttled_with_retry_after(target)).await;

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

struct Runner<'a> {
    target: &'a ProbeTarget,
    options: &'a SuiteOptions,
    verdicts: &'a mut BTreeMap<&'static str, (Verdict, f64)>,
}

impl Runner<'_> {
    /// Whether a probe producing `ids` needs to run at all.
    fn wanted(&self, ids: &[&str]) -> bool {
        let skipped =
            |id: &str| self.options.waivers.contains_key(id) || (self.options.exclude_billable && billable(id));
        ids.iter().any(|id| !skipped(id))
    }

    async fn one(&mut self, id: &'static str, limit: Duration, probe: impl Future<Output = Verdict>) {
        if !self.wanted(&[id]) {
            return;
        }
        let start = Instant::now();
        let verdict = timeout(limit, probe).await.unwrap_or_else(|_| over_time(limit));
        self.verdicts.insert(id, (verdict, start.elapsed().as_secs_f64()));
    }

    async fn lifecycle(&mut self, limit: Duration) {
        let mut ids: Vec<&str> = PassiveCheck::ALL.iter().map(|c| c.id()).collect();
        ids.push("DPS-FLOW-005");
        if !self.wanted(&ids) {
            return;
        }
        let start = Instant::now();
        let (completed, passive) = match timeout(limit, probes::flow::lifecycle(self.target)).await {
            Ok(result) => result,
            Err(_) => (over_time(limit), PassiveCheck::ALL.iter().map(|c| (*c, over_time(limit))).collect()),
        };
        let seconds = start.elapsed().as_secs_f64();
        self.verdicts.insert("DPS-FLOW-005", (completed, seconds));
        for (check, verdict) in passive {
            self.verdicts.insert(check.id(), (verdict, seconds));
        }
    }

    /// The CleanSession 0 probe adds to the lifecycle's SessionPresent finding.
    async fn session(&mut self, limit: Duration) {
        if !self.wanted(&["DPS-MQTT-002"]) {
            return;
        }
        let start = Instant::now();
        let (present, survived) = timeout(limit, probes::session::no_session_survives(self.target))
            .await
            .unwrap_or_else(|_| (over_time(limit), over_time(limit)));
        let seconds = start.elapsed().as_secs_f64();
        self.verdicts.insert("DPS-MQTT-002", (survived, seconds));
        let combined = match (self.verdicts.remove("DPS-MQTT-001"), present) {
            (Some((Verdict::Fail(a), s)), _) => (Verdict::Fail(a), s),
            (_, Verdict::Fail(b)) => (Verdict::Fail(b), seconds),
            (Some((Verdict::Pass(a), s)), Verdict::Pass(b)) => (Verdict::Pass(format!("{a}; {b}")), s + seconds),
            (_, other) => (other, seconds),
        };
        self.verdicts.insert("DPS-MQTT-001", combined);
    }
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
            None if options.exclude_billable && billable(check.id) => {
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
