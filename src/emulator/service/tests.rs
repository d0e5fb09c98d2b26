use rumqttc::mqttbytes::Protocol;
use rumqttc::mqttbytes::v4::{
    Connect, ConnectReturnCode, Login, Packet, Publish, SubAck, Subscribe, SubscribeReasonCode,
};

use super::*;
use crate::credentials::{IdScope, SasStyle, SasToken};
use crate::emulator::config::{AuthFailure, IndividualEnrollment};
use crate::messages::ErrorBody;
use crate::mqtt::QoS;
use crate::topics::{self, ReplyTopic};

const NOW_UNIX: u64 = 1_800_000_000;

fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

fn scope() -> IdScope {
    IdScope::new("0ne00DPS001").unwrap()
}

pub(super) fn service_with(edit: impl FnOnce(&mut ServiceConfig)) -> (Service, SymmetricKey) {
    let group_key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(scope(), vec!["hub-a".into(), "hub-b".into()], group_key.clone());
    edit(&mut config);
    (Service::new(config), group_key)
}

fn connect_packet(id: &str, password: String) -> Packet {
    let mut connect = Connect::new(id);
    connect.login = Some(Login::new(format!("0ne00DPS001/registrations/{id}/api-version=2019-03-31"), password));
    Packet::Connect(connect)
}

fn token(group_key: &SymmetricKey, id: &str, expiry: u64) -> String {
    let id = RegistrationId::new(id).unwrap();
    SasToken::build(&scope(), &id, &group_key.derive_device_key(&id), expiry, SasStyle::default()).expose().to_string()
}

fn connack_code(response: &Response) -> (ConnectReturnCode, bool) {
    match response.packets.as_slice() {
        [Packet::ConnAck(connack)] => (connack.code, connack.session_present),
        other => panic!("expected one CONNACK, got {other:?}"),
    }
}

/// A connected and subscribed session.
pub(super) fn ready_session(service: &Service, group_key: &SymmetricKey, id: &str) -> Session {
    let mut session = Session::new();
    let now = Instant::now();
    let response = session.handle(service, connect_packet(id, token(group_key, id, NOW_UNIX + 60)), now, wall());
    assert_eq!(connack_code(&response), (ConnectReturnCode::Success, false));
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    session.handle(service, Packet::Subscribe(subscribe), now, wall());
    session
}

pub(super) fn request(
    session: &mut Session,
    service: &Service,
    topic: String,
    at: Instant,
) -> (u16, Option<u32>, Vec<u8>) {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, br#"{"registrationId":"x"}"#.to_vec());
    publish.pkid = 9;
    let response = session.handle(service, Packet::Publish(publish), at, wall());
    match response.packets.as_slice() {
        [Packet::PubAck(ack), Packet::Publish(reply)] => {
            assert_eq!(ack.pkid, 9, "PUBACK answers the request's packet id");
            assert_eq!(reply.qos, QoS::AtLeastOnce);
            let parsed = ReplyTopic::parse(&reply.topic).unwrap();
            assert!(reply.topic.contains("/?$rid="), "$rid comes first: {}", reply.topic);
            (parsed.status, parsed.retry_after.flatten(), reply.payload.to_vec())
        }
        other => panic!("expected PUBACK then the reply, got {other:?}"),
    }
}

