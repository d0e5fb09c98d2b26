use super::*;
use crate::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};
use rand::SeedableRng as _;
use rumqttc::mqttbytes::v4::{ConnAck, SubAck};

fn flow_with(settings: FlowSettings) -> (Flow, Instant) {
    flow_seeded(settings, 1)
}

fn flow_seeded(settings: FlowSettings, seed: u64) -> (Flow, Instant) {
    let registration_id = RegistrationId::new("dev-1").unwrap();
    let id_scope = IdScope::new("0ne00DPS001").unwrap();
    let key = SymmetricKey::random();
    let password = SasToken::build(&id_scope, &registration_id, &key, 10, SasStyle::default());
    let identity = DeviceIdentity {
        register_body: DeviceIdentity::default_register_body(&registration_id),
        registration_id,
        id_scope,
        password: Some(password),
        source_address: None,
        personality: Default::default(),
        payload: None,
        client_tls: None,
        certificate_request: None,
    };
    let t0 = Instant::now();
    (Flow::new(Arc::new(settings), identity, Timings::new(t0, t0), DeviceRng::seed_from_u64(seed), ()), t0)
}

fn connected_flow(settings: FlowSettings) -> (Flow, Instant) {
    connected_seeded(settings, 1)
}

fn connected_seeded(settings: FlowSettings, seed: u64) -> (Flow, Instant) {
    let (mut flow, t0) = flow_seeded(settings, seed);
    flow.connected(t0);
    let Some(Packet::Connect(connect)) = flow.poll_transmit() else { panic!("no CONNECT") };
    assert_eq!(connect.client_id, "dev-1");
    let login = connect.login.unwrap();
    assert_eq!(login.username, "0ne00DPS001/registrations/dev-1/api-version=2019-03-31&ClientVersion=dpsbench%2F0.1.0");
    assert!(login.password.starts_with("SharedAccessSignature sr=0ne00DPS001%2Fregistrations%2Fdev-1&sig="));
    flow.handle_packet(t0, Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)));
    let Some(Packet::Subscribe(subscribe)) = flow.poll_transmit() else { panic!("no SUBSCRIBE") };
    assert_eq!(subscribe.filters[0].path, "$dps/registrations/res/#");
    assert_eq!(subscribe.filters[0].qos, QoS::AtLeastOnce);
    flow.handle_packet(
        t0,
        Packet::SubAck(SubAck::new(subscribe.pkid, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)])),
    );
    (flow, t0)
}

fn expect_publish(flow: &mut Flow) -> Publish {
    match flow.poll_transmit() {
        Some(Packet::Publish(publish)) => publish,
        other => panic!("expected a PUBLISH, got {other:?}"),
    }
}

fn reply(topic: String, body: &str) -> Packet {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, body.as_bytes().to_vec());
    publish.pkid = 2;
    Packet::Publish(publish)
}

const ASSIGNING: &str = r#"{"operationId":"4.0000000000000001.x","status":"assigning"}"#;
const ASSIGNED: &str = r#"{"operationId":"4.0000000000000001.x","status":"assigned","registrationState":{"registrationId":"dev-1","assignedHub":"hub-a","deviceId":"dev-1","status":"assigned","substatus":"initialAssignment"}}"#;

