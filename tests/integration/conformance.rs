//! The conformance suite against the real emulator: the unmodified emulator passes the whole
//! catalogue, and each deliberate deviation fails exactly the checks the catalogue says it fails
//! (`Check::failed_by`), and no others.

use std::collections::BTreeSet;
use std::time::Duration;

use dpsbench::conformance::catalogue;
use dpsbench::conformance::probes::ProbeTarget;
use dpsbench::conformance::suite::{ConformanceReport, Status, SuiteOptions, run_suite};
use dpsbench::credentials::{IdScope, SymmetricKey};
use dpsbench::emulator::config::QuotaConfig;
use dpsbench::emulator::deviations::Deviation;
use dpsbench::emulator::{self, Deviations, ServiceConfig, ServiceStats};

use crate::support::ports::unserved_port;

/// An emulator with one group and the probe target that reaches it (and the emulator, to stop).
fn emulator_and_target(deviations: Deviations) -> (emulator::LoopbackEmulator, ProbeTarget) {
    let scope = IdScope::new("0ne00CONF01").unwrap();
    let key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(scope.clone(), vec!["hub-a.example".into()], key.clone());
    config.assign_delay = Duration::ZERO;
    config.deviations = deviations;
    let started = emulator::start_on_loopback(config).unwrap();
    let target = ProbeTarget {
        address: started.handle.address,
        ws_address: None,
        server_name: "localhost".try_into().unwrap(),
        roots: std::sync::Arc::new(started.roots.clone()),
        id_scope: scope,
        group_key: key,
        plain_port: unserved_port().1,
        prefix: "conf".into(),
        deadline: Duration::from_secs(2),
        throttle_requests: 25,
        x509: None,
        issuer_ca: None,
    };
    (started, target)
}

/// MQTT 3.1.1 §3.1.4: a second connection with the same client ID closes the first, in any
/// casing of the registration ID (DPS's registration IDs are case-insensitive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_client_id_closes_the_first() {
    use dpsbench::conformance::probes::Answer;
    let (started, target) = emulator_and_target(Deviations::default());
    let id = target.registration_id("twice");
    let password = target.token(&target.id_scope, &id, &target.device_key(&id), 3600);
    let mut first = target.open().await.unwrap();
    let connack =
        first.connect(target.connect_packet(id.as_str(), &target.id_scope, id.as_str(), &password, true)).await;
    assert_eq!(connack.unwrap().code as u8, 0);
    let other = target.registration_id("other");
    let other_password = target.token(&target.id_scope, &other, &target.device_key(&other), 3600);
    let mut bystander = target.open().await.unwrap();
    let packet = target.connect_packet(other.as_str(), &target.id_scope, other.as_str(), &other_password, true);
    assert_eq!(bystander.connect(packet).await.unwrap().code as u8, 0);

    let upper = id.as_str().to_ascii_uppercase();
    let mut second = target.open().await.unwrap();
    let packet = target.connect_packet(&upper, &target.id_scope, &upper, &password, true);
    assert_eq!(second.connect(packet).await.unwrap().code as u8, 0, "the same device in another casing");
    assert!(matches!(first.reply(Duration::from_secs(2)).await, Answer::Closed), "the first connection is closed");
    assert!(matches!(bystander.reply(Duration::from_millis(300)).await, Answer::Silent), "others stay open");
    assert_eq!(started.handle.service.live_clients(), 2);
    started.handle.stop().await;
}

