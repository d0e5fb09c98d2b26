//! One device connection's protocol state: what the emulated DPS answers to each packet of it.
//!
//! Sans IO, like the rest of `service`: packets and `now`/`wall` in, packets out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, SubAck, Subscribe, UnsubAck,
};

use super::Service;
use super::answer::{Device, answer};
use super::reply::Reply;
use crate::credentials::RegistrationId;
use crate::emulator::activity::Refusal;
use crate::emulator::admission::{self, Admitted, ConnectDecision, RequestDecision};
use crate::emulator::facts::{ConnectContext, ConnectFacts};
use crate::emulator::faults::{Malformed, RequestFault};
use crate::emulator::issuance::Enrollment;
use crate::emulator::observe::{Ending, ReplySent, RequestSeen, SessionObserver};
use crate::mqtt::{PacketIds, QoS};
use crate::topics::{self, RequestTopic};
use crate::x509::PeerCertificate;

/// What to do after handling a packet.
#[derive(Debug, Default, PartialEq)]
pub struct Response {
    /// Packets to send, in this order.
    pub packets: Vec<Packet>,
    /// Close the connection after sending them.
    pub close: bool,
    /// Close with a TCP reset (SO_LINGER 0) instead of a clean close: a fault on demand.
    pub reset: bool,
    /// Hold the last packet (the reply) back this long: a fault on demand.
    pub delay: Option<Duration>,
    /// Bytes written after the packets (a truncated reply), before the connection closes.
    pub raw: Vec<u8>,
}

impl Response {
    pub(super) fn send(packet: Packet) -> Self {
        Self { packets: vec![packet], ..Self::default() }
    }

    pub(super) fn close_after(packet: Option<Packet>) -> Self {
        Self { packets: packet.into_iter().collect(), close: true, ..Self::default() }
    }

