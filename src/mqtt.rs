//! MQTT 3.1.1 framing over any async byte stream, shared by the device and the emulator.
//!
//! The codec is rumqttc's public `mqttbytes::v4`; this module only adds buffering: it reads
//! until a whole packet is framed and batches writes until `flush`. It sets no deadlines: callers
//! wrap each await in their own (`tokio::time::timeout`), because only they know the phase.

use std::io;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use rumqttc::mqttbytes::v4;
pub use rumqttc::mqttbytes::{Error as CodecError, QoS};

/// Largest packet either side accepts: DPS's 96 KB message limit plus headers.
pub const MAX_PACKET_SIZE: usize = 100 * 1024;

/// Errors reading or writing packets.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("malformed MQTT packet: {0}")]
    Codec(CodecError),
    #[error("connection closed by peer")]
    Closed,
}

/// A framed MQTT connection over a byte stream (TCP, TLS, WebSocket).
pub struct Framed<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    /// Buffers are allocated as bytes come and go, and released when empty: a connection that
    /// waits between packets (a device waiting out `retry-after`, the emulator holding it) holds
    /// neither buffer.
    pub fn new(stream: S) -> Self {
        Self { stream, read_buf: BytesMut::new(), write_buf: BytesMut::new() }
    }

    /// Reads the next packet. `Err(Closed)` when the peer closed the stream between packets.
    pub async fn read_packet(&mut self) -> Result<Packet, MqttError> {
        loop {
            if let Some(packet) = decode(&mut self.read_buf)? {
                if self.read_buf.is_empty() {
                    self.read_buf = BytesMut::new();
                }
                return Ok(packet);
            }
            if self.read_buf.is_empty() {
                // Wait for the next bytes in a small buffer of this future's own, so that a
                // connection waiting for its next packet holds no read buffer.
                let mut first = [0u8; 128];
                let read = self.stream.read(&mut first).await?;
                if read == 0 {
                    return Err(MqttError::Closed);
                }
                self.read_buf.extend_from_slice(&first[..read]);
                continue;
            }
            if self.read_buf.capacity() - self.read_buf.len() < 256 {
                self.read_buf.reserve(1024);
            }
            if self.stream.read_buf(&mut self.read_buf).await? == 0 {
                return Err(if self.read_buf.is_empty() {
                    MqttError::Closed
                } else {
                    MqttError::Io(io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
    }

    /// Encodes a packet into the write buffer; `flush` sends it.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), MqttError> {
        packet.write(&mut self.write_buf, MAX_PACKET_SIZE).map(drop).map_err(MqttError::Codec)
    }

    /// Queues raw bytes, for hand-built packets the codec cannot express.
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.write_buf.extend_from_slice(bytes);
    }

    /// Writes everything queued and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), MqttError> {
        if !self.write_buf.is_empty() {
            self.stream.write_all(&self.write_buf).await?;
            self.write_buf = BytesMut::new();
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Queues one packet and flushes.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), MqttError> {
        self.queue(packet)?;
        self.flush().await
    }

    /// Shuts the write side down (TLS close_notify, then FIN), ignoring errors: the peer may
    /// already be gone.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Sends what is queued and closes the write side. A stream that can [`Stage`] bytes sends
    /// the queued packets and its close (TLS close_notify) in one write; the caller then drops
    /// it (FIN). Any other stream flushes, then shuts down.
    pub async fn close(&mut self) -> Result<(), MqttError>
    where
        S: Stage,
    {
        if self.stream.stage(&self.write_buf) && self.stream.stage_close() {
            // Packets and close_notify go in one write; dropping the socket then sends FIN.
            self.write_buf = BytesMut::new();
            self.stream.flush().await?;
            return Ok(());
        }
        self.flush().await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, for writing raw bytes; anything read but not yet decoded is dropped.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// A stream that can hold bytes for its next write instead of writing them at once, so what
/// is sent together leaves in one system call.
pub trait Stage {
    /// Takes `bytes` for the next write; false when this stream cannot (nothing was taken).
    fn stage(&mut self, bytes: &[u8]) -> bool;
    /// Takes the stream's own closing message (TLS close_notify) for the next write; false when
    /// it cannot.
    fn stage_close(&mut self) -> bool;
}

impl<S> Stage for tokio_rustls::client::TlsStream<S> {
    /// The session encrypts `bytes` into its outgoing records; the next flush sends them.
    fn stage(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write as _;
        self.get_mut().1.writer().write_all(bytes).is_ok()
    }

    fn stage_close(&mut self) -> bool {
        self.get_mut().1.send_close_notify();
        true
    }
}

impl<S> Stage for crate::websocket::WsStream<S> {
    fn stage(&mut self, _: &[u8]) -> bool {
        false
    }

    fn stage_close(&mut self) -> bool {
        false
    }
}

/// Packet identifiers for one connection's QoS 1 packets: 1, 2, ... 65535, then 1 again (0 is not
/// a valid packet identifier, MQTT 3.1.1 §2.3.1).
#[derive(Debug, Clone)]
pub struct PacketIds {
    next: u16,
}

impl Default for PacketIds {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketIds {
    pub fn new() -> Self {
        Self { next: 1 }
    }

    /// The next identifier to use.
    pub fn next_id(&mut self) -> u16 {
        let id = self.next;
        self.next = self.next.checked_add(1).unwrap_or(1);
        id
    }
}

/// Frames one packet from `buf`; `Ok(None)` when more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Packet>, MqttError> {
    match Packet::read(buf, MAX_PACKET_SIZE) {
        Ok(packet) => Ok(Some(packet)),
        Err(CodecError::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(MqttError::Codec(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, PubAck, Publish, SubAck, SubscribeReasonCode};

    #[test]
    fn packet_ids_count_from_1_and_wrap_past_0() {
        let mut ids = PacketIds::new();
        assert_eq!((ids.next_id(), ids.next_id()), (1, 2));
        let mut ids = PacketIds { next: 65534 };
        assert_eq!([ids.next_id(), ids.next_id(), ids.next_id()], [65534, 65535, 1]);
    }

    #[test]
    fn decodes_field_by_field() {
        // CONNACK: type 2, remaining length 2, session present 0, return code 5 (not authorized).
        let mut buf = BytesMut::from(&[0x20, 0x02, 0x00, 0x05][..]);
        assert_eq!(
            decode(&mut buf).unwrap(),
            Some(Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized, false)))
        );
        // SUBACK: type 9, remaining length 3, packet id 1, granted QoS 1.
        let mut buf = BytesMut::from(&[0x90, 0x03, 0x00, 0x01, 0x01][..]);
        assert_eq!(
            decode(&mut buf).unwrap(),
            Some(Packet::SubAck(SubAck::new(1, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)])))
        );
        // PUBLISH QoS 1 (0x32), remaining length 8, topic "a/b", packet id 2, payload "hi".
        let mut buf = BytesMut::from(&[0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x02, b'h', b'i'][..]);
        let Some(Packet::Publish(publish)) = decode(&mut buf).unwrap() else { panic!("not a publish") };
        assert_eq!((publish.topic.as_str(), publish.pkid, &publish.payload[..]), ("a/b", 2, &b"hi"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_packets_need_more_bytes() {
        let mut buf = BytesMut::from(&[0x40, 0x02, 0x00][..]);
        assert_eq!(decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[0x07]);
        assert_eq!(decode(&mut buf).unwrap(), Some(Packet::PubAck(PubAck::new(7))));
    }

    #[tokio::test]
    async fn framed_round_trip_over_a_duplex_pipe() {
        let (a, b) = tokio::io::duplex(64);
        let mut client = Framed::new(a);
        let mut server = Framed::new(b);
        let mut publish =
            Publish::new("$dps/registrations/PUT/iotdps-register/?$rid=1", QoS::AtLeastOnce, vec![b'x'; 300]);
        publish.pkid = 1;
        let sent = Packet::Publish(publish);
        let writer = tokio::spawn(async move {
            client.send(&sent).await.unwrap();
            client.shutdown().await;
            sent
        });
        let received = server.read_packet().await.unwrap();
        assert_eq!(received, writer.await.unwrap());
        assert!(matches!(server.read_packet().await, Err(MqttError::Closed)));
    }

    /// A device's last write: DISCONNECT and close_notify staged together; the peer reads the
    /// packet, then a clean TLS close (not an abrupt end).
    #[tokio::test]
    async fn close_sends_the_queued_packet_then_close_notify() {
        use crate::tls::{ServerIdentity, TlsVersions, client_config, roots_from_pem};
        let identity = ServerIdentity::generate(&[]).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config(TlsVersions::Tls12Only).unwrap());
        let roots = roots_from_pem(identity.ca_pem().as_bytes(), std::path::Path::new("ca")).unwrap();
        let connector = tokio_rustls::TlsConnector::from(client_config(roots, TlsVersions::Tls12Only).unwrap());
        let (a, b) = tokio::io::duplex(16 * 1024);
        let server = tokio::spawn(async move { Framed::new(acceptor.accept(b).await.unwrap()) });
        let client = connector.connect("localhost".try_into().unwrap(), a).await.unwrap();
        let mut server = server.await.unwrap();
        let mut client = Framed::new(client);
        client.queue(&Packet::Disconnect).unwrap();
        client.close().await.unwrap();
        let within = std::time::Duration::from_secs(5);
        let first = tokio::time::timeout(within, server.read_packet()).await.expect("DISCONNECT arrives");
        assert_eq!(first.unwrap(), Packet::Disconnect);
        let end = tokio::time::timeout(within, server.read_packet()).await.expect("close_notify arrives");
        assert!(matches!(end, Err(MqttError::Closed)), "{end:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut buf = BytesMut::from(&[0x00, 0x00][..]);
        assert!(decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(decode(&mut buf).is_err());
    }
}