pub(super) fn operation(body: &[u8]) -> RegistrationOperationStatus {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn full_flow_register_poll_assigned() {
    let (service, key) = service_with(|c| {
        c.assign_delay = Duration::from_millis(500);
        c.retry_after_seconds = 3;
    });
    let mut session = ready_session(&service, &key, "dev-1");
    let t0 = Instant::now();
    let (status, retry, body) = request(&mut session, &service, topics::register_topic("1"), t0);
    assert_eq!((status, retry), (202, Some(3)));
    let accepted = operation(&body);
    assert_eq!(accepted.status, OperationStatus::Assigning);
    assert!(accepted.registration_state.is_none());

    let poll = topics::poll_topic("2", &accepted.operation_id);
    let (status, retry, body) = request(&mut session, &service, poll.clone(), t0 + Duration::from_millis(100));
    assert_eq!((status, retry), (202, Some(3)));
    let state = operation(&body).registration_state.unwrap();
    assert_eq!((state.registration_id.as_deref(), state.status), (Some("dev-1"), Some(OperationStatus::Assigning)));

    let (status, retry, body) = request(&mut session, &service, poll, t0 + Duration::from_millis(500));
    assert_eq!((status, retry), (200, None));
    let done = operation(&body);
    assert_eq!(done.operation_id, accepted.operation_id);
    let state = done.registration_state.unwrap();
    assert_eq!(state.assigned_hub.as_deref(), Some(service.hub_for("dev-1")));
    assert_eq!(state.device_id.as_deref(), Some("dev-1"));
    assert_eq!(state.substatus, Some(Substatus::InitialAssignment));
    assert!(state.created_date_time_utc.unwrap().ends_with('Z'));
    assert_eq!(ServiceStats::get(&service.stats.assigned), 1);
}

#[test]
fn second_registration_is_consistent() {
    let (service, key) = service_with(|c| c.assign_delay = Duration::ZERO);
    let t0 = Instant::now();
    let mut results = Vec::new();
    for rid in ["1", "2"] {
        let mut session = ready_session(&service, &key, "Dev-7");
        let (_, _, body) = request(&mut session, &service, topics::register_topic(rid), t0);
        let operation_id = operation(&body).operation_id;
        let (status, _, body) = request(&mut session, &service, topics::poll_topic(rid, &operation_id), t0);
        assert_eq!(status, 200);
        results.push(operation(&body).registration_state.unwrap());
    }
    assert_eq!(results[0].assigned_hub, results[1].assigned_hub);
    assert_eq!(results[0].device_id, results[1].device_id);
    assert_eq!(results[0].created_date_time_utc, results[1].created_date_time_utc);
    assert_eq!(service.registered_devices(), 1);
}

#[test]
fn bad_credentials_are_refused_with_connack_5() {
    let (service, key) = service_with(|_| {});
    let other = SymmetricKey::random();
    let cases = [
        ("bad signature", connect_packet("dev-1", token(&other, "dev-1", NOW_UNIX + 60))),
        ("expired", connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX - 1))),
        ("token for another device", connect_packet("dev-1", token(&key, "dev-2", NOW_UNIX + 60))),
        ("not a token", connect_packet("dev-1", "password".into())),
        ("no password", connect_packet("dev-1", String::new())),
        ("clientId mismatch", {
            let Packet::Connect(mut connect) = connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX + 60)) else {
                unreachable!()
            };
            connect.client_id = "dev-2".into();
            Packet::Connect(connect)
        }),
        ("wrong scope", {
            let Packet::Connect(mut connect) = connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX + 60)) else {
                unreachable!()
            };
            connect.login.as_mut().unwrap().username = "0ne00000000/registrations/dev-1/api-version=2019-03-31".into();
            Packet::Connect(connect)
        }),
        ("no api-version", {
            let Packet::Connect(mut connect) = connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX + 60)) else {
                unreachable!()
            };
            connect.login.as_mut().unwrap().username = "0ne00DPS001/registrations/dev-1/api-version=".into();
            Packet::Connect(connect)
        }),
    ];
    for (name, packet) in cases {
        let response = Session::new().handle(&service, packet, Instant::now(), wall());
        assert_eq!(connack_code(&response), (ConnectReturnCode::NotAuthorized, false), "{name}");
        assert!(response.close, "{name}");
    }
    assert_eq!(ServiceStats::get(&service.stats.connects_refused), 8);
}

#[test]
fn any_username_extras_and_api_versions_are_accepted() {
    let (service, key) = service_with(|_| {});
    for suffix in
        ["2021-06-01&ClientVersion=1.15.0", "2019-03-31&ClientVersion=azure-iot-device%2F2.14.0", "2025-07-01-preview"]
    {
        let Packet::Connect(mut connect) = connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX + 60)) else {
            unreachable!()
        };
        connect.login.as_mut().unwrap().username = format!("0ne00DPS001/registrations/dev-1/api-version={suffix}");
        connect.keep_alive = 0;
        connect.clean_session = false;
        let response = Session::new().handle(&service, Packet::Connect(connect), Instant::now(), wall());
        assert_eq!(connack_code(&response), (ConnectReturnCode::Success, false), "{suffix}");
    }
}