#[test]
fn happy_path_register_poll_assigned() {
    let (mut flow, t0) = connected_flow(FlowSettings::default());
    let register = expect_publish(&mut flow);
    assert_eq!(register.topic, "$dps/registrations/PUT/iotdps-register/?$rid=1");
    assert_eq!(&register.payload[..], br#"{"registrationId":"dev-1"}"#);
    let t1 = t0 + Duration::from_millis(5);
    flow.handle_packet(t1, reply(topics::reply_topic(202, "1", Some(3)), ASSIGNING));
    assert_eq!(flow.poll_transmit(), Some(Packet::PubAck(PubAck::new(2))));
    assert_eq!(flow.poll_timeout(), Some(t1 + Duration::from_secs(3)));
    assert_eq!(flow.poll_transmit(), None, "polls only after retry-after");

    let t2 = t1 + Duration::from_secs(3);
    flow.handle_timeout(t2);
    let poll = expect_publish(&mut flow);
    assert_eq!(
        poll.topic,
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.0000000000000001.x"
    );
    let t3 = t2 + Duration::from_millis(7);
    flow.handle_packet(t3, reply(topics::reply_topic(200, "2", None), ASSIGNED));
    assert_eq!(flow.poll_transmit(), Some(Packet::PubAck(PubAck::new(2))));
    assert_eq!(flow.poll_transmit(), Some(Packet::Disconnect));
    assert!(flow.is_done());
    let report = flow.into_report();
    assert_eq!(report.outcome, Outcome::Assigned { hub: "hub-a".into(), device_id: "dev-1".into() });
    assert_eq!(report.timings.polls, vec![Duration::from_millis(7)]);
    assert_eq!(report.timings.register_accepted, Some(t1));
    assert_eq!((report.register_attempts, report.polls), (1, 1));
    assert_eq!(report.statuses, vec![202, 200]);
    assert_eq!(report.retry_after_seconds, vec![3]);
}

/// Writes each observation down, to show what the flow reports and in which order.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Observer for Recorder {
    fn observe(&mut self, observation: Observation<'_>) {
        self.0.push(match observation {
            Observation::ConnAck { session_present } => format!("connack {session_present}"),
            Observation::SubAck { granted } => format!("suback {granted:?}"),
            Observation::RequestSent { qos, packet_id } => format!("sent {qos:?} {packet_id}"),
            Observation::PubAck { packet_id } => format!("puback {packet_id}"),
            Observation::Reply { publish, request, operation, .. } => format!(
                "reply {} {request:?} parsed={:?}",
                publish.topic,
                operation.map(|op| op.as_ref().map(|op| op.status.as_str()).ok())
            ),
        });
    }
}

#[test]
fn the_observer_sees_each_packet_in_order_with_the_body_parsed_once() {
    let (flow, t0) = flow_with(FlowSettings::default());
    let (settings, identity, rng) = (flow.settings, flow.identity, flow.rng);
    let mut flow = Flow::new(settings, identity, Timings::new(t0, t0), rng, Recorder::default());
    flow.connected(t0);
    flow.handle_packet(t0, Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)));
    flow.handle_packet(t0, Packet::SubAck(SubAck::new(1, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)])));
    flow.handle_packet(t0, Packet::PubAck(PubAck::new(2)));
    flow.handle_packet(t0, reply(topics::reply_topic(429, "1", Some(0)), r#"{"errorCode":429001}"#));
    flow.handle_packet(t0, reply(topics::reply_topic(200, "2", None), ASSIGNED));
    assert!(flow.is_done());
    assert_eq!(
        flow.into_report().observer.0,
        [
            "connack false",
            "suback Some(AtLeastOnce)",
            "sent AtLeastOnce 2",
            "puback 2",
            "reply $dps/registrations/res/429/?$rid=1&retry-after=0 Some((\"1\", Register)) parsed=None",
            "sent AtLeastOnce 3",
            "reply $dps/registrations/res/200/?$rid=2 Some((\"2\", Register)) parsed=Some(Some(\"assigned\"))",
        ]
    );
}

#[test]
fn a_seeded_flow_is_reproducible() {
    // UUID `$rid`s and the backoff jitter after a 503 without retry-after both come from the
    // flow's RNG.
    let run = |seed| {
        let settings = FlowSettings { rid_style: RidStyle::Uuid, ..Default::default() };
        let (mut flow, t0) = connected_seeded(settings, seed);
        let register = expect_publish(&mut flow);
        let rid = register.topic.rsplit_once("$rid=").map(|(_, rid)| rid.to_string()).unwrap();
        flow.handle_packet(t0, reply(topics::reply_topic(503, &rid, None), "{}"));
        assert_eq!(flow.poll_transmit(), Some(Packet::PubAck(PubAck::new(2))));
        let wait = flow.poll_timeout().unwrap() - t0;
        flow.handle_timeout(t0 + wait);
        (rid, wait, expect_publish(&mut flow).topic)
    };
    let (rid, _, again) = run(7);
    assert_eq!((rid.len(), &rid[14..15]), (36, "4"), "a UUID v4: {rid}");
    assert_ne!(again, format!("$dps/registrations/PUT/iotdps-register/?$rid={rid}"));
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn throttled_register_is_retried_after_retry_after_then_gives_up() {
    let settings = FlowSettings {
        retry: super::super::RetryPolicy { max_retries: Some(1), ..Default::default() },
        ..Default::default()
    };
    let (mut flow, t0) = connected_flow(settings);
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(429, "1", Some(5)), r#"{"errorCode":429001}"#));
    flow.poll_transmit();
    assert_eq!(flow.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    flow.handle_timeout(t0 + Duration::from_secs(5));
    let again = expect_publish(&mut flow);
    assert_eq!(again.topic, "$dps/registrations/PUT/iotdps-register/?$rid=2");
    flow.handle_packet(t0, reply(topics::reply_topic(503, "2", None), "{}"));
    assert!(flow.is_done());
    let report = flow.into_report();
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Status(503)));
    assert_eq!(report.register_attempts, 2);
}

#[test]
fn refused_connack_and_auth_reply_are_failures() {
    let (mut flow, t0) = flow_with(FlowSettings::default());
    flow.connected(t0);
    flow.poll_transmit();
    flow.handle_packet(t0, Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized, false)));
    assert_eq!(flow.poll_transmit(), None, "no DISCONNECT after a refused CONNECT");
    assert_eq!(flow.into_report().outcome, Outcome::Failed(FailureKind::Refused(5)));

    let (mut flow, t0) = connected_flow(FlowSettings::default());
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(401, "1", None), r#"{"errorCode":401002}"#));
    assert_eq!(flow.into_report().outcome, Outcome::Failed(FailureKind::Status(401)));
}

