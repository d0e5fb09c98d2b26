//! The DPS service logic of the emulator, sans IO: what DPS answers to each packet.
//!
//! [`Service`] is shared by every connection (enrollments, registration records, operations,
//! quotas, counters); [`Session`] is one connection's state. `Session::handle` takes a decoded
//! packet plus `now` (monotonic, for delays and quotas) and `wall` (for timestamps), and returns
//! the packets to send, in order, and whether to close. It follows every "emulator must" of
//! `dps-mqtt.md`: SessionPresent always 0, QoS granted `min(requested, 1)`, 0x80 for other
//! filters, PUBACK before the reply, `$rid` echoed first, `retry-after` on every 202 and 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rumqttc::mqttbytes::Protocol;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, SubAck, Subscribe, SubscribeReasonCode, UnsubAck,
};
use sha2::{Digest, Sha256};

use super::config::{AuthFailure, QuotaConfig, ServiceConfig};
use crate::credentials::{RegistrationId, SasToken, SymmetricKey};
use crate::messages::{self, ErrorBody, OperationStatus, RegistrationOperationStatus, RegistrationState, Substatus};
use crate::mqtt::QoS;
use crate::topics::{self, RequestTopic, Username};
use crate::x509::PeerCertificate;

/// Counters of what the emulator served, readable while it runs.
#[derive(Debug, Default)]
pub struct ServiceStats {
    pub connections: AtomicU64,
    pub connects_accepted: AtomicU64,
    pub connects_refused: AtomicU64,
    pub registrations: AtomicU64,
    pub polls: AtomicU64,
    pub assigned: AtomicU64,
    pub throttled: AtomicU64,
}

impl ServiceStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
struct Record {
    registration_id: String,
    hub: String,
    created: String,
    last_updated: String,
    etag: String,
    /// The custom allocation payload of the last registration (kept when echoing).
    payload: Option<serde_json::Value>,
    /// `registrationState.x509` for X.509 devices.
    x509: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
struct Operation {
    /// Canonical registration ID of the device that registered.
    device: String,
    ready_at: Instant,
    /// A final status was sent (for the `status_backwards` deviation).
    reported_final: bool,
}

#[derive(Debug, Default)]
struct Registry {
    records: HashMap<String, Record>,
    operations: HashMap<String, Operation>,
    registers_since_prune: u32,
    /// Devices whose subscription a deviating emulator keeps across reconnects.
    kept_subscriptions: std::collections::HashSet<String>,
}

/// How long an operation stays pollable after its assignment.
const OPERATION_RETENTION: Duration = Duration::from_secs(600);

/// A token bucket refilled continuously at `per_minute`.
#[derive(Debug)]
struct Bucket {
    per_minute: f64,
    tokens: f64,
    updated: Option<Instant>,
}

impl Bucket {
    fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.into(), tokens: per_minute.into(), updated: None }
    }

    /// Takes a token, or says how many whole seconds until one is available.
    fn take(&mut self, now: Instant) -> Result<(), u32> {
        if let Some(updated) = self.updated {
            let refill = now.saturating_duration_since(updated).as_secs_f64() * self.per_minute / 60.0;
            self.tokens = (self.tokens + refill).min(self.per_minute);
        }
        self.updated = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let seconds = ((1.0 - self.tokens) * 60.0 / self.per_minute).ceil();
            Err((seconds as u32).clamp(1, 300))
        }
    }
}

struct Quotas {
    registrations: Mutex<Bucket>,
    operations: Mutex<Bucket>,
}

impl Quotas {
    fn new(config: QuotaConfig) -> Self {
        Self {
            registrations: Mutex::new(Bucket::new(config.registrations_per_minute)),
            operations: Mutex::new(Bucket::new(config.operations_per_minute)),
        }
    }
}