#[test]
fn individual_enrollment_secondary_key_works() {
    let secondary = SymmetricKey::random();
    let (service, _) = service_with(|c| {
        c.individuals.push(IndividualEnrollment {
            registration_id: RegistrationId::new("solo").unwrap(),
            primary: SymmetricKey::random(),
            secondary: Some(secondary.clone()),
        })
    });
    let id = RegistrationId::new("SOLO").unwrap();
    let password = SasToken::build(&scope(), &id, &secondary, NOW_UNIX + 60, SasStyle::default());
    let response =
        Session::new().handle(&service, connect_packet("SOLO", password.expose().into()), Instant::now(), wall());
    assert_eq!(connack_code(&response).0, ConnectReturnCode::Success);
}

#[test]
fn mqtt5_is_refused_with_code_1() {
    let (service, key) = service_with(|_| {});
    let Packet::Connect(mut connect) = connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX + 60)) else {
        unreachable!()
    };
    connect.protocol = Protocol::V5;
    let response = Session::new().handle(&service, Packet::Connect(connect), Instant::now(), wall());
    assert_eq!(connack_code(&response).0, ConnectReturnCode::RefusedProtocolVersion);
}

#[test]
fn reply_mode_answers_401_on_register() {
    let (service, _) = service_with(|c| c.auth_failure = AuthFailure::Reply);
    let mut session = Session::new();
    let response = session.handle(&service, connect_packet("dev-1", "nonsense".into()), Instant::now(), wall());
    assert_eq!(connack_code(&response).0, ConnectReturnCode::Success);
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    session.handle(&service, Packet::Subscribe(subscribe), Instant::now(), wall());
    let (status, _, body) = request(&mut session, &service, topics::register_topic("1"), Instant::now());
    assert_eq!(status, 401);
    let error: ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!(error.error_code, 401000);
}

#[test]
fn subscribe_rules() {
    let (service, key) = service_with(|_| {});
    let mut session = ready_session(&service, &key, "dev-1");
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::ExactlyOnce);
    subscribe.add("$dps/registrations/res/202/#".into(), QoS::AtLeastOnce);
    subscribe.add("#".into(), QoS::AtMostOnce);
    subscribe.pkid = 4;
    let response = session.handle(&service, Packet::Subscribe(subscribe), Instant::now(), wall());
    let expected = SubAck::new(
        4,
        vec![
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
        ],
    );
    assert_eq!(response, Response::send(Packet::SubAck(expected)));

    let mut qos0 = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtMostOnce);
    qos0.pkid = 5;
    session.handle(&service, Packet::Subscribe(qos0), Instant::now(), wall());
    let mut publish = Publish::new(topics::register_topic("1"), QoS::AtMostOnce, Vec::new());
    publish.pkid = 0;
    let response = session.handle(&service, Packet::Publish(publish), Instant::now(), wall());
    match response.packets.as_slice() {
        [Packet::Publish(reply)] => assert_eq!(reply.qos, QoS::AtMostOnce),
        other => panic!("a QoS 0 request on a QoS 0 subscription gets one QoS 0 reply: {other:?}"),
    }
}

#[test]
fn undocumented_topics_and_misordered_packets_close() {
    let (service, key) = service_with(|_| {});
    let mut session = ready_session(&service, &key, "dev-1");
    let publish = Publish::new("devices/dev-1/messages/events/", QoS::AtMostOnce, Vec::new());
    assert!(session.handle(&service, Packet::Publish(publish), Instant::now(), wall()).close);
    assert!(Session::new().handle(&service, Packet::PingReq, Instant::now(), wall()).close);
    let mut session = ready_session(&service, &key, "dev-1");
    let again = connect_packet("dev-1", token(&key, "dev-1", NOW_UNIX + 60));
    assert!(session.handle(&service, again, Instant::now(), wall()).close);
}

