//! The certificate-issuance probe (api-version 2025-07-01-preview, `docs/dps-mqtt.md` §8): three
//! devices of the target's group, all speaking the preview: one sends no CSR, one a good CSR,
//! one a CSR whose signature does not verify. Their flows judge DPS-CERT-001 to 009 (DPS-CERT-004
//! also passively, on the issued chain's every packet).
//!
//! Runs only against a target whose enrollment is said to issue ([`ProbeTarget::issuer_ca`]);
//! otherwise every check is skipped, saying why.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{ProbeTarget, Verdict, Verdicts};
use crate::certificates::{CertificateRequest, ISSUANCE_API_VERSION, IssuedLeaf, KeyType, register_body_with_csr};
use crate::conformance::passive::{CheckLog, PassiveCheck};
use crate::device::driver::{fresh_rng, never_abort};
use crate::device::{FailureKind, FlowReport, Observation, Observer, Outcome, run_device_observed};

/// Every check the probe judges, in catalogue order.
const CHECKS: [&str; 9] = [
    "DPS-CERT-001",
    "DPS-CERT-002",
    "DPS-CERT-003",
    "DPS-CERT-004",
    "DPS-CERT-005",
    "DPS-CERT-006",
    "DPS-CERT-007",
    "DPS-CERT-008",
    "DPS-CERT-009",
];

/// What a probe device saw: its passive checks, and the last chain a reply carried.
#[derive(Debug, Default)]
struct Watched {
    checks: CheckLog,
    chain: Option<Vec<String>>,
}

impl Observer for Watched {
    fn observe(&mut self, observation: Observation<'_>) {
        if let Observation::Reply { operation: Some(Ok(operation)), .. } = &observation
            && let Some(chain) = operation.registration_state.as_ref().and_then(|s| s.issued_certificate_chain.clone())
        {
            self.chain = Some(chain);
        }
        self.checks.observe(observation);
    }
}

/// The probe: one verdict for each DPS-CERT check.
pub async fn issuance(target: &ProbeTarget) -> Verdicts {
    let Some(issuer) = &target.issuer_ca else {
        let why = "the target's enrollment is not said to issue certificates (conform --issuer-ca PEM)";
        return CHECKS.iter().map(|id| (*id, Verdict::Skipped(why.into()))).collect();
    };
    let mut settings = target.flow_settings(6);
    settings.api_version = ISSUANCE_API_VERSION.into();
    settings.certificate_issuer = Some(issuer.clone());
    let settings = Arc::new(settings);
    let device = |name: &str, csr: Option<CertificateRequest>| {
        let mut identity = target.device(name);
        if let Some(request) = csr {
            identity.register_body = register_body_with_csr(&identity.register_body, &request.csr_base64);
            identity.certificate_request = Some(Arc::new(request));
        }
        let (device_target, settings) = (target.device_target(), settings.clone());
        async move {
            run_device_observed(
                &device_target,
                settings,
                identity,
                None,
                never_abort(),
                fresh_rng(),
                Watched::default(),
            )
            .await
        }
    };
    let good = request(target, "cert-csr", false);
    let bad = request(target, "cert-bad-csr", true);
    let (Some(good), Some(bad)) = (good, bad) else {
        return CHECKS.iter().map(|id| (*id, Verdict::Fail("could not make a probe CSR".into()))).collect();
    };
    let expected_key = good.public_key.clone();
    let (plain, issued, refused) =
        tokio::join!(device("cert-plain", None), device("cert-csr", Some(good)), device("cert-bad-csr", Some(bad)));
    let mut verdicts = preview_without_csr(&plain);
    if !assigned(&plain) {
        // The preview device did not get through: what the other two show says nothing more.
        let reason = format!("a device speaking {ISSUANCE_API_VERSION} without a CSR ended {}", ended(&plain));
        let by = match &plain.outcome {
            Outcome::Failed(kind) => blocker(kind).unwrap_or("DPS-CERT-001"),
            _ => "DPS-CERT-001",
        };
        let blocked = || Verdict::Inconclusive { blocked_by: by.into(), reason: reason.clone() };
        verdicts.extend(CHECKS[3..].iter().chain(&CHECKS[1..2]).map(|id| (*id, blocked())));
        return verdicts;
    }
    verdicts.extend(issued_chain(&issued, &expected_key, target.registration_id("cert-csr").as_str(), issuer));
    verdicts.push(("DPS-CERT-008", bad_csr_refused(&refused)));
    verdicts
}