#[test]
fn stray_replies_are_ignored_and_counted() {
    let (mut flow, t0) = connected_flow(FlowSettings::default());
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(202, "99", Some(1)), ASSIGNING));
    assert!(!flow.is_done());
    flow.handle_packet(t0, reply(topics::reply_topic(200, "1", None), ASSIGNED));
    let report = flow.into_report();
    assert_eq!(report.stray_replies, 1);
    assert!(matches!(report.outcome, Outcome::Assigned { .. }));
}

#[test]
fn deadlines_name_their_phase() {
    let (mut flow, t0) = flow_with(FlowSettings::default());
    flow.connected(t0);
    let deadline = flow.poll_timeout().unwrap();
    flow.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!flow.is_done());
    flow.handle_timeout(deadline);
    assert_eq!(flow.into_report().outcome, Outcome::Failed(FailureKind::Timeout(Step::Connack)));

    let (mut flow, t0) = connected_flow(FlowSettings::default());
    expect_publish(&mut flow);
    flow.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(flow.into_report().outcome, Outcome::Failed(FailureKind::Timeout(Step::Register)));
}

#[test]
fn violations_end_the_flow() {
    let cases = [
        (topics::reply_topic(200, "1", None), r#"{"operationId":"x","status":"unassigned"}"#, Violation::Unassigned),
        (
            topics::reply_topic(200, "1", None),
            r#"{"operationId":"x","status":"assigned"}"#,
            Violation::IncompleteAssignment,
        ),
        (topics::reply_topic(202, "1", Some(1)), r#"{"status":"assigning"}"#, Violation::MissingOperationId),
        (topics::reply_topic(202, "1", Some(1)), "not json", Violation::ReplyBody),
        ("$dps/registrations/res/2x/?$rid=1".to_string(), "{}", Violation::ReplyTopic),
    ];
    for (topic, body, violation) in cases {
        let (mut flow, t0) = connected_flow(FlowSettings::default());
        expect_publish(&mut flow);
        flow.handle_packet(t0, reply(topic.clone(), body));
        assert_eq!(
            flow.into_report().outcome,
            Outcome::Failed(FailureKind::ProtocolViolation(violation)),
            "{topic} {body}"
        );
    }
}

#[test]
fn a_profile_that_polls_early_is_counted() {
    let settings = FlowSettings {
        retry: super::super::RetryPolicy::profile(super::super::RetryProfile::Python),
        ..Default::default()
    };
    let (mut flow, t0) = connected_flow(settings);
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(202, "1", Some(3)), ASSIGNING));
    flow.poll_transmit();
    // Python polls 2 s after register, whatever retry-after said.
    assert_eq!(flow.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    flow.handle_timeout(t0 + Duration::from_secs(2));
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(200, "2", None), ASSIGNED));
    assert_eq!(flow.into_report().early_requests, 1);

    let (mut flow, t0) = connected_flow(FlowSettings::default());
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(202, "1", Some(3)), ASSIGNING));
    assert_eq!(flow.poll_transmit(), Some(Packet::PubAck(PubAck::new(2))));
    flow.handle_timeout(t0 + Duration::from_secs(3));
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(200, "2", None), ASSIGNED));
    assert_eq!(flow.into_report().early_requests, 0, "dpsbench's own profile waits as told");
}

