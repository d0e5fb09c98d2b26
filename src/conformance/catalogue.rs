//! The catalogue of conformance checks: one entry per promise of the DPS MQTT reference
//! (`docs/dps-mqtt.md`), each with a stable ID and everything else about its check: level, kind,
//! statement, how firm its ground is, the probes that judge it in `dpsbench conform`, and the
//! emulator deviations expected to fail it. The suite, the tests and the table in
//! `docs/conformance.md` derive from it; a passive check's entry takes its ID from
//! [`PassiveCheck::id`], so the passive checks never look the catalogue up. IDs are never reused:
//! a retired check keeps its ID out of use forever.
//!
//! No IO. A uniform table, so longer than the usual file.

use serde::{Deserialize, Serialize};

use super::passive::PassiveCheck;
use super::probes::table::{self, Probe};
use crate::emulator::deviations::Deviation;
use crate::grading::{Level, Source};

/// How a check runs: passively on every flow, or as an active probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Passive,
    Probe,
}

/// One catalogue entry: everything about one check.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Stable, never reused: `DPS-<AREA>-<NNN>`.
    pub id: &'static str,
    pub level: Level,
    pub kind: Kind,
    /// For a passive check, the one that evaluates it on every packet of every flow.
    pub passive: Option<PassiveCheck>,
    pub title: &'static str,
    /// The statement of `docs/dps-mqtt.md` it verifies.
    pub statement: &'static str,
    pub source: Source,
    /// The probes whose verdicts judge it in `dpsbench conform`; when several do, their findings
    /// add up (any failure fails it).
    pub probes: &'static [&'static Probe],
    /// The `Deviations` switches of the emulator expected to fail it.
    pub failed_by: &'static [Deviation],
}

impl Check {
    /// Whether judging it creates registrations (billable on a real DPS instance).
    pub fn billable(&self) -> bool {
        self.probes.iter().any(|probe| probe.billable)
    }

    /// Whether `probe` judges it.
    pub fn judged_by(&self, probe: &Probe) -> bool {
        self.probes.iter().any(|p| p.name == probe.name)
    }
}

