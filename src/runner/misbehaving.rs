//! What a device's credentials and register body become under `[devices] misbehave`: the
//! identity-level failing controls of the client checks (the flow applies the rest). Pure.

use bytes::Bytes;

use crate::credentials::{RegistrationId, SasStyle};
use crate::device::{Misbehaviour, Misbehaviours};
use crate::emulator::service::MAX_MESSAGE_BYTES;

/// The SAS expiry: `valid_for` seconds from `now_unix`, a minute ago (`expired_token`) or ten
/// years ahead (`far_expiry`).
pub(super) fn expiry(misbehave: Misbehaviours, now_unix: u64, valid_for: u64) -> u64 {
    if misbehave.has(Misbehaviour::ExpiredToken) {
        now_unix.saturating_sub(60)
    } else if misbehave.has(Misbehaviour::FarExpiry) {
        now_unix + 10 * 365 * 86_400
    } else {
        now_unix + valid_for
    }
}

/// The registration ID the device's credential names: another device's under `sr_other_device`
/// (its SAS token) and `cn_mismatch` (its certificate).
pub(super) fn signed_for(misbehave: Misbehaviours, registration_id: &RegistrationId) -> RegistrationId {
    let other = misbehave.has(Misbehaviour::SrOtherDevice) || misbehave.has(Misbehaviour::CnMismatch);
    match other.then(|| RegistrationId::new(format!("{registration_id}-other"))) {
        Some(Ok(other)) => other,
        // An ID too long to extend stays as it is: the control then does not misbehave.
        _ => registration_id.clone(),
    }
}

/// The token style, without `skn` under `no_skn`.
pub(super) fn sas_style(misbehave: Misbehaviours, style: SasStyle) -> SasStyle {
    SasStyle { key_name: style.key_name && !misbehave.has(Misbehaviour::NoSkn), ..style }
}

/// The register body: naming another device, without registrationId, or over 96 KB.
pub(super) fn register_body(misbehave: Misbehaviours, registration_id: &RegistrationId, body: Bytes) -> Bytes {
    if misbehave.has(Misbehaviour::RegisterBodyOtherId) {
        return Bytes::from(format!("{{\"registrationId\":\"{registration_id}-other\"}}"));
    }
    if misbehave.has(Misbehaviour::RegisterBodyWithoutId) {
        return Bytes::from_static(b"{}");
    }
    if misbehave.has(Misbehaviour::OversizedPayload) {
        let padding = "x".repeat(MAX_MESSAGE_BYTES + 1024);
        return Bytes::from(format!(
            "{{\"registrationId\":\"{registration_id}\",\"payload\":{{\"padding\":\"{padding}\"}}}}"
        ));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_changes_without_a_misbehaviour() {
        let id = RegistrationId::new("dev-1").unwrap();
        let none = Misbehaviours::default();
        assert_eq!(expiry(none, 1000, 60), 1060);
        assert_eq!(signed_for(none, &id), id);
        assert_eq!(sas_style(none, SasStyle::default()), SasStyle::default());
        assert_eq!(register_body(none, &id, Bytes::from_static(b"{}x")), Bytes::from_static(b"{}x"));
        let oversized = register_body([Misbehaviour::OversizedPayload].into_iter().collect(), &id, Bytes::new());
        assert!(oversized.len() > MAX_MESSAGE_BYTES && oversized.len() < crate::mqtt::MAX_PACKET_SIZE - 200);
        assert!(serde_json::from_slice::<serde_json::Value>(&oversized).is_ok());
    }
}
