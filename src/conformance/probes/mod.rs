//! Active probes: each connects to the target and tests one promise, within its own deadline.
//!
//! `tls` probes the transport (plain MQTT, port 1883, TLS versions); `session` the MQTT session
//! and subscription rules; `auth` refused credentials; `flow` the registration lifecycle, the
//! passive checks on it, forward-only status and throttling; `table` lists every probe with its
//! deadline and whether it creates registrations, in run order. Probes never panic on what the
//! target sends; a target that says nothing fails at the probe's deadline.

pub mod auth;
pub mod certificates;
pub mod flow;
pub mod session;
pub mod table;
pub mod tls;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::mqttbytes::v4::{ConnAck, Connect, Login, Packet, Publish, SubAck, Subscribe};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};
use crate::device::{DeviceIdentity, Target};
use crate::mqtt::{Framed, MqttError, PacketIds, QoS};

/// Why a probe client could not get as far as the probe's question.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TCP connect to {0} timed out")]
    ConnectTimedOut(SocketAddr),
    #[error("TCP connect to {address}: {source}")]
    Connect { address: SocketAddr, source: std::io::Error },
    #[error("TLS handshake timed out")]
    HandshakeTimedOut,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("send failed: {0}")]
    Send(MqttError),
    #[error("send timed out")]
    SendTimedOut,
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("connection closed instead of {0}")]
    Closed(&'static str),
    #[error("no {expected} within {seconds} s")]
    Silent { expected: &'static str, seconds: u64 },
    #[error("CONNACK {0} for valid credentials")]
    Refused(u8),
}

impl ClientError {
    /// Whether the target ended the connection (which refuses what was asked).
    pub fn closed(&self) -> bool {
        matches!(self, ClientError::Closed(_) | ClientError::Send(MqttError::Closed))
    }

    /// Whether the TLS handshake failed or timed out.
    pub fn in_tls_handshake(&self) -> bool {
        matches!(self, ClientError::HandshakeTimedOut | ClientError::Handshake(_))
    }
}

/// What a probe concluded for one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass(String),
    Fail(String),
    Skipped(String),
    /// The check could not be exercised: something else went wrong first. Not a pass, not a
    /// failure of this check.
    Inconclusive {
        /// The check or probe that stood in the way (`DPS-FLOW-005`, `lifecycle`).
        blocked_by: String,
        /// Why, in one line.
        reason: String,
    },
}

/// What a probe concluded: one verdict per check ID it judges.
pub type Verdicts = Vec<(&'static str, Verdict)>;

/// Everything a probe needs to reach the target and act as its devices.
#[derive(Clone)]
pub struct ProbeTarget {
    pub address: SocketAddr,
    /// Where MQTT over WebSocket is served, if the target has it.
    pub ws_address: Option<SocketAddr>,
    pub server_name: ServerName<'static>,
    pub roots: Arc<RootCertStore>,
    pub id_scope: IdScope,
    pub group_key: SymmetricKey,
    /// The plain-MQTT port that must not be served (1883).
    pub plain_port: u16,
    /// Registration IDs of probe devices start with this.
    pub prefix: String,
    /// Deadline of each probe.
    pub deadline: Duration,
    /// Most registrations the throttling probe sends looking for a 429.
    pub throttle_requests: u32,
    /// A CA the target's X.509 enrollment group trusts, to mint probe certificates.
    pub x509: Option<Arc<crate::x509::CertificateAuthority>>,
    /// The CA the target's enrollment group issues operational certificates with, when it
    /// issues (the DPS-CERT checks run only then).
    pub issuer_ca: Option<rustls_pki_types::CertificateDer<'static>>,
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("address", &self.address)
            .field("id_scope", &self.id_scope)
            .finish_non_exhaustive()
    }
}

impl ProbeTarget {
    /// A TLS 1.2 client config trusting the target, without resumption.
    pub fn tls12(&self) -> Arc<ClientConfig> {
        crate::tls::client_config(self.roots.clone(), crate::tls::TlsVersions::Tls12Only)
            .expect("TLS 1.2 with the ring provider is a valid configuration")
    }

