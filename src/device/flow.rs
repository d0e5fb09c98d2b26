//! The provisioning state machine of one device, sans IO.
//!
//! It is fed `now`, decoded packets, timer expiries and connection loss, and produces packets to
//! send ([`Flow::poll_transmit`]), the next instant it needs waking ([`Flow::poll_timeout`]) and,
//! once, a [`FlowReport`]. It never touches a socket or reads the clock, so every path (retries,
//! timeouts, stray replies, violations) is tested by feeding it packets. What it sees on the wire
//! goes to its [`Observer`] as it happens; it does not judge it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::mqttbytes::v4::{
    Connect, ConnectReturnCode, Login, Packet, PubAck, Publish, Subscribe, SubscribeReasonCode,
};

use super::observation::{Observation, Observer, RequestKind};
use super::outcome::{FailureKind, FlowReport, Outcome, Step, Timings, Violation};
use super::{DeviceIdentity, DeviceRng, FlowSettings, Misbehaviour, PollBody, RidStyle};
use crate::messages::RegistrationOperationStatus;
use crate::mqtt::{PacketIds, QoS};
use crate::topics::{self, ReplyTopic};

#[derive(Debug)]
struct Request {
    kind: RequestKind,
    rid: String,
    sent_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the transport is up.
    Idle,
    AwaitConnAck,
    AwaitSubAck {
        packet_id: u16,
    },
    AwaitReply,
    /// Waiting out `retry-after` before sending `next`.
    Waiting {
        next: RequestKind,
    },
    Done,
}

/// One device's provisioning flow, reporting what it sees to `O`.
pub struct Flow<O = ()> {
    settings: Arc<FlowSettings>,
    identity: DeviceIdentity,
    state: State,
    packet_ids: PacketIds,
    next_rid: u32,
    outstanding: Option<Request>,
    operation_id: Option<String>,
    retries: u32,
    deadline: Option<(Instant, Step)>,
    wake: Option<Instant>,
    /// When the device last queued a packet, for keep-alive PINGREQs.
    last_sent: Option<Instant>,
    /// The instant the last reply's `retry-after` pointed to.
    told_until: Option<Instant>,
    outbox: VecDeque<Packet>,
    outcome: Option<Outcome>,
    /// `$rid` UUIDs and retry jitter.
    rng: DeviceRng,
    /// Reconnects made by a device that reconnects in a tight loop on purpose.
    reconnects: u32,
    /// The wall-clock time at `timings.start`, for the validity of an issued certificate.
    wall_start: Option<std::time::SystemTime>,
    report: FlowReport<O>,
}

impl<O: Observer> Flow<O> {
    /// A flow drawing its `$rid` UUIDs and retry jitter from `rng` (same seed, same flow) and
    /// reporting each [`Observation`] to `observer`, which ends up in its report.
    pub fn new(
        settings: Arc<FlowSettings>,
        identity: DeviceIdentity,
        timings: Timings,
        rng: DeviceRng,
        observer: O,
    ) -> Self {
        let (source_address, personality) = (identity.source_address, identity.personality);
        let mut flow = Self {
            settings,
            identity,
            state: State::Idle,
            packet_ids: PacketIds::new(),
            next_rid: 1,
            outstanding: None,
            operation_id: None,
            retries: 0,
            deadline: None,
            wake: None,
            last_sent: None,
            told_until: None,
            outbox: VecDeque::new(),
            outcome: None,
            rng,
            reconnects: 0,
            wall_start: None,
            report: FlowReport {
                outcome: Outcome::Failed(FailureKind::Aborted),
                timings,
                register_attempts: 0,
                polls: 0,
                retry_after_seconds: Vec::new(),
                statuses: Vec::new(),
                stray_replies: 0,
                source_address: None,
                early_requests: 0,
                payload_returned: None,
                personality,
                failure_detail: None,
                certificate: None,
                observer,
            },
        };
        flow.report.source_address = source_address;
        flow
    }

    pub fn settings(&self) -> &FlowSettings {
        &self.settings
    }

    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The wall-clock time at the flow's start (the driver reads the clock): an issued
    /// certificate's validity is judged at `wall_start` plus the flow's time since. Without it,
    /// the flow judges at the Unix epoch, where no certificate is valid.
    pub fn set_wall_start(&mut self, wall: std::time::SystemTime) {
        self.wall_start = Some(wall);
    }

