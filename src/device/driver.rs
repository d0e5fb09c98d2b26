//! Runs one device's [`Flow`] over a real socket: TCP connect, TLS handshake, then MQTT until the
//! flow ends. Owns the clock (tokio's, so tests can pause it) and a deadline on every await.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng as _;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout};
use tokio_rustls::TlsConnector;

use super::flow::Flow;
use super::observation::Observer;
use super::outcome::{FailureKind, FlowReport, Step, Timings};
use super::{DeviceIdentity, DeviceRng, FlowSettings, TargetWatch};
use crate::mqtt::{Framed, MqttError};
use crate::websocket;

/// Where devices connect, and how they trust it.
#[derive(Clone)]
pub struct Target {
    pub address: SocketAddr,
    /// The name the server certificate must carry (SNI and verification).
    pub server_name: ServerName<'static>,
    pub tls: Arc<ClientConfig>,
    pub transport: Transport,
    /// Told of every wait on the target and every answer from it, when a runner watches.
    pub watch: Option<Arc<TargetWatch>>,
}

/// How MQTT is carried over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Transport {
    /// MQTT directly on TLS (port 8883).
    #[default]
    Mqtt,
    /// MQTT over WebSocket (port 443): the upgrade's path and offered subprotocol.
    WebSocket { path: String, subprotocol: String },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

pub use super::clock::now;

/// Runs one device from TCP connect to its outcome. Never fails: every failure is in the report.
/// When `abort` turns true the device stops where it is and reports `Aborted`, keeping the
/// phases it completed.
pub async fn run_device(
    target: &Target,
    settings: Arc<FlowSettings>,
    identity: DeviceIdentity,
    intended_start: Instant,
    abort: watch::Receiver<bool>,
) -> FlowReport {
    run_device_observed(target, settings, identity, Some(intended_start), abort, fresh_rng(), ()).await
}

/// [`run_device`] with its randomness drawn from `rng`, reporting what the device sees on the
/// wire to `observer`, returned in the report. `intended_start` is the instant the device was
/// due; `None` when it is due as it starts (a closed model, a probe): nothing to be late against,
/// so its start and intended start are one instant, taken here.
pub async fn run_device_observed<O: Observer>(
    target: &Target,
    settings: Arc<FlowSettings>,
    identity: DeviceIdentity,
    intended_start: Option<Instant>,
    mut abort: watch::Receiver<bool>,
    rng: DeviceRng,
    observer: O,
) -> FlowReport<O> {
    let start = now();
    let timings = Timings::new(intended_start.unwrap_or(start), start);
    let mut flow = Flow::new(settings, identity, timings, rng, observer);
    flow.set_wall_start(std::time::SystemTime::now());
    if *abort.borrow_and_update() {
        return failed(flow, FailureKind::Aborted);
    }
    let attempts = async {
        connect_and_drive(target, &mut flow).await;
        while flow.reconnect_at_once() {
            connect_and_drive(target, &mut flow).await;
        }
    };
    let aborted = tokio::select! {
        () = attempts => false,
        // A closed channel (`never_abort`) never matches: the flow runs to its end.
        Ok(_) = abort.wait_for(|stop| *stop) => true,
    };
    if aborted && !flow.is_done() {
        flow.fail(now(), FailureKind::Aborted);
    }
    flow.into_report()
}

async fn connect_and_drive<O: Observer>(target: &Target, flow: &mut Flow<O>) {
    let timeouts = flow.settings().timeouts;
    let watched = target.watch.as_deref();
    let awaiting = watched.map(TargetWatch::awaiting);
    let tcp = match timeout(timeouts.tcp_connect, connect(target.address, flow.identity().source_address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return flow.fail_because(now(), FailureKind::Connect, error.to_string()),
        Err(_) => return flow.fail(now(), FailureKind::Timeout(Step::TcpConnect)),
    };
    // Nagle would hold small MQTT packets back and distort every latency measured after it.
    let _ = tcp.set_nodelay(true);
    // (The kernel accepts a connection even while the server process stands still: a connect
    // is no answer from the target.)
    flow.timings_mut().tcp_connected = Some(now());

    let config = flow.identity().client_tls.clone().unwrap_or_else(|| target.tls.clone());
    let connector = TlsConnector::from(config);
    let handshake = connector.connect(target.server_name.clone(), tcp);
    let tls = match timeout(timeouts.tls_handshake, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return flow.fail_because(now(), FailureKind::Tls, error.to_string()),
        Err(_) => return flow.fail(now(), FailureKind::Timeout(Step::TlsHandshake)),
    };
    flow.timings_mut().tls_done = Some(now());
    watched.inspect(|w| w.answered(now()));
    drop(awaiting);

    match &target.transport {
        Transport::Mqtt => {
            let mut framed = Framed::new(tls);
            flow.connected(now());
            drive(flow, &mut framed, watched).await;
        }
        Transport::WebSocket { path, subprotocol } => {
            let host = match &target.server_name {
                ServerName::DnsName(name) => name.as_ref().to_string(),
                _ => target.address.ip().to_string(),
            };
            // Boxed: the upgrade's state is ~11 KB and lives only for the upgrade; inline, every
            // device task would carry it for its whole life (see the size test below).
            let upgrade = Box::pin(websocket::client_handshake(tls, &host, path, subprotocol));
            let ws = match timeout(timeouts.tls_handshake, upgrade).await {
                Ok(Ok(ws)) => ws,
                Ok(Err(_)) => return flow.fail(now(), FailureKind::WebSocket),
                Err(_) => return flow.fail(now(), FailureKind::Timeout(Step::WebSocketUpgrade)),
            };
            flow.timings_mut().ws_upgraded = Some(now());
            let mut framed = Framed::new(ws);
            flow.connected(now());
            drive(flow, &mut framed, watched).await;
        }
    }
}

/// Opens the TCP connection, from `source` when given. The kernel picks the port at connect
/// time (`IP_BIND_ADDRESS_NO_PORT`), so each source address has its own ephemeral port range
/// per destination instead of exhausting one range at bind time.
async fn connect(address: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else { return TcpStream::connect(address).await };
    let socket = if source.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    bind_address_no_port(&socket)?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(address).await
}

#[cfg(target_os = "linux")]
fn bind_address_no_port(socket: &TcpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let enable: libc::c_int = 1;
    // SAFETY: `socket` owns a valid descriptor for the duration of the call, and the option
    // value points to a live c_int whose size is passed, as setsockopt(2) requires.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const enable).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn bind_address_no_port(_socket: &TcpSocket) -> io::Result<()> {
    // Elsewhere the port is chosen at bind time; pools still spread connections over addresses.
    Ok(())
}

/// A device RNG seeded from the thread's generator: no system call per device.
pub fn fresh_rng() -> DeviceRng {
    DeviceRng::from_rng(&mut rand::rng())
}

/// An abort signal that never fires, for callers that run devices to completion.
pub fn never_abort() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    // The receiver sees the last value forever once the sender is gone: `false`.
    drop(sender);
    receiver
}