    /// Settings of a probe's device flow: every step within the probe deadline, the whole flow
    /// within `flow_deadlines` of them, few retries, and any reply taken as the answer (so a
    /// wrong `$rid` is DPS-TOPIC-002's finding alone, not a timeout everywhere).
    pub fn flow_settings(&self, flow_deadlines: u32) -> crate::device::FlowSettings {
        let deadline = self.deadline;
        crate::device::FlowSettings {
            timeouts: crate::device::Timeouts {
                tcp_connect: deadline,
                tls_handshake: deadline,
                connack: deadline,
                suback: deadline,
                reply: deadline,
                flow: deadline * flow_deadlines,
            },
            retry: crate::device::RetryPolicy {
                max_retries: Some(3),
                default_wait: Duration::from_secs(1),
                ..Default::default()
            },
            lenient_rid: true,
            ..Default::default()
        }
    }

    /// The device-side target for full flows.
    pub fn device_target(&self) -> Target {
        Target {
            address: self.address,
            server_name: self.server_name.clone(),
            tls: self.tls12(),
            transport: crate::device::Transport::Mqtt,
            watch: None,
        }
    }

    /// A registration ID for the probe named `name`.
    pub fn registration_id(&self, name: &str) -> RegistrationId {
        RegistrationId::new(format!("{}-{name}", self.prefix)).expect("probe names keep IDs valid")
    }

    /// A device of the group with a valid token for an hour.
    pub fn device(&self, name: &str) -> DeviceIdentity {
        let registration_id = self.registration_id(name);
        let password = self.token(&self.id_scope, &registration_id, &self.device_key(&registration_id), 3600);
        DeviceIdentity {
            register_body: DeviceIdentity::default_register_body(&registration_id),
            registration_id,
            id_scope: self.id_scope.clone(),
            password: Some(password),
            source_address: None,
            personality: crate::device::Personality::Dpsbench,
            payload: None,
            client_tls: None,
            certificate_request: None,
        }
    }

    pub fn device_key(&self, registration_id: &RegistrationId) -> SymmetricKey {
        self.group_key.derive_device_key(registration_id)
    }

    /// A token valid for `valid_for` seconds from now (negative: already expired).
    pub fn token(&self, scope: &IdScope, id: &RegistrationId, key: &SymmetricKey, valid_for: i64) -> SasToken {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
        SasToken::build(scope, id, key, (now + valid_for).max(1) as u64, SasStyle::default())
    }

    /// A CONNECT as SDKs send it.
    pub fn connect_packet(
        &self,
        client_id: &str,
        scope: &IdScope,
        username_id: &str,
        password: &SasToken,
        clean: bool,
    ) -> Packet {
        let mut connect = Connect::new(client_id);
        connect.keep_alive = 60;
        connect.clean_session = clean;
        connect.login = Some(Login::new(
            crate::topics::Username {
                id_scope: scope.as_str(),
                registration_id: username_id,
                api_version: crate::topics::DEFAULT_API_VERSION,
                client_version: Some("dpsbench-conform"),
            }
            .to_string(),
            password.expose(),
        ));
        Packet::Connect(connect)
    }

    /// Opens a TLS 1.2 connection for a probe client.
    pub async fn open(&self) -> Result<ProbeClient, ClientError> {
        self.open_with(self.tls12()).await
    }

    /// Opens a connection with `config` (e.g. one presenting a client certificate).
    pub async fn open_with(&self, config: Arc<ClientConfig>) -> Result<ProbeClient, ClientError> {
        let address = self.address;
        let tcp = timeout(self.deadline, TcpStream::connect(address))
            .await
            .map_err(|_| ClientError::ConnectTimedOut(address))?
            .map_err(|source| ClientError::Connect { address, source })?;
        let _ = tcp.set_nodelay(true);
        let tls = timeout(self.deadline, TlsConnector::from(config).connect(self.server_name.clone(), tcp))
            .await
            .map_err(|_| ClientError::HandshakeTimedOut)?
            .map_err(ClientError::Handshake)?;
        Ok(ProbeClient { framed: Framed::new(tls), deadline: self.deadline, packet_ids: PacketIds::new() })
    }
}

