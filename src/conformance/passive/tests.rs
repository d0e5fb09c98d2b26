use super::*;
use crate::topics::reply_topic;

fn publish(topic: &str, qos: QoS, body: &str) -> Publish {
    let mut p = Publish::new(topic, qos, body.as_bytes().to_vec());
    p.pkid = 5;
    p
}

const ASSIGNING: &str = r#"{"operationId":"4.abc.1","status":"assigning"}"#;
const ASSIGNED: &str = r#"{"operationId":"4.abc.1","status":"assigned","registrationState":{"assignedHub":"h","deviceId":"d","status":"assigned"}}"#;

fn ids(log: &CheckLog) -> Vec<&str> {
    log.violations.iter().map(|f| f.check.as_str()).collect()
}

/// An assigned body carrying a chain issued for a fresh CSR of `d`, reversed or not.
fn assigned_with_chain(reversed: bool) -> String {
    let ca = crate::emulator::issuance::IssuingCa::generate().expect("a CA");
    let request = crate::certificates::CertificateRequest::generate(Default::default(), "d").expect("a CSR");
    let id = crate::credentials::RegistrationId::new("d").expect("a valid ID");
    let mut chain = ca.sign(&request.csr_base64, &id, 30, std::time::SystemTime::now()).expect("signed");
    if reversed {
        chain.reverse();
    }
    let chain = serde_json::to_string(&chain).expect("strings serialise");
    ASSIGNED.replace(r#""status":"assigned"}"#, &format!(r#""status":"assigned","issuedCertificateChain":{chain}}}"#))
}

#[test]
fn an_issued_chain_out_of_order_or_not_der_is_caught_by_its_check_alone() {
    let body = |chain: &str| {
        ASSIGNED
            .replace(r#""status":"assigned"}"#, &format!(r#""status":"assigned","issuedCertificateChain":{chain}}}"#))
    };
    let reversed = assigned_with_chain(true);
    for body in [reversed, body(r#"["not base64!"]"#), body(r#"["AAAA"]"#), body("[]")] {
        let mut log = CheckLog::default();
        log.reply(
            &publish(&reply_topic(200, "2", None), QoS::AtLeastOnce, &body),
            Some(("2", RequestKind::Poll)),
            None,
        );
        assert_eq!(ids(&log), ["DPS-CERT-004"], "{body}");
    }
}

#[test]
fn a_conformant_exchange_evaluates_every_check_without_violation() {
    let mut log = CheckLog::default();
    log.connack(false);
    log.suback(Some(QoS::AtLeastOnce));
    log.request_sent(QoS::AtLeastOnce, 2);
    log.puback(2);
    log.reply(
        &publish(&reply_topic(202, "1", Some(3)), QoS::AtLeastOnce, ASSIGNING),
        Some(("1", RequestKind::Register)),
        None,
    );
    log.request_sent(QoS::AtLeastOnce, 3);
    log.puback(3);
    log.reply(
        &publish(&reply_topic(200, "2", None), QoS::AtLeastOnce, &assigned_with_chain(false)),
        Some(("2", RequestKind::Poll)),
        None,
    );
    assert_eq!(ids(&log), Vec::<&str>::new());
    for check in PassiveCheck::ALL {
        assert!(log.evaluated(check), "{check:?} not evaluated");
    }
}

#[test]
fn each_deviation_is_caught_by_its_check_alone() {
    let cases: [(&str, QoS, &str, bool, &str); 9] = [
        ("$dps/registrations/res/202/?$rid=9&retry-after=3", QoS::AtLeastOnce, ASSIGNING, true, "DPS-TOPIC-002"),
        ("$dps/registrations/res/202/?retry-after=3&$rid=1", QoS::AtLeastOnce, ASSIGNING, true, "DPS-TOPIC-003"),
        ("$dps/registrations/res/202/?$rid=1", QoS::AtLeastOnce, ASSIGNING, true, "DPS-TOPIC-004"),
        ("$dps/registrations/res/202/?$rid=1&retry-after=soon", QoS::AtLeastOnce, ASSIGNING, true, "DPS-TOPIC-004"),
        ("$dps/registrations/res/202/?$rid=1&retry-after=3", QoS::AtMostOnce, ASSIGNING, true, "DPS-MQTT-004"),
        ("$dps/registrations/res/202/?$rid=1&retry-after=3", QoS::AtLeastOnce, ASSIGNING, false, "DPS-MQTT-005"),
        ("$dps/registrations/res/200/?$rid=1", QoS::AtLeastOnce, ASSIGNING, true, "DPS-FLOW-001"),
        (
            "$dps/registrations/res/202/?$rid=1&retry-after=3",
            QoS::AtLeastOnce,
            r#"{"operationId":"4.a.1","status":"unassigned"}"#,
            true,
            "DPS-BODY-002",
        ),
        ("$dps/registrations/res/2x2/?$rid=1", QoS::AtLeastOnce, ASSIGNING, true, "DPS-TOPIC-001"),
    ];
    for (topic, qos, body, pubacked, expected) in cases {
        let mut log = CheckLog::default();
        log.suback(Some(QoS::AtLeastOnce));
        log.request_sent(QoS::AtLeastOnce, 2);
        if pubacked {
            log.puback(2);
        }
        log.reply(&publish(topic, qos, body), Some(("1", RequestKind::Register)), None);
        let found = ids(&log);
        // An unassigned register reply is also not "202 assigning".
        let allowed: &[&str] = if expected == "DPS-BODY-002" { &["DPS-BODY-002", "DPS-FLOW-001"] } else { &[expected] };
        assert!(found.contains(&expected) && found.iter().all(|f| allowed.contains(f)), "{topic} {body}: {found:?}");
    }
}

#[test]
fn operation_id_changes_and_bad_bodies_are_caught() {
    let mut log = CheckLog::default();
    log.reply(
        &publish(&reply_topic(202, "1", Some(1)), QoS::AtLeastOnce, ASSIGNING),
        Some(("1", RequestKind::Register)),
        None,
    );
    let moved = r#"{"operationId":"4.abc.2","status":"assigning"}"#;
    log.reply(&publish(&reply_topic(202, "2", Some(1)), QoS::AtLeastOnce, moved), Some(("2", RequestKind::Poll)), None);
    assert_eq!(ids(&log), ["DPS-FLOW-003"]);
    let no_hub = r#"{"operationId":"4.abc.1","status":"assigned","registrationState":{"deviceId":"d"}}"#;
    log.reply(&publish(&reply_topic(200, "3", None), QoS::AtLeastOnce, no_hub), Some(("3", RequestKind::Poll)), None);
    assert_eq!(ids(&log), ["DPS-FLOW-003", "DPS-BODY-001"]);
    assert!(log.violations[1].evidence.contains("assignedHub"), "{:?}", log.violations[1]);
    log.connack(true);
    assert_eq!(ids(&log).last(), Some(&"DPS-MQTT-001"));
}

#[test]
fn tallies_merge_like_recording_everything_in_one() {
    let logs: Vec<CheckLog> = (0..10)
        .map(|i| {
            let mut log = CheckLog::default();
            log.connack(i % 3 == 0);
            if i % 2 == 0 {
                log.reply(
                    &publish(&reply_topic(202, "1", Some(1)), QoS::AtLeastOnce, ASSIGNING),
                    Some(("1", RequestKind::Register)),
                    None,
                );
            }
            log
        })
        .collect();
    let mut one = PassiveTally::default();
    logs.iter().for_each(|log| one.record(log));
    let (mut a, mut b) = (PassiveTally::default(), PassiveTally::default());
    for (i, log) in logs.iter().enumerate() {
        if i < 3 { a.record(log) } else { b.record(log) }
    }
    a.merge(&b);
    assert_eq!(a, one);
    let counts = one.counts();
    assert_eq!((counts["DPS-MQTT-001"].flows, counts["DPS-MQTT-001"].violations), (10, 4));
    assert_eq!(counts["DPS-MQTT-001"].examples.len(), CheckCounts::EXAMPLES);
    assert_eq!(counts["DPS-FLOW-001"].flows, 5);
}
