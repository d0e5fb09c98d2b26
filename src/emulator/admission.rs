//! Admission: the lab's faults and the deviations that decide whether a connection or a packet
//! is served at all, decided once, before the IO layer serves a connection and before the
//! service answers a packet; the IO layer and the service act on the decision it returns.
//!
//! Sans IO: it draws from the fault injector (seeded, so a run is reproducible) and reads the
//! deviations; it never touches a socket and never answers a DPS request.

use std::time::Duration;

use super::deviations::Deviations;
use super::faults::{Fault, Injector, Malformed, RequestFault};

mod connect;

pub use connect::{Admitted, ConnectDecision, Credentials, connect};

/// Longest a `tls_stall` fault holds a connection without answering its handshake.
pub const STALL_LIMIT: Duration = Duration::from_secs(300);

/// What the IO layer does with a new TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A `tls_stall` fault: hold it, never answering, this long at most.
    Stall(Duration),
    /// Serve it, as these deviations change how.
    Serve {
        /// Plain MQTT on the TLS port (`accept_plain_mqtt`).
        plain_mqtt: bool,
        /// Answer a TLS 1.0 or 1.1 ClientHello (`answer_old_tls`).
        old_tls: bool,
    },
}

/// Whether a connection beyond `max_connections` is closed at once (counted when it is).
pub fn over_cap(faults: &Injector, max_connections: Option<usize>, live: usize) -> bool {
    let over = max_connections.is_some_and(|cap| live >= cap);
    if over {
        faults.counts.add(Fault::ConnectionCap);
    }
    over
}

/// How a new TCP connection is opened.
pub fn opening(faults: &Injector, deviations: &Deviations) -> Opening {
    if faults.strikes(Fault::TlsStall) {
        return Opening::Stall(STALL_LIMIT);
    }
    Opening::Serve { plain_mqtt: deviations.accept_plain_mqtt, old_tls: deviations.answer_old_tls }
}

/// Whether a SUBSCRIBE is answered with a TCP reset (`reset_after_subscribe`).
pub fn subscribe_reset(faults: &Injector) -> bool {
    faults.strikes(Fault::ResetAfterSubscribe)
}

/// A request on a documented topic, as admission needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// The connection authenticated.
    pub authorized: bool,
    /// A register (not a poll).
    pub register: bool,
    /// The device subscribed to the replies, so a reply goes out.
    pub replied: bool,
}

/// What the lab does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDecision {
    /// A TCP reset, nothing sent (`reset_after_register`).
    Reset,
    /// Answered, with this fault on the reply and the reply held back this long.
    Answer { fault: Option<RequestFault>, delay: Option<Duration> },
}

/// Decides the faults of one request: only an authorised device's requests meet them, and a
/// reply is delayed only when one goes out whole.
pub fn request(faults: &Injector, request: Request) -> RequestDecision {
    if request.authorized && request.register && faults.strikes(Fault::ResetAfterRegister) {
        return RequestDecision::Reset;
    }
    let fault = if request.authorized { faults.request_fault() } else { None };
    let whole = !matches!(fault, Some(RequestFault::DropReply | RequestFault::Malformed(Malformed::Truncated)));
    let delay = if request.replied && whole { faults.reply_delay() } else { None };
    RequestDecision::Answer { fault, delay }
}