#[test]
fn unknown_operation_is_404_and_foreign_operation_too() {
    let (service, key) = service_with(|_| {});
    let mut owner = ready_session(&service, &key, "dev-1");
    let (_, _, body) = request(&mut owner, &service, topics::register_topic("1"), Instant::now());
    let operation_id = operation(&body).operation_id;
    let mut other = ready_session(&service, &key, "dev-2");
    let (status, _, _) = request(&mut other, &service, topics::poll_topic("1", &operation_id), Instant::now());
    assert_eq!(status, 404);
    let (status, _, _) = request(&mut owner, &service, topics::poll_topic("2", "4.0.nope"), Instant::now());
    assert_eq!(status, 404);
}

#[test]
fn quota_throttles_with_retry_after() {
    let quota = QuotaConfig { registrations_per_minute: 2, operations_per_minute: 100 };
    let (service, key) = service_with(|c| c.quota = Some(quota));
    let mut session = ready_session(&service, &key, "dev-1");
    let t0 = Instant::now();
    for rid in ["1", "2"] {
        assert_eq!(request(&mut session, &service, topics::register_topic(rid), t0).0, 202);
    }
    let (status, retry, body) = request(&mut session, &service, topics::register_topic("3"), t0);
    assert_eq!((status, retry), (429, Some(30)));
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().error_code, 429001);
    assert_eq!(request(&mut session, &service, topics::register_topic("4"), t0 + Duration::from_secs(30)).0, 202);
    assert_eq!(ServiceStats::get(&service.stats.throttled), 1);
}

#[test]
fn hubs_are_spread_evenly_and_stably() {
    let hubs: Vec<String> = (0..4).map(|i| format!("hub-{i}")).collect();
    let service = Service::new(ServiceConfig::single_group(scope(), hubs.clone(), SymmetricKey::random()));
    let mut counts = HashMap::new();
    for i in 0..4000 {
        *counts.entry(service.hub_for(&format!("bench-{i:06}")).to_string()).or_insert(0) += 1;
    }
    for hub in &hubs {
        let count = counts[hub];
        assert!((800..1200).contains(&count), "{hub}: {count}");
    }
    let again = Service::new(ServiceConfig::single_group(scope(), hubs, SymmetricKey::random()));
    assert_eq!(service.hub_for("bench-000001"), again.hub_for("bench-000001"));
}

#[test]
fn an_x509_device_is_assigned_with_its_group_and_certificate_info() {
    use crate::emulator::config::X509Group;
    use crate::x509::{CertificateAuthority, PeerCertificate, subject_of};
    let ca = CertificateAuthority::generate().unwrap();
    let (subject, _) = subject_of(ca.root_pem(), std::path::Path::new("root.pem")).unwrap();
    let (service, _) = service_with(|c| c.x509_groups.push(X509Group { name: "certs".into(), subject }));
    let leaf = ca.mint(&RegistrationId::new("cert-1").unwrap()).unwrap();
    let peer = PeerCertificate::inspect(&leaf.chain);
    let mut connect = Connect::new("cert-1");
    connect.login = Some(Login::new("0ne00DPS001/registrations/cert-1/api-version=2019-03-31", ""));
    let mut session = Session::with_peer(peer);
    let response = session.handle(&service, Packet::Connect(connect), Instant::now(), wall());
    assert_eq!(connack_code(&response).0, ConnectReturnCode::Success);
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    session.handle(&service, Packet::Subscribe(subscribe), Instant::now(), wall());
    let t0 = Instant::now();
    let (_, _, body) = request(&mut session, &service, topics::register_topic("1"), t0);
    let operation_id = operation(&body).operation_id;
    let (status, _, body) =
        request(&mut session, &service, topics::poll_topic("2", &operation_id), t0 + Duration::from_secs(1));
    assert_eq!(status, 200);
    let x509 = operation(&body).registration_state.unwrap().x509.unwrap();
    assert_eq!(x509["enrollmentGroupId"], "certs");
    assert_eq!(x509["certificateInfo"]["subjectName"], "CN=cert-1");
}

