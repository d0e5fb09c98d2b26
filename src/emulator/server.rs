//! The emulator's network server: accepts TCP, does the TLS handshake, frames MQTT and feeds each
//! connection's [`Session`]. All DPS behaviour lives in `service`; this file only moves bytes,
//! applies deadlines and shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::faults::Fault;
use super::observe::Ending;
use super::service::{Claim, Service, Session};
use super::tracked::{Tracked, Tracker};
use crate::mqtt::Framed;
use crate::websocket;
use crate::x509::PeerCertificate;

/// Deadline for a client's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for CONNECT after the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle limit for a connected client with keep-alive 0 (the C SDK's setting).
const IDLE_TIMEOUT: Duration = Duration::from_secs(240);
/// Deadline for writing a response to a client that stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Listen backlog: bursts of thousands of devices connect at once.
const BACKLOG: u32 = 4096;
/// Longest a `tls_stall` fault holds a connection without answering its handshake.
const STALL_LIMIT: Duration = Duration::from_secs(300);
/// Attempts (50 ms apart) to take the port back after an `outage` fault.
const REBIND_ATTEMPTS: u32 = 40;

/// Binds a TCP listener with a backlog sized for connection storms.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(address, false)
}

/// Binds a listener that other processes may bind too (`SO_REUSEPORT`): the kernel spreads
/// connections across them.
pub fn bind_shared(address: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(address, true)
}

