//! The standalone emulator (`dpsbench emulator`): a service served on already bound listeners
//! ([`start`]), then, once the caller has said where it listens, run until `until` resolves
//! with its activity told to a log once a second ([`Running::run`]); it returns only when every
//! connection has ended. What the log says is built by `activity`'s pure functions.
//!
//! It must not bind addresses chosen by the user, parse flags, read signals, or write files or
//! streams itself: the CLI does those and hands it the listeners and a log sink.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::activity::{HandshakeFailures, Totals};
use super::server::EmulatorHandle;
use super::service::{Service, ServiceStats};
use super::start::{StartError, serve};
use crate::tls::{ServerIdentity, TlsPolicy};

/// The listeners a standalone emulator serves on, already bound.
#[derive(Debug)]
pub struct Listeners {
    /// MQTT over TLS.
    pub tls: TcpListener,
    /// MQTT over WebSocket (TLS, then the upgrade), when asked for.
    pub websocket: Option<TcpListener>,
}

/// A standalone emulator serving, not yet logging.
pub struct Running {
    handle: EmulatorHandle,
}

/// Serves `service` with `identity`, accepting `policy` (as the service's `[deviations]` change
/// it), on `listeners`.
pub fn start(
    service: Arc<Service>,
    identity: &ServerIdentity,
    policy: TlsPolicy,
    listeners: Listeners,
) -> Result<Running, StartError> {
    let handle = serve(service, identity, policy, listeners.tls, listeners.websocket)?;
    Ok(Running { handle })
}

impl Running {
    /// Where MQTT over TLS is served.
    pub fn address(&self) -> SocketAddr {
        self.handle.address
    }

    /// Where MQTT over WebSocket is served, if it is.
    pub fn websocket_address(&self) -> Option<SocketAddr> {
        self.handle.ws_address
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.handle.service
    }

    /// Serves until `until` resolves, telling `log` once a second what changed (nothing while
    /// idle) and, at the end, the last part-second; returns once every connection has ended
    /// (each having told the service's observer how it ended) with the service, for its totals.
    pub async fn run(self, until: impl Future<Output = ()>, log: impl Fn(&str)) -> Arc<Service> {
        let service = self.handle.service.clone();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut activity = Activity::of(&service);
        let mut until = std::pin::pin!(until);
        loop {
            tokio::select! {
                _ = ticker.tick() => activity.tell(&service, &log),
                () = &mut until => break,
            }
        }
        self.handle.stop().await;
        activity.tell(&service, &log);
        service
    }
}

/// What the log last said: the totals and the handshake failures by reason.
struct Activity {
    totals: Totals,
    failures: Vec<(String, u64)>,
}

impl Activity {
    fn of(service: &Service) -> Self {
        Self { totals: Totals::of(&service.stats), failures: service.stats.tls_failures.snapshot() }
    }

    /// Tells `log` what changed since it last did.
    fn tell(&mut self, service: &Service, log: &impl Fn(&str)) {
        let now = Self::of(service);
        if let Some(line) = now.totals.line_since(&self.totals) {
            log(&line);
        }
        for line in HandshakeFailures::lines_since(&now.failures, &self.failures) {
            log(&line);
        }
        *self = now;
    }
}

/// The line a stopped emulator says: its totals.
pub fn stopped_line(service: &Service) -> String {
    let get = ServiceStats::get;
    let stats = &service.stats;
    format!(
        "dpsbench emulator stopped: {} connections, {} refused, {} registrations, {} polls, {} throttled",
        get(&stats.connections),
        get(&stats.connects_refused),
        get(&stats.registrations),
        get(&stats.polls),
        get(&stats.throttled)
    )
}

/// The line that lists the faults a stopped emulator injected; `None` when it injected none.
pub fn faults_line(service: &Service) -> Option<String> {
    let faults = service.faults.counts.snapshot();
    let listed: Vec<String> = faults.iter().map(|(fault, count)| format!("{fault} {count}")).collect();
    (!listed.is_empty()).then(|| format!("dpsbench emulator injected faults: {}", listed.join(", ")))
}