#[test]
fn a_seeded_service_is_reproducible() {
    let operation_ids = |seed| {
        let group_key = SymmetricKey::random();
        let config = ServiceConfig::single_group(scope(), vec!["hub-a".into()], group_key.clone());
        let service = Service::with_rng(config, SmallRng::seed_from_u64(seed));
        let mut session = ready_session(&service, &group_key, "dev-1");
        let t0 = Instant::now();
        let mut register = |rid: &str| operation(&request(&mut session, &service, topics::register_topic(rid), t0).2);
        [register("1").operation_id, register("2").operation_id]
    };
    let ids = operation_ids(7);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids, operation_ids(7));
    assert_ne!(ids, operation_ids(8));
}

/// Sends a register with `body` and returns the reply's status and body.
fn register_with(session: &mut Session, service: &Service, body: &[u8]) -> (u16, Vec<u8>) {
    let mut publish = Publish::new(topics::register_topic("5"), QoS::AtLeastOnce, body.to_vec());
    publish.pkid = 5;
    let response = session.handle(service, Packet::Publish(publish), Instant::now(), wall());
    match response.packets.as_slice() {
        [Packet::PubAck(_), Packet::Publish(reply)] => {
            (ReplyTopic::parse(&reply.topic).unwrap().status, reply.payload.to_vec())
        }
        other => panic!("expected PUBACK then the reply, got {other:?}"),
    }
}