    /// A TCP reset, nothing sent.
    pub(super) fn reset() -> Self {
        Self { close: true, reset: true, ..Self::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SessionState {
    AwaitConnect,
    Connected {
        registration_id: RegistrationId,
        authorized: bool,
        clean_session: bool,
        /// `registrationState.x509` of an X.509 device.
        x509: Option<serde_json::Value>,
        /// The enrollment it authenticated through (none when it did not).
        enrollment: Option<Enrollment>,
    },
}

/// One device connection's protocol state.
pub struct Session {
    state: SessionState,
    /// QoS replies are delivered at; `None` until the response filter is subscribed.
    reply_qos: Option<QoS>,
    packet_ids: PacketIds,
    keep_alive: u16,
    /// The client certificate presented in the TLS handshake, if any.
    peer: Option<PeerCertificate>,
    /// Whether the TLS handshake negotiated TLS 1.2 (`None` without TLS).
    tls12: Option<bool>,
    /// What observes this connection, from its CONNECT on (when the service is observed).
    observer: Option<Box<dyn SessionObserver>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("reply_qos", &self.reply_qos)
            .finish_non_exhaustive()
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Self::with_peer(None)
    }

    /// A session whose TLS handshake presented `peer` as client certificate.
    pub fn with_peer(peer: Option<PeerCertificate>) -> Self {
        Self {
            state: SessionState::AwaitConnect,
            reply_qos: None,
            packet_ids: PacketIds::new(),
            keep_alive: 0,
            peer,
            tls12: None,
            observer: None,
        }
    }

    /// Records the TLS version the handshake negotiated, for the client checks.
    pub fn set_tls12(&mut self, tls12: bool) {
        self.tls12 = Some(tls12);
    }

    /// The connection ended as `ending` says: its observer hears it.
    pub fn finish(&mut self, ending: Ending, now: Instant) {
        if let Some(observer) = self.observer.take() {
            observer.ended(ending, now);
        }
    }

    /// Tells this connection's observer of an event, if it has one.
    fn observe(&mut self, event: impl FnOnce(&mut dyn SessionObserver)) {
        if let Some(observer) = self.observer.as_deref_mut() {
            event(observer);
        }
    }

    /// The keep-alive the device asked for, once connected (0 before).
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    /// The key of the connected client in the service's live connections: its registration ID,
    /// canonical (DPS's registration IDs are case-insensitive). `None` before CONNECT.
    pub fn client_key(&self) -> Option<String> {
        match &self.state {
            SessionState::Connected { registration_id, .. } => Some(registration_id.canonical()),
            SessionState::AwaitConnect => None,
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, SessionState::Connected { .. })
    }

    /// A CONNECT the codec could not read because its protocol level is neither 4 nor 5 (MQTT
    /// 3.1's level 3 under the name `MQTT`): before CONNECT, refused with CONNACK 1
    /// (unacceptable protocol version) and closed, as MQTT-3.1.2-2 asks; at any other time the
    /// connection is closed.
    pub fn unsupported_protocol_level(&mut self, service: &Service) -> Response {
        if self.is_connected() {
            return Response::close_after(None);
        }
        service.stats.connects_refused.fetch_add(1, Ordering::Relaxed);
        service.stats.refusals.add(Refusal::ProtocolVersion);
        Response::close_after(Some(Packet::ConnAck(ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false))))
    }

    /// Handles one packet from the device.
    pub fn handle(&mut self, service: &Service, packet: Packet, now: Instant, wall: SystemTime) -> Response {
        match (&self.state, packet) {
            (SessionState::AwaitConnect, Packet::Connect(connect)) => self.on_connect(service, &connect, now, wall),
            // Anything before CONNECT, or a second CONNECT, breaks MQTT 3.1.1 §3.1: close.
            (SessionState::AwaitConnect, _) | (_, Packet::Connect(_)) => Response::close_after(None),
            (_, Packet::Subscribe(subscribe)) => self.subscribe(service, subscribe),
            (_, Packet::Unsubscribe(_)) if service.config.deviations.ignores_unsubscribe() => Response::default(),
            (_, Packet::Unsubscribe(unsubscribe)) => {
                if unsubscribe.topics.iter().any(|t| t == topics::RESPONSE_FILTER) {
                    self.reply_qos = None;
                }
                Response::send(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)))
            }
            (_, Packet::Publish(publish)) => self.publish(service, publish, now, wall),
            (_, Packet::PingReq) => Response::send(Packet::PingResp),
            (_, Packet::PubAck(ack)) => {
                self.observe(|observer| observer.acked(ack.pkid));
                Response::default()
            }
            (_, Packet::Disconnect) => Response::close_after(None),
            // PUBREC/PUBREL/PUBCOMP (QoS 2 is not offered) and server-only packets.
            _ => Response::close_after(None),
        }
    }

    /// A CONNECT: its facts parsed once, told to the observer, then answered.
    fn on_connect(&mut self, service: &Service, connect: &Connect, now: Instant, wall: SystemTime) -> Response {
        let config = &service.config;
        let individual =
            |id: &str| config.individuals.iter().any(|i| i.registration_id.as_str().eq_ignore_ascii_case(id));
        // The certificate matters only at CONNECT; a second CONNECT closes the connection.
        let peer = self.peer.take();
        let context = ConnectContext {
            id_scope: config.id_scope.as_str(),
            certificate_cn: peer.as_ref().and_then(|peer| peer.common_name.as_deref()),
            x509: peer.is_some(),
            individual: &individual,
            now_unix: ConnectContext::unix_seconds(wall),
        };
        let facts = ConnectFacts::parse(connect, context);
        if let Some(observer) = service.observer() {
            let mut observer = observer.clone().session(self.tls12);
            observer.connected(&facts, now);
            self.observer = Some(observer);
        }
        self.connect(service, &facts, peer.as_ref())
    }

    fn connect(&mut self, service: &Service, facts: &ConnectFacts<'_>, peer: Option<&PeerCertificate>) -> Response {
        let admitted = match admission::connect(&service.config, &service.faults, facts, peer, service) {
            ConnectDecision::Admit(admitted) => admitted,
            ConnectDecision::Reset => return Response::reset(),
            ConnectDecision::Refuse(code, reason) => {
                service.stats.connects_refused.fetch_add(1, Ordering::Relaxed);
                service.stats.refusals.add(reason);
                return Response::close_after(Some(Packet::ConnAck(ConnAck::new(code, false))));
            }
        };
        let Admitted { registration_id, authorized, x509, enrollment } = admitted;
        let connect = facts.connect;
        service.stats.connects_accepted.fetch_add(1, Ordering::Relaxed);
        self.keep_alive = connect.keep_alive;
        if !connect.clean_session && service.kept_subscription(&registration_id.canonical()) {
            self.reply_qos = Some(QoS::AtLeastOnce);
        }
        self.state = SessionState::Connected {
            registration_id,
            authorized,
            clean_session: connect.clean_session,
            x509,
            enrollment,
        };
        let session_present = service.config.deviations.session_present();
        Response::send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, session_present)))
    }

    fn subscribe(&mut self, service: &Service, subscribe: Subscribe) -> Response {
        if admission::subscribe_reset(&service.faults) {
            return Response::reset();
        }
        self.observe(|observer| observer.subscribed(&mut subscribe.filters.iter().map(|filter| filter.path.as_str())));
        let codes = subscribe
            .filters
            .iter()
            .map(|filter| {
                let grant = service.config.deviations.grant(&filter.path, filter.qos);
                if let Some(qos) = grant.replies_at {
                    self.reply_qos = Some(qos);
                    if let SessionState::Connected { registration_id, clean_session: false, .. } = &self.state {
                        service.keep_subscription(registration_id.canonical());
                    }
                }
                grant.code
            })
            .collect();
        Response::send(Packet::SubAck(SubAck::new(subscribe.pkid, codes)))
    }

    fn publish(&mut self, service: &Service, publish: Publish, now: Instant, wall: SystemTime) -> Response {
        let SessionState::Connected { registration_id, authorized, x509, enrollment, .. } = &self.state else {
            return Response::close_after(None);
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            let canonical = registration_id.canonical();
            let latest_operation = || service.latest_operation(&canonical);
            let request =
                RequestSeen { topic: &publish.topic, payload: &publish.payload, latest_operation: &latest_operation };
            observer.requested(request, now);
        }
        if publish.qos == QoS::ExactlyOnce {
            return Response::close_after(None);
        }
        let deviations = &service.config.deviations;
        let puback = (publish.qos == QoS::AtLeastOnce).then(|| Packet::PubAck(PubAck::new(publish.pkid)));
        // Only the documented topics exist; anything else ends the connection.
        let Ok(request) = RequestTopic::parse(&publish.topic) else {
            return match deviations.accepts_undocumented_topic() {
                true => Response { packets: puback.into_iter().collect(), ..Response::default() },
                false => Response::close_after(None),
            };
        };
        let register = matches!(request, RequestTopic::Register { .. });
        let admitted = admission::Request { authorized: *authorized, register, replied: self.reply_qos.is_some() };
        let RequestDecision::Answer { fault, delay } = admission::request(&service.faults, admitted) else {
            return Response::reset();
        };
        let mut response = Response::default();
        let puback = deviations.puback_order(puback);
        response.packets.extend(puback.before);
        let mut reply = match fault {
            Some(RequestFault::DropReply) => return response,
            Some(RequestFault::ServerError(status)) => {
                fault_error(service, status, u32::from(status) * 1000, "The service is unavailable.", wall)
            }
            Some(RequestFault::Throttle) => {
                fault_error(service, 429, 429001, "Operations are being throttled by the service.", wall)
            }
            _ if *authorized => {
                let device = Device { registration_id, x509: x509.clone(), enrollment: enrollment.as_ref() };
                answer(service, device, request, &publish.payload, now, wall)
            }
            _ => Reply::error(service, 401, 401000, "Unauthorized", None, wall),
        };
        let mut rid = request.rid().to_string();
        let malformed = match fault {
            Some(RequestFault::Malformed(malformed)) => Some(malformed),
            _ => None,
        };
        match malformed {
            Some(Malformed::InvalidJson) => reply.body = b"{\"operationId\": ".to_vec(),
            Some(Malformed::WrongRid) => rid.push_str("-wrong"),
            Some(Malformed::UnknownStatus) => reply.status = Malformed::UNKNOWN_STATUS,
            Some(Malformed::Truncated) | None => {}
        }
        if let Some(qos) = self.reply_qos {
            let (qos, topic) = deviations.reply(qos, reply.status, &rid, reply.retry_after);
            let mut publish = Publish::new(topic, qos, reply.body);
            if qos != QoS::AtMostOnce {
                publish.pkid = self.packet_ids.next_id();
            }
            let sent = ReplySent {
                rid: request.rid(),
                status: reply.status,
                retry_after: reply.retry_after,
                poll: matches!(request, RequestTopic::Poll { .. }),
                packet_id: (qos != QoS::AtMostOnce).then_some(publish.pkid),
            };
            self.observe(|observer| observer.replied(sent, now));
            if malformed == Some(Malformed::Truncated) {
                response.raw = truncated(Packet::Publish(publish));
                response.close = true;
                return response;
            }
            response.packets.push(Packet::Publish(publish));
            response.delay = delay;
        }
        response.packets.extend(puback.after);
        response
    }
}

/// The first half of `packet` as the wire carries it: its length promises more than follows.
fn truncated(packet: Packet) -> Vec<u8> {
    let mut bytes = bytes::BytesMut::new();
    // A reply the emulator built always encodes; an empty result would only send nothing.
    let _ = packet.write(&mut bytes, crate::mqtt::MAX_PACKET_SIZE);
    bytes.truncate(bytes.len() / 2);
    bytes.to_vec()
}

/// A fault's error reply: `status` with an error body and `retry-after`.
fn fault_error(service: &Service, status: u16, code: u32, message: &str, wall: SystemTime) -> Reply {
    let retry_after = service.config.retry_after_seconds.max(1);
    Reply::error(service, status, code, message, Some(retry_after), wall)
}
