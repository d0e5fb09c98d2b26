//! X.509 attestation against the real emulator: devices present their own certificates in the
//! TLS handshake; groups trust a CA, individual enrollments pin a leaf, and the CN must be the
//! registration ID.

use dpsbench::credentials::RegistrationId;
use dpsbench::device::driver::{never_abort, now};
use dpsbench::device::{DeviceIdentity, FailureKind, Outcome, run_device};
use dpsbench::emulator::config::{X509Group, X509Individual};
use dpsbench::tls::{self, TlsVersions};
use dpsbench::x509::{CertificateAuthority, DeviceCertificate, PeerCertificate, subject_of};

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
    }
}

#[tokio::test]
async fn x509_groups_and_individual_enrollments_with_cn_checks() {
    let group_ca = CertificateAuthority::generate().unwrap();
    let other_ca = CertificateAuthority::generate().unwrap();
    let (group_subject, group_der) = subject_of(group_ca.root_pem(), std::path::Path::new("root.pem")).unwrap();
    let pinned_id = RegistrationId::new("pinned-1").unwrap();
    let pinned = other_ca.mint(&pinned_id).unwrap();
    let pinned_hash = PeerCertificate::inspect(&pinned.chain).unwrap().sha256;
    let emulator = start_emulator(|c| {
        c.x509_groups.push(X509Group { name: "x509-fleet".into(), subject: group_subject.clone() });
        c.x509_individuals.push(X509Individual { registration_id: pinned_id.clone(), sha256: pinned_hash });
        c.client_trust.cas.push(group_der.clone());
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
