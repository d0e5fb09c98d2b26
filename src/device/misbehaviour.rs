//! Misbehaviours on purpose: switches that make a simulated device break one client check of
//! `emulator::client_checks` each, the failing controls that prove the checks can fail (as the
//! emulator's deviations prove the service checks). Never on by default; a scenario turns them
//! on with `[devices] misbehave = [...]` and the run's summary lists them.
//!
//! Pure data: the flow, the driver and the runner read the set and change what they send.

use serde::{Deserialize, Serialize};

/// One way a device breaks what the DPS MQTT page asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Misbehaviour {
    /// Offers only TLS 1.3.
    Tls13Only,
    /// CONNECTs with MQTT 5 (protocol level 5).
    Mqtt5,
    /// A ClientId that is not the registration ID.
    ClientIdMismatch,
    /// An api-version no DPS release has.
    UnknownApiVersion,
    /// CleanSession 0.
    KeepSession,
    /// A SAS token whose `sr` names another device.
    SrOtherDevice,
    /// A SAS token without `skn=registration`.
    NoSkn,
    /// A SAS token that expired a minute ago.
    ExpiredToken,
    /// A SAS token valid for ten years.
    FarExpiry,
    /// An X.509 certificate whose CN is another registration ID.
    CnMismatch,
    /// Registers once before subscribing (then subscribes and registers again).
    PublishBeforeSubscribe,
    /// Subscribes to `#` as well as to the response filter.
    ExtraSubscription,
    /// Registers on a topic without `?$rid=`.
    RegisterWithoutRid,
    /// Sends each poll twice with the same `$rid`.
    DuplicateRid,
    /// A register body naming another registration ID.
    RegisterBodyOtherId,
    /// A register body (`{}`) without registrationId.
    RegisterBodyWithoutId,
    /// A register body over 96 KB.
    OversizedPayload,
    /// Polls at once after `assigning`, whatever `retry-after` said.
    PollEarly,
    /// Polls with an operationId it was not given.
    WrongOperationId,
    /// Polls once more after the final status.
    PollAfterAssigned,
    /// Retries at once after a 429, whatever `retry-after` said.
    IgnoreThrottleRetryAfter,
    /// Reconnects at once after a failed connection, three times over.
    ReconnectTightLoop,
    /// Closes the connection without MQTT DISCONNECT when done.
    NoDisconnect,
}

impl Misbehaviour {
    pub const ALL: [Misbehaviour; 23] = [
        Self::Tls13Only,
        Self::Mqtt5,
        Self::ClientIdMismatch,
        Self::UnknownApiVersion,
        Self::KeepSession,
        Self::SrOtherDevice,
        Self::NoSkn,
        Self::ExpiredToken,
        Self::FarExpiry,
        Self::CnMismatch,
        Self::PublishBeforeSubscribe,
        Self::ExtraSubscription,
        Self::RegisterWithoutRid,
        Self::DuplicateRid,
        Self::RegisterBodyOtherId,
        Self::RegisterBodyWithoutId,
        Self::OversizedPayload,
        Self::PollEarly,
        Self::WrongOperationId,
        Self::PollAfterAssigned,
        Self::IgnoreThrottleRetryAfter,
        Self::ReconnectTightLoop,
        Self::NoDisconnect,
    ];

    /// The name a scenario spells it with (`[devices] misbehave`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls13Only => "tls13_only",
            Self::Mqtt5 => "mqtt5",
            Self::ClientIdMismatch => "client_id_mismatch",
            Self::UnknownApiVersion => "unknown_api_version",
            Self::KeepSession => "keep_session",
            Self::SrOtherDevice => "sr_other_device",
            Self::NoSkn => "no_skn",
            Self::ExpiredToken => "expired_token",
            Self::FarExpiry => "far_expiry",
            Self::CnMismatch => "cn_mismatch",
            Self::PublishBeforeSubscribe => "publish_before_subscribe",
            Self::ExtraSubscription => "extra_subscription",
            Self::RegisterWithoutRid => "register_without_rid",
            Self::DuplicateRid => "duplicate_rid",
            Self::RegisterBodyOtherId => "register_body_other_id",
            Self::RegisterBodyWithoutId => "register_body_without_id",
            Self::OversizedPayload => "oversized_payload",
            Self::PollEarly => "poll_early",
            Self::WrongOperationId => "wrong_operation_id",
            Self::PollAfterAssigned => "poll_after_assigned",
            Self::IgnoreThrottleRetryAfter => "ignore_throttle_retry_after",
            Self::ReconnectTightLoop => "reconnect_tight_loop",
            Self::NoDisconnect => "no_disconnect",
        }
    }

    /// The switch called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The misbehaviours a device has on: a set, empty by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Misbehaviours(u32);

impl Misbehaviours {
    pub fn has(self, misbehaviour: Misbehaviour) -> bool {
        self.0 & misbehaviour.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set, in catalogue order.
    pub fn list(self) -> Vec<Misbehaviour> {
        Misbehaviour::ALL.into_iter().filter(|m| self.has(*m)).collect()
    }
}

impl FromIterator<Misbehaviour> for Misbehaviours {
    fn from_iter<I: IntoIterator<Item = Misbehaviour>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, m| bits | m.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for misbehaviour in Misbehaviour::ALL {
            assert_eq!(Misbehaviour::from_name(misbehaviour.name()), Some(misbehaviour));
            let json = serde_json::to_string(&misbehaviour).unwrap();
            assert_eq!(json, format!("\"{}\"", misbehaviour.name()));
        }
        let set: Misbehaviours = [Misbehaviour::PollEarly, Misbehaviour::NoSkn].into_iter().collect();
        assert_eq!(set.list(), [Misbehaviour::NoSkn, Misbehaviour::PollEarly]);
        assert!(Misbehaviours::default().is_empty());
    }
}
