//! The emulator's network server, its IO layer: binds and accepts TCP on its listeners (TLS,
//! WebSocket, plain), spawns every connection as a tracked task (`connection` opens it, `mqtt`
//! runs its byte loop), takes the listener down and back for an `outage`, and shuts down. It
//! moves bytes only: which faults strike is `admission`'s, what DPS answers is `service`'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::admission;
use super::faults::Fault;
use super::service::Service;
use super::tracked::{Tracked, Tracker};

/// Listen backlog: bursts of thousands of devices connect at once.
const BACKLOG: u32 = 4096;
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
            if admission::over_cap(&service.faults, service.config().max_connections, live.load(Ordering::Relaxed)) {
                return;
            }
            let guard = LiveConnection::enter(&live);
            let (service, tls, dropped) = (service.clone(), tls.clone(), dropped.clone());
            tasks.spawn(async move {
                connection::connection(stream, service, tls, dropped).await;
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
        tasks.spawn(connection::websocket_connection(stream, service.clone(), tls.clone(), signal.clone()));
    })
    .await;
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
        tasks.spawn(mqtt::serve_mqtt(stream, service.clone(), signal.clone(), None, None));
    })
    .await;
}

mod connection;
mod mqtt;