/// A CSR for the probe device `name`; with `corrupt`, its signature's last byte flipped.
fn request(target: &ProbeTarget, name: &str, corrupt: bool) -> Option<CertificateRequest> {
    let mut request = CertificateRequest::generate(KeyType::EcdsaP256, target.registration_id(name).as_str()).ok()?;
    if corrupt {
        let mut der = BASE64.decode(&request.csr_base64).ok()?;
        *der.last_mut()? ^= 0x01;
        request.csr_base64 = BASE64.encode(der);
    }
    Some(request)
}

/// The check whose failure a flow that ended before its assignment shows, when that is no
/// finding of the DPS-CERT checks: a refused handshake (DPS-TLS-003), a broken flow
/// (DPS-FLOW-005). `None` when the target refused the device itself (CONNACK, a 4xx or 5xx
/// reply, `failed`, `disabled`).
fn blocker(kind: &FailureKind) -> Option<&'static str> {
    match kind {
        FailureKind::Tls => Some("DPS-TLS-003"),
        FailureKind::Refused(_)
        | FailureKind::Status(_)
        | FailureKind::RegistrationFailed(_)
        | FailureKind::Disabled
        | FailureKind::Certificate(_) => None,
        _ => Some("DPS-FLOW-005"),
    }
}

/// The verdict on a flow that ended (`kind`) before its assignment: a failure of the check, or
/// inconclusive, blocked by what [`blocker`] names.
fn unassigned(kind: &FailureKind, failed: String) -> Verdict {
    match blocker(kind) {
        Some(by) => Verdict::Inconclusive { blocked_by: by.into(), reason: failed },
        None => Verdict::Fail(failed),
    }
}

/// Whether a flow reached the assignment (a wrong chain fails it only after).
fn assigned(report: &FlowReport<Watched>) -> bool {
    matches!(report.outcome, Outcome::Assigned { .. } | Outcome::Failed(FailureKind::Certificate(_)))
}

fn ended(report: &FlowReport<Watched>) -> String {
    match &report.outcome {
        Outcome::Assigned { .. } => "assigned".into(),
        Outcome::Connected => "connected".into(),
        Outcome::Failed(kind) => kind.label(),
    }
}

/// DPS-CERT-001 (the preview is accepted) and DPS-CERT-003 (no CSR, no chain).
fn preview_without_csr(plain: &FlowReport<Watched>) -> Verdicts {
    if !assigned(plain) {
        let failed = format!("a device speaking {ISSUANCE_API_VERSION} without a CSR ended {}", ended(plain));
        let (verdict, by) = match &plain.outcome {
            Outcome::Failed(kind) => (unassigned(kind, failed.clone()), blocker(kind).unwrap_or("DPS-CERT-001")),
            _ => (Verdict::Fail(failed.clone()), "DPS-CERT-001"),
        };
        let blocked = Verdict::Inconclusive { blocked_by: by.into(), reason: failed };
        return vec![("DPS-CERT-001", verdict), ("DPS-CERT-003", blocked)];
    }
    let accepted = Verdict::Pass(format!("a device speaking {ISSUANCE_API_VERSION} was assigned"));
    let absent = match &plain.observer.chain {
        None => Verdict::Pass("no issuedCertificateChain without a CSR".into()),
        Some(chain) => Verdict::Fail(format!("a chain of {} certificate(s) without a CSR", chain.len())),
    };
    vec![("DPS-CERT-001", accepted), ("DPS-CERT-003", absent)]
}

