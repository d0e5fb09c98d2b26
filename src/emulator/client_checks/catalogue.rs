//! The catalogue of client checks: one entry per obligation the DPS MQTT page puts on a device
//! (`docs/clients.md`), each with a stable ID, a level, how firm its ground is, and the device
//! misbehaviour that fails it on purpose (the failing control). The judge, the report and the
//! table in `docs/clients.md` derive from it. IDs are never reused.
//!
//! No IO. A uniform table, so longer than the usual file.

use crate::device::Misbehaviour;
use crate::grading::{Level, Source};

/// The client checks the judge evaluates; [`CATALOGUE`] holds one entry for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ClientCheck {
    Tls12,
    Mqtt311,
    ClientIdIsRegistrationId,
    UsernameForm,
    CleanSession,
    SasResource,
    SasKeyName,
    SasUnexpired,
    SasExpiryBounded,
    CertificateCn,
    SubscribeFirst,
    OnlyResponseFilter,
    RequestTopic,
    DistinctRid,
    RegisterBody,
    RegisterBodyNamesDevice,
    PayloadSize,
    PollAfterRetryAfter,
    PollOwnOperation,
    StopAfterFinal,
    WaitAfterThrottle,
    ReconnectBackoff,
    Disconnect,
}

impl ClientCheck {
    pub const ALL: [ClientCheck; 23] = [
        Self::Tls12,
        Self::Mqtt311,
        Self::ClientIdIsRegistrationId,
        Self::UsernameForm,
        Self::CleanSession,
        Self::SasResource,
        Self::SasKeyName,
        Self::SasUnexpired,
        Self::SasExpiryBounded,
        Self::CertificateCn,
        Self::SubscribeFirst,
        Self::OnlyResponseFilter,
        Self::RequestTopic,
        Self::DistinctRid,
        Self::RegisterBody,
        Self::RegisterBodyNamesDevice,
        Self::PayloadSize,
        Self::PollAfterRetryAfter,
        Self::PollOwnOperation,
        Self::StopAfterFinal,
        Self::WaitAfterThrottle,
        Self::ReconnectBackoff,
        Self::Disconnect,
    ];

    /// Its catalogue entry: the catalogue lists the checks in the order of [`ClientCheck::ALL`]
    /// (a test of the catalogue checks it), so this is an index.
    pub fn entry(self) -> &'static Entry {
        &CATALOGUE[self.index()]
    }

    /// Its place in [`ClientCheck::ALL`] and in the catalogue.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn id(self) -> &'static str {
        self.entry().id
    }

    pub(super) fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

/// One catalogue entry: everything about one client check.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Stable, never reused: `DPS-CLIENT-<AREA>-<NNN>`.
    pub id: &'static str,
    pub check: ClientCheck,
    /// A broken **must** makes `--client-report` exit 1; a broken **should** is reported only.
    pub level: Level,
    pub title: &'static str,
    /// What the device must do, and where the reference says so.
    pub statement: &'static str,
    pub source: Source,
    /// The device misbehaviours expected to fail it (`[devices] misbehave`).
    pub failed_by: &'static [Misbehaviour],
}

/// Retry-after is judged with this much slack: a device measures from the reply's arrival, the
/// emulator from its sending, and timers fire a little early or late.
pub const TIMING_SLACK_MS: u64 = 100;

/// A reconnect within this long after a failed connection is a quick one; two in a row is a
/// tight loop.
pub const QUICK_RECONNECT_MS: u64 = 1000;

/// `se` more than this far ahead is absurd (a year).
pub const LONGEST_SAS_SECONDS: u64 = 366 * 24 * 3600;

/// api-versions DPS has released for MQTT devices (`docs/dps-mqtt.md` §1).
pub const KNOWN_API_VERSIONS: [&str; 7] = [
    "2017-11-15",
    "2018-09-01-preview",
    "2019-03-31",
    "2021-06-01",
    "2021-11-01-preview",
    "2025-07-01-preview",
    "2026-11-02-preview",
];

