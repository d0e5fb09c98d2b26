//! The judge shared by every connection of a judging emulator: folds each finished
//! [`ConnectionLog`] into per-check counts with the first registration IDs as evidence, keeps
//! per-client detail for the first few clients that broke a check (the first few clients while
//! none did) and for those named, and follows each
//! registration ID's connection attempts over time for the reconnect check.
//!
//! Sans IO: `now` is an input. One lock, taken twice per connection (at CONNECT and at its end).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::catalogue::{CATALOGUE, ClientCheck, QUICK_RECONNECT_MS};
use super::connection::ConnectionLog;
use super::report::{CheckResult, ClientDetail, ClientReport, Example};

/// Examples kept per check.
pub const EXAMPLES: usize = 5;
/// Clients whose detail is kept without being named (those that broke checks first).
pub const DETAILED_CLIENTS: usize = 5;
/// Evidence lines kept per detailed client.
const DETAIL_LINES: usize = 20;
/// Registration IDs followed for reconnects before the oldest are forgotten.
const FOLLOWED_LIMIT: usize = 200_000;
/// A failed connection older than this no longer counts towards a tight loop.
const FOLLOW_WINDOW: Duration = Duration::from_secs(600);

/// What the judge needs from the emulator's configuration.
#[derive(Debug, Clone, Default)]
pub struct JudgeConfig {
    /// Registration IDs whose every connection is detailed (`--client-detail`).
    pub detail: Vec<String>,
}

/// The counts of one check.
#[derive(Debug, Clone, Default)]
struct Counts {
    judged: u64,
    violations: u64,
    examples: Vec<Example>,
}

/// A registration ID's recent failed connections.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    /// When its last failed connection ended.
    failed_at: Instant,
    /// Quick reconnects in a row after failed connections.
    quick_in_a_row: u32,
}

#[derive(Debug)]
struct State {
    /// By [`ClientCheck::index`].
    counts: Vec<Counts>,
    details: BTreeMap<String, ClientDetail>,
    followed: HashMap<String, Attempts>,
    /// Connections judged (those that sent CONNECT).
    connections: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            counts: vec![Counts::default(); CATALOGUE.len()],
            details: BTreeMap::new(),
            followed: HashMap::new(),
            connections: 0,
        }
    }
}

/// The judge of a judging emulator.
#[derive(Debug, Default)]
pub struct Judge {
    config: JudgeConfig,
    state: Mutex<State>,
    /// Client connections that sent CONNECT and ended, readable without the lock
    /// (`--exit-after`); a connection check (a run's preflight) is not one.
    finished: AtomicU64,
}

impl Judge {
    pub fn new(mut config: JudgeConfig) -> Self {
        config.detail.iter_mut().for_each(|id| *id = id.to_ascii_lowercase());
        Self { config, ..Self::default() }
    }

    /// Client connections judged and finished so far, connection checks left out
    /// ([`ConnectionLog::connection_check`]).
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Counts are whole after every update, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A CONNECT from `log`'s registration ID at `now`: judges the reconnect check when its
    /// last connection failed.
    pub fn connection_attempt(&self, log: &mut ConnectionLog, now: Instant) {
        let Some(id) = log.registration_id().map(str::to_ascii_lowercase) else { return };
        let mut state = self.lock();
        let Some(attempts) = state.followed.get_mut(&id) else { return };
        let since = now.saturating_duration_since(attempts.failed_at);
        if since > FOLLOW_WINDOW {
            state.followed.remove(&id);
            return;
        }
        let quick = since < Duration::from_millis(QUICK_RECONNECT_MS);
        attempts.quick_in_a_row = if quick { attempts.quick_in_a_row + 1 } else { 0 };
        let in_a_row = attempts.quick_in_a_row;
        drop(state);
        log.verdict(ClientCheck::ReconnectBackoff, in_a_row < 2, || {
            format!(
                "reconnected {} ms after a failed connection, the {in_a_row}th quick reconnect in a row",
                since.as_millis()
            )
        });
    }

    /// A connection that refused its TLS handshake because the device offered no TLS 1.2.
    pub fn tls_refused(&self, evidence: String) {
        let mut state = self.lock();
        let counts = &mut state.counts[ClientCheck::Tls12.index()];
        counts.judged += 1;
        counts.violations += 1;
        if counts.examples.len() < EXAMPLES {
            counts.examples.push(Example { registration_id: None, evidence });
        }
    }

