//! The measured phases of a flow: one enum, the single source of phase names.

use serde::{Deserialize, Serialize};

/// A measured phase of a flow: the single source of phase names (summary keys, report rows).
/// Its `as_str` and serde names are the keys of `summary.json`'s `phases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// How late the device started after its intended instant.
    ScheduleLag,
    TcpConnect,
    TlsHandshake,
    #[serde(rename = "ws_upgrade")]
    WebSocketUpgrade,
    /// CONNECT sent to CONNACK.
    Connack,
    /// SUBSCRIBE sent to SUBACK.
    Suback,
    /// First register sent to its 202.
    RegisterAccepted,
    /// Round trip of each poll.
    Poll,
    /// Intended start to assignment.
    Assigned,
    /// Actual start to assignment.
    AssignedRaw,
    /// Intended start to the flow's end.
    EndToEnd,
}

impl Phase {
    /// Every phase, in the order a flow goes through them.
    pub const ALL: [Phase; 11] = [
        Phase::ScheduleLag,
        Phase::TcpConnect,
        Phase::TlsHandshake,
        Phase::WebSocketUpgrade,
        Phase::Connack,
        Phase::Suback,
        Phase::RegisterAccepted,
        Phase::Poll,
        Phase::Assigned,
        Phase::AssignedRaw,
        Phase::EndToEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::ScheduleLag => "schedule_lag",
            Phase::TcpConnect => "tcp_connect",
            Phase::TlsHandshake => "tls_handshake",
            Phase::WebSocketUpgrade => "ws_upgrade",
            Phase::Connack => "connack",
            Phase::Suback => "suback",
            Phase::RegisterAccepted => "register_accepted",
            Phase::Poll => "poll",
            Phase::Assigned => "assigned",
            Phase::AssignedRaw => "assigned_raw",
            Phase::EndToEnd => "end_to_end",
        }
    }

    /// The phase named `name` (its `as_str`), if any.
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.as_str() == name)
    }

    /// Every phase name, comma-separated, for errors that list the accepted names.
    pub fn names() -> String {
        Phase::ALL.map(Phase::as_str).join(", ")
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
