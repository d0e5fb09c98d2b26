//! Admission of a CONNECT: whether a device is let in, and as whom, decided once from its facts,
//! the identity deviations (`accept_any_scope`, `accept_any_password`, `trust_sr_device`, ...)
//! and the lab's CONNECT faults, before the service keeps any state for the connection.
//!
//! Sans IO. The credentials themselves are checked by whoever holds the enrollments (the
//! service), through [`Credentials`]; admission decides what the answers add up to.

use rumqttc::mqttbytes::Protocol;
use rumqttc::mqttbytes::v4::ConnectReturnCode;

use crate::credentials::{IdScope, ParsedSas, RegistrationId};
use crate::emulator::activity::Refusal;
use crate::emulator::config::{AuthFailure, ServiceConfig};
use crate::emulator::deviations::Deviations;
use crate::emulator::facts::ConnectFacts;
use crate::emulator::faults::{Fault, Injector};
use crate::emulator::issuance::{self, Enrollment};
use crate::x509::PeerCertificate;

/// What checks a device's credentials against the enrollments.
pub trait Credentials {
    /// The enrollment a SAS `token` for `registration_id` in `scope` authenticates through.
    fn token(
        &self,
        scope: &IdScope,
        registration_id: &RegistrationId,
        token: Option<&ParsedSas<'_>>,
        now_unix: u64,
    ) -> Option<Enrollment>;
    /// `registrationState.x509` for a client certificate that authenticates `registration_id`.
    fn certificate(&self, registration_id: &RegistrationId, peer: &PeerCertificate) -> Option<serde_json::Value>;
}

/// A device let in, and as whom.
#[derive(Debug)]
pub struct Admitted {
    pub registration_id: RegistrationId,
    /// Its credentials authenticated (a device that did not is let in only with
    /// `auth_failure = "reply"`, and its requests are answered 401).
    pub authorized: bool,
    /// `registrationState.x509` of an X.509 device.
    pub x509: Option<serde_json::Value>,
    /// The enrollment it authenticated through (none when it did not).
    pub enrollment: Option<Enrollment>,
}

/// What admission decides of a CONNECT.
#[derive(Debug)]
pub enum ConnectDecision {
    /// Refused with this CONNACK code, counted under this reason.
    Refuse(ConnectReturnCode, Refusal),
    /// A `reset_after_connect` fault: a TCP reset, nothing sent.
    Reset,
    /// Let in.
    Admit(Admitted),
}

/// Decides a CONNECT. The lab's faults strike only a CONNECT the service would let in, so a
/// seeded run draws them in the same order whatever the refused devices do.
pub fn connect(
    config: &ServiceConfig,
    faults: &Injector,
    facts: &ConnectFacts<'_>,
    peer: Option<&PeerCertificate>,
    credentials: &dyn Credentials,
) -> ConnectDecision {
    let deviations = &config.deviations;
    if facts.connect.protocol != Protocol::V4 && !deviations.accept_mqtt5 {
        return ConnectDecision::Refuse(ConnectReturnCode::RefusedProtocolVersion, Refusal::ProtocolVersion);
    }
    let Some((registration_id, scope)) = named_registration(config, facts) else {
        return ConnectDecision::Refuse(ConnectReturnCode::NotAuthorized, Refusal::UserName);
    };
    // A deviating DPS that ignores expiry checks the token as if it were the epoch.
    let now_unix = if deviations.accept_expired_tokens { 0 } else { facts.context.now_unix };
    let token = facts.token.as_ref();
    // A device that presented a certificate is an X.509 device: no password is needed.
    let x509 = peer.and_then(|peer| credentials.certificate(&registration_id, peer));
    let (authorized, enrollment) = match peer {
        Some(_) => (x509.is_some(), x509.as_ref().map(|x509| issuance::x509_enrollment(x509, &registration_id))),
        None if deviations.refuses_token_form(facts.password, token) => (false, None),
        None => {
            let checked_as = deviations.sr_device(token).unwrap_or_else(|| registration_id.clone());
            let enrollment = credentials.token(&scope, &checked_as, token, now_unix);
            (deviations.accept_any_password || enrollment.is_some(), enrollment)
        }
    };
    if !authorized && config.auth_failure == AuthFailure::Connack {
        return ConnectDecision::Refuse(ConnectReturnCode::NotAuthorized, Refusal::Credentials);
    }
    if faults.strikes(Fault::ResetAfterConnect) {
        return ConnectDecision::Reset;
    }
    if faults.strikes(Fault::ConnackUnavailable) {
        return ConnectDecision::Refuse(ConnectReturnCode::ServiceUnavailable, Refusal::Fault);
    }
    ConnectDecision::Admit(Admitted { registration_id, authorized, x509, enrollment })
}

/// The registration ID a CONNECT names and the scope its token is checked against, if its
/// username has DPS's form for this scope and its clientId is the same registration ID.
fn named_registration(config: &ServiceConfig, facts: &ConnectFacts<'_>) -> Option<(RegistrationId, IdScope)> {
    let deviations: &Deviations = &config.deviations;
    let username = facts.username?;
    let id = username.registration_id;
    if deviations.refuse_preview_api_version && username.api_version == crate::certificates::ISSUANCE_API_VERSION {
        return None;
    }
    let own_scope = username.id_scope == config.id_scope.as_str();
    if !(own_scope || deviations.accept_any_scope)
        || !(deviations.accept_client_id_mismatch || id.eq_ignore_ascii_case(&facts.connect.client_id))
    {
        return None;
    }
    let scope = if own_scope { config.id_scope.clone() } else { IdScope::new(username.id_scope).ok()? };
    Some((RegistrationId::new(id).ok()?, scope))
}
