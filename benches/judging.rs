//! What judging clients costs per flow: whole provisioning flows (CONNECT with a SAS token,
//! SUBSCRIBE, register, poll, DISCONNECT) fed through the emulator's sans-IO session, in one of
//! three modes (`JUDGING_MODE`): `serve` (the emulator alone), `judge` (a judging emulator:
//! `--client-report`) and `passive` (the emulator, plus the device-side passive checks run on
//! the same packets, what every `dpsbench run` pays per flow). Run it under callgrind and
//! divide the instruction counts by `JUDGING_FLOWS` (benches/README.md, "Client checks"):
//!
//! ```text
//! cargo bench --bench judging --no-run
//! JUDGING_MODE=judge valgrind --tool=callgrind target/release/deps/judging-<hash>
//! ```
//!
//! Without valgrind it prints the wall time per flow (noisy on a shared machine).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dpsbench::conformance::CheckLog;
use dpsbench::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};
use dpsbench::device::RequestKind;
use dpsbench::emulator::client_checks::{Judge, JudgeConfig};
use dpsbench::emulator::{Service, ServiceConfig, Session};
use dpsbench::mqtt::QoS;
use dpsbench::mqtt::v4::{Connect, Login, Packet, PubAck, Publish, Subscribe};
use dpsbench::topics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Judge,
    Passive,
}

fn main() {
    let mode = match std::env::var("JUDGING_MODE").as_deref() {
        Ok("judge") => Mode::Judge,
        Ok("passive") => Mode::Passive,
        _ => Mode::Serve,
    };
    let flows: u64 = std::env::var("JUDGING_FLOWS").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let scope = IdScope::new("0ne00BENCH1").expect("a valid scope");
    let group_key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(scope.clone(), vec!["hub-a.example".into()], group_key.clone());
    config.retry_after_seconds = 0;
    config.assign_delay = Duration::ZERO;
    let judge = (mode == Mode::Judge).then(|| Arc::new(Judge::new(JudgeConfig::default())));
    let service = match &judge {
        Some(judge) => Service::new(config).observed_by(judge.clone()),
        None => Service::new(config),
    };
    let expiry = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs() + 3600;
    let started = Instant::now();
    let mut assigned = 0;
    for n in 0..flows {
        let id = RegistrationId::new(format!("bench-{n:06}")).expect("a valid ID");
        let token = SasToken::build(&scope, &id, &group_key.derive_device_key(&id), expiry, SasStyle::default());
        assigned += u64::from(flow(&service, &scope, &id, &token, mode));
    }
    let elapsed = started.elapsed();
    assert_eq!(assigned, flows, "every flow ends assigned");
    if let Some(judge) = &judge {
        assert_eq!(judge.report().connections, flows, "every flow was judged");
    }
    println!("{mode:?}: {flows} flows, {:.1} µs per flow", elapsed.as_secs_f64() * 1e6 / flows as f64);
}

/// One device's flow through a session; true when it ends assigned.
fn flow(service: &Service, scope: &IdScope, id: &RegistrationId, token: &SasToken, mode: Mode) -> bool {
    let mut session = Session::new();
    let mut checks = (mode == Mode::Passive).then(CheckLog::default);
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut connect = Connect::new(id.as_str());
    let username = format!("{scope}/registrations/{id}/api-version=2019-03-31&ClientVersion=bench");
    connect.login = Some(Login::new(username, token.expose()));
    for packet in session.handle(service, Packet::Connect(connect), now, wall).packets {
        if let (Some(checks), Packet::ConnAck(connack)) = (&mut checks, packet) {
            checks.connack(connack.session_present);
        }
    }
    let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    session.handle(service, Packet::Subscribe(subscribe), now, wall);
    if let Some(checks) = &mut checks {
        checks.suback(Some(QoS::AtLeastOnce));
    }
    let body = format!("{{\"registrationId\":\"{id}\"}}");
    let register = request(topics::register_topic("1"), body.into_bytes(), 2);
    let operation_id = exchange(service, &mut session, &mut checks, register, ("1", RequestKind::Register))
        .and_then(|reply| serde_json::from_slice::<serde_json::Value>(&reply.payload).ok())
        .and_then(|body| body["operationId"].as_str().map(String::from))
        .unwrap_or_default();
    let poll = request(topics::poll_topic("2", &operation_id), Vec::new(), 3);
    let done = exchange(service, &mut session, &mut checks, poll, ("2", RequestKind::Poll))
        .is_some_and(|reply| reply.topic.starts_with("$dps/registrations/res/200/"));
    session.handle(service, Packet::Disconnect, now, wall);
    session.finish(dpsbench::emulator::client_checks::Ending::Disconnect, now);
    done
}

fn request(topic: String, body: Vec<u8>, packet_id: u16) -> Publish {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, body);
    publish.pkid = packet_id;
    publish
}

/// Sends `publish`, PUBACKs the reply as a device does; returns the reply.
fn exchange(
    service: &Service,
    session: &mut Session,
    checks: &mut Option<CheckLog>,
    publish: Publish,
    request: (&str, RequestKind),
) -> Option<Publish> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    if let Some(checks) = checks {
        checks.request_sent(QoS::AtLeastOnce, publish.pkid);
    }
    let mut reply = None;
    for packet in session.handle(service, Packet::Publish(publish), now, wall).packets {
        match packet {
            Packet::PubAck(ack) => {
                if let Some(checks) = checks.as_mut() {
                    checks.puback(ack.pkid);
                }
            }
            Packet::Publish(publish) => reply = Some(publish),
            _ => {}
        }
    }
    let reply = reply?;
    if let Some(checks) = checks {
        checks.reply(&reply, Some(request), None);
    }
    session.handle(service, Packet::PubAck(PubAck::new(reply.pkid)), now, wall);
    Some(reply)
}