    /// Records what the driver measured before MQTT started.
    pub fn timings_mut(&mut self) -> &mut Timings {
        &mut self.report.timings
    }

    /// The transport is up: queue CONNECT.
    pub fn connected(&mut self, now: Instant) {
        let settings = &self.settings;
        let misbehaves = |m| settings.misbehave.has(m);
        let mut connect = Connect::new(self.identity.registration_id.as_str());
        if misbehaves(Misbehaviour::ClientIdMismatch) {
            connect.client_id.push_str("-other");
        }
        if misbehaves(Misbehaviour::Mqtt5) {
            connect.protocol = rumqttc::mqttbytes::Protocol::V5;
        }
        connect.keep_alive = settings.keep_alive;
        connect.clean_session = settings.clean_session && !misbehaves(Misbehaviour::KeepSession);
        let password = self.identity.password.as_ref().map(|t| t.expose().to_string()).unwrap_or_default();
        let username = match misbehaves(Misbehaviour::UnknownApiVersion) {
            true => self.identity.username(&FlowSettings { api_version: "2099-01-01".into(), ..(**settings).clone() }),
            false => self.identity.username(settings),
        };
        connect.login = Some(Login::new(username, password));
        self.push(now, Packet::Connect(connect));
        self.report.timings.connect_sent = Some(now);
        self.state = State::AwaitConnAck;
        self.deadline = Some((now + self.settings.timeouts.connack, Step::Connack));
    }

