//! The preflight: before the plan starts, one real device (the shard's first) connects as the
//! run's devices will, over the same transport, TLS configuration and credentials, and stops at
//! CONNACK: nothing is registered, so nothing is billable. A wrong CA, key, ID scope or X.509
//! chain then stops the run with one line naming the field to fix, instead of failing every
//! device of the plan (or hiding behind an invalid-run verdict).
//!
//! Failures the service may produce on its own (a reset, "server unavailable", a deadline) are
//! tried again a few times, then the run goes on with a note (they say nothing of the setup); a
//! refusal of the credentials or the certificates, a refused TCP connect, and a target that
//! accepts TCP but never completes the TLS handshake (no DPS endpoint holds it that long) are
//! final at once. `run.preflight = false` skips it, for runs whose every device is meant to fail.
//! [`describe`] is the line the CLI says as it begins.

use std::sync::Arc;

use super::error::RunError;
use crate::device::driver::{never_abort, now, run_device};
use crate::device::{DeviceIdentity, FailureKind, FlowSettings, Outcome, Step, Target, Transport};
use crate::scenario::{Plan, TargetPlan};

/// What the preflight checks, in one line said as it begins: the device, the target, the way
/// it connects.
pub(super) fn describe(plan: &Plan, target: &Target, identity: &DeviceIdentity) -> String {
    let transport = match &target.transport {
        Transport::Mqtt => "TCP, TLS, MQTT CONNECT",
        Transport::WebSocket { .. } => "TCP, TLS, WebSocket upgrade, MQTT CONNECT",
    };
    let credential = if plan.x509.is_some() { "its X.509 certificate" } else { "its SAS token" };
    format!(
        "preflight: device {} connects to {} as every device will ({transport}, {credential}) and stops at \
         CONNACK, registering nothing",
        identity.registration_id, target.address
    )
}

/// Attempts at most, when the failure may be the service's passing state.
const ATTEMPTS: u32 = 3;

/// Connects `identity` once (up to [`ATTEMPTS`] for passing failures). Err names the field of a
/// setup mistake; Ok(Some(note)) says the target kept failing in a way that may pass (the run
/// goes on, with the note in its summary).
pub(super) async fn preflight(
    plan: &Plan,
    target: &Target,
    settings: &FlowSettings,
    identity: &DeviceIdentity,
) -> Result<Option<String>, RunError> {
    let settings = Arc::new(FlowSettings { connect_only: true, ..settings.clone() });
    let mut attempt = 1;
    loop {
        let report = run_device(target, settings.clone(), identity.clone(), now(), never_abort()).await;
        let kind = match report.outcome {
            Outcome::Connected => return Ok(None),
            Outcome::Failed(kind) => kind,
            Outcome::Assigned { .. } => unreachable!("a connect-only flow ends at CONNACK"),
        };
        let reason = || explain(plan, target, identity, &kind, report.failure_detail.as_deref(), &settings);
        if !passing(&kind) {
            let registration_id = identity.registration_id.to_string();
            return Err(RunError::Preflight { registration_id, reason: reason() });
        }
        // Under TLS 1.3 a server refuses a client certificate after the client's handshake is
        // done: the refusal shows as the connection closing before CONNACK, every time.
        let refused_certificate = plan.x509.is_some() && kind == FailureKind::ConnectionLost(Step::Connack);
        if attempt >= ATTEMPTS && refused_certificate {
            let registration_id = identity.registration_id.to_string();
            return Err(RunError::Preflight { registration_id, reason: reason() });
        }
        if attempt >= ATTEMPTS {
            return Ok(Some(format!(
                "the preflight could not judge the setup: {} attempts by {} ended with {}; the run went on",
                ATTEMPTS,
                identity.registration_id,
                reason()
            )));
        }
        attempt += 1;
    }
}

/// Whether `kind` may be the service's passing state rather than the setup's mistake. A TLS
/// handshake the target accepted TCP for and never completed is not: trying again would only
/// hold the run in silence, and every device of the plan would time out the same way.
fn passing(kind: &FailureKind) -> bool {
    match kind {
        FailureKind::Timeout(Step::TlsHandshake) => false,
        FailureKind::Refused(3) | FailureKind::ConnectionLost(_) | FailureKind::Timeout(_) => true,
        _ => false,
    }
}

/// One line: what failed and the field that most likely holds the mistake.
fn explain(
    plan: &Plan,
    target: &Target,
    identity: &DeviceIdentity,
    kind: &FailureKind,
    detail: Option<&str>,
    settings: &FlowSettings,
) -> String {
    let said = detail.map(|d| format!(" ({d})")).unwrap_or_default();
    let ca = match &plan.target {
        TargetPlan::Dps { ca: Some((_, path)), .. } => format!("[target].ca_certificate {}", path.display()),
        TargetPlan::Dps { ca: None, .. } => {
            "[target].ca_certificate (none given, so the public roots are trusted)".to_string()
        }
        TargetPlan::Embedded { .. } => "the embedded emulator's CA".to_string(),
    };
    let source = match (identity.source_address, plan.source_addresses.is_empty()) {
        (Some(address), false) => format!(" from {address} (run.source_addresses)"),
        _ => String::new(),
    };
    let credentials = match &plan.x509 {
        Some(x509) => format!(
            "the device certificate of {} (from [devices] x509 CA {}, cached in {}): is that CA trusted by the \
             enrollment group?",
            identity.registration_id,
            x509.ca_dir.display(),
            x509.cache.display()
        ),
        None => format!(
            "the key ({}) or [target].id_scope {:?}: does the enrollment group hold that key, in that scope?",
            plan.key_origin,
            plan.id_scope.as_str()
        ),
    };
    match kind {
        FailureKind::Connect | FailureKind::Timeout(Step::TcpConnect) => {
            format!("TCP connect to {}{source} failed{said}: check [target].host and port", target.address)
        }
        FailureKind::Timeout(Step::TlsHandshake) => format!(
            "{} accepted the TCP connection{source} but never completed the TLS handshake (no answer within {:.1} \
             s): is it a DPS endpoint serving MQTT over TLS? check [target].host and port (a plain-TCP port, or a \
             server that stalls, holds the handshake)",
            target.address,
            settings.timeouts.tls_handshake.as_secs_f64()
        ),
        FailureKind::Tls if detail.is_some_and(|d| d.contains("invalid peer certificate")) => {
            format!("the server's certificate is not trusted{said}: check {ca}")
        }
        FailureKind::Tls if plan.x509.is_some() => {
            format!("the TLS handshake failed{said}: check {credentials}")
        }
        FailureKind::Tls => format!("the TLS handshake failed{said}: check {ca} and [target].tls_versions"),
        FailureKind::ConnectionLost(Step::Connack) if plan.x509.is_some() => format!(
            "the connection closed before CONNACK, as a server refusing the client certificate closes it under \
             TLS 1.3: check {credentials}"
        ),
        FailureKind::WebSocket | FailureKind::Timeout(Step::WebSocketUpgrade) => {
            let path = match &target.transport {
                Transport::WebSocket { path, .. } => path.as_str(),
                Transport::Mqtt => "",
            };
            format!("the WebSocket upgrade to {path:?} failed{said}: check [target].transport")
        }
        FailureKind::Refused(code @ (4 | 5)) => format!("CONNECT refused with code {code}: check {credentials}"),
        FailureKind::Refused(code) => format!("CONNECT refused with code {code}{said}"),
        other => format!("{}{said}: is {} a DPS endpoint?", other.label(), target.address),
    }
}
