//! Observers of the emulator's sessions: the events a session reports (a CONNECT, a SUBSCRIBE,
//! a request, the reply sent, the device's PUBACK of it, the end of the connection) and the
//! traits an observer implements (the client checks' judge does). A session calls its observer
//! at each event and must not know what the observer does with it; an observer must not change
//! what the service answers.
//!
//! Sans IO: `now` is an input.

use std::sync::Arc;
use std::time::Instant;

use super::facts::ConnectFacts;

/// How a connection ended, as an observer needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The device sent DISCONNECT.
    Disconnect,
    /// The device closed or broke the connection without DISCONNECT (or fell silent).
    Dropped,
    /// The emulator closed it (a refusal, a fault, a takeover, shutdown).
    Emulator,
}

/// A PUBLISH the device sent, as the session saw it.
pub struct RequestSeen<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// The operation of the device's latest registration (a lookup in the service; asked only
    /// for a poll).
    pub latest_operation: &'a dyn Fn() -> Option<String>,
}

/// A reply the session sent to the request `$rid`.
#[derive(Debug, Clone, Copy)]
pub struct ReplySent<'a> {
    pub rid: &'a str,
    pub status: u16,
    pub retry_after: Option<u32>,
    /// Whether the request was a poll.
    pub poll: bool,
    /// The reply's packet ID (`None` at QoS 0).
    pub packet_id: Option<u16>,
}

/// What observes every connection of an emulator.
pub trait Observer: Send + Sync {
    /// The observer of one connection that sent CONNECT; `tls12` says whether its handshake
    /// negotiated TLS 1.2 (`None` without TLS).
    fn session(self: Arc<Self>, tls12: Option<bool>) -> Box<dyn SessionObserver>;

    /// A TLS handshake failed because the device offered no TLS 1.2; `evidence` says whose.
    fn tls_refused(&self, evidence: String) {
        let _ = evidence;
    }
}

/// What observes one connection, from its CONNECT to its end.
pub trait SessionObserver: Send {
    fn connected(&mut self, facts: &ConnectFacts<'_>, now: Instant);
    fn subscribed(&mut self, filters: &mut dyn Iterator<Item = &str>);
    fn requested(&mut self, request: RequestSeen<'_>, now: Instant);
    fn replied(&mut self, reply: ReplySent<'_>, now: Instant);
    /// The device PUBACKed the emulator's PUBLISH `packet_id`.
    fn acked(&mut self, packet_id: u16);
    fn ended(self: Box<Self>, ending: Ending, now: Instant);
}
