//! Certificate issuance at registration (api-version 2025-07-01-preview) against the real
//! emulator: devices send a CSR over TLS and WebSocket, with symmetric-key and X.509 onboarding,
//! and check the chain they get; the emulator refuses bad CSRs with its documented codes and
//! ignores a CSR sent to an enrollment that does not issue; a scenario run and the standalone
//! emulator (with `--issuer-ca-out`) count what they issued.

use std::sync::Arc;

use dpsbench::certificates::{
    CertificateOutcome, CertificateRequest, ChainFailure, ISSUANCE_API_VERSION, KeyType, register_body_with_csr,
};
use dpsbench::credentials::RegistrationId;
use dpsbench::device::driver::{never_abort, now};
use dpsbench::device::{DeviceIdentity, FailureKind, FlowReport, FlowSettings, Outcome, Target, run_device};
use dpsbench::emulator::ServiceConfig;
use dpsbench::emulator::issuance::{CsrRefusal, Enrollment, IssuePolicy, IssuingCa};
use serde_json::Value;

use crate::support::binary::{dpsbench, spawn_emulator_with, temp_dir, text, write};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;
use crate::support::*;

/// The group `default` of [`start_emulator`] issues for `days`, signed by `ca`.
fn issuing(ca: &Arc<IssuingCa>, days: u32) -> impl FnOnce(&mut ServiceConfig) + '_ {
    move |config| {
        config.issuance.ca = Some(ca.clone());
        config.issuance.policies.push((Enrollment::Group("default".into()), IssuePolicy { validity_days: days }));
    }
}

/// `identity`, sending a CSR for a key of `key` named `common_name`.
fn with_csr(mut identity: DeviceIdentity, key: KeyType, common_name: &str) -> DeviceIdentity {
    let request = CertificateRequest::generate(key, common_name).unwrap();
    identity.register_body = register_body_with_csr(&identity.register_body, &request.csr_base64);
    identity.certificate_request = Some(Arc::new(request));
    identity
}

/// Preview settings that check chains against `issuer`.
fn preview(issuer: Option<&IssuingCa>) -> Arc<FlowSettings> {
    let mut settings = (*quick_settings()).clone();
    settings.api_version = ISSUANCE_API_VERSION.into();
    settings.certificate_issuer = issuer.map(|ca| ca.certificate_der().clone());
    Arc::new(settings)
}

async fn run(target: &Target, settings: &Arc<FlowSettings>, identity: DeviceIdentity) -> FlowReport {
    run_device(target, settings.clone(), identity, now(), never_abort()).await
}

#[tokio::test]
async fn a_symmetric_key_device_gets_a_chain_that_verifies_and_bad_csrs_are_refused() {
    let ca = Arc::new(IssuingCa::generate().unwrap());
    let emulator = start_emulator(issuing(&ca, 30));
    let settings = preview(Some(&ca));
    let key = &emulator.group_key;
    for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384] {
        let report = run(&emulator.target, &settings, with_csr(device(key, "cert-1"), key_type, "cert-1")).await;
        assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{key_type:?}: {:?}", report.outcome);
        assert_eq!(report.certificate, Some(CertificateOutcome::Verified));
    }
    // A device asking for nothing gets nothing, and is not judged.
    let plain = run(&emulator.target, &settings, device(key, "cert-plain")).await;
    assert!(matches!(plain.outcome, Outcome::Assigned { .. }));
    assert_eq!(plain.certificate, None);
    // The emulator's refusals: failed registrations with the codes it documents.
    for (identity, refusal) in [
        (with_csr(device(key, "cert-2"), KeyType::EcdsaP256, "someone-else"), CsrRefusal::CommonName),
        (with_csr(device(key, "cert-3"), KeyType::Ed25519, "cert-3"), CsrRefusal::UnsupportedKey),
        (
            DeviceIdentity {
                register_body: br#"{"registrationId":"cert-4","csr":"bm90IGEgQ1NS"}"#.as_slice().into(),
                ..with_csr(device(key, "cert-4"), KeyType::EcdsaP256, "cert-4")
            },
            CsrRefusal::Malformed,
        ),
    ] {
        let report = run(&emulator.target, &settings, identity).await;
        assert_eq!(report.outcome, Outcome::Failed(FailureKind::RegistrationFailed(Some(refusal.error_code()))));
        assert_eq!(report.certificate, Some(CertificateOutcome::Requested), "sent, never judged");
    }
    // Checked against another CA, the same good chain is refused by the device.
    let stranger = IssuingCa::generate().unwrap();
    let report =
        run(&emulator.target, &preview(Some(&stranger)), with_csr(device(key, "cert-5"), KeyType::EcdsaP256, "cert-5"))
            .await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Certificate(ChainFailure::Untrusted)));
    assert_eq!(report.timings.assigned, None, "a device whose chain fails is not timed as assigned");
    let stats = &emulator.handle.service.stats;
    let get = dpsbench::emulator::ServiceStats::get;
    assert_eq!((get(&stats.certificates_issued), get(&stats.certificates_refused)), (3, 3));
    // Assigned by the emulator: the two good chains, the plain device and the chain the device
    // then refused; never the three refused CSRs, whose registrations failed.
    assert_eq!(get(&stats.assigned), 4);
}

