//! X.509 attestation against the real emulator: devices present their own certificates in the
//! TLS handshake; groups trust a CA, individual enrollments pin a leaf, and the CN must be the
//! registration ID.

use dpsbench::credentials::RegistrationId;
use dpsbench::device::driver::{never_abort, now};
use dpsbench::device::{DeviceIdentity, FailureKind, Outcome, run_device};
use dpsbench::emulator::config::X509Individual;
use dpsbench::tls::{self, TlsVersions};
use dpsbench::x509::{CertificateAuthority, DeviceCertificate, PeerCertificate};

use crate::support::scenario::{Scenario, table};
use crate::support::*;

/// A device that presents `certificate` and claims to be `claimed`.
fn x509_device(emulator: &Emulator, certificate: &DeviceCertificate, claimed: &str) -> DeviceIdentity {
    let roots = tls::roots_from_pem(emulator.ca_pem.as_bytes(), std::path::Path::new("ca.pem")).unwrap();
    let client_tls = tls::client_config_with_certificate(
        roots,
        TlsVersions::Tls12Only,
        certificate.chain.clone(),
        certificate.key(),
    )
    .unwrap();
    let registration_id = RegistrationId::new(claimed).unwrap();
    DeviceIdentity {
        register_body: DeviceIdentity::default_register_body(&registration_id),
        registration_id,
        id_scope: scope(),
        password: None,
        source_address: None,
        personality: Default::default(),
        payload: None,
        client_tls: Some(client_tls),
        certificate_request: None,
    }
}

#[tokio::test]
async fn x509_groups_and_individual_enrollments_with_cn_checks() {
    let group_ca = CertificateAuthority::generate().unwrap();
    let other_ca = CertificateAuthority::generate().unwrap();
    let pinned_id = RegistrationId::new("pinned-1").unwrap();
    let pinned = other_ca.mint(&pinned_id).unwrap();
    let pinned_hash = PeerCertificate::inspect(&pinned.chain).unwrap().sha256;
    let mut emulator = start_emulator(|c| {
        c.trust_x509_ca("x509-fleet", group_ca.root_pem(), std::path::Path::new("root.pem")).unwrap();
        c.x509_individuals.push(X509Individual { registration_id: pinned_id.clone(), sha256: pinned_hash });
        c.client_trust.pinned.push(pinned_hash);
    });
    let settings = quick_settings();
    let run = |identity| {
        let (target, settings) = (emulator.target.clone(), settings.clone());
        async move { run_device(&target, settings, identity, now(), never_abort()).await.outcome }
    };

    // A device of the group: its chain reaches the group's root.
    let member = group_ca.mint(&RegistrationId::new("x509-dev-1").unwrap()).unwrap();
    assert!(matches!(run(x509_device(&emulator, &member, "x509-dev-1")).await, Outcome::Assigned { .. }));
    // Its certificate, but another registration ID: CN mismatch, refused.
    assert_eq!(run(x509_device(&emulator, &member, "x509-dev-2")).await, Outcome::Failed(FailureKind::Refused(5)));
    // The individual enrollment's pinned certificate, from a CA nobody trusts.
    assert!(matches!(run(x509_device(&emulator, &pinned, "pinned-1")).await, Outcome::Assigned { .. }));
    // Another certificate of that untrusted CA: the TLS handshake refuses it.
    let stranger = other_ca.mint(&RegistrationId::new("stranger-1").unwrap()).unwrap();
    assert_eq!(run(x509_device(&emulator, &stranger, "stranger-1")).await, Outcome::Failed(FailureKind::Tls));
    // Symmetric-key devices keep working beside X.509 ones (the certificate is optional).
    assert!(matches!(run(device(&emulator.group_key, "sas-dev-1")).await, Outcome::Assigned { .. }));
    // X.509 over WebSocket: the certificate goes in the TLS handshake under the upgrade.
    let listener = dpsbench::emulator::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let ws_address = emulator.handle.serve_websocket(listener).unwrap();
    let ws_target = dpsbench::device::Target {
        address: ws_address,
        transport: dpsbench::device::Transport::WebSocket { path: "/".into(), subprotocol: "mqtt".into() },
        ..emulator.target.clone()
    };
    let member_ws = group_ca.mint(&RegistrationId::new("x509-ws-1").unwrap()).unwrap();
    let report =
        run_device(&ws_target, settings.clone(), x509_device(&emulator, &member_ws, "x509-ws-1"), now(), never_abort())
            .await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    assert!(report.timings.ws_upgraded.is_some());
    emulator.handle.stop().await;
}

#[test]
fn the_x509_object_reports_the_group_and_the_certificate() {
    let ca = CertificateAuthority::generate().unwrap();
    let leaf = ca.mint(&RegistrationId::new("dev-x").unwrap()).unwrap();
    let peer = PeerCertificate::inspect(&leaf.chain).unwrap();
    assert_eq!(peer.common_name.as_deref(), Some("dev-x"));
    assert_eq!(peer.info["subjectName"], "CN=dev-x");
    assert_eq!(peer.info["sha256Thumbprint"].as_str().unwrap().len(), 64);
    assert!(peer.info["notAfterUtc"].as_str().unwrap().ends_with('Z'));
}