/// Every check, in report order.
pub static CATALOGUE: &[Check] = &[
    // Transport and TLS (docs/dps-mqtt.md §1; §6 items 1-2).
    Check {
        id: "DPS-TLS-001",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "Plain MQTT on the TLS port is refused",
        statement: "§1 Transports: MQTT 3.1.1 over TLS on 8883; no plain MQTT. §6.1",
        source: Source::Documented("§1"),
        probes: &[&table::PLAIN_MQTT],
        failed_by: &[Deviation::AcceptPlainMqtt],
    },
    Check {
        id: "DPS-TLS-002",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "Port 1883 is not served",
        statement: "§1 Transports: no port 1883. §6.1",
        source: Source::Documented("§1"),
        probes: &[&table::PLAIN_PORT],
        failed_by: &[Deviation::PlainListen],
    },
    Check {
        id: "DPS-TLS-003",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A TLS 1.2 handshake succeeds and negotiates TLS 1.2",
        statement: "§1 TLS: clients must use TLS 1.2. §6.2",
        source: Source::Documented("§1"),
        probes: &[&table::TLS12],
        failed_by: &[Deviation::RefuseTls12],
    },
    Check {
        id: "DPS-TLS-004",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "TLS 1.0 and TLS 1.1 are refused",
        statement: "§1 TLS: an instance with minimum TLS version 1.2 refuses TLS 1.0/1.1. §6.2",
        source: Source::Inference("§1: an instance whose minimum TLS version is 1.2 refuses TLS 1.0 and 1.1"),
        probes: &[&table::OLD_TLS],
        failed_by: &[Deviation::AnswerOldTls],
    },
    Check {
        id: "DPS-TLS-005",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "A client offering only TLS 1.3 is refused",
        statement: "§1 TLS: the TLS version DPS supports is 1.2. §6.2",
        source: Source::Documented("§1"),
        probes: &[&table::TLS13_ALONE],
        failed_by: &[Deviation::AcceptTls13, Deviation::RefuseTls12],
    },
    // MQTT sessions and subscriptions (§1, §3; §6 items 3-5).
    Check {
        id: PassiveCheck::SessionPresent.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::SessionPresent),
        title: "CONNACK SessionPresent is 0, whatever CleanSession says",
        statement: "§1 CleanSession: every session is non-persistent; CONNACK always has SessionPresent = 0. §6.3",
        source: Source::Documented("§1"),
        probes: &[&table::LIFECYCLE, &table::CLEAN_SESSION],
        failed_by: &[Deviation::SessionPresent],
    },
    Check {
        id: "DPS-MQTT-002",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "No subscription survives a reconnect with CleanSession 0",
        statement: "§1 CleanSession: DPS ignores it; every session is non-persistent. §6.3",
        source: Source::Documented("§1"),
        probes: &[&table::CLEAN_SESSION],
        failed_by: &[Deviation::KeepSubscriptions],
    },
    Check {
        id: "DPS-MQTT-003",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A QoS 2 subscription is granted QoS 1",
        statement: "§3: a subscription requested at QoS 2 is granted QoS 1 in SUBACK. §6.4",
        source: Source::Documented("§3"),
        probes: &[&table::QOS2],
        failed_by: &[Deviation::GrantQos2],
    },
    Check {
        id: PassiveCheck::ReplyQos.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::ReplyQos),
        title: "Replies to a QoS 1 subscription arrive at QoS 1",
        statement: "§3: replies are delivered at QoS 1. §6.4",
        source: Source::Documented("§3"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::ReplyQos0],
    },
    Check {
        id: PassiveCheck::PubackFirst.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::PubackFirst),
        title: "The device's QoS 1 request is PUBACKed before the reply arrives",
        statement: "§3: emulator must PUBACK a device's QoS 1 PUBLISH before sending the reply (C# v1 fails otherwise)",
        source: Source::Inference("§3: the C# SDK v1 fails when the reply arrives before the PUBACK"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::ReplyBeforePuback],
    },
    Check {
        id: "DPS-MQTT-006",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A filter other than $dps/registrations/res/# is refused (SUBACK 0x80)",
        statement: "§3: DPS accepts only the documented topic filters; it is not a pub/sub broker. §6.5",
        source: Source::Documented("§3"),
        probes: &[&table::OTHER_FILTERS],
        failed_by: &[Deviation::AcceptOtherFilters],
    },
    Check {
        id: "DPS-MQTT-007",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "Wildcard filters on reply subtopics are refused",
        statement: "§3: DPS does not allow # or ? to filter subtopics. §6.5",
        source: Source::Documented("§3"),
        probes: &[&table::WILDCARD_SUBTOPICS],
        failed_by: &[Deviation::AcceptOtherFilters],
    },
    Check {
        id: "DPS-MQTT-008",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A PUBLISH to an undocumented topic is refused",
        statement: "§3: DPS accepts only the documented topic names. §6.5",
        source: Source::Documented("§3"),
        probes: &[&table::UNDOCUMENTED_TOPIC],
        failed_by: &[Deviation::AcceptUndocumentedTopics],
    },
    Check {
        id: "DPS-MQTT-009",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "Only MQTT 3.1.1 is served: an MQTT 3.1 or MQTT 5 CONNECT is refused",
        statement: "§1 Protocol: MQTT 3.1.1 (protocol level 4) only",
        source: Source::Documented("§1"),
        probes: &[&table::PROTOCOL_LEVELS],
        failed_by: &[Deviation::AcceptMqtt5],
    },
    Check {
        id: "DPS-MQTT-010",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "UNSUBSCRIBE is answered with UNSUBACK and DISCONNECT ends the connection",
        statement: "§1: DPS speaks MQTT 3.1.1, whose UNSUBSCRIBE (§3.10) and DISCONNECT (§3.14) SDKs send",
        source: Source::Inference(
            "§1: an MQTT 3.1.1 server answers UNSUBSCRIBE and closes on DISCONNECT; SDKs send both",
        ),
        probes: &[&table::UNSUBSCRIBE_DISCONNECT],
        failed_by: &[Deviation::IgnoreUnsubscribe],
    },
    Check {
        id: "DPS-MQTT-011",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "After a QoS 2 subscription, replies still arrive at QoS 1",
        statement: "§3: a subscription requested at QoS 2 is granted QoS 1, and replies are delivered at QoS 1. §6.4",
        source: Source::Documented("§3"),
        probes: &[&table::QOS2_REPLIES],
        failed_by: &[Deviation::ReplyAtRequestedQos, Deviation::ReplyQos0],
    },
    // Reply topics (§3; §6 item 6).
    Check {
        id: PassiveCheck::TopicForm.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::TopicForm),
        title: "Reply topics have the form $dps/registrations/res/{status}/?{params}",
        statement: "§3 Topics: response $dps/registrations/res/{status}/?$rid={rid}[&retry-after={seconds}]",
        source: Source::Documented("§3"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::ReplyTopicWithoutSlash],
    },
    Check {
        id: PassiveCheck::RidEcho.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::RidEcho),
        title: "$rid is echoed byte for byte",
        statement: "§3: emulator must echo $rid byte for byte. §6.6",
        source: Source::Documented("§3"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::WrongRid],
    },
    Check {
        id: PassiveCheck::RidFirst.id(),
        level: Level::Should,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::RidFirst),
        title: "$rid comes first in the reply's query",
        statement: "§3: $rid first in the reply's query (Python loses retry-after otherwise)",
        source: Source::SdkBehaviour("§3: the Python SDK parses $rid first and loses retry-after otherwise"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::RidNotFirst],
    },
    Check {
        id: PassiveCheck::RetryAfter.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::RetryAfter),
        title: "retry-after is present and numeric on every 202 and 429",
        statement: "§5: always send retry-after on 202 and 429. §6.6",
        source: Source::Documented("§5"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::OmitRetryAfter],
    },
    Check {
        id: PassiveCheck::RetryAfterRange.id(),
        level: Level::Should,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::RetryAfterRange),
        title: "retry-after is within 1-300 s",
        statement: "§5: keep retry-after within 1-300 s (the C SDK replaces any other value by 1 s)",
        source: Source::SdkBehaviour("§5: the C SDK replaces a retry-after outside 1-300 s by 1 s"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::RetryAfterZero],
    },
    // The provisioning flow (§4; §6 items 6-7).
    Check {
        id: PassiveCheck::RegisterAccepted.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::RegisterAccepted),
        title: "Register is answered 202 with an operationId and status assigning",
        statement: "§4 step 3; §6.6",
        source: Source::Documented("§4"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::RegisterAnswered201],
    },
    Check {
        id: PassiveCheck::PollStatus.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::PollStatus),
        title: "Polls are answered 202 while assigning and 200 when done",
        statement: "§4 step 4; §6.7",
        source: Source::Documented("§4"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::PollDone201],
    },
    Check {
        id: PassiveCheck::OperationIdStable.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::OperationIdStable),
        title: "The operationId is stable across polls",
        statement: "§6.7: operationId is stable across polls",
        source: Source::Documented("§6.7"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::ChangeOperationId],
    },
    Check {
        id: "DPS-FLOW-004",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "The status moves only forward (no assigning after a final status)",
        statement: "§6.7: status moves only forward",
        source: Source::Documented("§6.7"),
        probes: &[&table::STATUS_FORWARD],
        failed_by: &[Deviation::StatusBackwards, Deviation::ReplyTopicWithoutSlash],
    },
    Check {
        id: "DPS-FLOW-005",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "The registration lifecycle completes: register, poll, assigned",
        statement: "§4: the flow, steps 1-5",
        source: Source::Documented("§4"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::IncompleteAssignment, Deviation::UnassignedFinal, Deviation::ReplyTopicWithoutSlash],
    },
    Check {
        id: "DPS-FLOW-006",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "Every SDK's dialect provisions (python, node, c, embedded-c, csharp)",
        statement: "§1-5: SDKs differ on sr encoding, skn, username, api-version, $rid, bodies, keep-alive, CleanSession and QoS, and all work against DPS",
        source: Source::SdkBehaviour("§1-5: every SDK provisions against DPS in its own dialect"),
        probes: &[&table::EVERY_DIALECT],
        failed_by: &[
            Deviation::CaseSensitiveSig,
            Deviation::RefuseUnencodedSr,
            Deviation::IncompleteAssignment,
            Deviation::UnassignedFinal,
            Deviation::ReplyTopicWithoutSlash,
        ],
    },
    // Bodies (§4; §6 item 10).
    Check {
        id: PassiveCheck::BodySchema.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::BodySchema),
        title: "Reply bodies match the schema for their status",
        statement: "§4: RegistrationOperationStatus on 2xx (types, required fields per status); the error body otherwise. §6.10",
        source: Source::Documented("§4"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::IncompleteAssignment],
    },
    Check {
        id: PassiveCheck::NoUnassigned.id(),
        level: Level::Must,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::NoUnassigned),
        title: "status unassigned is never sent over MQTT",
        statement: "§4: unassigned belongs to the TPM flow; never send it over MQTT. §6.10",
        source: Source::Documented("§4"),
        probes: &[&table::LIFECYCLE],
        failed_by: &[Deviation::UnassignedFinal],
    },
    // Authentication (§1, §2; §6 item 8).
    Check {
        id: "DPS-AUTH-001",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A SAS token with a wrong signature is refused",
        statement: "§2: DPS verifies the HMAC. §6.8 (CONNACK 5 and res/401 are both conformant)",
        source: Source::Documented("§2"),
        probes: &[&table::WRONG_SIGNATURE],
        failed_by: &[Deviation::AcceptAnyPassword],
    },
    Check {
        id: "DPS-AUTH-002",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "An expired SAS token is refused",
        statement: "§2: reject an se in the past. §6.8",
        source: Source::Documented("§2"),
        probes: &[&table::EXPIRED_TOKEN],
        failed_by: &[Deviation::AcceptAnyPassword, Deviation::AcceptExpiredTokens],
    },
    Check {
        id: "DPS-AUTH-003",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A connection naming another ID scope is refused",
        statement: "§1 Username: {idScope}/registrations/{registrationId}/...; §2: sr names this scope. §6.8",
        source: Source::Documented("§1"),
        probes: &[&table::WRONG_SCOPE],
        failed_by: &[Deviation::AcceptAnyScope],
    },
    Check {
        id: "DPS-AUTH-004",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A clientId that differs from the username's registration ID is refused",
        statement: "§1 ClientId: the registration ID. §6.8",
        source: Source::Documented("§1"),
        probes: &[&table::CLIENT_ID_MISMATCH],
        failed_by: &[Deviation::AcceptClientIdMismatch],
    },
    Check {
        id: "DPS-AUTH-005",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "An X.509 certificate whose CN differs from the registration ID is refused",
        statement: "§2 X.509: the registration ID must equal the leaf's subject CN. §6.8",
        source: Source::Documented("§2"),
        probes: &[&table::X509_CN_MISMATCH],
        failed_by: &[Deviation::AcceptCnMismatch],
    },
    Check {
        id: "DPS-AUTH-006",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A token whose sig escapes are in lower-case hex is accepted",
        statement: "§2: the C SDK writes every escape of its token in lower case (%2b %2f %3d) and provisions",
        source: Source::SdkBehaviour("§2: azure-iot-sdk-c URL-encodes sig with lower-case hex and works against DPS"),
        probes: &[&table::LOWER_CASE_SIG],
        failed_by: &[Deviation::CaseSensitiveSig],
    },
    Check {
        id: "DPS-AUTH-007",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A token whose sr names another device is refused, the username being the connecting device's",
        statement: "§2: sr is {idScope}/registrations/{registrationId} of the connecting device. §6.8",
        source: Source::Documented("§2"),
        probes: &[&table::SR_OTHER_DEVICE],
        failed_by: &[Deviation::TrustSrDevice, Deviation::AcceptAnyPassword],
    },
    // WebSocket (§1; §6 item 9).
    Check {
        id: "DPS-WS-001",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "MQTT over WebSocket with subprotocol mqtt runs the flow",
        statement: "§1 Transports: MQTT over WebSocket on 443, subprotocol mqtt. §6.9",
        source: Source::Documented("§1"),
        probes: &[&table::WEBSOCKET_LIFECYCLE],
        failed_by: &[
            Deviation::CaseSensitiveSubprotocol,
            Deviation::IncompleteAssignment,
            Deviation::UnassignedFinal,
            Deviation::ReplyTopicWithoutSlash,
        ],
    },
    Check {
        id: "DPS-WS-002",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "A WebSocket upgrade with a wrong subprotocol is refused",
        statement: "§1 WebSocket path: DPS matches the subprotocol mqtt",
        source: Source::Documented("§1"),
        probes: &[&table::WRONG_SUBPROTOCOL],
        failed_by: &[Deviation::AcceptAnySubprotocol],
    },
    // Certificate issuance at registration (§8, api-version 2025-07-01-preview): should, as a
    // preview a DPS instance may not offer; run only against a target said to issue.
    Check {
        id: "DPS-CERT-001",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "The preview api-version 2025-07-01-preview is accepted",
        statement: "§8: a device asking for a certificate sends api-version=2025-07-01-preview in its username",
        source: Source::SdkBehaviour("§8: the C SDK design notes and a published MQTT client send it"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::RefusePreviewApiVersion],
    },
    Check {
        id: "DPS-CERT-002",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "A CSR sent to an issuing enrollment gets an issued certificate chain",
        statement: "§8: DPS forwards the CSR to the enrollment's CA and returns the issued certificate in registrationState.issuedCertificateChain",
        source: Source::Documented("§8"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::OmitIssuedChain],
    },
    Check {
        id: "DPS-CERT-003",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "A registration without a CSR gets no issued certificate chain",
        statement: "§8: the chain is the answer to a CSR",
        source: Source::Inference("the chain is issued for the CSR's key; without one there is nothing to certify"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::ChainWithoutCsr],
    },
    Check {
        id: PassiveCheck::IssuedChainShape.id(),
        level: Level::Should,
        kind: Kind::Passive,
        passive: Some(PassiveCheck::IssuedChainShape),
        title: "The issued chain is base64 DER certificates, leaf first",
        statement: "§8: issuedCertificateChain is an array of base64 DER certificates, leaf first",
        source: Source::SdkBehaviour("§8: the published MQTT client reads the chain so"),
        probes: &[&table::LIFECYCLE, &table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::IssuedChainReversed],
    },
    Check {
        id: "DPS-CERT-005",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "The issued leaf holds the CSR's public key",
        statement: "§8: the private key never leaves the device; the certificate is issued for the CSR's key",
        source: Source::Documented("§8"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::IssueForOtherKey],
    },
    Check {
        id: "DPS-CERT-006",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "The issued leaf's subject CN is the registration ID",
        statement: "§8: the device's identity in the issued certificate is its registration ID",
        source: Source::Inference("the CSR's subject CN is the registration ID, as for X.509 onboarding (§2)"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::IssueWrongCn],
    },
    Check {
        id: "DPS-CERT-007",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "The issued leaf is valid for 1 to 90 days",
        statement: "§8: leaf validity is a policy of 1-90 days",
        source: Source::Documented("§8"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::IssueLongValidity],
    },
    Check {
        id: "DPS-CERT-008",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "A CSR whose signature does not verify is refused",
        statement: "§8: DPS issues for the key the CSR proves it holds; no error code is documented over MQTT",
        source: Source::Inference("a CA signs only a CSR whose signature verifies (PKCS#10 proof of possession)"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::AcceptBadCsr],
    },
    Check {
        id: "DPS-CERT-009",
        level: Level::Should,
        kind: Kind::Probe,
        passive: None,
        title: "The issued chain reaches the enrollment's issuing CA",
        statement: "§8: DPS forwards the CSR to the enrollment's CA, which signs the device's certificate",
        source: Source::Documented("§8"),
        probes: &[&table::CERTIFICATE_ISSUANCE],
        failed_by: &[Deviation::IssueFromOtherCa],
    },
    // Throttling (§5).
    Check {
        id: "DPS-THR-001",
        level: Level::Must,
        kind: Kind::Probe,
        passive: None,
        title: "A throttled request is answered 429 with retry-after",
        statement: "§5: throttled requests get res/429/?$rid=..&retry-after=N",
        source: Source::Documented("§5"),
        probes: &[&table::THROTTLING],
        failed_by: &[Deviation::OmitRetryAfter],
    },
];

/// The check with this ID.
pub fn find(id: &str) -> Option<&'static Check> {
    CATALOGUE.iter().find(|c| c.id == id)
}

/// The catalogue entry of a passive check.
pub fn passive(check: PassiveCheck) -> &'static Check {
    CATALOGUE
        .iter()
        .find(|c| c.passive == Some(check))
        .expect("every passive check has its catalogue entry (a test of the catalogue checks it)")
}

/// IDs of the checks `deviation` (a switch of the emulator's `Deviations`) is expected to fail.
pub fn failed_by(deviation: Deviation) -> Vec<&'static str> {
    CATALOGUE.iter().filter(|c| c.failed_by.contains(&deviation)).map(|c| c.id).collect()
}

/// Every deviation some check names, each once, in catalogue order.
pub fn deviations() -> Vec<Deviation> {
    let mut names: Vec<Deviation> = Vec::new();
    for name in CATALOGUE.iter().flat_map(|c| c.failed_by.iter().copied()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests;