#[tokio::test]
async fn a_csr_to_an_enrollment_that_does_not_issue_is_ignored() {
    let ca = Arc::new(IssuingCa::generate().unwrap());
    // A CA, but only another group issues.
    let emulator = start_emulator(|config| {
        config.issuance.ca = Some(ca.clone());
        config.issuance.policies.push((Enrollment::Group("elsewhere".into()), IssuePolicy::default()));
    });
    let identity = with_csr(device(&emulator.group_key, "ignored-1"), KeyType::EcdsaP256, "ignored-1");
    let report = run(&emulator.target, &preview(Some(&ca)), identity).await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Certificate(ChainFailure::Missing)));
    assert_eq!(report.certificate, Some(CertificateOutcome::Failed(ChainFailure::Missing)));
    assert_eq!(dpsbench::emulator::ServiceStats::get(&emulator.handle.service.stats.certificates_issued), 0);
}

#[tokio::test]
async fn x509_onboarding_and_websocket_get_verified_chains() {
    let ca = Arc::new(IssuingCa::generate().unwrap());
    let onboarding = dpsbench::x509::CertificateAuthority::generate().unwrap();
    let mut emulator = start_emulator(|config| {
        config.trust_x509_ca("x509-fleet", onboarding.root_pem(), std::path::Path::new("root.pem")).unwrap();
        issuing(&ca, 7)(config);
        config.issuance.policies.push((Enrollment::Group("x509-fleet".into()), IssuePolicy { validity_days: 7 }));
    });
    let settings = preview(Some(&ca));
    // X.509 onboarding: the device's certificate in the handshake, the CSR in the body.
    let id = RegistrationId::new("x509-cert-1").unwrap();
    let certificate = onboarding.mint(&id).unwrap();
    let roots = dpsbench::tls::roots_from_pem(emulator.ca_pem.as_bytes(), std::path::Path::new("ca.pem")).unwrap();
    let client_tls = dpsbench::tls::client_config_with_certificate(
        roots,
        dpsbench::tls::TlsVersions::Tls12Only,
        certificate.chain.clone(),
        certificate.key(),
    )
    .unwrap();
    let x509 = DeviceIdentity {
        password: None,
        client_tls: Some(client_tls),
        ..with_csr(device(&emulator.group_key, "x509-cert-1"), KeyType::EcdsaP256, "x509-cert-1")
    };
    let report = run(&emulator.target, &settings, x509).await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    assert_eq!(report.certificate, Some(CertificateOutcome::Verified));
    // Symmetric key over WebSocket.
    let listener = dpsbench::emulator::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let ws_target = Target {
        address: emulator.handle.serve_websocket(listener).unwrap(),
        transport: dpsbench::device::Transport::WebSocket {
            path: "/$iothub/websocket".into(),
            subprotocol: "mqtt".into(),
        },
        ..emulator.target.clone()
    };
    let identity = with_csr(device(&emulator.group_key, "ws-cert-1"), KeyType::EcdsaP256, "ws-cert-1");
    let report = run(&ws_target, &settings, identity).await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    assert_eq!(report.certificate, Some(CertificateOutcome::Verified));
}

