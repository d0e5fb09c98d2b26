//! Deliberate deviations from DPS's behaviour, one switch each (`[deviations]` in the emulator
//! config). They exist to prove that every conformance check can fail: the unmodified emulator
//! passes the whole catalogue, and each deviation fails exactly the checks whose catalogue entry
//! names it (`failed_by` in `conformance::catalogue`, the list of record; the notes below say
//! why, in prose).
//!
//! Sans IO: small rewrites the service applies at the point each promise is kept.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::credentials::ParsedSas;
use crate::messages::{OperationStatus, RegistrationOperationStatus};
use crate::tls::{TlsPolicy, TlsVersions};
use crate::topics;
use crate::websocket::SubprotocolRule;

/// Declares [`Deviations`] (the `[deviations]` switches, as the config file spells them) and
/// [`Deviation`] (one value per switch, which the catalogue's `failed_by` lists) from one list,
/// so the two cannot fall out of step.
macro_rules! deviations {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty => $variant:ident, )*) => {
        /// The deviations an emulator applies. All off by default.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Deviations {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// One switch of [`Deviations`]: what a conformance check names as its failing control.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Deviation {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Deviation {
            /// Every switch, in the order of [`Deviations`]' fields.
            pub const ALL: &'static [Deviation] = &[$(Deviation::$variant),*];

            /// The switch's name in `[deviations]`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Deviation::$variant => stringify!($field),)*
                }
            }

            /// Deviations with this switch alone turned on.
            pub fn alone(self) -> Deviations {
                match self {
                    $(Deviation::$variant => Deviations { $field: Switch::on(), ..Deviations::default() },)*
                }
            }
        }
    };
}

/// The value that turns a switch on: `true`, or for an extra listener a free loopback port.
trait Switch {
    fn on() -> Self;
}

impl Switch for bool {
    fn on() -> Self {
        true
    }
}