/// DPS-CERT-002 (a chain for a CSR), 004 (its shape, passively), 005 (the CSR's key), 006 (the
/// CN), 007 (1-90 days) and 009 (it reaches the issuing CA the target is said to issue with).
fn issued_chain(
    issued: &FlowReport<Watched>,
    expected_key: &[u8],
    registration_id: &str,
    issuer: &rustls_pki_types::CertificateDer<'static>,
) -> Verdicts {
    let shape = passive_shape(issued);
    let blocked = |by: &str, reason: String| Verdict::Inconclusive { blocked_by: by.into(), reason };
    if !assigned(issued) {
        let failed = format!("the device that sent a CSR ended {}", ended(issued));
        let present = match &issued.outcome {
            Outcome::Failed(kind) => unassigned(kind, failed.clone()),
            _ => Verdict::Fail(failed.clone()),
        };
        let mut verdicts = vec![("DPS-CERT-002", present), ("DPS-CERT-004", shape)];
        verdicts.extend(
            ["DPS-CERT-005", "DPS-CERT-006", "DPS-CERT-007", "DPS-CERT-009"]
                .map(|id| (id, blocked("DPS-CERT-002", failed.clone()))),
        );
        return verdicts;
    }
    let Some(chain) = issued.observer.chain.as_ref().filter(|c| !c.is_empty()) else {
        let missing = "assigned without an issuedCertificateChain although a CSR was sent".to_string();
        let mut verdicts = vec![("DPS-CERT-002", Verdict::Fail(missing.clone())), ("DPS-CERT-004", shape)];
        verdicts.extend(
            ["DPS-CERT-005", "DPS-CERT-006", "DPS-CERT-007", "DPS-CERT-009"]
                .map(|id| (id, blocked("DPS-CERT-002", missing.clone()))),
        );
        return verdicts;
    };
    let present = Verdict::Pass(format!("assigned with a chain of {} certificate(s)", chain.len()));
    let Some(leaf) = IssuedLeaf::of(chain) else {
        let reason = "a certificate of the chain does not decode".to_string();
        let mut verdicts = vec![("DPS-CERT-002", present), ("DPS-CERT-004", shape)];
        verdicts.extend(
            ["DPS-CERT-005", "DPS-CERT-006", "DPS-CERT-007", "DPS-CERT-009"]
                .map(|id| (id, blocked("DPS-CERT-004", reason.clone()))),
        );
        return verdicts;
    };
    let key = match leaf.public_key == expected_key {
        true => Verdict::Pass("the leaf holds the CSR's public key".into()),
        false => Verdict::Fail("the leaf's public key is not the CSR's".into()),
    };
    let cn = match leaf.common_name.as_deref() {
        Some(cn) if cn.eq_ignore_ascii_case(registration_id) => Verdict::Pass(format!("leaf CN {cn}")),
        other => Verdict::Fail(format!("leaf CN {}, registration ID {registration_id}", super::or_none(other))),
    };
    let days = leaf.validity_seconds / 86_400;
    let validity = match crate::certificates::VALIDITY_DAYS.contains(&u32::try_from(days).unwrap_or(0)) {
        true => Verdict::Pass(format!("valid for {days} days")),
        false => Verdict::Fail(format!("valid for {days} days, outside 1-90 ({} s)", leaf.validity_seconds)),
    };
    // A chain out of order (DPS-CERT-004's finding) cannot be followed up to its CA.
    let reaches = match (&shape, crate::certificates::chain_reaches(chain, issuer)) {
        (_, Ok(())) => Verdict::Pass(format!("the chain of {} certificate(s) reaches the issuing CA", chain.len())),
        (Verdict::Fail(_), Err(failure)) => blocked("DPS-CERT-004", failure.reason().to_string()),
        (_, Err(failure)) => Verdict::Fail(format!("{} (conform --issuer-ca)", failure.reason())),
    };
    vec![
        ("DPS-CERT-002", present),
        ("DPS-CERT-004", shape),
        ("DPS-CERT-005", key),
        ("DPS-CERT-006", cn),
        ("DPS-CERT-007", validity),
        ("DPS-CERT-009", reaches),
    ]
}

/// DPS-CERT-004 as the passive check found it on the device's packets.
fn passive_shape(report: &FlowReport<Watched>) -> Verdict {
    let checks = &report.observer.checks;
    let violations: Vec<String> =
        checks.violations_of(PassiveCheck::IssuedChainShape).map(|f| f.evidence.clone()).collect();
    if !violations.is_empty() {
        return Verdict::Fail(violations.join("; "));
    }
    match checks.evaluated(PassiveCheck::IssuedChainShape) {
        true => Verdict::Pass("the issued chain is base64 DER, leaf first".into()),
        false => Verdict::Inconclusive {
            blocked_by: "DPS-CERT-002".into(),
            reason: format!("no chain to judge: the device ended {}", ended(report)),
        },
    }
}

/// DPS-CERT-008: a CSR whose signature does not verify ends the registration `failed` (or is
/// refused with a 4xx), never signed.
fn bad_csr_refused(refused: &FlowReport<Watched>) -> Verdict {
    match &refused.outcome {
        Outcome::Failed(FailureKind::RegistrationFailed(code)) => {
            Verdict::Pass(format!("the registration ended failed, errorCode {}", super::or_none(code.as_ref())))
        }
        Outcome::Failed(FailureKind::Status(status @ 400..=499)) => Verdict::Pass(format!("refused with {status}")),
        _ if assigned(refused) => Verdict::Fail(format!(
            "a CSR whose signature does not verify was assigned{}",
            if refused.observer.chain.is_some() { " with a chain" } else { "" }
        )),
        Outcome::Failed(kind) => match blocker(kind) {
            Some(by) => Verdict::Inconclusive {
                blocked_by: by.into(),
                reason: format!("the bad-CSR device ended {}", kind.label()),
            },
            None => Verdict::Fail(format!(
                "the bad-CSR device ended {}: refused, but not as a failed registration",
                kind.label()
            )),
        },
        Outcome::Assigned { .. } | Outcome::Connected => Verdict::Fail(format!("ended {}", ended(refused))),
    }
}