/// Runs the suite against an emulator with `deviations`. The plain port probed is the one the
/// emulator serves under `plain_listen`, or else a port nobody serves.
async fn suite(deviations: Deviations, options: SuiteOptions) -> (ConformanceReport, u64) {
    let scope = IdScope::new("0ne00CONF01").unwrap();
    let key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(scope.clone(), vec!["hub-a.example".into()], key.clone());
    config.assign_delay = Duration::ZERO;
    config.quota = Some(QuotaConfig { registrations_per_minute: 20, operations_per_minute: 6000 });
    config.deviations = deviations;
    let ca = dpsbench::x509::CertificateAuthority::generate().unwrap();
    config.trust_x509_ca("conf-x509", ca.root_pem(), std::path::Path::new("root.pem")).unwrap();
    let issuer_ca = config.issue_for_every_enrollment().unwrap();
    let mut started = emulator::start_on_loopback(config).unwrap();
    let ws_address = started.handle.serve_websocket(emulator::bind("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
    let (_reserved, unserved) = unserved_port();
    let plain_port = started.handle.plain_address.map_or(unserved, |address| address.port());
    let target = ProbeTarget {
        address: started.handle.address,
        ws_address: Some(ws_address),
        server_name: "localhost".try_into().unwrap(),
        roots: std::sync::Arc::new(started.roots.clone()),
        id_scope: scope,
        group_key: key,
        plain_port,
        prefix: "conf".into(),
        deadline: Duration::from_secs(2),
        throttle_requests: 25,
        x509: Some(std::sync::Arc::new(ca)),
        issuer_ca: Some(issuer_ca),
    };
    let report = run_suite(&target, &options).await;
    let registrations = ServiceStats::get(&started.handle.service.stats.registrations);
    started.handle.stop().await;
    (report, registrations)
}

fn with_status(report: &ConformanceReport, status: Status) -> BTreeSet<String> {
    report.results.iter().filter(|r| r.status == status).map(|r| r.check.id.clone()).collect()
}

async fn failures_with(deviations: Deviations) -> BTreeSet<String> {
    let (report, _) = suite(deviations, SuiteOptions::default()).await;
    for result in report.results.iter().filter(|r| r.status == Status::Fail) {
        assert!(!result.evidence.is_empty(), "{} failed without evidence", result.check.id);
    }
    with_status(&report, Status::Fail)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// What the catalogue says `deviation` fails.
fn failed_by(deviation: &str) -> BTreeSet<String> {
    let switch = Deviation::parse(deviation).unwrap_or_else(|| panic!("{deviation} is no switch of the emulator"));
    let expected = set(&catalogue::failed_by(switch));
    assert!(!expected.is_empty(), "the catalogue names no check that {deviation} fails");
    expected
}

/// Serves plain MQTT on a port of its own, as on 1883.
fn plain_listen() -> Deviations {
    Deviations { plain_listen: Some("127.0.0.1:0".parse().unwrap()), ..Deviations::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unmodified_emulator_passes_the_whole_catalogue() {
    let (report, _) = suite(Deviations::default(), SuiteOptions::default()).await;
    let not_passed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| format!("{} {:?}: {}", r.check.id, r.status, r.evidence))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(report.results.len(), dpsbench::conformance::CATALOGUE.len());
    assert_eq!(report.must_failures(), 0);
}

/// One test per switch of the emulator (they run in parallel), each failing exactly the checks
/// the catalogue names for it.
macro_rules! each_deviation_fails_exactly_its_checks {
    ($($field:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $field() {
                let deviations = Deviations { $field: true, ..Deviations::default() };
                assert_eq!(failures_with(deviations).await, failed_by(stringify!($field)));
            }
        )+

        /// The switches tested above.
        const SWITCHES_TESTED: &[&str] = &[$(stringify!($field)),+];
    };
}

each_deviation_fails_exactly_its_checks!(
    accept_plain_mqtt,
    session_present,
    keep_subscriptions,
    grant_qos2,
    reply_qos0,
    reply_before_puback,
    accept_other_filters,
    accept_undocumented_topics,
    wrong_rid,
    rid_not_first,
    omit_retry_after,
    change_operation_id,
    status_backwards,
    // A final body SDKs reject breaks the flow itself, over MQTT and over WebSocket alike.
    incomplete_assignment,
    unassigned_final,
    accept_any_password,
    accept_client_id_mismatch,
    accept_any_subprotocol,
    accept_cn_mismatch,
    accept_expired_tokens,
    accept_any_scope,
    accept_tls13,
    answer_old_tls,
    reply_topic_without_slash,
    register_answered_201,
    poll_done_201,
    refuse_tls12,
    case_sensitive_subprotocol,
    refuse_unencoded_sr,
    accept_mqtt5,
    ignore_unsubscribe,
    case_sensitive_sig,
    reply_at_requested_qos,
    trust_sr_device,
    retry_after_zero,
    refuse_preview_api_version,
    omit_issued_chain,
    chain_without_csr,
    issued_chain_reversed,
    issue_for_other_key,
    issue_wrong_cn,
    issue_long_validity,
    accept_bad_csr,
    issue_from_other_ca,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_plain_mqtt_on_the_plain_port_fails_only_that_check() {
    assert_eq!(failures_with(plain_listen()).await, failed_by("plain_listen"));
}

#[test]
fn every_deviation_the_catalogue_names_has_its_test() {
    let tested: BTreeSet<&str> = SWITCHES_TESTED.iter().copied().chain(["plain_listen"]).collect();
    let named: BTreeSet<&str> = catalogue::deviations().into_iter().map(Deviation::name).collect();
    assert_eq!(tested, named);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waivers_and_the_billable_exclusion_skip_probes_and_say_why() {
    let options = SuiteOptions {
        waivers: [("DPS-TLS-002".to_string(), "the lab gateway serves 1883".to_string())].into(),
        exclude_billable: true,
    };
    // Even a target that serves plain MQTT on the plain port passes: that check is waived.
    let (report, registrations) = suite(plain_listen(), options).await;
    assert_eq!(registrations, 0, "billable probes did not run");
    assert_eq!(with_status(&report, Status::Waived), set(&["DPS-TLS-002"]));
    let waived = report.results.iter().find(|r| r.check.id == "DPS-TLS-002").unwrap();
    assert_eq!(waived.evidence, "waived: the lab gateway serves 1883");
    let skipped = with_status(&report, Status::Skipped);
    for billable in
        ["DPS-FLOW-005", "DPS-MQTT-002", "DPS-FLOW-004", "DPS-THR-001", "DPS-TOPIC-002", "DPS-BODY-001", "DPS-WS-001"]
    {
        assert!(skipped.contains(billable), "{billable} not skipped: {skipped:?}");
    }
    assert_eq!(with_status(&report, Status::Fail), BTreeSet::new());
    assert!(with_status(&report, Status::Pass).contains("DPS-AUTH-001"), "non-billable probes still run");
}

/// A target that refuses TLS 1.2 fails the TLS checks, and every check that needs a TLS 1.2
/// connection is inconclusive, blocked by DPS-TLS-003, rather than failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_a_refused_handshake_keeps_from_running_are_inconclusive_not_failed() {
    let deviations = Deviations { refuse_tls12: true, ..Deviations::default() };
    let (report, _) = suite(deviations, SuiteOptions::default()).await;
    assert_eq!(with_status(&report, Status::Fail), failed_by("refuse_tls12"));
    let inconclusive: Vec<_> = report.results.iter().filter(|r| r.status == Status::Inconclusive).collect();
    assert!(inconclusive.len() >= 20, "most checks need a TLS 1.2 connection: {inconclusive:#?}");
    for result in &inconclusive {
        let blocker = result.blocked_by.as_deref().unwrap_or_default();
        assert!(blocker.contains("DPS-TLS-003"), "{} blocked by {blocker:?}", result.check.id);
    }
    assert!(report.must_failures() > 0);
}

/// Issue 35: evidence says a value plainly: the refused CSR's errorCode is `400302`, and no
/// evidence of the whole suite shows Rust's `Some(…)` or `None`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_35_evidence_says_values_plainly_without_some() {
    let (report, _) = suite(Deviations::default(), SuiteOptions::default()).await;
    let refused = report.results.iter().find(|r| r.check.id == "DPS-CERT-008").expect("DPS-CERT-008 is judged");
    assert_eq!(refused.evidence, "the registration ended failed, errorCode 400302");
    for result in &report.results {
        let evidence = &result.evidence;
        assert!(!evidence.contains("Some(") && !evidence.contains("None"), "{}: {evidence}", result.check.id);
    }
}
