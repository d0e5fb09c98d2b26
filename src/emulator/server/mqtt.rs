//! One MQTT connection's byte loop: frames MQTT off a stream (TCP, TLS or WebSocket), hands each
//! packet to the connection's [`Session`] and writes what it answers, within deadlines, until
//! the device or the emulator ends it. IO layer: it moves bytes and carries out the reply's
//! delay, reset and close; what to answer is the service's, which faults strike is admission's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use crate::emulator::observe::Ending;
use crate::emulator::service::{Claim, Service, Session};
use crate::mqtt::Framed;
use crate::websocket;
use crate::x509::PeerCertificate;

/// Deadline for CONNECT after the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle limit for a connected client with keep-alive 0 (the C SDK's setting).
const IDLE_TIMEOUT: Duration = Duration::from_secs(240);
/// Deadline for writing a response to a client that stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A stream that runs on a TCP socket, so a fault can reset it.
pub trait OnTcp {
    fn tcp(&self) -> Option<&TcpStream>;
}

impl OnTcp for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl OnTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.get_ref().0)
    }
}

impl<S: OnTcp + AsyncRead + AsyncWrite + Unpin> OnTcp for websocket::WsStream<S> {
    fn tcp(&self) -> Option<&TcpStream> {
        self.get_ref().tcp()
    }
}

pub(super) async fn serve_mqtt<S>(
    stream: S,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
    peer: Option<PeerCertificate>,
    tls12: Option<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + OnTcp,
{
    let mut framed = Framed::new(stream);
    let mut session = Session::with_peer(peer);
    if let Some(tls12) = tls12 {
        session.set_tls12(tls12);
    }
    // How the connection ended, for the client checks: the device's doing unless said otherwise.
    let mut ending = Ending::Dropped;
    // Held from CONNECT on: another connection with the same client ID closes this one.
    let mut claim: Option<Claim> = None;
    // A client that sent DISCONNECT has closed its side: the emulator just closes too (FIN),
    // with no close_notify of its own for a peer that is gone, as a busy server does.
    let mut disconnected = false;
    loop {
        let idle = match session.keep_alive() {
            _ if !session.is_connected() => CONNECT_TIMEOUT,
            0 => IDLE_TIMEOUT,
            // MQTT 3.1.1 §3.1.2.10: one and a half keep-alive periods.
            seconds => Duration::from_millis(u64::from(seconds) * 1500),
        };
        let taken_over = async {
            match &claim {
                Some(claim) => claim.taken_over.notified().await,
                None => std::future::pending().await,
            }
        };
        let read = tokio::select! {
            read = timeout(idle, framed.read_packet()) => read,
            _ = shutdown.changed() => {
                ending = Ending::Emulator;
                break;
            }
            _ = taken_over => {
                ending = Ending::Emulator;
                break;
            }
        };
        let packet = match read {
            Ok(Ok(packet)) => packet,
            Ok(Err(crate::mqtt::MqttError::Codec(crate::mqtt::CodecError::InvalidProtocolLevel(_)))) => {
                let response = session.unsupported_protocol_level(&service);
                let _ = send_response(&mut framed, response.packets, None, &mut shutdown).await;
                ending = Ending::Emulator;
                break;
            }
            _ => break,
        };
        disconnected = matches!(packet, rumqttc::mqttbytes::v4::Packet::Disconnect);
        let response = session.handle(&service, packet, tokio::time::Instant::now().into_std(), SystemTime::now());
        if response.reset {
            // SO_LINGER 0, then close: the peer sees a TCP reset.
            if let Some(tcp) = framed.get_ref().tcp() {
                let _ = tcp.set_zero_linger();
            }
            session.finish(Ending::Emulator, tokio::time::Instant::now().into_std());
            return;
        }
        if response.close {
            ending = if disconnected { Ending::Disconnect } else { Ending::Emulator };
        }
        if !send_response(&mut framed, response.packets, response.delay, &mut shutdown).await {
            break;
        }
        if !response.raw.is_empty() {
            framed.queue_raw(&response.raw);
            // Like every other write, it ends at shutdown: stop() waits for this task.
            tokio::select! {
                _ = timeout(WRITE_TIMEOUT, framed.flush()) => {}
                _ = shutdown.changed() => {}
            }
        }
        if response.close {
            break;
        }
        if claim.is_none()
            && let Some(key) = session.client_key()
        {
            claim = Some(service.claim_client(key));
        }
    }
    if let Some(claim) = &claim {
        service.release_client(claim);
    }
    session.finish(ending, tokio::time::Instant::now().into_std());
    if !disconnected {
        let _ = timeout(Duration::from_secs(1), framed.shutdown()).await;
    }
}

/// Sends `packets`, holding the last one back by `delay` (a fault); false when the connection
/// is done.
async fn send_response<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    mut packets: Vec<rumqttc::mqttbytes::v4::Packet>,
    delay: Option<Duration>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let held = delay.and_then(|delay| packets.pop().map(|packet| (delay, packet)));
    let written = tokio::select! {
        written = write_all(framed, &packets) => written,
        _ = shutdown.changed() => false,
    };
    if !written {
        return false;
    }
    let Some((delay, packet)) = held else { return true };
    tokio::select! {
        written = async {
            tokio::time::sleep(delay).await;
            write_all(framed, std::slice::from_ref(&packet)).await
        } => written,
        _ = shutdown.changed() => false,
    }
}

async fn write_all<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    packets: &[rumqttc::mqttbytes::v4::Packet],
) -> bool {
    if packets.iter().any(|p| framed.queue(p).is_err()) {
        return false;
    }
    matches!(timeout(WRITE_TIMEOUT, framed.flush()).await, Ok(Ok(())))
}
