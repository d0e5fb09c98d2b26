//! What each fault on demand makes a session answer, packet by packet (sans IO).

use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Login, Packet, Publish, Subscribe};

use super::*;
use crate::credentials::{IdScope, SasStyle, SasToken};
use crate::emulator::faults::{Fault, Faults, Malformed, Probability};
use crate::messages::ErrorBody;
use crate::mqtt::QoS;
use crate::topics::{self, ReplyTopic};

const NOW_UNIX: u64 = 1_800_000_000;

fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn service_with(faults: Faults) -> (Service, SymmetricKey) {
    let key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(IdScope::new("0ne00DPS001").unwrap(), vec!["hub".into()], key.clone());
    config.retry_after_seconds = 2;
    config.faults = faults;
    (Service::new(config), key)
}

fn certain(fault: Fault) -> Faults {
    Faults::default().with(fault, Probability::new(1.0).unwrap())
}

fn connect(service: &Service, key: &SymmetricKey, session: &mut Session) -> Response {
    let id = RegistrationId::new("dev-1").unwrap();
    let scope = IdScope::new("0ne00DPS001").unwrap();
    let token = SasToken::build(&scope, &id, &key.derive_device_key(&id), NOW_UNIX + 60, SasStyle::default());
    let mut packet = Connect::new("dev-1");
    packet.login = Some(Login::new("0ne00DPS001/registrations/dev-1/api-version=2019-03-31", token.expose()));
    session.handle(service, Packet::Connect(packet), Instant::now(), wall())
}

fn subscribe(service: &Service, session: &mut Session) -> Response {
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    session.handle(service, Packet::Subscribe(subscribe), Instant::now(), wall())
}

fn register(service: &Service, session: &mut Session, rid: &str) -> Response {
    let mut publish =
        Publish::new(topics::register_topic(rid), QoS::AtLeastOnce, br#"{"registrationId":"dev-1"}"#.to_vec());
    publish.pkid = 7;
    session.handle(service, Packet::Publish(publish), Instant::now(), wall())
}

fn ready(faults: Faults) -> (Service, Session) {
    let (service, key) = service_with(faults);
    let mut session = Session::new();
    assert!(matches!(connect(&service, &key, &mut session).packets.as_slice(), [Packet::ConnAck(_)]));
    subscribe(&service, &mut session);
    (service, session)
}

/// The reply of a response that is PUBACK then one reply: its status, retry-after, `$rid`, body.
fn reply(response: &Response) -> (u16, Option<u32>, String, Vec<u8>) {
    let [Packet::PubAck(ack), Packet::Publish(reply)] = response.packets.as_slice() else {
        panic!("expected PUBACK then the reply, got {:?}", response.packets)
    };
    assert_eq!(ack.pkid, 7);
    let topic = ReplyTopic::parse(&reply.topic).unwrap();
    (topic.status, topic.retry_after.flatten(), topic.rid.unwrap().to_string(), reply.payload.to_vec())
}

#[test]
fn resets_close_with_nothing_sent_at_their_point() {
    let (service, key) = service_with(certain(Fault::ResetAfterConnect));
    let response = connect(&service, &key, &mut Session::new());
    assert_eq!((response.reset, response.close, response.packets.len()), (true, true, 0));

    let (service, key) = service_with(certain(Fault::ResetAfterSubscribe));
    let mut session = Session::new();
    assert!(!connect(&service, &key, &mut session).reset);
    let response = subscribe(&service, &mut session);
    assert_eq!((response.reset, response.packets.len()), (true, 0));

    let (service, mut session) = ready(certain(Fault::ResetAfterRegister));
    let response = register(&service, &mut session, "1");
    assert_eq!((response.reset, response.packets.len()), (true, 0));
    assert_eq!(ServiceStats::get(&service.stats.registrations), 0, "a reset request registers nothing");
    assert_eq!(service.faults.counts.get(Fault::ResetAfterRegister), 1);
}

#[test]
fn connack_unavailable_refuses_with_code_3() {
    let (service, key) = service_with(certain(Fault::ConnackUnavailable));
    let response = connect(&service, &key, &mut Session::new());
    let [Packet::ConnAck(connack)] = response.packets.as_slice() else { panic!("{response:?}") };
    assert_eq!((connack.code, response.close), (ConnectReturnCode::ServiceUnavailable, true));
}

#[test]
fn dropped_replies_are_acknowledged_and_never_sent() {
    let (service, mut session) = ready(certain(Fault::DropReply));
    let response = register(&service, &mut session, "1");
    assert!(matches!(response.packets.as_slice(), [Packet::PubAck(ack)] if ack.pkid == 7), "{response:?}");
    assert!(!response.close);
}

#[test]
fn server_errors_and_throttling_carry_an_error_body_and_retry_after() {
    let (service, mut session) = ready(certain(Fault::ServerError));
    let mut statuses = std::collections::BTreeSet::new();
    for rid in 0..40 {
        let (status, retry_after, echoed, body) = reply(&register(&service, &mut session, &rid.to_string()));
        let error: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!((retry_after, echoed, error.error_code), (Some(2), rid.to_string(), i64::from(status) * 1000));
        statuses.insert(status);
    }
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [500, 503]);

    let (service, mut session) = ready(certain(Fault::Throttle));
    let (status, retry_after, _, body) = reply(&register(&service, &mut session, "1"));
    let error: ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, retry_after, error.error_code), (429, Some(2), 429001));
}

#[test]
fn malformed_replies_take_each_of_their_four_forms() {
    let (service, mut session) = ready(certain(Fault::MalformedReply));
    let mut seen = std::collections::BTreeSet::new();
    for rid in 0..200 {
        let rid = rid.to_string();
        let response = register(&service, &mut session, &rid);
        if !response.raw.is_empty() {
            // Truncated: PUBACK, then half a PUBLISH whose length promises more, then close.
            assert!(matches!(response.packets.as_slice(), [Packet::PubAck(_)]) && response.close);
            assert_eq!(response.raw[0] & 0xF0, 0x30, "a PUBLISH header");
            seen.insert("truncated");
            continue;
        }
        let (status, _, echoed, body) = reply(&response);
        let kind = match (status, echoed == rid, serde_json::from_slice::<serde_json::Value>(&body).is_ok()) {
            (Malformed::UNKNOWN_STATUS, true, true) => "unknown_status",
            (202, false, true) => "wrong_rid",
            (202, true, false) => "invalid_json",
            other => panic!("not one of the four forms: {other:?}"),
        };
        seen.insert(kind);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(service.faults.counts.get(Fault::MalformedReply), 200);
}

#[test]
fn reply_delays_hold_back_the_reply_within_their_range() {
    let mut faults = Faults::default();
    faults.reply_delay = Some((Duration::from_millis(10), Duration::from_millis(20)));
    let (service, mut session) = ready(faults);
    let response = register(&service, &mut session, "1");
    assert_eq!(reply(&response).0, 202);
    let delay = response.delay.expect("a delay");
    assert!((10..=20).contains(&delay.as_millis()), "{delay:?}");
}
