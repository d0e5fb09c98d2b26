//! Opening one connection before its MQTT: what admission decided for it (a stall, plain MQTT,
//! an old-TLS answer), the TLS handshake within its deadline, the WebSocket upgrade; then the
//! MQTT loop. IO layer: it moves bytes and must not decide a fault or a deviation itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::mqtt::serve_mqtt;
use crate::emulator::admission::{self, Opening};
use crate::emulator::service::Service;
use crate::websocket;
use crate::x509::PeerCertificate;

/// Deadline for a client's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn connection(
    stream: TcpStream,
    service: Arc<Service>,
    tls: TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // Every step before MQTT ends at shutdown too, so stop() never waits on a handshake.
    let opened = tokio::select! {
        opened = open(stream, &service, &tls) => opened,
        _ = shutdown.changed() => return,
    };
    match opened {
        Opened::Closed => {}
        Opened::Plain(stream) => serve_mqtt(stream, service, shutdown, None, None).await,
        Opened::Tls(stream) => {
            let peer = peer_certificate(&stream);
            let tls12 = negotiated_tls12(&stream);
            serve_mqtt(*stream, service, shutdown, peer, Some(tls12)).await;
        }
    }
}

/// What became of a connection before its MQTT.
enum Opened {
    /// Closed before MQTT: a stall, an old-TLS answer, a failed handshake.
    Closed,
    /// Plain MQTT on the TLS port (the `accept_plain_mqtt` deviation).
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

async fn open(stream: TcpStream, service: &Service, tls: &TlsAcceptor) -> Opened {
    let (plain_mqtt, old_tls) = match admission::opening(&service.faults, &service.config().deviations) {
        Opening::Stall(limit) => {
            // Hold the connection, never answering its handshake, until the client gives up.
            tokio::time::sleep(limit).await;
            return Opened::Closed;
        }
        Opening::Serve { plain_mqtt, old_tls } => (plain_mqtt, old_tls),
    };
    if plain_mqtt && starts_with_plain_connect(&stream).await {
        return Opened::Plain(stream);
    }
    if old_tls {
        let mut head = [0u8; 11];
        if let Ok(Ok(11)) = timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut head)).await
            && let Some(hello) = service.config().deviations.old_tls_server_hello(&head)
        {
            let mut stream = stream;
            let _ = timeout(HANDSHAKE_TIMEOUT, tokio::io::AsyncWriteExt::write_all(&mut stream, &hello)).await;
            return Opened::Closed;
        }
    }
    match handshake(service, tls, stream).await {
        Some(stream) => Opened::Tls(Box::new(stream)),
        None => Opened::Closed,
    }
}

/// The TLS handshake, within its deadline. A judging emulator counts a handshake that offered
/// no TLS 1.2 against the device's TLS check.
async fn handshake(
    service: &Service,
    tls: &TlsAcceptor,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    let attempt = async {
        // A connection closed before its first byte is a reachability check (dpsbench's own
        // before a run, a health check), not a failed handshake.
        if matches!(stream.peek(&mut [0u8; 1]).await, Ok(0)) {
            return None;
        }
        Some(tls.accept(stream).await)
    };
    match timeout(HANDSHAKE_TIMEOUT, attempt).await {
        Ok(None) => None,
        Ok(Some(Ok(stream))) => Some(stream),
        Ok(Some(Err(error))) => {
            service.stats.tls_failures.add(&handshake_failure(&error));
            if let Some(observer) = service.observer()
                && offered_no_tls12(&error)
            {
                let from = peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "an unknown peer".into());
                observer.tls_refused(format!("a TLS handshake from {from} offered no TLS 1.2 ({error})"));
            }
            None
        }
        Err(_) => {
            let seconds = HANDSHAKE_TIMEOUT.as_secs();
            service.stats.tls_failures.add(&format!("no TLS handshake within {seconds} s"));
            None
        }
    }
}

/// Why a handshake failed, as the log says it: the TLS library's error (an alert the client
/// sent, what it did not offer), or how the connection ended.
fn handshake_failure(error: &std::io::Error) -> String {
    match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => tls.to_string(),
        None if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            crate::emulator::activity::CLOSED_IN_HANDSHAKE.into()
        }
        None => error.to_string(),
    }
}

/// Whether a failed handshake failed because the client offered no TLS 1.2.
fn offered_no_tls12(error: &std::io::Error) -> bool {
    use rustls::PeerIncompatible::{SupportedVersionsExtensionRequired, Tls12NotOffered, Tls12NotOfferedOrEnabled};
    matches!(
        error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::PeerIncompatible(
            Tls12NotOffered | Tls12NotOfferedOrEnabled | SupportedVersionsExtensionRequired
        ))
    )
}

/// Whether the handshake negotiated TLS 1.2.
fn negotiated_tls12(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_2)
}

/// The client certificate a TLS handshake presented, if any.
fn peer_certificate(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> Option<PeerCertificate> {
    stream.get_ref().1.peer_certificates().and_then(PeerCertificate::inspect)
}

pub(super) async fn websocket_connection(
    stream: TcpStream,
    service: Arc<Service>,
    tls: TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let upgrade = async {
        let stream = handshake(&service, &tls, stream).await?;
        let peer = peer_certificate(&stream);
        let tls12 = negotiated_tls12(&stream);
        let rule = service.config().deviations.subprotocol_rule();
        let ws = timeout(HANDSHAKE_TIMEOUT, Box::pin(websocket::server_handshake(stream, rule))).await.ok()?.ok()?;
        Some((ws, peer, tls12))
    };
    let Some((ws, peer, tls12)) = (tokio::select! {
        upgraded = upgrade => upgraded,
        _ = shutdown.changed() => None,
    }) else {
        return;
    };
    serve_mqtt(ws, service, shutdown, peer, Some(tls12)).await;
}

/// Whether the first byte is an MQTT CONNECT (0x10) rather than a TLS record (0x16).
async fn starts_with_plain_connect(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await, Ok(Ok(1)) if first[0] == 0x10)
}