impl Switch for Option<SocketAddr> {
    fn on() -> Self {
        Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

impl Deviation {
    /// The switch called `name` in `[deviations]`.
    pub fn parse(name: &str) -> Option<Deviation> {
        Deviation::ALL.iter().copied().find(|d| d.name() == name)
    }
}

impl std::fmt::Display for Deviation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

deviations! {
    /// Serve plain MQTT on the TLS port too (fails DPS-TLS-001).
    accept_plain_mqtt: bool => AcceptPlainMqtt,
    /// Also serve plain MQTT on this address, like port 1883 (fails DPS-TLS-002).
    plain_listen: Option<SocketAddr> => PlainListen,
    /// CONNACK with SessionPresent 1 (fails DPS-MQTT-001).
    session_present: bool => SessionPresent,
    /// Restore a CleanSession-0 device's subscription when it reconnects (fails DPS-MQTT-002).
    keep_subscriptions: bool => KeepSubscriptions,
    /// Grant QoS 2 when asked (fails DPS-MQTT-003).
    grant_qos2: bool => GrantQos2,
    /// Deliver replies at QoS 0 whatever was granted (fails DPS-MQTT-004 and DPS-MQTT-011).
    reply_qos0: bool => ReplyQos0,
    /// Send the reply before the PUBACK of the request (fails DPS-MQTT-005).
    reply_before_puback: bool => ReplyBeforePuback,
    /// Grant any filter (fails DPS-MQTT-006 and DPS-MQTT-007).
    accept_other_filters: bool => AcceptOtherFilters,
    /// Acknowledge PUBLISHes to undocumented topics instead of closing (fails DPS-MQTT-008).
    accept_undocumented_topics: bool => AcceptUndocumentedTopics,
    /// Echo a different `$rid` (fails DPS-TOPIC-002).
    wrong_rid: bool => WrongRid,
    /// Send `retry-after=0` wherever a `retry-after` goes (fails DPS-TOPIC-005). The emulator's
    /// own `retry_after_seconds = 0`, for throughput runs, does the same on 202s.
    retry_after_zero: bool => RetryAfterZero,
    /// Put `retry-after` before `$rid` (fails DPS-TOPIC-003).
    rid_not_first: bool => RidNotFirst,
    /// Never send `retry-after` (fails DPS-TOPIC-004 and DPS-THR-001).
    omit_retry_after: bool => OmitRetryAfter,
    /// A new operationId in every poll reply (fails DPS-FLOW-003).
    change_operation_id: bool => ChangeOperationId,
    /// Answer `assigning` again to a poll after the operation was reported done (fails
    /// DPS-FLOW-004).
    status_backwards: bool => StatusBackwards,
    /// `assigned` without `deviceId` (fails DPS-BODY-001 and, as SDKs reject it, the flow:
    /// DPS-FLOW-005, DPS-FLOW-006 and DPS-WS-001).
    incomplete_assignment: bool => IncompleteAssignment,
    /// `unassigned` instead of `assigned` (fails DPS-BODY-002 and, as SDKs reject it, the flow:
    /// DPS-FLOW-005, DPS-FLOW-006 and DPS-WS-001).
    unassigned_final: bool => UnassignedFinal,
    /// Accept any password (fails DPS-AUTH-001, DPS-AUTH-002 and DPS-AUTH-007).
    accept_any_password: bool => AcceptAnyPassword,
    /// Accept a clientId that differs from the username's registration ID (fails DPS-AUTH-004).
    accept_client_id_mismatch: bool => AcceptClientIdMismatch,
    /// Accept a WebSocket upgrade with any subprotocol (fails DPS-WS-002).
    accept_any_subprotocol: bool => AcceptAnySubprotocol,
    /// Accept an X.509 certificate whose CN is not the registration ID (fails DPS-AUTH-005).
    accept_cn_mismatch: bool => AcceptCnMismatch,
    /// Accept a token whose `se` has passed, still checking its signature (fails DPS-AUTH-002
    /// alone, where `accept_any_password` fails DPS-AUTH-001 too).
    accept_expired_tokens: bool => AcceptExpiredTokens,
    /// Accept a username naming another ID scope, checking the token against that scope (fails
    /// DPS-AUTH-003).
    accept_any_scope: bool => AcceptAnyScope,
    /// Accept a TLS 1.3 handshake as well as TLS 1.2 (fails DPS-TLS-005).
    accept_tls13: bool => AcceptTls13,
    /// Serve TLS 1.3 only, refusing TLS 1.2 (fails DPS-TLS-003 and DPS-TLS-005; as every other
    /// probe speaks TLS 1.2, as DPS requires, their checks are inconclusive, blocked by
    /// DPS-TLS-003).
    refuse_tls12: bool => RefuseTls12,
    /// Take the WebSocket subprotocol `mqtt` only in lower case, refusing the C SDK's `MQTT`
    /// (fails DPS-WS-001 alone: one SDK's dialect).
    case_sensitive_subprotocol: bool => CaseSensitiveSubprotocol,
    /// Refuse a token whose `sr` is not percent-encoded, as the Node SDK sends it (fails
    /// DPS-FLOW-006 alone: one SDK's dialect).
    refuse_unencoded_sr: bool => RefuseUnencodedSr,
    /// Deliver replies at the QoS the subscription asked for, 2 included, while granting 1
    /// (fails DPS-MQTT-011).
    reply_at_requested_qos: bool => ReplyAtRequestedQos,
    /// Check a token against the device its `sr` names instead of the username's (fails
    /// DPS-AUTH-007: one device's token opens another's connection).
    trust_sr_device: bool => TrustSrDevice,
    /// Accept an MQTT 5 CONNECT (fails DPS-MQTT-009).
    accept_mqtt5: bool => AcceptMqtt5,
    /// Never answer UNSUBSCRIBE (fails DPS-MQTT-010).
    ignore_unsubscribe: bool => IgnoreUnsubscribe,
    /// Refuse a token whose `sig` escapes are in lower-case hex (fails DPS-AUTH-006 and, as the
    /// C SDK writes them so, DPS-FLOW-006).
    case_sensitive_sig: bool => CaseSensitiveSig,
    /// Answer a TLS 1.0 or 1.1 ClientHello with a ServerHello of that version (fails
    /// DPS-TLS-004).
    answer_old_tls: bool => AnswerOldTls,
    /// Leave the `/` out before the reply topic's query: `res/202?$rid=..` (fails DPS-TOPIC-001
    /// and, as devices cannot read such a reply, the flows: DPS-FLOW-004, DPS-FLOW-005,
    /// DPS-FLOW-006 and DPS-WS-001; what the lifecycle would have shown is inconclusive).
    reply_topic_without_slash: bool => ReplyTopicWithoutSlash,
    /// Answer a register with 201 instead of 202 (fails DPS-FLOW-001; devices take any 2xx
    /// with status `assigning` as accepted, so the flow still completes).
    register_answered_201: bool => RegisterAnswered201,
    /// Answer a poll that finds the operation done with 201 instead of 200 (fails DPS-FLOW-002;
    /// devices take any 2xx, so the flow still completes).
    poll_done_201: bool => PollDone201,
    /// Refuse (CONNACK 5) a username whose api-version is `2025-07-01-preview` (fails
    /// DPS-CERT-001; what a refused preview device would have shown is inconclusive).
    refuse_preview_api_version: bool => RefusePreviewApiVersion,
    /// Assign an issuing registration without `issuedCertificateChain` (fails DPS-CERT-002).
    omit_issued_chain: bool => OmitIssuedChain,
    /// Issue a chain to a device of an issuing enrollment that sent no CSR, for a key of the
    /// emulator's making (fails DPS-CERT-003).
    chain_without_csr: bool => ChainWithoutCsr,
    /// Send the issued chain CA first (fails DPS-CERT-004).
    issued_chain_reversed: bool => IssuedChainReversed,
    /// Issue the leaf for a key of the emulator's making, not the CSR's (fails DPS-CERT-005).
    issue_for_other_key: bool => IssueForOtherKey,
    /// Issue the leaf with a subject CN other than the registration ID (fails DPS-CERT-006).
    issue_wrong_cn: bool => IssueWrongCn,
    /// Issue leaves valid for 365 days, past DPS's 90 (fails DPS-CERT-007).
    issue_long_validity: bool => IssueLongValidity,
    /// Sign a CSR whose own signature does not verify (fails DPS-CERT-008).
    accept_bad_csr: bool => AcceptBadCsr,
    /// Sign the leaf with a CA of the emulator's making, not the enrollment's issuing CA, and
    /// send that CA in the chain (fails DPS-CERT-009).
    issue_from_other_ca: bool => IssueFromOtherCa,
}

impl Deviations {
    /// The reply topic, as a deviating DPS would write it.
    pub fn reply_topic(&self, status: u16, rid: &str, retry_after: Option<u32>) -> String {
        let retry_after = if self.omit_retry_after { None } else { retry_after };
        let retry_after = if self.retry_after_zero { retry_after.map(|_| 0) } else { retry_after };
        let rid = if self.wrong_rid { format!("{rid}-wrong") } else { rid.to_string() };
        if self.reply_topic_without_slash {
            let topic = topics::reply_topic(status, &rid, retry_after);
            return topic.replacen(&format!("/{status}/?"), &format!("/{status}?"), 1);
        }
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

    /// Which WebSocket subprotocols a deviating DPS takes.
    pub fn subprotocol_rule(&self) -> SubprotocolRule {
        match (self.accept_any_subprotocol, self.case_sensitive_subprotocol) {
            (true, _) => SubprotocolRule::AnyOffered,
            (false, true) => SubprotocolRule::MqttExactly,
            (false, false) => SubprotocolRule::MqttAnyCase,
        }
    }

    /// Whether a deviating DPS refuses `password` (its SAS fields in `token`) for its form
    /// alone, before checking it.
    pub fn refuses_token_form(&self, password: &str, token: Option<&ParsedSas<'_>>) -> bool {
        let unencoded_sr = || token.is_some_and(|token| token.sr.contains('/'));
        let lower_case_sig = || {
            let sig = password.split("sig=").nth(1).and_then(|rest| rest.split('&').next()).unwrap_or_default();
            sig.split('%').skip(1).any(|escape| escape.chars().take(2).any(|c| c.is_ascii_lowercase()))
        };
        (self.refuse_unencoded_sr && unencoded_sr()) || (self.case_sensitive_sig && lower_case_sig())
    }

    /// With `trust_sr_device`, the registration ID the token's `sr` names (a deviating DPS checks
    /// the token against it); `None` otherwise.
    pub fn sr_device(&self, token: Option<&ParsedSas<'_>>) -> Option<crate::credentials::RegistrationId> {
        if !self.trust_sr_device {
            return None;
        }
        let resource = percent_encoding::percent_decode_str(token?.sr).decode_utf8().ok()?;
        let (_, id) = resource.split_once("/registrations/")?;
        crate::credentials::RegistrationId::new(id.to_string()).ok()
    }

    /// The TLS policy a deviating DPS would accept instead of `policy`.
    pub fn tls_policy(&self, mut policy: TlsPolicy) -> TlsPolicy {
        if self.accept_tls13 {
            policy.versions = TlsVersions::Tls12And13;
        }
        if self.refuse_tls12 {
            policy.versions = TlsVersions::Tls13Only;
        }
        policy
    }

    /// With `answer_old_tls`, the ServerHello a deviating DPS answers to a TLS 1.0 or 1.1
    /// ClientHello whose first bytes are `head` (record header, handshake type and length, then
    /// the client version: 11 bytes); `None` for anything else.
    pub fn old_tls_server_hello(&self, head: &[u8]) -> Option<Vec<u8>> {
        let [0x16, _, _, _, _, 0x01, _, _, _, 0x03, minor @ (0x01 | 0x02)] = *head else { return None };
        if !self.answer_old_tls {
            return None;
        }
        let mut hello = vec![
            0x16, 0x03, minor, 0x00, 42, // record: handshake, version, length 42
            0x02, 0x00, 0x00, 38, // ServerHello, length 38
            0x03, minor, // server_version: the one offered
        ];
        hello.extend_from_slice(&[0x5a; 32]); // random
        hello.extend_from_slice(&[0x00, 0x00, 0x2f, 0x00]); // no session ID, TLS_RSA_WITH_AES_128_CBC_SHA, null compression
        Some(hello)
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

mod shaping;

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
        let no_slash = Deviations { reply_topic_without_slash: true, ..Default::default() };
        assert_eq!(no_slash.reply_topic(202, "1", Some(3)), "$dps/registrations/res/202?$rid=1&retry-after=3");
        let wrong = Deviations { wrong_rid: true, ..Default::default() };
        assert_eq!(wrong.reply_topic(200, "7", None), "$dps/registrations/res/200/?$rid=7-wrong");
    }

    #[test]
    fn old_tls_is_answered_only_when_asked_and_only_for_old_hellos() {
        let hello = crate::conformance::probes::tls::client_hello(0x0301);
        assert_eq!(Deviations::default().old_tls_server_hello(&hello[..11]), None);
        let answering = Deviations { answer_old_tls: true, ..Default::default() };
        let answer = answering.old_tls_server_hello(&hello[..11]).expect("a TLS 1.0 hello is answered");
        assert_eq!(answer.len(), 5 + 42);
        assert_eq!((answer[0], answer[5], answer[9], answer[10]), (0x16, 0x02, 0x03, 0x01));
        let modern = crate::conformance::probes::tls::client_hello(0x0303);
        assert_eq!(answering.old_tls_server_hello(&modern[..11]), None);
    }
}
