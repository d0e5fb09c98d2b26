//! Transport probes: plain MQTT refused, port 1883 not served, TLS 1.2 negotiated, older TLS
//! and TLS 1.3 alone refused.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use rustls::ProtocolVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::{ProbeTarget, Verdict};
use crate::mqtt::{self, MAX_PACKET_SIZE};
use crate::tls::{self, TlsVersions};

/// Why a transport probe could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connect timed out")]
    ConnectTimedOut,
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Encode(#[from] rumqttc::mqttbytes::Error),
    #[error(transparent)]
    ClientConfig(#[from] tls::TlsError),
    #[error("handshake timed out")]
    HandshakeTimedOut,
    #[error(transparent)]
    Handshake(std::io::Error),
}

/// How long a probe waits for a plain-text answer: 3 s, or the deadline if shorter.
fn answer_wait(target: &ProbeTarget) -> Duration {
    target.deadline.min(Duration::from_secs(3))
}

/// DPS-TLS-001: a plain MQTT CONNECT on the TLS port gets no CONNACK.
pub async fn plain_mqtt_refused(target: &ProbeTarget) -> Verdict {
    match plain_connect(target, target.address).await {
        Ok(PlainAnswer::ConnAck(code)) => {
            Verdict::Fail(format!("a plain-text CONNECT on the TLS port got CONNACK {code}"))
        }
        Ok(answer) => Verdict::Pass(format!("plain-text CONNECT: {}", answer.describe())),
        Err(error) => Verdict::Fail(format!("cannot reach the TLS port: {error}")),
    }
}

/// DPS-TLS-002: nothing answers MQTT on the plain port.
pub async fn plain_port_not_served(target: &ProbeTarget) -> Verdict {
    let address = std::net::SocketAddr::new(target.address.ip(), target.plain_port);
    match plain_connect(target, address).await {
        Ok(PlainAnswer::ConnAck(code)) => {
            Verdict::Fail(format!("port {} answers plain MQTT: CONNACK {code}", target.plain_port))
        }
        Ok(answer) => Verdict::Pass(format!("port {}: {}", target.plain_port, answer.describe())),
        Err(error) => Verdict::Pass(format!("port {}: {error}", target.plain_port)),
    }
}

enum PlainAnswer {
    ConnAck(u8),
    Closed,
    NotMqtt(u8),
    Silent,
}

impl PlainAnswer {
    fn describe(&self) -> String {
        match self {
            PlainAnswer::ConnAck(code) => format!("CONNACK {code}"),
            PlainAnswer::Closed => "connection closed".into(),
            PlainAnswer::NotMqtt(0x15) => "answered with a TLS alert".into(),
            PlainAnswer::NotMqtt(byte) => format!("answered bytes that are not MQTT (first 0x{byte:02x})"),
            PlainAnswer::Silent => "no answer".into(),
        }
    }
}

/// Sends a valid device CONNECT in plain text; reports what came back.
async fn plain_connect(target: &ProbeTarget, address: std::net::SocketAddr) -> Result<PlainAnswer, TransportError> {
    let mut stream = tcp_connect(target, address).await?;
    let device = target.device("plain");
    let password = device.password.as_ref().expect("probe devices have tokens");
    let id = device.registration_id.as_str();
    let mut bytes = BytesMut::new();
    target.connect_packet(id, &target.id_scope, id, password, true).write(&mut bytes, MAX_PACKET_SIZE)?;
    if stream.write_all(&bytes).await.is_err() {
        return Ok(PlainAnswer::Closed);
    }
    let mut buffer = BytesMut::with_capacity(64);
    loop {
        match timeout(answer_wait(target), stream.read_buf(&mut buffer)).await {
            Err(_) => return Ok(PlainAnswer::Silent),
            Ok(Err(_) | Ok(0)) if buffer.is_empty() => return Ok(PlainAnswer::Closed),
            Ok(Err(_) | Ok(0)) => return Ok(PlainAnswer::NotMqtt(buffer[0])),
            Ok(Ok(_)) => {}
        }
        if buffer[0] != 0x20 {
            return Ok(PlainAnswer::NotMqtt(buffer[0]));
        }
        match mqtt::decode(&mut buffer) {
            Ok(Some(Packet::ConnAck(connack))) => return Ok(PlainAnswer::ConnAck(connack.code as u8)),
            Ok(None) => continue,
            _ => return Ok(PlainAnswer::NotMqtt(0x20)),
        }
    }
}

/// DPS-TLS-003: a TLS 1.2 client completes the handshake on TLS 1.2.
pub async fn tls12_negotiated(target: &ProbeTarget) -> Verdict {
    match handshake(target, TlsVersions::Tls12Only).await {
        Ok((Some(ProtocolVersion::TLSv1_2), suite)) => Verdict::Pass(format!("TLS 1.2 negotiated ({suite})")),
        Ok((version, _)) => Verdict::Fail(format!("negotiated {} instead of TLS 1.2", version_name(version))),
        Err(error) => Verdict::Fail(format!("a TLS 1.2 handshake failed: {error}")),
    }
}

/// DPS-TLS-005: a client offering only TLS 1.3 is refused.
pub async fn tls13_alone_refused(target: &ProbeTarget) -> Verdict {
    match handshake(target, TlsVersions::Tls13Only).await {
        Ok((version, suite)) => {
            Verdict::Fail(format!("a TLS 1.3-only client was accepted ({}, {suite})", version_name(version)))
        }
        Err(error) => Verdict::Pass(format!("refused: {error}")),
    }
}

/// A negotiated protocol version as evidence says it: `TLS 1.3`, or `none`.
fn version_name(version: Option<ProtocolVersion>) -> String {
    match version {
        Some(ProtocolVersion::TLSv1_2) => "TLS 1.2".into(),
        Some(ProtocolVersion::TLSv1_3) => "TLS 1.3".into(),
        Some(other) => format!("{other:?}"),
        None => "none".into(),
    }
}

/// A TCP connection to `address` within the deadline.
async fn tcp_connect(target: &ProbeTarget, address: std::net::SocketAddr) -> Result<TcpStream, TransportError> {
    timeout(target.deadline, TcpStream::connect(address))
        .await
        .map_err(|_| TransportError::ConnectTimedOut)?
        .map_err(TransportError::Connect)
}

async fn handshake(
    target: &ProbeTarget,
    versions: TlsVersions,
) -> Result<(Option<ProtocolVersion>, String), TransportError> {
    let config = tls::client_config(target.roots.clone(), versions)?;
    let tcp = tcp_connect(target, target.address).await?;
    let stream = timeout(target.deadline, TlsConnector::from(config).connect(target.server_name.clone(), tcp))
        .await
        .map_err(|_| TransportError::HandshakeTimedOut)?
        .map_err(TransportError::Handshake)?;
    let connection = stream.get_ref().1;
    let suite = connection.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    Ok((connection.protocol_version(), suite))
}

/// DPS-TLS-004: ClientHellos for TLS 1.0 and TLS 1.1 get an alert or a closed connection.
pub async fn old_tls_refused(target: &ProbeTarget) -> Verdict {
    let mut seen = Vec::new();
    for (name, version) in [("TLS 1.0", 0x0301u16), ("TLS 1.1", 0x0302)] {
        match old_hello(target, version).await {
            Ok(HelloAnswer::Accepted) => {
                return Verdict::Fail(format!("the server answered a {name} ClientHello with a {name} ServerHello"));
            }
            Ok(HelloAnswer::Silent) => {
                let wait = answer_wait(target).as_secs_f32();
                return Verdict::Fail(format!("no alert or close within {wait} s after a {name} ClientHello"));
            }
            Ok(refused) => seen.push(format!("{name}: {}", refused.describe())),
            Err(error) => return Verdict::Fail(format!("{name}: {error}")),
        }
    }
    Verdict::Pass(seen.join("; "))
}

enum HelloAnswer {
    Accepted,
    Alert(u8),
    Closed,
    OtherVersion(u16),
    Silent,
}

impl HelloAnswer {
    fn describe(&self) -> String {
        match self {
            HelloAnswer::Alert(code) => format!("alert {code}"),
            HelloAnswer::Closed => "connection closed".into(),
            HelloAnswer::OtherVersion(v) => format!("ServerHello for version 0x{v:04x}, not the one offered"),
            HelloAnswer::Accepted | HelloAnswer::Silent => String::new(),
        }
    }
}

async fn old_hello(target: &ProbeTarget, version: u16) -> Result<HelloAnswer, TransportError> {
    let mut stream = tcp_connect(target, target.address).await?;
    if stream.write_all(&client_hello(version)).await.is_err() {
        return Ok(HelloAnswer::Closed);
    }
    // Record header (5 bytes), then for a ServerHello: type (1), length (3), version (2).
    let mut head = [0u8; 11];
    let mut filled = 0;
    while filled < head.len() {
        match timeout(answer_wait(target), stream.read(&mut head[filled..])).await {
            Err(_) => return Ok(if filled == 0 { HelloAnswer::Silent } else { HelloAnswer::Closed }),
            Ok(Err(_) | Ok(0)) if filled == 0 => return Ok(HelloAnswer::Closed),
            Ok(Err(_) | Ok(0)) => break,
            Ok(Ok(n)) => filled += n,
        }
        if filled >= 7 && head[0] == 0x15 {
            return Ok(HelloAnswer::Alert(head[6]));
        }
    }
    if filled < head.len() || head[0] != 0x16 || head[5] != 0x02 {
        return Ok(HelloAnswer::Closed);
    }
    let offered = u16::from_be_bytes([head[9], head[10]]);
    Ok(if offered == version { HelloAnswer::Accepted } else { HelloAnswer::OtherVersion(offered) })
}

/// A minimal ClientHello offering only `version`, with common ECDHE and RSA CBC suites.
pub fn client_hello(version: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(version.to_be_bytes());
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
    let suites: [u16; 6] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    suites.iter().for_each(|s| body.extend(s.to_be_bytes()));
    body.extend([1, 0]); // compression: null only
    let extensions: [u8; 16] = [
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d, // supported_groups: P-256, X25519
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
    ];
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record, legacy version TLS 1.0
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_is_framed_field_by_field() {
        let hello = client_hello(0x0302);
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01], "handshake record");
        assert_eq!(u16::from_be_bytes([hello[3], hello[4]]) as usize, hello.len() - 5, "record length");
        assert_eq!(hello[5], 0x01, "ClientHello");
        assert_eq!(u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize, hello.len() - 9, "handshake length");
        assert_eq!(&hello[9..11], &[0x03, 0x02], "client_version TLS 1.1");
    }

    #[test]
    fn a_version_is_named_plainly_in_evidence() {
        assert_eq!(version_name(Some(ProtocolVersion::TLSv1_3)), "TLS 1.3");
        assert_eq!(version_name(Some(ProtocolVersion::TLSv1_2)), "TLS 1.2");
        assert_eq!(version_name(None), "none");
        assert_eq!(super::super::or_none(Some(400_302)), "400302");
        assert_eq!(super::super::or_none(None::<i64>), "none");
    }
}
