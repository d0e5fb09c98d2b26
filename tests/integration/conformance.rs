//! The conformance suite against the real emulator: the unmodified emulator passes the whole
//! catalogue, and each deliberate deviation fails exactly the checks it should, and no others.

use std::collections::BTreeSet;
use std::time::Duration;

use dpsbench::conformance::probes::ProbeTarget;
use dpsbench::conformance::suite::{ConformanceReport, Status, SuiteOptions, run_suite};
use dpsbench::credentials::{IdScope, SymmetricKey};
use dpsbench::emulator::config::QuotaConfig;
use dpsbench::emulator::{self, Deviations, ServiceConfig, ServiceStats};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn suite(deviations: Deviations, plain_port: u16, options: SuiteOptions) -> (ConformanceReport, u64) {
    let scope = IdScope::new("0ne00CONF01").unwrap();
    let key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(scope.clone(), vec!["hub-a.example".into()], key.clone());
    config.retry_after_seconds = 1;
    config.assign_delay = Duration::ZERO;
    config.quota = Some(QuotaConfig { registrations_per_minute: 20, operations_per_minute: 6000 });
    config.deviations = deviations;
    let ca = dpsbench::x509::CertificateAuthority::generate().unwrap();
    let (subject, der) = dpsbench::x509::subject_of(ca.root_pem(), std::path::Path::new("root.pem")).unwrap();
    config.x509_groups.push(dpsbench::emulator::config::X509Group { name: "conf-x509".into(), subject });
    config.client_trust.cas.push(der);
    let mut started = emulator::start_on_loopback(config).unwrap();
    let ws_address = started.handle.serve_websocket(emulator::bind("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
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
    };
    let report = run_suite(&target, &options).await;
    let registrations = ServiceStats::get(&started.handle.service.stats.registrations);
    started.handle.stop().await;
    (report, registrations)
}

fn with_status(report: &ConformanceReport, status: Status) -> BTreeSet<String> {
    report.results.iter().filter(|r| r.status == status).map(|r| r.id.clone()).collect()
}

async fn failures_with(deviations: Deviations) -> BTreeSet<String> {
    let (report, _) = suite(deviations, free_port(), SuiteOptions::default()).await;
    for result in report.results.iter().filter(|r| r.status == Status::Fail) {
        assert!(!result.evidence.is_empty(), "{} failed without evidence", result.id);
    }
    with_status(&report, Status::Fail)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unmodified_emulator_passes_the_whole_catalogue() {
    let (report, _) = suite(Deviations::default(), free_port(), SuiteOptions::default()).await;
    let not_passed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| format!("{} {:?}: {}", r.id, r.status, r.evidence))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(report.results.len(), dpsbench::conformance::CATALOGUE.len());
    assert_eq!(report.must_failures(), 0);
}

macro_rules! deviation_fails_exactly {
    ($name:ident, $field:ident, [$($check:literal),+]) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let deviations = Deviations { $field: true, ..Deviations::default() };
            assert_eq!(failures_with(deviations).await, set(&[$($check),+]));
        }
    };
}

deviation_fails_exactly!(accept_plain_mqtt, accept_plain_mqtt, ["DPS-TLS-001"]);
deviation_fails_exactly!(session_present, session_present, ["DPS-MQTT-001"]);
deviation_fails_exactly!(keep_subscriptions, keep_subscriptions, ["DPS-MQTT-002"]);
deviation_fails_exactly!(grant_qos2, grant_qos2, ["DPS-MQTT-003"]);
deviation_fails_exactly!(reply_qos0, reply_qos0, ["DPS-MQTT-004"]);
deviation_fails_exactly!(reply_before_puback, reply_before_puback, ["DPS-MQTT-005"]);
deviation_fails_exactly!(accept_other_filters, accept_other_filters, ["DPS-MQTT-006", "DPS-MQTT-007"]);
deviation_fails_exactly!(accept_undocumented_topics, accept_undocumented_topics, ["DPS-MQTT-008"]);
deviation_fails_exactly!(wrong_rid, wrong_rid, ["DPS-TOPIC-002"]);
deviation_fails_exactly!(rid_not_first, rid_not_first, ["DPS-TOPIC-003"]);
deviation_fails_exactly!(omit_retry_after, omit_retry_after, ["DPS-TOPIC-004", "DPS-THR-001"]);
deviation_fails_exactly!(change_operation_id, change_operation_id, ["DPS-FLOW-003"]);
deviation_fails_exactly!(status_backwards, status_backwards, ["DPS-FLOW-004"]);
// A final body SDKs reject breaks the flow itself, over MQTT and over WebSocket alike.
deviation_fails_exactly!(
    incomplete_assignment,
    incomplete_assignment,
    ["DPS-BODY-001", "DPS-FLOW-005", "DPS-FLOW-006", "DPS-WS-001"]
);
deviation_fails_exactly!(
    unassigned_final,
    unassigned_final,
    ["DPS-BODY-002", "DPS-FLOW-005", "DPS-FLOW-006", "DPS-WS-001"]
);
deviation_fails_exactly!(accept_any_password, accept_any_password, ["DPS-AUTH-001", "DPS-AUTH-002"]);
deviation_fails_exactly!(accept_client_id_mismatch, accept_client_id_mismatch, ["DPS-AUTH-004"]);
deviation_fails_exactly!(accept_any_subprotocol, accept_any_subprotocol, ["DPS-WS-002"]);
deviation_fails_exactly!(accept_cn_mismatch, accept_cn_mismatch, ["DPS-AUTH-005"]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_plain_mqtt_on_the_plain_port_fails_only_that_check() {
    let port = free_port();
    let deviations =
        Deviations { plain_listen: Some(format!("127.0.0.1:{port}").parse().unwrap()), ..Deviations::default() };
    let (report, _) = suite(deviations, port, SuiteOptions::default()).await;
    assert_eq!(with_status(&report, Status::Fail), set(&["DPS-TLS-002"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waivers_and_the_billable_exclusion_skip_probes_and_say_why() {
    let options = SuiteOptions {
        waivers: [("DPS-TLS-002".to_string(), "the lab gateway serves 1883".to_string())].into(),
        exclude_billable: true,
    };
    // Even a target that serves plain MQTT on the plain port passes: that check is waived.
    let port = free_port();
    let deviations =
        Deviations { plain_listen: Some(format!("127.0.0.1:{port}").parse().unwrap()), ..Deviations::default() };
    let (report, registrations) = suite(deviations, port, options).await;
    assert_eq!(registrations, 0, "billable probes did not run");
    assert_eq!(with_status(&report, Status::Waived), set(&["DPS-TLS-002"]));
    let waived = report.results.iter().find(|r| r.id == "DPS-TLS-002").unwrap();
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