#[test]
fn an_embedded_run_with_issuance_counts_verified_certificates() {
    let dir = temp_dir("issuance-run");
    let issuing = Scenario::embedded("issue")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 10)
        .target("issue_certificates", true)
        .devices(60)
        .device("registration_id", "issued-{index:03}")
        .device("request_certificate", true)
        .rate(300.0)
        .run("max_schedule_lag_p99_ms", 5000);
    let scenario = issuing.write(&dir, "issue.toml");
    let out = dir.join("out");
    let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(run.status.code(), Some(0), "{}\n{}", text(&run.stdout), text(&run.stderr));
    let summary = read_summary(&out);
    assert_eq!(summary["devices"]["assigned"], 60);
    let certificates = &summary["certificates"];
    assert_eq!(
        (&certificates["requested"], &certificates["issued"], &certificates["verified"]),
        (&60.into(), &60.into(), &60.into())
    );
    let schema: Value = serde_json::from_slice(&std::fs::read("reports/summary.schema.json").unwrap()).unwrap();
    crate::support::schema::check_schema(&schema, &summary, "summary");
    assert!(text(&run.stdout).contains("certificates: 60 requested, 60 issued, 60 verified"), "{}", text(&run.stdout));
    // The reports a person reads say it too.
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("| certificates | 60 requested, 60 issued, 60 verified |"), "{markdown}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<p>certificates: 60 requested, 60 issued, 60 verified</p>"), "report.html lacks the line");

    // Without issuance at the target, every device misses its chain: a failure of its own kind.
    let no_issue = issuing.clone().remove("target.issue_certificates").write(&dir, "none.toml");
    let out = dir.join("out-none");
    let run = dpsbench(&["run", no_issue.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let summary = read_summary(&out);
    assert_eq!(summary["failures"]["certificate_missing"], 60);
    assert_eq!(summary["certificates"]["failures"]["missing"], 60);
    let reason = summary["failure_reasons"]["certificate_missing"]["reason"].as_str().unwrap();
    assert!(reason.contains("without an issued certificate chain") && !reason.contains('\n'), "{reason}");

    // A personality whose SDK has no preview support is refused, naming the field.
    let csharp = issuing.device("personality", "csharp").write(&dir, "csharp.toml");
    let run = dpsbench(&["run", csharp.to_str().unwrap(), "--dry-run"], &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        text(&run.stderr).contains("devices.request_certificate") && text(&run.stderr).contains("csharp"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn the_standalone_emulator_issues_and_writes_its_issuer_ca() {
    let dir = temp_dir("issuance-emulator");
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00TEST03\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 0\nassign_delay_ms = 5\n\
             issue_delay_ms = [1, 3]\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{}\"\n\
             issue_certificates = {{ validity_days = 30 }}\n",
            crate::support::binary::TV1_GROUP_KEY
        ),
    );
    let (ca, issuer) = (dir.join("ca.pem"), dir.join("issuer.pem"));
    let (mut emulator, port) = spawn_emulator_with(&config, &ca, &["--issuer-ca-out", issuer.to_str().unwrap()]);
    let scenario = Scenario::dps("remote-issue", "127.0.0.1", "0ne00TEST03")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .target("issuer_ca_certificate", "issuer.pem")
        .devices(30)
        .device("registration_id", "remote-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .device("request_certificate", true)
        .rate(300.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "remote.toml");
    let out = dir.join("out");
    let run = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[("BENCH_KEY", crate::support::binary::TV1_GROUP_KEY)],
    );
    assert_eq!(run.status.code(), Some(0), "{}\n{}", text(&run.stdout), text(&run.stderr));
    let summary = read_summary(&out);
    assert_eq!(summary["certificates"]["verified"], 30);
    let status = std::process::Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    emulator.wait().unwrap();
    let mut served = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut served).unwrap();
    assert!(served.contains("certificates issued +"), "{served}");
    assert!(served.contains("issued 30 certificates, refused 0 certificate signing requests"), "{served}");
    // A config error names the field.
    let bad = write(
        &dir,
        "bad.toml",
        &std::fs::read_to_string(&config).unwrap().replace("validity_days = 30", "validity_days = 91"),
    );
    let run = dpsbench(&["emulator", "--config", bad.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("enrollment_groups[0].issue_certificates"), "{}", text(&run.stderr));
}

#[test]
fn certs_issuing_writes_an_x509_flow_that_runs_against_the_emulator() {
    let dir = temp_dir("issuance-certs");
    let out = dir.join("ca");
    let made = dpsbench(
        &[
            "certs",
            "--out",
            out.to_str().unwrap(),
            "--count",
            "8",
            "--registration-id",
            "x509-issue-{index:02}",
            "--issuing",
        ],
        &[],
    );
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    assert!(text(&made.stdout).contains("--issuer-ca-out"), "{}", text(&made.stdout));
    let (config, scenario) = (out.join("emulator.toml"), out.join("scenario.toml"));
    let (ca, issuer) = (out.join("ca.pem"), out.join("issuer.pem"));
    let (mut emulator, port) = spawn_emulator_with(&config, &ca, &["--issuer-ca-out", issuer.to_str().unwrap()]);
    // The scenario as written names port 8883; this test's emulator has a free port. A busy
    // test machine may start devices late: the lag gate is not what this test is about.
    let text_of = std::fs::read_to_string(&scenario).unwrap();
    let text_of = text_of.replace("port = 8883", &format!("port = {port}"));
    std::fs::write(&scenario, format!("{text_of}\n[run]\nmax_schedule_lag_p99_ms = 5000\n")).unwrap();
    let report = dir.join("out");
    let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", report.to_str().unwrap()], &[]);
    assert_eq!(run.status.code(), Some(0), "{}\n{}", text(&run.stdout), text(&run.stderr));
    let summary = read_summary(&report);
    assert_eq!((&summary["devices"]["assigned"], &summary["certificates"]["verified"]), (&8.into(), &8.into()));
    let _ = emulator.kill();
    // Run again: the files the user may have edited are kept.
    std::fs::write(&config, "# mine\n").unwrap();
    let again = dpsbench(&["certs", "--out", out.to_str().unwrap(), "--issuing"], &[]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stdout).contains("exists: kept"), "{}", text(&again.stdout));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
}