fn bind_with(address: SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if shared {
        socket.set_reuseport(true)?;
    }
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// A running emulator: its address, its service (for counters) and its shutdown switch.
pub struct EmulatorHandle {
    pub address: SocketAddr,
    /// The MQTT-over-WebSocket address, once [`EmulatorHandle::serve_websocket`] was called.
    pub ws_address: Option<SocketAddr>,
    /// Where plain MQTT is served, under the `plain_listen` deviation (bound as configured, so
    /// `127.0.0.1:0` picks a free port).
    pub plain_address: Option<SocketAddr>,
    pub service: Arc<Service>,
    tls: TlsAcceptor,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Every connection and accept loop spawned: [`EmulatorHandle::stop`] waits for them all.
    tasks: Tracked,
}

impl EmulatorHandle {
    /// Also serves MQTT over WebSocket (TLS, then the upgrade) on an already bound listener.
    pub fn serve_websocket(&mut self, listener: TcpListener) -> std::io::Result<SocketAddr> {
        let address = listener.local_addr()?;
        let tracker = self.tasks.tracker();
        let shutdown = self.shutdown.subscribe();
        self.tasks.tracker().spawn(serve_websocket(
            listener,
            self.service.clone(),
            self.tls.clone(),
            shutdown,
            tracker,
        ));
        self.ws_address = Some(address);
        Ok(address)
    }

    /// Stops accepting, closes every connection and returns once every task it spawned (accept
    /// loops and connections, each having told the client checks how it ended) has ended.
    pub async fn stop(self) {
        let Self { shutdown, task, tasks, .. } = self;
        let _ = shutdown.send(true);
        // Dropped, so a connection that already saw the change sees the sender gone at once.
        drop(shutdown);
        let _ = task.await;
        tasks.all_ended().await;
    }
}

/// Starts serving `service` on an already bound listener.
pub fn spawn(
    listener: TcpListener,
    service: Arc<Service>,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<EmulatorHandle> {
    let address = listener.local_addr()?;
    let (shutdown, signal) = watch::channel(false);
    let tasks = Tracked::new();
    let mut plain_address = None;
    if let Some(plain) = service.config().deviations.plain_listen {
        let listener = bind(plain)?;
        plain_address = Some(listener.local_addr()?);
        tasks.tracker().spawn(serve_plain(listener, service.clone(), signal.clone(), tasks.tracker()));
    }
    let tls = TlsAcceptor::from(tls);
    let task = tokio::spawn(serve(listener, service.clone(), tls.clone(), signal, tasks.tracker()));
    Ok(EmulatorHandle { address, ws_address: None, plain_address, service, tls, shutdown, task, tasks })
}

/// Accepts TLS connections until `shutdown` turns true. An `outage` fault closes the listener
/// and every connection at its time, then takes the same address back after its length;
/// `max_connections` closes connections beyond it at once. Each connection is spawned by
/// `tasks`.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    tls: TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
    tasks: Tracker,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let address = listener.local_addr();
    let mut listener = listener;
    // Counted from when the faults are armed (a run's preflight holds them; otherwise at once).
    let mut outage = service.faults.faults().outage.map(|o| (o.at, o.length));
    loop {
        // Connections of this listener's life see `drop_all` turn true at shutdown or at an outage.
        let (drop_all, dropped) = watch::channel(false);
        let accepting = accept_loop(listener, shutdown.clone(), |stream| {
            service.stats.connections.fetch_add(1, Ordering::Relaxed);
            if service.config().max_connections.is_some_and(|cap| live.load(Ordering::Relaxed) >= cap) {
                service.faults.counts.add(Fault::ConnectionCap);
                return;
            }
            let guard = LiveConnection::enter(&live);
            let (service, tls, dropped) = (service.clone(), tls.clone(), dropped.clone());
            tasks.spawn(async move {
                connection(stream, service, tls, dropped).await;
                drop(guard);
            });
        });
        let outage_at = async {
            match outage {
                Some((at, _)) => {
                    service.faults.armed_wait().await;
                    tokio::time::sleep(at).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = accepting => {
                let _ = drop_all.send(true);
                return;
            }
            _ = outage_at => {}
        }
        // The accept loop was dropped, and the listener with it.
        let _ = drop_all.send(true);
        let Some((_, length)) = outage.take() else { return };
        service.faults.counts.add(Fault::Outage);
        tokio::select! {
            _ = tokio::time::sleep(length) => {}
            _ = shutdown.changed() => return,
        }
        let Ok(address) = address else { return };
        match rebind(address).await {
            Some(again) => listener = again,
            None => return,
        }
    }
}

/// Binds `address` again after an outage, a bounded number of times.
async fn rebind(address: SocketAddr) -> Option<TcpListener> {
    for _ in 0..REBIND_ATTEMPTS {
        if let Ok(listener) = bind(address) {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// One connection counted against `max_connections` while it lives.
struct LiveConnection(Arc<AtomicUsize>);

impl LiveConnection {
    fn enter(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self(live.clone())
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

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

/// Hands each accepted stream to `on_stream` until `shutdown` turns true.
async fn accept_loop(listener: TcpListener, mut shutdown: watch::Receiver<bool>, on_stream: impl Fn(TcpStream)) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => on_stream(stream),
            // Out of descriptors or a connection reset before accept: back off briefly
            // instead of spinning, and keep serving the connections already open.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn connection(stream: TcpStream, service: Arc<Service>, tls: TlsAcceptor, mut shutdown: watch::Receiver<bool>) {
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
    if service.faults.strikes(Fault::TlsStall) {
        // Hold the connection, never answering its handshake, until the client gives up.
        tokio::time::sleep(STALL_LIMIT).await;
        return Opened::Closed;
    }
    if service.config().deviations.accept_plain_mqtt && starts_with_plain_connect(&stream).await {
        return Opened::Plain(stream);
    }
    if service.config().deviations.answer_old_tls {
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
        None if error.kind() == std::io::ErrorKind::UnexpectedEof => super::activity::CLOSED_IN_HANDSHAKE.into(),
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

/// Accepts MQTT-over-WebSocket connections until `shutdown` turns true.
async fn serve_websocket(
    listener: TcpListener,
    service: Arc<Service>,
    tls: TlsAcceptor,
    shutdown: watch::Receiver<bool>,
    tasks: Tracker,
) {
    let signal = shutdown.clone();
    accept_loop(listener, shutdown, |stream| {
        service.stats.connections.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(websocket_connection(stream, service.clone(), tls.clone(), signal.clone()));
    })
    .await;
}

async fn websocket_connection(
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

/// Serves plain MQTT (no TLS) on `listener`: only for the `plain_listen` deviation.
pub async fn serve_plain(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
    tasks: Tracker,
) {
    let signal = shutdown.clone();
    accept_loop(listener, shutdown, |stream| {
        tasks.spawn(serve_mqtt(stream, service.clone(), signal.clone(), None, None));
    })
    .await;
}

async fn serve_mqtt<S>(
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
            let _ = timeout(WRITE_TIMEOUT, framed.flush()).await;
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