/// Every client check, in report order.
pub static CATALOGUE: &[Entry] = &[
    Entry {
        id: "DPS-CLIENT-TLS-001",
        check: ClientCheck::Tls12,
        level: Level::Must,
        title: "The device negotiates TLS 1.2",
        statement: "§1 TLS: clients must use TLS 1.2. A handshake that offers no TLS 1.2 counts, without a registration ID",
        source: Source::Documented("§1"),
        failed_by: &[Misbehaviour::Tls13Only],
    },
    Entry {
        id: "DPS-CLIENT-MQTT-001",
        check: ClientCheck::Mqtt311,
        level: Level::Must,
        title: "CONNECT is MQTT 3.1.1 (protocol level 4)",
        statement: "§1 Transports: MQTT 3.1.1 (protocol level 4)",
        source: Source::Documented("§1"),
        failed_by: &[Misbehaviour::Mqtt5],
    },
    Entry {
        id: "DPS-CLIENT-MQTT-002",
        check: ClientCheck::ClientIdIsRegistrationId,
        level: Level::Must,
        title: "The ClientId is the registration ID of the username",
        statement: "§1 ClientId: the registration ID",
        source: Source::Documented("§1"),
        failed_by: &[Misbehaviour::ClientIdMismatch],
    },
    Entry {
        id: "DPS-CLIENT-MQTT-003",
        check: ClientCheck::UsernameForm,
        level: Level::Must,
        title: "The username is {idScope}/registrations/{id}/api-version={v} with a released api-version",
        statement: "§1 Username: {idScope}/registrations/{registrationId}/api-version={v}[&ClientVersion=...]",
        source: Source::Documented("§1"),
        failed_by: &[Misbehaviour::UnknownApiVersion],
    },
    Entry {
        id: "DPS-CLIENT-MQTT-004",
        check: ClientCheck::CleanSession,
        level: Level::Should,
        title: "CONNECT sets CleanSession 1",
        statement: "§9: CleanSession 1 is recommended; DPS keeps no session (§1)",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::KeepSession],
    },
    Entry {
        id: "DPS-CLIENT-AUTH-001",
        check: ClientCheck::SasResource,
        level: Level::Must,
        title: "The SAS token's sr names this device: {idScope}/registrations/{registrationId}",
        statement: "§2 SAS token: sr is the URL-encoded resource URI {idScope}/registrations/{registrationId}",
        source: Source::Documented("§2"),
        failed_by: &[Misbehaviour::SrOtherDevice],
    },
    Entry {
        id: "DPS-CLIENT-AUTH-002",
        check: ClientCheck::SasKeyName,
        level: Level::Should,
        title: "A group-enrollment device's SAS token carries skn=registration",
        statement: "§9: the password's skn is `registration`; §2: Python and azure-sdk-for-c send none, and DPS accepts that",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::NoSkn],
    },
    Entry {
        id: "DPS-CLIENT-AUTH-003",
        check: ClientCheck::SasUnexpired,
        level: Level::Must,
        title: "The SAS token's se is in the future",
        statement: "§2 SAS token: se is the expiry; DPS refuses an expired token",
        source: Source::Documented("§2"),
        failed_by: &[Misbehaviour::ExpiredToken],
    },
    Entry {
        id: "DPS-CLIENT-AUTH-004",
        check: ClientCheck::SasExpiryBounded,
        level: Level::Should,
        title: "The SAS token's se is at most a year ahead",
        statement: "§2 SAS token: a token is a short-lived credential (the SDKs sign for an hour); one valid for years is a standing secret",
        source: Source::Inference(
            "the SDKs sign tokens for about an hour and renew them; DPS documents no upper bound",
        ),
        failed_by: &[Misbehaviour::FarExpiry],
    },
    Entry {
        id: "DPS-CLIENT-AUTH-005",
        check: ClientCheck::CertificateCn,
        level: Level::Must,
        title: "An X.509 device's certificate CN is its registration ID",
        statement: "§2 X.509: the registration ID in the username and the clientId must equal the leaf's subject CN",
        source: Source::Documented("§2"),
        failed_by: &[Misbehaviour::CnMismatch],
    },
    Entry {
        id: "DPS-CLIENT-SUB-001",
        check: ClientCheck::SubscribeFirst,
        level: Level::Must,
        title: "The device subscribes to $dps/registrations/res/# before its first PUBLISH",
        statement: "§9: subscribe to $dps/registrations/res/# before publishing; §4 step 2 (replies to an unsubscribed device are lost)",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::PublishBeforeSubscribe],
    },
    Entry {
        id: "DPS-CLIENT-SUB-002",
        check: ClientCheck::OnlyResponseFilter,
        level: Level::Must,
        title: "The device subscribes to no other filter, wildcard or not",
        statement: "§3: DPS accepts only the documented filter; the # only lets properties ride in the topic name",
        source: Source::Documented("§3"),
        failed_by: &[Misbehaviour::ExtraSubscription],
    },
    Entry {
        id: "DPS-CLIENT-TOPIC-001",
        check: ClientCheck::RequestTopic,
        level: Level::Must,
        title: "Requests go to the register or poll topic, with a $rid (and the poll's operationId)",
        statement: "§3 Topics: $dps/registrations/PUT/iotdps-register/?$rid={rid} and \
                    $dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={id}",
        source: Source::Documented("§3"),
        failed_by: &[Misbehaviour::RegisterWithoutRid],
    },
    Entry {
        id: "DPS-CLIENT-TOPIC-002",
        check: ClientCheck::DistinctRid,
        level: Level::Must,
        title: "No two requests in flight share a $rid",
        statement: "§9: distinct $rid per request in flight (a reply is matched to its request by $rid, §3)",
        source: Source::SdkBehaviour(
            "every SDK matches replies by $rid; azure-sdk-for-c's literal 1 is safe only one request at a time",
        ),
        failed_by: &[Misbehaviour::DuplicateRid],
    },
    Entry {
        id: "DPS-CLIENT-BODY-001",
        check: ClientCheck::RegisterBody,
        level: Level::Must,
        title: "The register body is empty or a JSON Device Registration naming no other device",
        statement: "§4, §9: register with a JSON Device Registration body; the C SDK sends none",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::RegisterBodyOtherId],
    },
    Entry {
        id: "DPS-CLIENT-BODY-002",
        check: ClientCheck::RegisterBodyNamesDevice,
        level: Level::Should,
        title: "The register body carries the device's registrationId",
        statement: "§4: the documented body is {\"registrationId\":\"id\"}; C# and azure-sdk-for-c omit it and DPS takes identity from the connection",
        source: Source::Documented("§4"),
        failed_by: &[Misbehaviour::RegisterBodyWithoutId],
    },
    Entry {
        id: "DPS-CLIENT-BODY-003",
        check: ClientCheck::PayloadSize,
        level: Level::Must,
        title: "A request's payload is at most 96 KB",
        statement: "§5 Limits: message size ≤ 96 KB",
        source: Source::Documented("§5"),
        failed_by: &[Misbehaviour::OversizedPayload],
    },
    Entry {
        id: "DPS-CLIENT-FLOW-001",
        check: ClientCheck::PollAfterRetryAfter,
        level: Level::Must,
        title: "The device polls only after the retry-after it was given",
        statement: "§9: poll after a delay equal to retry-after (judged with 100 ms of slack)",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::PollEarly],
    },
    Entry {
        id: "DPS-CLIENT-FLOW-002",
        check: ClientCheck::PollOwnOperation,
        level: Level::Must,
        title: "The device polls with the operationId it received",
        statement: "§9: poll with the operationId it was given (§4 step 4)",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::WrongOperationId],
    },
    Entry {
        id: "DPS-CLIENT-FLOW-003",
        check: ClientCheck::StopAfterFinal,
        level: Level::Must,
        title: "The device stops polling after a final status",
        statement: "§9: poll until a 200; §4: status moves only forward, so a final status is the end",
        source: Source::Documented("§9"),
        failed_by: &[Misbehaviour::PollAfterAssigned],
    },
    Entry {
        id: "DPS-CLIENT-FLOW-004",
        check: ClientCheck::WaitAfterThrottle,
        level: Level::Must,
        title: "After a 429 the device waits retry-after before its next request",
        statement: "§5: on 429 wait retry-after (judged with 100 ms of slack)",
        source: Source::Documented("§5"),
        failed_by: &[Misbehaviour::IgnoreThrottleRetryAfter],
    },
    Entry {
        id: "DPS-CLIENT-CONN-001",
        check: ClientCheck::ReconnectBackoff,
        level: Level::Must,
        title: "After failed connections the device reconnects with a delay, not in a tight loop",
        statement: "§9: reconnect after a refusal or a dropped connection with a growing delay. One quick reconnect \
                    (under 1 s) is allowed; two in a row after failed connections are a tight loop",
        source: Source::SdkBehaviour(
            "the SDKs back off (Python: 10 s after a first quick retry); a fleet reconnecting at once is the storm that hurts DPS",
        ),
        failed_by: &[Misbehaviour::ReconnectTightLoop],
    },
    Entry {
        id: "DPS-CLIENT-CONN-002",
        check: ClientCheck::Disconnect,
        level: Level::Should,
        title: "After its final status the device sends DISCONNECT",
        statement: "§4 step 5 and §9: DISCONNECT when done",
        source: Source::SdkBehaviour("Python, Node and the C SDKs send DISCONNECT after provisioning"),
        failed_by: &[Misbehaviour::NoDisconnect],
    },
];