    /// Folds a finished connection in.
    pub fn finish(&self, log: ConnectionLog, now: Instant) {
        let Some(id) = log.registration_id.clone() else { return };
        let canonical = id.to_ascii_lowercase();
        let mut state = self.lock();
        state.connections += 1;
        for check in ClientCheck::ALL {
            if log.judged(check) {
                let counts = &mut state.counts[check.index()];
                counts.judged += 1;
                if log.broke(check) {
                    counts.violations += 1;
                    if counts.examples.len() < EXAMPLES {
                        let evidence = evidence_of(&log, check);
                        counts.examples.push(Example { registration_id: Some(id.clone()), evidence });
                    }
                }
            }
        }
        if self.keeps_detail(&mut state, &canonical, &log) {
            let detail = state.details.entry(canonical.clone()).or_insert_with(|| ClientDetail::new(&id));
            add_connection(detail, &log, DETAIL_LINES);
        }
        if log.final_sent {
            state.followed.remove(&canonical);
        } else {
            if state.followed.len() >= FOLLOWED_LIMIT {
                state.followed.retain(|_, a| now.saturating_duration_since(a.failed_at) < FOLLOW_WINDOW);
            }
            let quick_in_a_row = state.followed.get(&canonical).map_or(0, |a| a.quick_in_a_row);
            state.followed.insert(canonical, Attempts { failed_at: now, quick_in_a_row });
        }
        drop(state);
        if !log.connection_check() {
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the connection of `canonical` goes into the per-client detail: a named client's
    /// always, and a client already detailed; otherwise a client that broke a check takes the
    /// place of one detailed while it broke nothing, and one that broke nothing takes only a free
    /// place. So the detail holds the clients that broke checks, not merely the first to come.
    fn keeps_detail(&self, state: &mut State, canonical: &str, log: &ConnectionLog) -> bool {
        if self.config.detail.iter().any(|id| id == canonical) || state.details.contains_key(canonical) {
            return true;
        }
        let unnamed = |id: &String| !self.config.detail.contains(id);
        if state.details.keys().filter(|id| unnamed(id)).count() < DETAILED_CLIENTS {
            return true;
        }
        if !ClientCheck::ALL.into_iter().any(|check| log.broke(check)) {
            return false;
        }
        let clean = state.details.iter().find(|(id, d)| unnamed(id) && d.broken.is_empty()).map(|(id, _)| id.clone());
        clean.is_some_and(|id| state.details.remove(&id).is_some())
    }

    /// The report so far.
    pub fn report(&self) -> ClientReport {
        let state = self.lock();
        let checks = CATALOGUE
            .iter()
            .map(|entry| {
                let counts = &state.counts[entry.check.index()];
                CheckResult::new(entry, counts.judged, counts.violations, counts.examples.clone())
            })
            .collect();
        let clients = state.details.values().cloned().collect::<Vec<_>>();
        let missing = self.config.detail.iter().filter(|id| !state.details.contains_key(*id)).cloned().collect();
        ClientReport::new(state.connections, checks, clients, missing)
    }
}

/// The evidence `log` holds for `check`.
fn evidence_of(log: &ConnectionLog, check: ClientCheck) -> String {
    log.evidence.iter().find(|(c, _)| *c == check).map(|(_, e)| e.clone()).unwrap_or_default()
}

/// Adds one of a client's connections to its detail, keeping at most `lines` lines of evidence.
fn add_connection(detail: &mut ClientDetail, log: &ConnectionLog, lines: usize) {
    detail.connections += 1;
    for check in ClientCheck::ALL {
        let id = check.id().to_string();
        if log.broke(check) {
            detail.passed.retain(|p| *p != id);
            if !detail.broken.contains(&id) {
                detail.broken.push(id);
            }
            if detail.evidence.len() < lines {
                let evidence = format!("{}: {}", check.id(), evidence_of(log, check));
                detail.evidence.push(Example { registration_id: Some(detail.registration_id.clone()), evidence });
            }
        } else if log.judged(check) && !detail.broken.contains(&id) && !detail.passed.contains(&id) {
            detail.passed.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::v4::Connect;

    use super::*;
    use crate::emulator::client_checks::{ConnectContext, ConnectFacts, Ending};

    /// A connection of `id` at `at` that ends (as the emulator refusing it) without a final status.
    fn failed_connection(judge: &Judge, id: &str, at: Instant) {
        let mut log = ConnectionLog::new(Some(true));
        let context = ConnectContext {
            id_scope: "0ne00UNIT01",
            certificate_cn: None,
            x509: true,
            individual: &|_| false,
            now_unix: 0,
        };
        log.connect(&ConnectFacts::parse(&Connect::new(id), context));
        judge.connection_attempt(&mut log, at);
        log.end(Ending::Emulator);
        judge.finish(log, at);
    }

    /// A connection of `id` that presents a certificate whose CN is `cn` (the registration ID's
    /// own breaks nothing), registers when `registers`, and ends as `ending`.
    fn connection(judge: &Judge, id: &str, cn: &str, registers: bool, ending: Ending) {
        let mut log = ConnectionLog::new(Some(true));
        let context = ConnectContext {
            id_scope: "0ne00UNIT01",
            certificate_cn: Some(cn),
            x509: true,
            individual: &|_| false,
            now_unix: 0,
        };
        let mut connect = Connect::new(id);
        let username = format!("0ne00UNIT01/registrations/{id}/api-version=2019-03-31");
        connect.login = Some(rumqttc::mqttbytes::v4::Login::new(username, ""));
        log.connect(&ConnectFacts::parse(&connect, context));
        let now = Instant::now();
        judge.connection_attempt(&mut log, now);
        if registers {
            log.subscribe(std::iter::once(crate::topics::RESPONSE_FILTER));
            let body = format!("{{\"registrationId\":\"{id}\"}}");
            log.request(&crate::topics::register_topic("1"), body.as_bytes(), now, || None);
        }
        log.end(ending);
        judge.finish(log, now);
    }

    #[test]
    fn the_detail_holds_the_clients_that_broke_checks_not_the_first_to_come() {
        let judge = Judge::new(JudgeConfig::default());
        for n in 0..10 {
            let id = format!("good-{n}");
            connection(&judge, &id, &id, true, Ending::Disconnect);
        }
        for n in 0..3 {
            connection(&judge, &format!("bad-{n}"), "someone-else", true, Ending::Disconnect);
        }
        let report = judge.report();
        let detailed: Vec<&str> = report.clients.iter().map(|c| c.registration_id.as_str()).collect();
        assert_eq!(detailed.len(), DETAILED_CLIENTS, "{detailed:?}");
        for n in 0..3 {
            let client = report.clients.iter().find(|c| c.registration_id == format!("bad-{n}"));
            let client = client.unwrap_or_else(|| panic!("bad-{n} is not detailed: {detailed:?}"));
            assert_eq!(client.broken, ["DPS-CLIENT-AUTH-005"], "{client:?}");
        }
        // While no client broke a check, the first few are detailed.
        let clean = Judge::new(JudgeConfig::default());
        for n in 0..10 {
            let id = format!("good-{n}");
            connection(&clean, &id, &id, true, Ending::Disconnect);
        }
        assert_eq!(clean.report().clients.len(), DETAILED_CLIENTS);
    }

    #[test]
    fn exit_after_counts_client_connections_not_a_connection_check() {
        let judge = Judge::new(JudgeConfig::default());
        // A run's preflight: CONNECT, then DISCONNECT with nothing between.
        connection(&judge, "dev-0", "dev-0", false, Ending::Disconnect);
        assert_eq!(judge.finished(), 0);
        assert_eq!(judge.report().connections, 1, "it is judged all the same");
        // A device that registers, and one the emulator refused (or that dropped) are clients.
        connection(&judge, "dev-0", "dev-0", true, Ending::Disconnect);
        connection(&judge, "dev-1", "dev-1", false, Ending::Emulator);
        connection(&judge, "dev-2", "dev-2", false, Ending::Dropped);
        assert_eq!(judge.finished(), 3);
    }

    fn reconnect(judge: &Judge) -> super::super::report::CheckResult {
        judge.report().check(ClientCheck::ReconnectBackoff).clone()
    }

    #[test]
    fn one_quick_reconnect_is_allowed_two_in_a_row_are_a_tight_loop() {
        let judge = Judge::new(JudgeConfig::default());
        let start = Instant::now();
        // Backing off: at once, then 2 s, 4 s.
        for at in [0, 100, 2_100, 6_100] {
            failed_connection(&judge, "patient", start + Duration::from_millis(at));
        }
        let result = reconnect(&judge);
        assert_eq!((result.judged, result.violations), (3, 0));
        // A tight loop: three reconnects 10 ms apart.
        for at in [0, 10, 20, 30] {
            failed_connection(&judge, "storm", start + Duration::from_millis(at));
        }
        let result = reconnect(&judge);
        assert_eq!((result.judged, result.violations), (6, 2));
        assert_eq!(result.examples[0].registration_id.as_deref(), Some("storm"));
        assert!(result.examples[0].evidence.contains("10 ms after"), "{:?}", result.examples);
    }

    #[test]
    fn a_fleet_is_aggregated_with_capped_examples_and_detail_for_the_first_and_the_named() {
        let judge = Judge::new(JudgeConfig { detail: vec!["Dev-0042".into(), "absent".into()] });
        let start = Instant::now();
        for n in 0..100 {
            failed_connection(&judge, &format!("dev-{n:04}"), start);
        }
        let report = judge.report();
        assert_eq!(report.connections, 100);
        let cn = report.check(ClientCheck::CertificateCn);
        assert_eq!((cn.judged, cn.violations, cn.examples.len()), (100, 100, EXAMPLES));
        let detailed: Vec<&str> = report.clients.iter().map(|c| c.registration_id.as_str()).collect();
        assert_eq!(detailed.len(), DETAILED_CLIENTS + 1, "{detailed:?}");
        assert!(detailed.contains(&"dev-0042"), "{detailed:?}");
        assert_eq!(report.named_but_unseen, ["absent"]);
        assert!(report.must_broken);
        assert_eq!(judge.finished(), 100);
    }
}