    /// The next packet to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        self.outbox.pop_front()
    }

    /// The earliest instant at which [`Flow::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Done {
            return None;
        }
        let flow_deadline = self.report.timings.start + self.settings.timeouts.flow;
        [self.deadline.map(|(at, _)| at), self.wake, self.ping_due(), Some(flow_deadline)].into_iter().flatten().min()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The step the flow is in, for timeouts and lost connections.
    pub fn step(&self) -> Step {
        match self.state {
            State::Idle => Step::TcpConnect,
            State::AwaitConnAck => Step::Connack,
            State::AwaitSubAck { .. } => Step::Suback,
            State::AwaitReply => match self.outstanding.as_ref().map(|r| r.kind) {
                Some(RequestKind::Poll) => Step::Poll,
                _ => Step::Register,
            },
            State::Waiting { .. } | State::Done => Step::Wait,
        }
    }

    /// Time has passed: fail on an expired deadline, or send the request a wait was for.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Done {
            return;
        }
        if now >= self.report.timings.start + self.settings.timeouts.flow {
            return self.fail(now, FailureKind::Timeout(self.step()));
        }
        if let Some((at, step)) = self.deadline
            && now >= at
        {
            return self.fail(now, FailureKind::Timeout(step));
        }
        if let (Some(at), State::Waiting { next }) = (self.wake, self.state)
            && now >= at
        {
            self.wake = None;
            self.send_request(now, next);
        }
        if self.ping_due().is_some_and(|at| now >= at) {
            self.push(now, Packet::PingReq);
        }
    }

    /// The connection closed or broke.
    pub fn handle_closed(&mut self, now: Instant) {
        if self.state != State::Done {
            self.fail(now, FailureKind::ConnectionLost(self.step()));
        }
    }

    /// The driver failed before or outside MQTT (TCP, TLS, abort).
    pub fn fail(&mut self, now: Instant, kind: FailureKind) {
        self.finish(now, Outcome::Failed(kind));
    }

    /// [`Flow::fail`] with what the network said, kept for the failure's examples.
    pub fn fail_because(&mut self, now: Instant, kind: FailureKind, detail: String) {
        if self.state != State::Done {
            self.report.failure_detail = Some(detail);
        }
        self.fail(now, kind);
    }

    /// A packet arrived.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.state == State::Done {
            return;
        }
        match (self.state, packet) {
            (State::AwaitConnAck, Packet::ConnAck(connack)) => {
                self.report.timings.connack = Some(now);
                self.observe(Observation::ConnAck { session_present: connack.session_present });
                if connack.code != ConnectReturnCode::Success {
                    return self.fail(now, FailureKind::Refused(connack.code as u8));
                }
                if self.settings.connect_only {
                    self.push(now, Packet::Disconnect);
                    return self.finish(now, Outcome::Connected);
                }
                if self.misbehaves(Misbehaviour::PublishBeforeSubscribe) {
                    // The reply to this register is lost: the device registers again once subscribed.
                    self.send_request(now, RequestKind::Register);
                }
                self.subscribe(now);
            }
            (State::AwaitSubAck { packet_id }, Packet::SubAck(suback)) if suback.pkid == packet_id => {
                self.report.timings.suback = Some(now);
                let granted = match suback.return_codes.first() {
                    Some(SubscribeReasonCode::Success(qos)) => Some(*qos),
                    _ => None,
                };
                self.observe(Observation::SubAck { granted });
                // A device subscribing to an extra filter on purpose does not mind its refusal.
                let codes = match self.misbehaves(Misbehaviour::ExtraSubscription) {
                    true => &suback.return_codes[..suback.return_codes.len().min(1)],
                    false => &suback.return_codes[..],
                };
                if codes.contains(&SubscribeReasonCode::Failure) {
                    return self.fail(now, FailureKind::SubscribeRefused);
                }
                self.send_request(now, RequestKind::Register);
            }
            (State::AwaitReply | State::Waiting { .. }, Packet::Publish(publish)) => {
                if publish.qos != QoS::AtMostOnce {
                    self.push(now, Packet::PubAck(PubAck::new(publish.pkid)));
                }
                // A 2xx body is parsed once, for the checks and for the flow.
                let operation = success_status(&publish.topic)
                    .then(|| serde_json::from_slice::<RegistrationOperationStatus>(&publish.payload));
                let request = self.outstanding.as_ref().filter(|_| self.state == State::AwaitReply);
                let request = request.map(|r| (r.rid.as_str(), r.kind));
                // The topic too: for the observer and for the flow.
                let topic = ReplyTopic::parse(&publish.topic).ok();
                let reply = Observation::Reply { publish: &publish, request, operation: operation.as_ref(), topic };
                self.report.observer.observe(reply);
                self.handle_reply(now, topic, operation);
            }
            (_, Packet::PubAck(ack)) => self.observe(Observation::PubAck { packet_id: ack.pkid }),
            (_, Packet::PingResp) => {}
            _ => self.fail(now, FailureKind::ProtocolViolation(Violation::UnexpectedPacket)),
        }
    }

    /// The finished flow's report. Call once [`Flow::is_done`].
    pub fn into_report(mut self) -> FlowReport<O> {
        if let Some(outcome) = self.outcome.take() {
            self.report.outcome = outcome;
        }
        self.report
    }

    fn subscribe(&mut self, now: Instant) {
        let packet_id = self.packet_ids.next_id();
        let mut subscribe = Subscribe::new(topics::RESPONSE_FILTER, self.settings.subscribe_qos);
        if self.misbehaves(Misbehaviour::ExtraSubscription) {
            subscribe.add("#".into(), self.settings.subscribe_qos);
        }
        subscribe.pkid = packet_id;
        self.push(now, Packet::Subscribe(subscribe));
        self.report.timings.subscribe_sent = Some(now);
        self.state = State::AwaitSubAck { packet_id };
        self.deadline = Some((now + self.settings.timeouts.suback, Step::Suback));
    }

    fn send_request(&mut self, now: Instant, kind: RequestKind) {
        if self.told_until.take().is_some_and(|until| now < until) {
            self.report.early_requests += 1;
        }
        let rid = match self.settings.rid_style {
            RidStyle::Counter => {
                let rid = self.next_rid;
                self.next_rid += 1;
                rid.to_string()
            }
            RidStyle::Literal1 => "1".to_string(),
            RidStyle::Uuid => crate::messages::uuid_v4(&mut self.rng),
        };
        let (topic, payload, step) = match kind {
            RequestKind::Register => {
                self.report.register_attempts += 1;
                self.report.timings.register_sent.get_or_insert(now);
                if self.identity.certificate_request.is_some() {
                    self.report.certificate.get_or_insert(crate::certificates::CertificateOutcome::Requested);
                }
                let topic = match self.misbehaves(Misbehaviour::RegisterWithoutRid) {
                    true => "$dps/registrations/PUT/iotdps-register/".to_string(),
                    false => topics::register_topic(&rid),
                };
                (topic, self.identity.register_body.clone(), Step::Register)
            }
            RequestKind::Poll => {
                self.report.polls += 1;
                let mut operation_id = self.operation_id.clone().unwrap_or_default();
                if self.misbehaves(Misbehaviour::WrongOperationId) {
                    operation_id.push_str("-other");
                }
                let body = match self.settings.poll_body {
                    PollBody::Empty => Bytes::new(),
                    PollBody::Space => Bytes::from_static(b" "),
                    PollBody::RegisterBody => self.identity.register_body.clone(),
                };
                (topics::poll_topic(&rid, &operation_id), body, Step::Poll)
            }
        };
        let qos = match kind {
            RequestKind::Register => self.settings.register_qos,
            RequestKind::Poll => self.settings.poll_qos,
        };
        let mut publish = Publish::from_bytes(topic, qos, payload);
        if publish.qos != QoS::AtMostOnce {
            publish.pkid = self.packet_ids.next_id();
        }
        self.observe(Observation::RequestSent { qos: publish.qos, packet_id: publish.pkid });
        if kind == RequestKind::Poll && self.misbehaves(Misbehaviour::DuplicateRid) {
            let mut again = publish.clone();
            if again.qos != QoS::AtMostOnce {
                again.pkid = self.packet_ids.next_id();
            }
            self.push(now, Packet::Publish(again));
        }
        self.push(now, Packet::Publish(publish));
        self.outstanding = Some(Request { kind, rid, sent_at: now });
        self.state = State::AwaitReply;
        self.deadline = Some((now + self.settings.timeouts.reply, step));
    }

    fn wait_then(&mut self, now: Instant, next: RequestKind, wait: Duration) {
        self.deadline = None;
        if wait.is_zero() {
            return self.send_request(now, next);
        }
        self.state = State::Waiting { next };
        self.wake = Some(now + wait);
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        let connected = !matches!(self.state, State::Idle | State::AwaitConnAck | State::Done);
        let lost = matches!(outcome, Outcome::Failed(FailureKind::ConnectionLost(_)));
        if connected && !lost && !self.misbehaves(Misbehaviour::NoDisconnect) {
            self.push(now, Packet::Disconnect);
        }
        self.state = State::Done;
        self.deadline = None;
        self.wake = None;
        self.report.timings.end = Some(now);
        self.outcome = Some(outcome);
    }

    fn misbehaves(&self, misbehaviour: Misbehaviour) -> bool {
        self.settings.misbehave.has(misbehaviour)
    }

    /// A device that reconnects in a tight loop on purpose: after a failed connection, back to
    /// the start (at most `RECONNECTS` times), with no wait. False when the flow is over.
    pub fn reconnect_at_once(&mut self) -> bool {
        const RECONNECTS: u32 = 3;
        let failed = matches!(&self.outcome, Some(Outcome::Failed(kind)) if *kind != FailureKind::Aborted);
        if !self.misbehaves(Misbehaviour::ReconnectTightLoop) || !failed || self.reconnects >= RECONNECTS {
            return false;
        }
        self.reconnects += 1;
        self.state = State::Idle;
        self.outcome = None;
        self.outstanding = None;
        self.outbox.clear();
        self.deadline = None;
        self.wake = None;
        self.report.timings.end = None;
        true
    }

    fn observe(&mut self, observation: Observation<'_>) {
        self.report.observer.observe(observation);
    }

    fn push(&mut self, now: Instant, packet: Packet) {
        self.last_sent = Some(now);
        self.outbox.push_back(packet);
    }

    fn ping_due(&self) -> Option<Instant> {
        let keep_alive = self.settings.keep_alive;
        if keep_alive == 0 || matches!(self.state, State::Idle | State::AwaitConnAck | State::Done) {
            return None;
        }
        self.last_sent.map(|at| at + Duration::from_secs(keep_alive.into()))
    }
}

/// Whether a reply topic's status is 2xx (a RegistrationOperationStatus body), read without a
/// full parse.
fn success_status(topic: &str) -> bool {
    topic.strip_prefix(topics::RESPONSE_PREFIX).is_some_and(|rest| rest.starts_with('2'))
}

mod replies;
#[cfg(test)]
mod tests;