#[test]
fn a_register_body_that_is_not_a_registration_gets_400_with_an_error_body() {
    let (service, key) = service_with(|_| {});
    let mut session = ready_session(&service, &key, "dev-body");
    for body in [&b"not json"[..], br#"{"registrationId":"dev-body","payload":"text"}"#, br#"{"payload":[1,2]}"#] {
        let (status, reply) = register_with(&mut session, &service, body);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        let error: ErrorBody = serde_json::from_slice(&reply).expect("an error body");
        assert_eq!(error.error_code, 400004);
    }
    assert_eq!(ServiceStats::get(&service.stats.registrations), 0, "a refused body registers nothing");
    for body in [&b""[..], br#"{"payload": null, "registrationId": "dev-body"}"#, br#"{"payload":{"a":1}}"#] {
        assert_eq!(register_with(&mut session, &service, body).0, 202, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_device_polling_more_than_5_times_in_10_s_gets_429_with_retry_after() {
    let (service, key) = service_with(|c| {
        c.retry_after_seconds = 2;
        c.assign_delay = Duration::from_secs(60);
    });
    let mut session = ready_session(&service, &key, "dev-polls");
    let start = Instant::now();
    let (status, _, body) = request(&mut session, &service, topics::register_topic("1"), start);
    assert_eq!(status, 202);
    let poll = |session: &mut Session, at| {
        let topic = topics::poll_topic("2", &operation(&body).operation_id);
        request(session, &service, topic, at)
    };
    for i in 0..5 {
        assert_eq!(poll(&mut session, start + Duration::from_secs(i)).0, 202, "poll {i} is within the limit");
    }
    let (status, retry_after, _) = poll(&mut session, start + Duration::from_millis(4500));
    assert_eq!((status, retry_after), (429, Some(6)), "the first poll leaves the window at 10 s");
    // Another device is not limited by this one's polls.
    let mut other = ready_session(&service, &key, "dev-other");
    assert_eq!(request(&mut other, &service, topics::register_topic("1"), start).0, 202);
    // Once the first poll has left the window, polling works again.
    assert_eq!(poll(&mut session, start + Duration::from_secs(10)).0, 202);
}

#[test]
fn the_poll_limit_is_off_when_retry_after_would_break_it_or_when_configured_off() {
    use crate::emulator::config::PollLimit;
    assert!(PollLimit::default().enforced(2) && PollLimit::default().enforced(3));
    assert!(!PollLimit::default().enforced(0) && !PollLimit::default().enforced(1), "throughput runs poll fast");
    assert!(!PollLimit { polls: 0, window_seconds: 10 }.enforced(3));
    let (service, key) = service_with(|c| {
        c.retry_after_seconds = 0;
        c.assign_delay = Duration::from_secs(60);
    });
    let mut session = ready_session(&service, &key, "dev-fast");
    let start = Instant::now();
    let (_, _, body) = request(&mut session, &service, topics::register_topic("1"), start);
    let topic = topics::poll_topic("2", &operation(&body).operation_id);
    for _ in 0..20 {
        assert_eq!(request(&mut session, &service, topic.clone(), start).0, 202);
    }
}

#[test]
fn a_request_over_96_kb_gets_413_with_an_error_body() {
    let (service, key) = service_with(|_| {});
    let mut session = ready_session(&service, &key, "dev-big");
    let filler = "x".repeat(answer::MAX_MESSAGE_BYTES);
    let body = format!(r#"{{"registrationId":"dev-big","payload":{{"filler":"{filler}"}}}}"#);
    assert!(body.len() < crate::mqtt::MAX_PACKET_SIZE, "the codec reads it, so the service can answer");
    let (status, reply) = register_with(&mut session, &service, body.as_bytes());
    assert_eq!(status, 413);
    let error: ErrorBody = serde_json::from_slice(&reply).expect("an error body");
    assert_eq!(error.error_code, 413001);
    assert_eq!(ServiceStats::get(&service.stats.registrations), 0);
    let just_under = format!(r#"{{"payload":{{"f":"{}"}}}}"#, "x".repeat(answer::MAX_MESSAGE_BYTES - 20));
    assert!(just_under.len() <= answer::MAX_MESSAGE_BYTES);
    assert_eq!(register_with(&mut session, &service, just_under.as_bytes()).0, 202);
}

#[test]
fn another_casing_of_a_registration_id_is_the_same_registration() {
    let (service, key) = service_with(|c| c.assign_delay = Duration::ZERO);
    let start = Instant::now();
    let poll = |session: &mut Session, body: &[u8]| {
        let topic = topics::poll_topic("2", &operation(body).operation_id);
        operation(&request(session, &service, topic, start).2)
    };
    let mut first = ready_session(&service, &key, "Dev-Case");
    let (_, _, body) = request(&mut first, &service, topics::register_topic("1"), start);
    let a = poll(&mut first, &body);
    // A key derived from the lower-case ID signs for the upper-case casing too.
    let mut second = Session::new();
    let lower_key_token = token(&key, "dev-case", NOW_UNIX + 60);
    let response = second.handle(&service, connect_packet("DEV-CASE", lower_key_token), start, wall());
    assert_eq!(connack_code(&response), (ConnectReturnCode::Success, false));
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    second.handle(&service, Packet::Subscribe(subscribe), start, wall());
    let (status, _, again) = request(&mut second, &service, topics::register_topic("1"), start);
    assert_eq!(status, 202);
    assert_eq!(service.registered_devices(), 1, "one registration, keyed by the lower-case ID");
    let b = poll(&mut second, &again);
    let (a, b) = (a.registration_state.unwrap(), b.registration_state.unwrap());
    assert_eq!((a.assigned_hub, a.created_date_time_utc), (b.assigned_hub, b.created_date_time_utc));
    assert_eq!(b.registration_id.as_deref(), Some("Dev-Case"), "the casing first registered is kept");
}

#[test]
fn registering_again_supersedes_the_previous_operation() {
    let (service, key) = service_with(|c| c.assign_delay = Duration::ZERO);
    let start = Instant::now();
    let mut session = ready_session(&service, &key, "dev-again");
    let (_, _, first) = request(&mut session, &service, topics::register_topic("1"), start);
    let (_, _, second) = request(&mut session, &service, topics::register_topic("2"), start);
    let poll = |session: &mut Session, body: &[u8]| {
        let topic = topics::poll_topic("3", &operation(body).operation_id);
        request(session, &service, topic, start).0
    };
    assert_eq!(poll(&mut session, &second), 200, "the latest operation answers");
    assert_eq!(poll(&mut session, &first), 404, "the superseded one is gone: one live operation per device");
    assert_eq!(service.registered_devices(), 1);
}