/// The entry with `id`.
pub fn find(id: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|entry| entry.id == id)
}

/// The checks `misbehaviour` is expected to fail.
pub fn failed_by(misbehaviour: Misbehaviour) -> Vec<ClientCheck> {
    CATALOGUE.iter().filter(|entry| entry.failed_by.contains(&misbehaviour)).map(|entry| entry.check).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_check_has_one_entry_a_unique_id_and_a_failing_control() {
        let ids: HashSet<&str> = CATALOGUE.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), CATALOGUE.len(), "IDs are unique");
        assert_eq!(CATALOGUE.len(), ClientCheck::ALL.len());
        for (index, check) in ClientCheck::ALL.into_iter().enumerate() {
            assert_eq!((CATALOGUE[index].check, check.index()), (check, index), "the catalogue is in the order of ALL");
            let entry = check.entry();
            assert!(entry.id.starts_with("DPS-CLIENT-"), "{}", entry.id);
            assert!(!entry.failed_by.is_empty(), "{} names no misbehaviour that fails it", entry.id);
            assert!(!entry.statement.is_empty() && !entry.title.is_empty(), "{}", entry.id);
        }
    }

    /// The table `docs/clients.md` holds between its markers.
    fn docs_table() -> String {
        let mut out = String::from("| ID | Level | Title | Source | Failed by |\n|---|---|---|---|---|\n");
        for entry in CATALOGUE {
            let level = entry.level.name();
            let failed_by: Vec<String> = entry.failed_by.iter().map(|m| format!("`{m}`")).collect();
            out.push_str(&format!(
                "| `{}` | {level} | {} | {} | {} |\n",
                entry.id,
                entry.title.replace('|', "\\|"),
                entry.source,
                failed_by.join(", ")
            ));
        }
        out
    }

    #[test]
    fn docs_clients_md_holds_the_catalogue() {
        crate::grading::docs::assert_docs_hold(
            "docs/clients.md",
            "<!-- BEGIN client catalogue: generated from src/emulator/client_checks/catalogue.rs -->\n",
            "<!-- END client catalogue -->\n",
            &docs_table(),
            "docs_clients_md_holds_the_catalogue",
        );
    }

    #[test]
    fn every_misbehaviour_fails_some_check() {
        for misbehaviour in Misbehaviour::ALL {
            assert!(!failed_by(misbehaviour).is_empty(), "{misbehaviour} fails no client check");
        }
    }
}