#[test]
fn keep_alive_pings_while_waiting() {
    let settings = FlowSettings { keep_alive: 2, ..Default::default() };
    let (mut flow, t0) = connected_flow(settings);
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(202, "1", Some(5)), ASSIGNING));
    flow.poll_transmit();
    assert_eq!(flow.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    flow.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(flow.poll_transmit(), Some(Packet::PingReq));
    flow.handle_packet(t0, Packet::PingResp);
    assert_eq!(flow.poll_timeout(), Some(t0 + Duration::from_secs(4)));
}

#[test]
fn lost_connection_names_the_phase_and_sends_nothing() {
    let (mut flow, t0) = connected_flow(FlowSettings::default());
    expect_publish(&mut flow);
    flow.handle_packet(t0, reply(topics::reply_topic(202, "1", Some(2)), ASSIGNING));
    flow.poll_transmit();
    flow.handle_closed(t0);
    assert_eq!(flow.poll_transmit(), None);
    assert_eq!(flow.into_report().outcome, Outcome::Failed(FailureKind::ConnectionLost(Step::Wait)));
}

/// A device that sent a CSR (register then straight to `assigned`, no poll), judged at the
/// wall-clock time `wall` (none: never set), answered with `chain`.
fn judged(wall: Option<std::time::SystemTime>, chain: Option<Vec<String>>) -> FlowReport {
    use crate::certificates::{CertificateRequest, KeyType, register_body_with_csr};
    let ca = crate::emulator::issuance::IssuingCa::generate().expect("a CA");
    let request = CertificateRequest::generate(KeyType::EcdsaP256, "dev-1").expect("a CSR");
    let id = RegistrationId::new("dev-1").unwrap();
    let issued = ca.sign(&request.csr_base64, &id, 30, std::time::SystemTime::now()).expect("signed");
    let settings = FlowSettings { certificate_issuer: Some(ca.certificate_der().clone()), ..Default::default() };
    let (mut flow, t0) = flow_with(settings);
    flow.identity.register_body = register_body_with_csr(&flow.identity.register_body, &request.csr_base64);
    flow.identity.certificate_request = Some(Arc::new(request));
    if let Some(wall) = wall {
        flow.set_wall_start(wall);
    }
    flow.connected(t0);
    assert!(matches!(flow.poll_transmit(), Some(Packet::Connect(_))));
    flow.handle_packet(t0, Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)));
    let Some(Packet::Subscribe(subscribe)) = flow.poll_transmit() else { panic!("no SUBSCRIBE") };
    flow.handle_packet(
        t0,
        Packet::SubAck(SubAck::new(subscribe.pkid, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)])),
    );
    let register = expect_publish(&mut flow);
    let body: serde_json::Value = serde_json::from_slice(&register.payload).expect("JSON");
    assert_eq!(body["registrationId"], "dev-1");
    assert!(body["csr"].as_str().is_some_and(|csr| !csr.is_empty()), "{body}");
    let mut assigned: serde_json::Value = serde_json::from_str(ASSIGNED).unwrap();
    let chain = chain.unwrap_or(issued);
    assigned["registrationState"]["issuedCertificateChain"] = serde_json::json!(chain);
    flow.handle_packet(t0, reply(topics::reply_topic(200, "1", None), &assigned.to_string()));
    assert!(flow.is_done());
    flow.into_report()
}

#[test]
fn an_issued_chain_is_judged_on_assigned() {
    use crate::certificates::{CertificateOutcome, ChainFailure};
    let now = Some(std::time::SystemTime::now());
    let verified = judged(now, None);
    assert!(matches!(verified.outcome, Outcome::Assigned { .. }));
    assert_eq!(verified.certificate, Some(CertificateOutcome::Verified));
    let missing = judged(now, Some(Vec::new()));
    assert_eq!(missing.outcome, Outcome::Failed(FailureKind::Certificate(ChainFailure::Missing)));
    assert_eq!(missing.certificate, Some(CertificateOutcome::Failed(ChainFailure::Missing)));
    // A driver that never said the time: judged at the epoch, where nothing is valid.
    let unset = judged(None, None);
    assert_eq!(unset.outcome, Outcome::Failed(FailureKind::Certificate(ChainFailure::Validity)));
}