async fn drive<S, O>(flow: &mut Flow<O>, framed: &mut Framed<S>, watched: Option<&TargetWatch>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + crate::mqtt::Stage,
    O: Observer,
{
    loop {
        let mut queued = false;
        while let Some(packet) = flow.poll_transmit() {
            if framed.queue(&packet).is_err() {
                return flow.fail(now(), FailureKind::Aborted);
            }
            queued = true;
        }
        if flow.is_done() {
            if queued {
                // DISCONNECT is queued: it and TLS close_notify leave in one write, briefly.
                let _ = timeout(std::time::Duration::from_secs(1), framed.close()).await;
            }
            return;
        }
        if queued {
            // A write only blocks when the peer stops reading: bound it like a reply.
            let deadline = flow.poll_timeout().map(tokio::time::Instant::from_std);
            let write = framed.flush();
            let result = match deadline {
                Some(at) => tokio::time::timeout_at(at, write).await.ok(),
                None => Some(write.await),
            };
            match result {
                Some(Ok(())) => {}
                Some(Err(_)) => flow.handle_closed(now()),
                None => flow.handle_timeout(now()),
            }
            if flow.is_done() {
                return;
            }
        }
        let wake = flow.poll_timeout().expect("a flow that is not done always has a deadline");
        // Waiting out a retry-after is not waiting on the target.
        let _awaiting = watched.filter(|_| flow.step() != Step::Wait).map(TargetWatch::awaiting);
        tokio::select! {
            read = framed.read_packet() => match read {
                Ok(packet) => {
                    let at = now();
                    watched.inspect(|w| w.answered(at));
                    flow.handle_packet(at, packet);
                }
                Err(MqttError::Codec(_)) => flow.fail(now(), FailureKind::ProtocolViolation(super::outcome::Violation::MalformedPacket)),
                Err(MqttError::Io(_) | MqttError::Closed) => flow.handle_closed(now()),
            },
            () = sleep_until(tokio::time::Instant::from_std(wake)) => flow.handle_timeout(now()),
        }
    }
}

fn failed<O: Observer>(mut flow: Flow<O>, kind: FailureKind) -> FlowReport<O> {
    flow.fail(now(), kind);
    flow.into_report()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held device costs its task's size in memory for as long as it waits: keep the task
    /// to what a waiting device needs (scripts/bench-hold measures the whole per-device RSS).
    #[test]
    fn a_device_task_stays_small() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _entered = runtime.enter();
        let tls =
            crate::tls::client_config(rustls::RootCertStore::empty(), crate::tls::TlsVersions::Tls12Only).unwrap();
        let target = Target {
            address: SocketAddr::from(([127, 0, 0, 1], 8883)),
            server_name: ServerName::try_from("localhost").unwrap(),
            tls,
            transport: Transport::WebSocket { path: "/$iothub/websocket".into(), subprotocol: "mqtt".into() },
            watch: Some(Arc::new(TargetWatch::new())),
        };
        let identity = DeviceIdentity {
            registration_id: crate::credentials::RegistrationId::new("size-0001").unwrap(),
            id_scope: crate::credentials::IdScope::new("0ne00SIZE01").unwrap(),
            password: None,
            register_body: bytes::Bytes::new(),
            source_address: None,
            personality: Default::default(),
            payload: None,
            client_tls: None,
            certificate_request: None,
        };
        let settings = Arc::new(FlowSettings::default());
        let observer = crate::conformance::passive::CheckLog::default();
        let task = run_device_observed(&target, settings, identity, None, never_abort(), fresh_rng(), observer);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 4096, "a device task takes {size} bytes");
    }
}