/// What came back for a request: a packet, a closed connection, or nothing in time.
#[derive(Debug)]
pub enum Answer {
    Packet(Packet),
    Closed,
    Silent,
}

/// A bare MQTT client over TLS for probes: sends exactly what the probe says.
pub struct ProbeClient {
    framed: Framed<TlsStream<TcpStream>>,
    deadline: Duration,
    packet_ids: PacketIds,
}

impl ProbeClient {
    pub async fn send(&mut self, packet: &Packet) -> Result<(), ClientError> {
        match timeout(self.deadline, self.framed.send(packet)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ClientError::Send(e)),
            Err(_) => Err(ClientError::SendTimedOut),
        }
    }

    /// The next packet within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Answer {
        match timeout(wait, self.framed.read_packet()).await {
            Ok(Ok(packet)) => Answer::Packet(packet),
            Ok(Err(MqttError::Closed | MqttError::Io(_))) => Answer::Closed,
            Ok(Err(MqttError::Codec(_))) => Answer::Closed,
            Err(_) => Answer::Silent,
        }
    }

    /// The next packet within the probe deadline, skipping PINGRESPs.
    pub async fn expect(&mut self) -> Answer {
        loop {
            match self.next(self.deadline).await {
                Answer::Packet(Packet::PingResp) => continue,
                other => return other,
            }
        }
    }

    pub async fn connect(&mut self, connect: Packet) -> Result<ConnAck, ClientError> {
        self.send(&connect).await?;
        match self.expect().await {
            Answer::Packet(Packet::ConnAck(connack)) => Ok(connack),
            other => Err(self.not_the_answer("CONNACK", other)),
        }
    }

    pub async fn subscribe(&mut self, filters: &[(&str, QoS)]) -> Result<SubAck, ClientError> {
        let mut subscribe = Subscribe::new(filters[0].0, filters[0].1);
        for (path, qos) in &filters[1..] {
            subscribe.add(path.to_string(), *qos);
        }
        subscribe.pkid = self.packet_ids.next_id();
        self.send(&Packet::Subscribe(subscribe)).await?;
        loop {
            match self.expect().await {
                Answer::Packet(Packet::SubAck(suback)) => return Ok(suback),
                Answer::Packet(Packet::Publish(_) | Packet::PubAck(_)) => continue,
                other => return Err(self.not_the_answer("SUBACK", other)),
            }
        }
    }

    /// Publishes at QoS 1 and returns its packet id.
    pub async fn publish(&mut self, topic: String, body: &[u8]) -> Result<u16, ClientError> {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, body.to_vec());
        publish.pkid = self.packet_ids.next_id();
        let id = publish.pkid;
        self.send(&Packet::Publish(publish)).await?;
        Ok(id)
    }

    /// The next reply PUBLISH within `wait`, acknowledging it; PUBACKs and PINGRESPs skipped.
    pub async fn reply(&mut self, wait: Duration) -> Answer {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Answer::Packet(Packet::Publish(publish)) => {
                    if publish.qos != QoS::AtMostOnce {
                        let ack = Packet::PubAck(rumqttc::mqttbytes::v4::PubAck::new(publish.pkid));
                        let _ = self.send(&ack).await;
                    }
                    return Answer::Packet(Packet::Publish(publish));
                }
                Answer::Packet(Packet::PubAck(_) | Packet::PingResp) => continue,
                other => return other,
            }
        }
    }

    /// The error for `answer` when `expected` was awaited within the probe deadline.
    fn not_the_answer(&self, expected: &'static str, answer: Answer) -> ClientError {
        match answer {
            Answer::Packet(packet) => ClientError::Unexpected { expected, got: describe(&packet) },
            Answer::Closed => ClientError::Closed(expected),
            Answer::Silent => ClientError::Silent { expected, seconds: self.deadline.as_secs() },
        }
    }

    /// Sends bytes as they are, for packets the codec cannot write (another protocol level).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.framed.queue_raw(bytes);
        match timeout(self.deadline, self.framed.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ClientError::Send(e)),
            Err(_) => Err(ClientError::SendTimedOut),
        }
    }

    pub async fn disconnect(mut self) {
        let _ = self.send(&Packet::Disconnect).await;
        self.framed.shutdown().await;
    }
}

