//! The catalogue of conformance checks: one entry per promise of the DPS MQTT reference, each
//! with a stable ID. IDs are never reused: a retired check keeps its ID out of use forever.
//!
//! A uniform table, so longer than the usual file.

use super::{Check, Kind, Level};

macro_rules! check {
    ($id:literal, $level:ident, $kind:ident, $title:literal, $statement:literal) => {
        Check { id: $id, level: Level::$level, kind: Kind::$kind, title: $title, statement: $statement }
    };
}

/// Every check, in report order.
pub static CATALOGUE: &[Check] = &[
    // Transport and TLS (dps-mqtt.md §1, §5.2; §6 items 1-2).
    check!(
        "DPS-TLS-001",
        Must,
        Probe,
        "Plain MQTT on the TLS port is refused",
        "§1 Transports: MQTT 3.1.1 over TLS on 8883; no plain MQTT. §6.1"
    ),
    check!("DPS-TLS-002", Must, Probe, "Port 1883 is not served", "§1 Transports: no port 1883. §6.1"),
    check!(
        "DPS-TLS-003",
        Must,
        Probe,
        "A TLS 1.2 handshake succeeds and negotiates TLS 1.2",
        "§1 TLS: clients must use TLS 1.2. §6.2"
    ),
    check!(
        "DPS-TLS-004",
        Must,
        Probe,
        "TLS 1.0 and TLS 1.1 are refused",
        "§5.2 (sources): an instance with minTlsVersion 1.2 refuses TLS 1.0/1.1. §6.2"
    ),
    check!(
        "DPS-TLS-005",
        Should,
        Probe,
        "A client offering only TLS 1.3 is refused",
        "§5.2 (sources): the TLS versions DPS supports are TLS 1.2. §6.2"
    ),
    // MQTT sessions and subscriptions (§1, §3; §6 items 3-5).
    check!(
        "DPS-MQTT-001",
        Must,
        Passive,
        "CONNACK SessionPresent is 0, whatever CleanSession says",
        "§1 CleanSession: every session is non-persistent; CONNACK always has SessionPresent = 0. §6.3"
    ),
    check!(
        "DPS-MQTT-002",
        Must,
        Probe,
        "No subscription survives a reconnect with CleanSession 0",
        "§1 CleanSession: DPS ignores it; every session is non-persistent. §6.3"
    ),
    check!(
        "DPS-MQTT-003",
        Must,
        Probe,
        "A QoS 2 subscription is granted QoS 1",
        "§3: a subscription requested at QoS 2 is granted QoS 1 in SUBACK. §6.4"
    ),
    check!(
        "DPS-MQTT-004",
        Must,
        Passive,
        "Replies to a QoS 1 subscription arrive at QoS 1",
        "§3: replies are delivered at QoS 1. §6.4"
    ),
    check!(
        "DPS-MQTT-005",
        Must,
        Passive,
        "The device's QoS 1 request is PUBACKed before the reply arrives",
        "§3: emulator must PUBACK a device's QoS 1 PUBLISH before sending the reply (C# v1 fails otherwise)"
    ),
    check!(
        "DPS-MQTT-006",
        Must,
        Probe,
        "A filter other than $dps/registrations/res/# is refused (SUBACK 0x80)",
        "§3: DPS accepts only the documented topic filters; it is not a pub/sub broker. §6.5"
    ),
    check!(
        "DPS-MQTT-007",
        Must,
        Probe,
        "Wildcard filters on reply subtopics are refused",
        "§3: DPS does not allow # or ? to filter subtopics. §6.5"
    ),
    check!(
        "DPS-MQTT-008",
        Must,
        Probe,
        "A PUBLISH to an undocumented topic is refused",
        "§3: DPS accepts only the documented topic names. §6.5"
    ),
    // Reply topics (§3; §6 item 6).
    check!(
        "DPS-TOPIC-001",
        Must,
        Passive,
        "Reply topics have the form $dps/registrations/res/{status}/?{params}",
        "§3 Topics: response $dps/registrations/res/{status}/?$rid={rid}[&retry-after={seconds}]"
    ),
    check!(
        "DPS-TOPIC-002",
        Must,
        Passive,
        "$rid is echoed byte for byte",
        "§3: emulator must echo $rid byte for byte. §6.6"
    ),
    check!(
        "DPS-TOPIC-003",
        Should,
        Passive,
        "$rid comes first in the reply's query",
        "§3: $rid first in the reply's query (Python loses retry-after otherwise)"
    ),
    check!(
        "DPS-TOPIC-004",
        Must,
        Passive,
        "retry-after is present and numeric on every 202 and 429",
        "§5: always send retry-after on 202 and 429. §6.6"
    ),
    // The provisioning flow (§4; §6 items 6-7).
    check!(
        "DPS-FLOW-001",
        Must,
        Passive,
        "Register is answered 202 with an operationId and status assigning",
        "§4 step 3; §6.6"
    ),
    check!(
        "DPS-FLOW-002",
        Must,
        Passive,
        "Polls are answered 202 while assigning and 200 when done",
        "§4 step 4; §6.7"
    ),
    check!(
        "DPS-FLOW-003",
        Must,
        Passive,
        "The operationId is stable across polls",
        "§6.7: operationId is stable across polls"
    ),
    check!(
        "DPS-FLOW-004",
        Must,
        Probe,
        "The status moves only forward (no assigning after a final status)",
        "§6.7: status moves only forward"
    ),
    check!(
        "DPS-FLOW-005",
        Must,
        Probe,
        "The registration lifecycle completes: register, poll, assigned",
        "§4: the flow, steps 1-5"
    ),
    check!(
        "DPS-FLOW-006",
        Must,
        Probe,
        "Every SDK's dialect provisions (python, node, c, embedded-c, csharp)",
        "§1-5: SDKs differ on sr encoding, skn, username, api-version, $rid, bodies, keep-alive, CleanSession and QoS, and all work against DPS"
    ),
    // Bodies (§4; §6 item 10).
    check!(
        "DPS-BODY-001",
        Must,
        Passive,
        "Reply bodies match the schema for their status",
        "§4: RegistrationOperationStatus on 2xx (types, required fields per status); the error body otherwise. §6.10"
    ),
    check!(
        "DPS-BODY-002",
        Must,
        Passive,
        "status unassigned is never sent over MQTT",
        "§4: unassigned belongs to the TPM flow; never send it over MQTT. §6.10"
    ),
    // Authentication (§1, §2; §6 item 8).
    check!(
        "DPS-AUTH-001",
        Must,
        Probe,
        "A SAS token with a wrong signature is refused",
        "§2: DPS verifies the HMAC. §6.8 (CONNACK 5 and res/401 are both conformant)"
    ),
    check!("DPS-AUTH-002", Must, Probe, "An expired SAS token is refused", "§2: reject an se in the past. §6.8"),
    check!(
        "DPS-AUTH-003",
        Must,
        Probe,
        "A connection naming another ID scope is refused",
        "§1 Username: {idScope}/registrations/{registrationId}/...; §2: sr names this scope. §6.8"
    ),
    check!(
        "DPS-AUTH-004",
        Must,
        Probe,
        "A clientId that differs from the username's registration ID is refused",
        "§1 ClientId: the registration ID. §6.8"
    ),
    check!(
        "DPS-AUTH-005",
        Must,
        Probe,
        "An X.509 certificate whose CN differs from the registration ID is refused",
        "§2 X.509: the registration ID must equal the leaf's subject CN. §6.8"
    ),
    // WebSocket (§1; §6 item 9).
    check!(
        "DPS-WS-001",
        Must,
        Probe,
        "MQTT over WebSocket with subprotocol mqtt runs the flow",
        "§1 Transports: MQTT over WebSocket on 443, subprotocol mqtt. §6.9"
    ),
    check!(
        "DPS-WS-002",
        Should,
        Probe,
        "A WebSocket upgrade with a wrong subprotocol is refused",
        "§1 WebSocket path: DPS matches the subprotocol mqtt"
    ),
    // Throttling (§5).
    check!(
        "DPS-THR-001",
        Must,
        Probe,
        "A throttled request is answered 429 with retry-after",
        "§5: throttled requests get res/429/?$rid=..&retry-after=N"
    ),
];

/// The check with this ID.
pub fn find(id: &str) -> Option<&'static Check> {
    CATALOGUE.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for check in CATALOGUE {
            assert!(seen.insert(check.id), "{} twice", check.id);
            let parts: Vec<&str> = check.id.split('-').collect();
            assert!(parts.len() == 3 && parts[0] == "DPS" && parts[2].len() == 3, "{}", check.id);
            assert!(!check.title.is_empty() && !check.statement.is_empty());
        }
        assert!(find("DPS-TLS-001").is_some());
        assert!(find("DPS-NOPE-001").is_none());
    }
}