/// `dpsbench certs` makes the CA; a standalone emulator trusts it through
/// `[[enrollment_groups]] ca_certificate = ...`; X.509 devices provision, then again from the
/// certificate cache.
#[test]
fn certs_command_emulator_config_and_x509_runs_work_together() {
    use crate::support::binary::{dpsbench, temp_dir, text, write};
    let dir = temp_dir("x509-run");
    let ca_dir = dir.join("ca");
    let output = dpsbench(
        &["certs", "--out", ca_dir.to_str().unwrap(), "--count", "3", "--registration-id", "cert-{index:02}"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for file in ["root.pem", "intermediate.pem", "devices/cert-00.pem", "devices/cert-02.key"] {
        assert!(ca_dir.join(file).exists(), "{file}");
    }
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00X5091\"\nhubs = [\"hub-x.azure-devices.net\"]\nretry_after_seconds = 0\nassign_delay_ms = 0\n\
             [[enrollment_groups]]\nname = \"x509-fleet\"\nca_certificate = \"{}\"\n",
            ca_dir.join("root.pem").display()
        ),
    );
    let (_emulator, port) = crate::support::binary::spawn_emulator(&config, &dir.join("server-ca.pem"));
    let scenario = Scenario::loopback("x509", port.parse().unwrap(), "0ne00X5091", "server-ca.pem")
        .devices(5)
        .device("registration_id", "cert-{index:02}")
        .device("attestation", "x509")
        .device("x509_ca_dir", "ca")
        .rate(100.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "x509.toml");
    let cached = std::fs::read(ca_dir.join("devices/cert-00.pem")).unwrap();
    for round in 0..2 {
        let out = dir.join(format!("out-{round}"));
        let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
        assert_eq!(run.status.code(), Some(0), "{}\n{}", text(&run.stdout), text(&run.stderr));
    }
    assert_eq!(std::fs::read(ca_dir.join("devices/cert-00.pem")).unwrap(), cached, "minted once, then loaded");
    assert!(ca_dir.join("devices/cert-04.pem").exists(), "the run minted the two certificates `certs` did not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_x509_run_trusts_the_scenarios_ca() {
    let dir = crate::support::binary::temp_dir("x509-embedded");
    let ca = CertificateAuthority::generate().unwrap();
    ca.write(&dir.join("ca")).unwrap();
    let scenario = Scenario::embedded("x509-embedded")
        .target("retry_after_seconds", 0)
        .devices(8)
        .device("attestation", "x509")
        .device("x509_ca_dir", "ca")
        .device("personalities", table([("python", 1.into()), ("c", 1.into())]))
        .rate(200.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "x509.toml");
    let plan = dpsbench::scenario::Plan::load(&scenario, &|_| None).unwrap();
    let (_keep, interrupts) = tokio::sync::watch::channel(0);
    let summary =
        dpsbench::runner::run(&plan, &dpsbench::runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap();
    assert_eq!(summary.results.devices.assigned, 8, "{:?}", summary.results.failures);
    assert_eq!(summary.emulator.unwrap().connects_refused, 0);
}

#[tokio::test(start_paused = true)]
async fn a_device_that_cannot_be_prepared_stops_arrivals_there_with_a_note() {
    // 300 X.509 devices at 50/s: the first 256 are prepared before the clock, the rest as the
    // run goes. Device 280's certificate cannot be cached (a folder stands where its file goes).
    let dir = crate::support::binary::temp_dir("x509-unprepared");
    CertificateAuthority::generate().unwrap().write(&dir.join("ca")).unwrap();
    let scenario = Scenario::embedded("x509-unprepared")
        .target("retry_after_seconds", 0)
        .devices(300)
        .device("attestation", "x509")
        .device("x509_ca_dir", "ca")
        .rate(50.0)
        .run("max_duration_seconds", 60)
        .write(&dir, "x509.toml");
    let plan = dpsbench::scenario::Plan::load(&scenario, &|_| None).unwrap();
    let blocker = dir.join("ca/devices/bench-000280.pem");
    std::fs::create_dir_all(&blocker).unwrap();
    let (_keep, interrupts) = tokio::sync::watch::channel(0);
    let summary =
        dpsbench::runner::run(&plan, &dpsbench::runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap();
    let devices = &summary.results.devices;
    assert_eq!((devices.total, devices.assigned, devices.not_started), (280, 280, 20), "{devices:?}");
    assert!(summary.partial);
    let note = summary.notes.iter().find(|n| n.contains("arrivals stopped after 280 starts")).expect("a note");
    assert!(note.contains("bench-000280.pem"), "{note}");

    // In the first window it is a setup error: nothing starts.
    std::fs::remove_dir_all(&blocker).unwrap();
    for cached in ["bench-000005.pem", "bench-000005.key"] {
        std::fs::remove_file(dir.join("ca/devices").join(cached)).unwrap();
    }
    std::fs::create_dir_all(dir.join("ca/devices/bench-000005.pem")).unwrap();
    let (_keep, interrupts) = tokio::sync::watch::channel(0);
    let error = dpsbench::runner::run(&plan, &dpsbench::runner::RunOptions::whole(&plan), interrupts, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("bench-000005.pem"), "{error}");
}
