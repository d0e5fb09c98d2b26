//! Deliberate deviations from DPS's behaviour, one switch each (`[deviations]` in the emulator
//! config). They exist to prove that every conformance check can fail: the unmodified emulator
//! passes the whole catalogue, and each deviation fails exactly the checks whose catalogue entry
//! names it (`failed_by` in `conformance::catalogue`, the list of record; the notes below say
//! why, in prose).
//!
//! Sans IO: small rewrites the service applies at the point each promise is kept.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::messages::{OperationStatus, RegistrationOperationStatus};
use crate::topics;

/// The deviations an emulator applies. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deviations {
    /// Serve plain MQTT on the TLS port too (fails DPS-TLS-001).
    pub accept_plain_mqtt: bool,
    /// Also serve plain MQTT on this address, like port 1883 (fails DPS-TLS-002).
    pub plain_listen: Option<SocketAddr>,
    /// CONNACK with SessionPresent 1 (fails DPS-MQTT-001).
    pub session_present: bool,
    /// Restore a CleanSession-0 device's subscription when it reconnects (fails DPS-MQTT-002).
    pub keep_subscriptions: bool,
    /// Grant QoS 2 when asked (fails DPS-MQTT-003).
    pub grant_qos2: bool,
    /// Deliver replies at QoS 0 whatever was granted (fails DPS-MQTT-004).
    pub reply_qos0: bool,
    /// Send the reply before the PUBACK of the request (fails DPS-MQTT-005).
    pub reply_before_puback: bool,
    /// Grant any filter (fails DPS-MQTT-006 and DPS-MQTT-007).
    pub accept_other_filters: bool,
    /// Acknowledge PUBLISHes to undocumented topics instead of closing (fails DPS-MQTT-008).
    pub accept_undocumented_topics: bool,
    /// Echo a different `$rid` (fails DPS-TOPIC-002).
    pub wrong_rid: bool,
    /// Put `retry-after` before `$rid` (fails DPS-TOPIC-003).
    pub rid_not_first: bool,
    /// Never send `retry-after` (fails DPS-TOPIC-004 and DPS-THR-001).
    pub omit_retry_after: bool,
    /// A new operationId in every poll reply (fails DPS-FLOW-003).
    pub change_operation_id: bool,
    /// Answer `assigning` again to a poll after the operation was reported done (fails
    /// DPS-FLOW-004).
    pub status_backwards: bool,
    /// `assigned` without `deviceId` (fails DPS-BODY-001 and, as SDKs reject it, the flow:
    /// DPS-FLOW-005, DPS-FLOW-006 and DPS-WS-001).
    pub incomplete_assignment: bool,
    /// `unassigned` instead of `assigned` (fails DPS-BODY-002 and, as SDKs reject it, the flow:
    /// DPS-FLOW-005, DPS-FLOW-006 and DPS-WS-001).
    pub unassigned_final: bool,
    /// Accept any password (fails DPS-AUTH-001 and DPS-AUTH-002).
    pub accept_any_password: bool,
    /// Accept a clientId that differs from the username's registration ID (fails DPS-AUTH-004).
    pub accept_client_id_mismatch: bool,
    /// Accept a WebSocket upgrade with any subprotocol (fails DPS-WS-002).
    pub accept_any_subprotocol: bool,
    /// Accept an X.509 certificate whose CN is not the registration ID (fails DPS-AUTH-005).
    pub accept_cn_mismatch: bool,
}

impl Deviations {
    /// The reply topic, as a deviating DPS would write it.
    pub fn reply_topic(&self, status: u16, rid: &str, retry_after: Option<u32>) -> String {
        let retry_after = if self.omit_retry_after { None } else { retry_after };
        let rid = if self.wrong_rid { format!("{rid}-wrong") } else { rid.to_string() };
        match retry_after {
            Some(seconds) if self.rid_not_first => {
                format!("{}{status}/?retry-after={seconds}&$rid={rid}", topics::RESPONSE_PREFIX)
            }
            _ => topics::reply_topic(status, &rid, retry_after),
        }
    }

    /// Rewrites a final operation status, as a deviating DPS would send it.
    pub fn final_status(&self, status: &mut RegistrationOperationStatus) {
        if self.unassigned_final {
            status.status = OperationStatus::Unassigned;
        }
        if self.incomplete_assignment
            && let Some(state) = status.registration_state.as_mut()
        {
            state.device_id = None;
        }
    }

    /// Rewrites any poll reply's operationId when it should change between polls, drawing the
    /// new one from `rng`.
    pub fn poll_operation_id(&self, status: &mut RegistrationOperationStatus, rng: &mut impl rand::Rng) {
        if self.change_operation_id && !status.operation_id.is_empty() {
            let instance = rng.random();
            status.operation_id = crate::messages::operation_id(instance, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_topic_rewrites() {
        let none = Deviations::default();
        assert_eq!(none.reply_topic(202, "1", Some(3)), "$dps/registrations/res/202/?$rid=1&retry-after=3");
        let late_rid = Deviations { rid_not_first: true, ..Default::default() };
        assert_eq!(late_rid.reply_topic(202, "1", Some(3)), "$dps/registrations/res/202/?retry-after=3&$rid=1");
        let omit = Deviations { omit_retry_after: true, ..Default::default() };
        assert_eq!(omit.reply_topic(429, "1", Some(3)), "$dps/registrations/res/429/?$rid=1");
        let wrong = Deviations { wrong_rid: true, ..Default::default() };
        assert_eq!(wrong.reply_topic(200, "7", None), "$dps/registrations/res/200/?$rid=7-wrong");
    }
}