/// A value that may be absent, as evidence says it: `400302`, or `none` (never Rust's
/// `Some(400302)`).
pub fn or_none(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "none".into(), |value| value.to_string())
}

/// A packet named for evidence, without any password.
pub fn describe(packet: &Packet) -> String {
    match packet {
        Packet::ConnAck(c) => format!("CONNACK {:?} (return code {})", c.code, c.code as u8),
        Packet::Publish(p) => format!("PUBLISH {} {}", p.topic, crate::grading::excerpt(&p.payload)),
        Packet::SubAck(s) => format!("SUBACK {:?}", s.return_codes),
        Packet::PubAck(a) => format!("PUBACK {}", a.pkid),
        Packet::Connect(_) => "CONNECT".into(),
        other => format!("{other:?}"),
    }
}

/// A flow that ended with `kind`: when the TLS handshake failed, the flow never reached DPS and
/// says nothing about it (inconclusive, blocked by DPS-TLS-003); otherwise `failed` says what
/// failed.
pub fn flow_failed(kind: &crate::device::FailureKind, failed: String) -> Verdict {
    if *kind == crate::device::FailureKind::Tls {
        return Verdict::Inconclusive { blocked_by: "DPS-TLS-003".into(), reason: failed };
    }
    Verdict::Fail(failed)
}

/// What a probe that could not do `step` concludes.
///
/// A TLS handshake that fails keeps the probe from asking its question at all: that is
/// DPS-TLS-003's failure (a TLS 1.2 handshake must succeed), and this check is inconclusive,
/// blocked by it. Anything else the probe could not do fails the check.
pub fn could_not(step: &str, error: &(dyn std::error::Error + 'static)) -> Verdict {
    let client_error = error.downcast_ref::<ClientError>().or_else(|| match error.downcast_ref::<flow::FlowError>() {
        Some(flow::FlowError::Client(client)) => Some(client),
        _ => None,
    });
    if client_error.is_some_and(ClientError::in_tls_handshake) {
        return Verdict::Inconclusive { blocked_by: "DPS-TLS-003".into(), reason: format!("{step}: {error}") };
    }
    Verdict::Fail(format!("{step}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_a_password() {
        let target = ProbeTarget {
            address: "127.0.0.1:1".parse().unwrap(),
            ws_address: None,
            server_name: "localhost".try_into().unwrap(),
            roots: Arc::new(RootCertStore::empty()),
            id_scope: IdScope::new("0ne1").unwrap(),
            group_key: SymmetricKey::random(),
            plain_port: 1883,
            prefix: "p".into(),
            deadline: Duration::from_secs(1),
            throttle_requests: 1,
            x509: None,
            issuer_ca: None,
        };
        let id = target.registration_id("x");
        let token = target.token(&target.id_scope, &id, &target.device_key(&id), 60);
        let packet = target.connect_packet("p-x", &target.id_scope, "p-x", &token, true);
        assert_eq!(describe(&packet), "CONNECT");
        assert!(!format!("{target:?}").contains("SymmetricKey("), "{target:?}");
    }

    #[test]
    fn client_errors_say_what_failed_and_whether_the_target_closed() {
        let closed = ClientError::Closed("CONNACK");
        assert_eq!(closed.to_string(), "connection closed instead of CONNACK");
        assert!(closed.closed() && ClientError::Send(MqttError::Closed).closed());
        assert!(!ClientError::Silent { expected: "SUBACK", seconds: 2 }.closed());
        assert_eq!(ClientError::Silent { expected: "SUBACK", seconds: 2 }.to_string(), "no SUBACK within 2 s");
        assert_eq!(ClientError::Refused(5).to_string(), "CONNACK 5 for valid credentials");
        assert!(ClientError::HandshakeTimedOut.in_tls_handshake());
        assert!(!ClientError::ConnectTimedOut("127.0.0.1:1".parse().unwrap()).in_tls_handshake());
    }
}
