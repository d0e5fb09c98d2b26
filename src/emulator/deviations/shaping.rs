//! The deviations that reshape the service's MQTT answers: what a SUBSCRIBE is granted, the
//! QoS and topic of a reply, the order of a PUBACK and its reply, what CONNACK says of the
//! session. The service builds DPS's answer and asks here how a deviating DPS would send it.
//!
//! Sans IO: values in, values out.

use rumqttc::mqttbytes::v4::{Packet, SubscribeReasonCode};

use super::Deviations;
use crate::mqtt::QoS;
use crate::topics;

/// What one SUBSCRIBE filter is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The SUBACK return code.
    pub code: SubscribeReasonCode,
    /// For the response filter, the QoS replies go at; `None` for any other filter.
    pub replies_at: Option<QoS>,
}

/// A PUBACK split around the reply it acknowledges the request of.
#[derive(Debug, Default)]
pub struct PubAckOrder {
    /// Sent before the reply (DPS's order: the C# v1 SDK fails on any other).
    pub before: Option<Packet>,
    /// Sent after the reply (`reply_before_puback`).
    pub after: Option<Packet>,
}

impl Deviations {
    /// How `filter`, asked at `requested`, is granted: DPS grants the response filter at most
    /// QoS 1 and refuses every other filter.
    pub fn grant(&self, filter: &str, requested: QoS) -> Grant {
        let capped = if requested == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        let granted = if self.grant_qos2 { requested } else { capped };
        if filter == topics::RESPONSE_FILTER {
            let replies_at = if self.reply_at_requested_qos { requested } else { capped };
            return Grant { code: SubscribeReasonCode::Success(granted), replies_at: Some(replies_at) };
        }
        let code = if self.accept_other_filters {
            SubscribeReasonCode::Success(granted)
        } else {
            SubscribeReasonCode::Failure
        };
        Grant { code, replies_at: None }
    }

    /// CONNACK's SessionPresent: DPS keeps no sessions, so 0 whatever CleanSession said.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// Whether an UNSUBSCRIBE is ignored (no UNSUBACK, the subscription kept).
    pub fn ignores_unsubscribe(&self) -> bool {
        self.ignore_unsubscribe
    }

    /// Whether a PUBLISH on a topic DPS does not document is acknowledged and ignored instead of
    /// ending the connection.
    pub fn accepts_undocumented_topic(&self) -> bool {
        self.accept_undocumented_topics
    }

    /// The QoS and topic a reply goes out with, for a device subscribed at `qos`.
    pub fn reply(&self, qos: QoS, status: u16, rid: &str, retry_after: Option<u32>) -> (QoS, String) {
        let qos = if self.reply_qos0 { QoS::AtMostOnce } else { qos };
        (qos, self.reply_topic(status, rid, retry_after))
    }

    /// Where `puback` goes around the reply.
    pub fn puback_order(&self, puback: Option<Packet>) -> PubAckOrder {
        if self.reply_before_puback {
            PubAckOrder { before: None, after: puback }
        } else {
            PubAckOrder { before: puback, after: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::v4::PubAck;

    use super::*;

    #[test]
    fn dps_grants_the_response_filter_at_most_qos1_and_refuses_the_rest() {
        let dps = Deviations::default();
        let granted = dps.grant(topics::RESPONSE_FILTER, QoS::ExactlyOnce);
        assert_eq!(
            granted,
            Grant { code: SubscribeReasonCode::Success(QoS::AtLeastOnce), replies_at: Some(QoS::AtLeastOnce) }
        );
        let granted = dps.grant(topics::RESPONSE_FILTER, QoS::AtMostOnce);
        assert_eq!(granted.replies_at, Some(QoS::AtMostOnce));
        assert_eq!(dps.grant("other/#", QoS::AtLeastOnce).code, SubscribeReasonCode::Failure);
    }

    #[test]
    fn each_grant_deviation_changes_only_its_own_part() {
        let qos2 =
            Deviations { grant_qos2: true, ..Deviations::default() }.grant(topics::RESPONSE_FILTER, QoS::ExactlyOnce);
        assert_eq!(
            qos2,
            Grant { code: SubscribeReasonCode::Success(QoS::ExactlyOnce), replies_at: Some(QoS::AtLeastOnce) }
        );
        let requested = Deviations { reply_at_requested_qos: true, ..Deviations::default() };
        let granted = requested.grant(topics::RESPONSE_FILTER, QoS::ExactlyOnce);
        assert_eq!(
            granted,
            Grant { code: SubscribeReasonCode::Success(QoS::AtLeastOnce), replies_at: Some(QoS::ExactlyOnce) }
        );
        let others =
            Deviations { accept_other_filters: true, ..Deviations::default() }.grant("other/#", QoS::AtLeastOnce);
        assert_eq!(others, Grant { code: SubscribeReasonCode::Success(QoS::AtLeastOnce), replies_at: None });
    }

    #[test]
    fn replies_and_pubacks_are_reshaped_only_when_asked() {
        let dps = Deviations::default();
        assert_eq!(
            dps.reply(QoS::AtLeastOnce, 200, "1", None),
            (QoS::AtLeastOnce, "$dps/registrations/res/200/?$rid=1".to_string())
        );
        let qos0 = Deviations { reply_qos0: true, ..Deviations::default() };
        assert_eq!(qos0.reply(QoS::AtLeastOnce, 200, "1", None).0, QoS::AtMostOnce);
        let ack = || Some(Packet::PubAck(PubAck::new(7)));
        let order = dps.puback_order(ack());
        assert!(order.before.is_some() && order.after.is_none());
        let order = Deviations { reply_before_puback: true, ..Deviations::default() }.puback_order(ack());
        assert!(order.before.is_none() && order.after.is_some());
    }
}