/// The shared state of one emulated DPS instance.
pub struct Service {
    config: ServiceConfig,
    /// The 16-hex-digit middle part of this instance's operation IDs.
    instance: u64,
    registry: Mutex<Registry>,
    quotas: Option<Quotas>,
    pub stats: ServiceStats,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(config: ServiceConfig) -> Self {
        let quotas = config.quota.map(Quotas::new);
        Self { config, instance: rand::random(), registry: Mutex::default(), quotas, stats: ServiceStats::default() }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The hub DPS's evenly weighted policy picks: a stable hash of the registration ID.
    pub fn hub_for(&self, canonical_id: &str) -> &str {
        let digest = Sha256::digest(canonical_id.as_bytes());
        let hash = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
        let index = (hash % self.config.hubs.len() as u64) as usize;
        &self.config.hubs[index]
    }

    /// Number of devices with a registration record.
    pub fn registered_devices(&self) -> usize {
        self.lock().records.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way later
        // requests would misread, so a poisoned lock is still usable.
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks a SAS password for `registration_id` against its individual enrollment, else
    /// against every group's derived keys.
    fn authenticate(&self, registration_id: &RegistrationId, password: &str, now_unix: u64) -> bool {
        let token = SasToken::from_password(password);
        let Ok(parsed) = token.parse() else { return false };
        let scope = &self.config.id_scope;
        let canonical = registration_id.canonical();
        if let Some(individual) = self.config.individuals.iter().find(|i| i.registration_id.canonical() == canonical) {
            let keys = std::iter::once(&individual.primary).chain(individual.secondary.as_ref());
            return parsed.verify(scope, registration_id, now_unix, keys).is_ok();
        }
        self.config.groups.iter().any(|group| {
            let keys: Vec<SymmetricKey> = std::iter::once(&group.primary)
                .chain(group.secondary.as_ref())
                .map(|group_key| group_key.derive_device_key(registration_id))
                .collect();
            parsed.verify(scope, registration_id, now_unix, &keys).is_ok()
        })
    }

    /// Checks a client certificate for `registration_id`: its CN must be the registration ID, and
    /// it must be pinned by an individual enrollment or chain to a group's CA. Returns the
    /// `registrationState.x509` object DPS reports.
    fn authenticate_x509(&self, registration_id: &RegistrationId, peer: &PeerCertificate) -> Option<serde_json::Value> {
        let cn = peer.common_name.as_deref()?;
        if !cn.eq_ignore_ascii_case(registration_id.as_str()) && !self.config.deviations.accept_cn_mismatch {
            return None;
        }
        let canonical = registration_id.canonical();
        if self
            .config
            .x509_individuals
            .iter()
            .any(|i| i.registration_id.canonical() == canonical && i.sha256 == peer.sha256)
        {
            return Some(serde_json::json!({ "certificateInfo": peer.info }));
        }
        let group = self
            .config
            .x509_groups
            .iter()
            .find(|g| peer.issuers.contains(&g.subject) || peer.subjects[1..].contains(&g.subject))?;
        Some(serde_json::json!({ "enrollmentGroupId": group.name, "certificateInfo": peer.info }))
    }

    fn throttle(&self, bucket: impl Fn(&Quotas) -> &Mutex<Bucket>, now: Instant) -> Result<(), u32> {
        match &self.quotas {
            None => Ok(()),
            Some(quotas) => bucket(quotas).lock().unwrap_or_else(|p| p.into_inner()).take(now),
        }
    }

    /// Starts a registration; returns its operation ID.
    fn register(
        &self,
        registration_id: &RegistrationId,
        payload: Option<serde_json::Value>,
        x509: Option<serde_json::Value>,
        now: Instant,
        wall: SystemTime,
    ) -> String {
        let payload = payload.filter(|_| self.config.echo_payload);
        let canonical = registration_id.canonical();
        let operation_id = messages::operation_id(self.instance);
        let ready_at = now + self.config.assign_delay;
        let assigned_wall = wall + self.config.assign_delay;
        let hub = self.hub_for(&canonical).to_string();
        let timestamp = messages::format_timestamp(assigned_wall);
        let etag = messages::etag();
        let mut registry = self.lock();
        registry.registers_since_prune += 1;
        if registry.registers_since_prune >= 4096 {
            registry.registers_since_prune = 0;
            registry.operations.retain(|_, op| op.ready_at + OPERATION_RETENTION > now);
        }
        registry
            .records
            .entry(canonical.clone())
            .and_modify(|record| {
                // A second registration of the same device keeps its hub, ID and creation time.
                record.last_updated = timestamp.clone();
                record.etag = etag.clone();
                record.payload = payload.clone();
                record.x509 = x509.clone();
            })
            .or_insert_with(|| Record {
                registration_id: registration_id.as_str().to_string(),
                hub,
                created: timestamp.clone(),
                last_updated: timestamp,
                etag,
                payload,
                x509,
            });
        registry
            .operations
            .insert(operation_id.clone(), Operation { device: canonical, ready_at, reported_final: false });
        operation_id
    }

    /// The status of an operation, if it exists and belongs to this device.
    fn operation_status(
        &self,
        registration_id: &RegistrationId,
        operation_id: &str,
        now: Instant,
    ) -> Option<RegistrationOperationStatus> {
        let canonical = registration_id.canonical();
        let mut registry = self.lock();
        let operation = registry.operations.get_mut(operation_id).filter(|op| op.device == canonical)?;
        let backwards = self.config.deviations.status_backwards && operation.reported_final;
        operation.reported_final = now >= operation.ready_at;
        if now < operation.ready_at || backwards {
            return Some(RegistrationOperationStatus {
                operation_id: operation_id.to_string(),
                status: OperationStatus::Assigning,
                registration_state: Some(RegistrationState {
                    registration_id: Some(registration_id.as_str().to_string()),
                    status: Some(OperationStatus::Assigning),
                    ..Default::default()
                }),
            });
        }
        let record = registry.records.get(&canonical)?;
        let mut status = RegistrationOperationStatus {
            operation_id: operation_id.to_string(),
            status: OperationStatus::Assigned,
            registration_state: Some(RegistrationState {
                x509: record.x509.clone(),
                registration_id: Some(record.registration_id.clone()),
                created_date_time_utc: Some(record.created.clone()),
                assigned_hub: Some(record.hub.clone()),
                device_id: Some(record.registration_id.clone()),
                status: Some(OperationStatus::Assigned),
                substatus: Some(Substatus::InitialAssignment),
                last_updated_date_time_utc: Some(record.last_updated.clone()),
                etag: Some(record.etag.clone()),
                payload: record.payload.clone(),
                ..Default::default()
            }),
        };
        self.config.deviations.final_status(&mut status);
        Some(status)
    }

    fn keep_subscription(&self, canonical: String) {
        self.lock().kept_subscriptions.insert(canonical);
    }

    fn kept_subscription(&self, canonical: &str) -> bool {
        self.lock().kept_subscriptions.contains(canonical)
    }
}

/// What to do after handling a packet.
#[derive(Debug, Default, PartialEq)]
pub struct Response {
    /// Packets to send, in this order.
    pub packets: Vec<Packet>,
    /// Close the connection after sending them.
    pub close: bool,
}

impl Response {
    fn send(packet: Packet) -> Self {
        Self { packets: vec![packet], close: false }
    }

    fn close_after(packet: Option<Packet>) -> Self {
        Self { packets: packet.into_iter().collect(), close: true }
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
    },
}

/// One device connection's protocol state.
#[derive(Debug)]
pub struct Session {
    state: SessionState,
    /// QoS replies are delivered at; `None` until the response filter is subscribed.
    reply_qos: Option<QoS>,
    next_packet_id: u16,
    keep_alive: u16,
    /// The client certificate presented in the TLS handshake, if any.
    peer: Option<PeerCertificate>,
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
        Self { state: SessionState::AwaitConnect, reply_qos: None, next_packet_id: 1, keep_alive: 0, peer }
    }

    /// The keep-alive the device asked for, once connected (0 before).
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, SessionState::Connected { .. })
    }

    /// Handles one packet from the device.
    pub fn handle(&mut self, service: &Service, packet: Packet, now: Instant, wall: SystemTime) -> Response {
        match (&self.state, packet) {
            (SessionState::AwaitConnect, Packet::Connect(connect)) => self.connect(service, connect, wall),
            // Anything before CONNECT, or a second CONNECT, breaks MQTT 3.1.1 §3.1: close.
            (SessionState::AwaitConnect, _) | (_, Packet::Connect(_)) => Response::close_after(None),
            (_, Packet::Subscribe(subscribe)) => self.subscribe(service, subscribe),
            (_, Packet::Unsubscribe(unsubscribe)) => {
                if unsubscribe.topics.iter().any(|t| t == topics::RESPONSE_FILTER) {
                    self.reply_qos = None;
                }
                Response::send(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)))
            }
            (_, Packet::Publish(publish)) => self.publish(service, publish, now, wall),
            (_, Packet::PingReq) => Response::send(Packet::PingResp),
            (_, Packet::PubAck(_)) => Response::default(),
            (_, Packet::Disconnect) => Response::close_after(None),
            // PUBREC/PUBREL/PUBCOMP (QoS 2 is not offered) and server-only packets.
            _ => Response::close_after(None),
        }
    }

    fn connect(&mut self, service: &Service, connect: Connect, wall: SystemTime) -> Response {
        let refuse = |code| {
            service.stats.connects_refused.fetch_add(1, Ordering::Relaxed);
            Response::close_after(Some(Packet::ConnAck(ConnAck::new(code, false))))
        };
        if connect.protocol != Protocol::V4 {
            return refuse(ConnectReturnCode::RefusedProtocolVersion);
        }
        let deviations = &service.config.deviations;
        let Some(registration_id) = registration_from_username(service, &connect, deviations.accept_client_id_mismatch)
        else {
            return refuse(ConnectReturnCode::NotAuthorized);
        };
        let now_unix = wall.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let password = connect.login.as_ref().map(|l| l.password.as_str()).unwrap_or_default();
        // A device that presented a certificate is an X.509 device: no password is needed.
        let x509 = self.peer.as_ref().and_then(|peer| service.authenticate_x509(&registration_id, peer));
        let authorized = match &self.peer {
            Some(_) => x509.is_some(),
            None => deviations.accept_any_password || service.authenticate(&registration_id, password, now_unix),
        };
        if !authorized && service.config.auth_failure == AuthFailure::Connack {
            return refuse(ConnectReturnCode::NotAuthorized);
        }
        service.stats.connects_accepted.fetch_add(1, Ordering::Relaxed);
        self.keep_alive = connect.keep_alive;
        if deviations.keep_subscriptions
            && !connect.clean_session
            && service.kept_subscription(&registration_id.canonical())
        {
            self.reply_qos = Some(QoS::AtLeastOnce);
        }
        self.state =
            SessionState::Connected { registration_id, authorized, clean_session: connect.clean_session, x509 };
        // DPS keeps no sessions: SessionPresent is 0 whatever CleanSession said.
        Response::send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, deviations.session_present)))
    }

    fn subscribe(&mut self, service: &Service, subscribe: Subscribe) -> Response {
        let deviations = &service.config.deviations;
        let codes = subscribe
            .filters
            .iter()
            .map(|filter| {
                let capped = if filter.qos == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                let granted = if deviations.grant_qos2 { filter.qos } else { capped };
                if filter.path == topics::RESPONSE_FILTER {
                    self.reply_qos = Some(capped);
                    if let SessionState::Connected { registration_id, clean_session: false, .. } = &self.state
                        && deviations.keep_subscriptions
                    {
                        service.keep_subscription(registration_id.canonical());
                    }
                    SubscribeReasonCode::Success(granted)
                } else if deviations.accept_other_filters {
                    SubscribeReasonCode::Success(granted)
                } else {
                    SubscribeReasonCode::Failure
                }
            })
            .collect();
        Response::send(Packet::SubAck(SubAck::new(subscribe.pkid, codes)))
    }

    fn publish(&mut self, service: &Service, publish: Publish, now: Instant, wall: SystemTime) -> Response {
        let SessionState::Connected { registration_id, authorized, x509, .. } = &self.state else {
            return Response::close_after(None);
        };
        if publish.qos == QoS::ExactlyOnce {
            return Response::close_after(None);
        }
        let deviations = &service.config.deviations;
        let puback = (publish.qos == QoS::AtLeastOnce).then(|| Packet::PubAck(PubAck::new(publish.pkid)));
        // Only the documented topics exist; anything else ends the connection.
        let Ok(request) = RequestTopic::parse(&publish.topic) else {
            return match puback {
                Some(ack) if deviations.accept_undocumented_topics => Response::send(ack),
                None if deviations.accept_undocumented_topics => Response::default(),
                _ => Response::close_after(None),
            };
        };
        let mut response = Response::default();
        // PUBACK goes out before the reply: C# v1 fails on any other order.
        response.packets.extend(puback.clone().filter(|_| !deviations.reply_before_puback));
        let (status, retry_after, body) = if *authorized {
            answer(service, registration_id, x509.clone(), request, &publish.payload, now, wall)
        } else {
            let error = ErrorBody::new(401000, "Unauthorized", wall);
            (401, None, serde_json::to_vec(&error).expect("error bodies serialise"))
        };
        if let Some(qos) = self.reply_qos {
            let qos = if deviations.reply_qos0 { QoS::AtMostOnce } else { qos };
            let mut reply = Publish::new(deviations.reply_topic(status, request.rid(), retry_after), qos, body);
            if qos != QoS::AtMostOnce {
                reply.pkid = self.packet_id();
            }
            response.packets.push(Packet::Publish(reply));
        }
        response.packets.extend(puback.filter(|_| deviations.reply_before_puback));
        response
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_packet_id;
        self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
        id
    }
}

