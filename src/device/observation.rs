//! What a device observed on the wire, for whoever wants to judge it (the passive conformance
//! checks). The device reports observations; it does not judge them.
//!
//! Plain data borrowed from the flow, no IO, no allocation: an [`Observer`] is a type parameter
//! of the flow, so a flow observed by `()` compiles the observations away.

use rumqttc::mqttbytes::v4::Publish;

use crate::messages::ParsedOperation;
use crate::mqtt::QoS;
use crate::topics::ReplyTopic;

/// Which request a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Register,
    Poll,
}

/// One thing the flow saw or did, in the order it happened.
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    /// CONNACK arrived.
    ConnAck { session_present: bool },
    /// SUBACK arrived; the QoS granted to the response filter, `None` when refused.
    SubAck { granted: Option<QoS> },
    /// A register or poll request went out.
    RequestSent { qos: QoS, packet_id: u16 },
    /// A PUBACK arrived.
    PubAck { packet_id: u16 },
    /// A reply PUBLISH arrived.
    Reply {
        publish: &'a Publish,
        /// The request in flight it may answer (`$rid`, kind), or `None` when none was.
        request: Option<(&'a str, RequestKind)>,
        /// A 2xx body, already parsed once for the flow; `None` for other statuses.
        operation: Option<&'a ParsedOperation>,
        /// Its topic, parsed once for the flow; `None` when it is not a DPS reply topic.
        topic: Option<ReplyTopic<'a>>,
    },
}

/// Receives a flow's observations.
pub trait Observer {
    fn observe(&mut self, observation: Observation<'_>);
}

/// No observer: the flow runs without anyone watching.
impl Observer for () {
    #[inline]
    fn observe(&mut self, _observation: Observation<'_>) {}
}