/// The registration ID a CONNECT names, if its username has DPS's form for this scope and its
/// clientId is the same registration ID.
fn registration_from_username(service: &Service, connect: &Connect, any_client_id: bool) -> Option<RegistrationId> {
    let username = Username::parse(connect.login.as_ref().map(|l| l.username.as_str())?).ok()?;
    let id = username.registration_id;
    if username.id_scope != service.config.id_scope.as_str()
        || !(any_client_id || id.eq_ignore_ascii_case(&connect.client_id))
    {
        return None;
    }
    RegistrationId::new(id).ok()
}

/// Status, `retry-after` and body for an authorised register or poll.
fn answer(
    service: &Service,
    registration_id: &RegistrationId,
    x509: Option<serde_json::Value>,
    request: RequestTopic<'_>,
    body: &[u8],
    now: Instant,
    wall: SystemTime,
) -> (u16, Option<u32>, Vec<u8>) {
    let retry_after = service.config.retry_after_seconds;
    let throttled = |seconds: u32| {
        service.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let error = ErrorBody::new(429001, "Operations are being throttled by the service.", wall);
        (429, Some(seconds), serde_json::to_vec(&error).expect("error bodies serialise"))
    };
    let json = |status: &RegistrationOperationStatus| serde_json::to_vec(status).expect("operation bodies serialise");
    match request {
        RequestTopic::Register { .. } => {
            if let Err(seconds) = service.throttle(|q| &q.registrations, now) {
                return throttled(seconds);
            }
            service.stats.registrations.fetch_add(1, Ordering::Relaxed);
            // DPS takes identity from the connection; the body only matters for its payload.
            let payload = messages::DeviceRegistration::parse(body).ok().and_then(|r| r.payload);
            let operation_id = service.register(registration_id, payload, x509, now, wall);
            let accepted = RegistrationOperationStatus {
                operation_id,
                status: OperationStatus::Assigning,
                registration_state: None,
            };
            (202, Some(retry_after), json(&accepted))
        }
        RequestTopic::Poll { operation_id, .. } => {
            if let Err(seconds) = service.throttle(|q| &q.operations, now) {
                return throttled(seconds);
            }
            service.stats.polls.fetch_add(1, Ordering::Relaxed);
            let status = service.operation_status(registration_id, operation_id, now).map(|mut status| {
                service.config.deviations.poll_operation_id(&mut status);
                status
            });
            match status {
                Some(status) if status.status == OperationStatus::Assigning => (202, Some(retry_after), json(&status)),
                Some(status) => {
                    service.stats.assigned.fetch_add(1, Ordering::Relaxed);
                    (200, None, json(&status))
                }
                None => {
                    let error = ErrorBody::new(404202, "Operation not found.", wall);
                    (404, None, serde_json::to_vec(&error).expect("error bodies serialise"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
