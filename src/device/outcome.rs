//! What one finished flow reports: its outcome, its failure kind and its phase timestamps.
//!
//! Plain data; no IO. Failure kinds are counted by [`FailureKind::label`], a stable key, never by
//! their `Display` text.

use std::time::{Duration, Instant};

/// A step of the flow, naming where it timed out or lost its connection (`timeout_poll`). Not
/// the measured phases (`metrics::Phase`), which are measured from timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    TcpConnect,
    TlsHandshake,
    WebSocketUpgrade,
    Connack,
    Suback,
    Register,
    Poll,
    /// Waiting out a `retry-after` between requests.
    Wait,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::TcpConnect,
        Step::TlsHandshake,
        Step::WebSocketUpgrade,
        Step::Connack,
        Step::Suback,
        Step::Register,
        Step::Poll,
        Step::Wait,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::TcpConnect => "tcp_connect",
            Step::TlsHandshake => "tls_handshake",
            Step::WebSocketUpgrade => "ws_upgrade",
            Step::Connack => "connack",
            Step::Suback => "suback",
            Step::Register => "register",
            Step::Poll => "poll",
            Step::Wait => "wait",
        }
    }
}

/// How a flow failed. Each variant is counted separately in a run's summary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// TCP connect failed (refused, unreachable, no descriptors).
    Connect,
    /// The TLS handshake failed (certificate, version, alert).
    Tls,
    /// The WebSocket upgrade was refused (path, subprotocol) or broke.
    WebSocket,
    /// CONNACK with a non-zero return code.
    Refused(u8),
    /// SUBACK refused the response filter (0x80).
    SubscribeRefused,
    /// A reply with a non-retryable status, or a retryable one after the last retry.
    Status(u16),
    /// The operation ended with status `failed`; carries `registrationState.errorCode`.
    RegistrationFailed(Option<i64>),
    /// The operation ended with status `disabled`.
    Disabled,
    /// No answer within the deadline of this step.
    Timeout(Step),
    /// The connection closed or broke during this step.
    ConnectionLost(Step),
    /// The service broke the protocol; the check that caught it.
    ProtocolViolation(Violation),
    /// Assigned, but the operational certificate issued for the device's CSR is missing or is
    /// not the one it asked for.
    Certificate(crate::certificates::ChainFailure),
    /// The run stopped before this flow finished.
    Aborted,
}

impl FailureKind {
    /// A stable key for counting: `refused_5`, `status_429`, `timeout_poll`, ...
    pub fn label(&self) -> String {
        match self {
            FailureKind::Connect => "connect".into(),
            FailureKind::Tls => "tls".into(),
            FailureKind::WebSocket => "websocket".into(),
            FailureKind::Refused(code) => format!("refused_{code}"),
            FailureKind::SubscribeRefused => "subscribe_refused".into(),
            FailureKind::Status(status) => format!("status_{status}"),
            FailureKind::RegistrationFailed(Some(code)) => format!("registration_failed_{code}"),
            FailureKind::RegistrationFailed(None) => "registration_failed".into(),
            FailureKind::Disabled => "disabled".into(),
            FailureKind::Timeout(step) => format!("timeout_{}", step.as_str()),
            FailureKind::ConnectionLost(step) => format!("connection_lost_{}", step.as_str()),
            FailureKind::ProtocolViolation(violation) => format!("protocol_{}", violation.as_str()),
            FailureKind::Certificate(failure) => format!("certificate_{}", failure.as_str()),
            FailureKind::Aborted => "aborted".into(),
        }
    }

    /// The failure kind a [`FailureKind::label`] names: its inverse, for gates that name a kind
    /// (`failures.status_429`). `None` for a label no failure can have.
    pub fn from_label(label: &str) -> Option<FailureKind> {
        let step = |rest: &str| Step::ALL.into_iter().find(|s| s.as_str() == rest);
        let kind = match label {
            "connect" => FailureKind::Connect,
            "tls" => FailureKind::Tls,
            "websocket" => FailureKind::WebSocket,
            "subscribe_refused" => FailureKind::SubscribeRefused,
            "registration_failed" => FailureKind::RegistrationFailed(None),
            "disabled" => FailureKind::Disabled,
            "aborted" => FailureKind::Aborted,
            _ if label.starts_with("refused_") => FailureKind::Refused(label["refused_".len()..].parse().ok()?),
            _ if label.starts_with("status_") => {
                FailureKind::Status(label["status_".len()..].parse().ok().filter(|s| (100..=999).contains(s))?)
            }
            _ if label.starts_with("registration_failed_") => {
                FailureKind::RegistrationFailed(Some(label["registration_failed_".len()..].parse().ok()?))
            }
            _ if label.starts_with("timeout_") => FailureKind::Timeout(step(&label["timeout_".len()..])?),
            _ if label.starts_with("connection_lost_") => {
                FailureKind::ConnectionLost(step(&label["connection_lost_".len()..])?)
            }
            _ if label.starts_with("certificate_") => {
                let rest = &label["certificate_".len()..];
                let all = crate::certificates::ChainFailure::ALL;
                FailureKind::Certificate(all.into_iter().find(|f| f.as_str() == rest)?)
            }
            _ if label.starts_with("protocol_") => {
                let rest = &label["protocol_".len()..];
                FailureKind::ProtocolViolation(Violation::ALL.into_iter().find(|v| v.as_str() == rest)?)
            }
            _ => return None,
        };
        // Numbers as a label spells them: `status_0429` or `refused_+5` name nothing.
        (kind.label() == label).then_some(kind)
    }

    /// The kinds a live view counts from the start, each at zero until it happens: every kind
    /// that carries no number, the five CONNACK refusals of MQTT 3.1.1, and the HTTP statuses
    /// DPS answers a registration with (400, 401, 404, 429, 500, 503). Other numbered kinds
    /// (`registration_failed_<errorCode>`, another status) are counted once they occur.
    /// `aborted` is not among them: a flow the run stopped is counted as aborted, not failed.
    pub fn counted_from_start() -> Vec<FailureKind> {
        let mut kinds = vec![
            FailureKind::Connect,
            FailureKind::Tls,
            FailureKind::WebSocket,
            FailureKind::SubscribeRefused,
            FailureKind::RegistrationFailed(None),
            FailureKind::Disabled,
        ];
        kinds.extend((1..=5).map(FailureKind::Refused));
        kinds.extend([400, 401, 404, 429, 500, 503].map(FailureKind::Status));
        kinds.extend(Step::ALL.map(FailureKind::Timeout));
        kinds.extend(Step::ALL.map(FailureKind::ConnectionLost));
        kinds.extend(Violation::ALL.map(FailureKind::ProtocolViolation));
        kinds.extend(crate::certificates::ChainFailure::ALL.map(FailureKind::Certificate));
        kinds
    }

    /// Every form a label takes, for errors that list them.
    pub fn label_forms() -> String {
        let steps = Step::ALL.map(Step::as_str).join("|");
        let violations = Violation::ALL.map(Violation::as_str).join("|");
        let certificates = crate::certificates::ChainFailure::ALL.map(|f| f.as_str()).join("|");
        format!(
            "connect, tls, websocket, refused_<CONNACK code 1-255>, subscribe_refused, status_<HTTP status, not 2xx>, \
             registration_failed, registration_failed_<errorCode>, disabled, timeout_<{steps}>, \
             connection_lost_<{steps}>, protocol_<{violations}>, certificate_<{certificates}>"
        )
    }
}

/// Protocol violations that end a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Violation {
    /// A packet the device cannot decode.
    MalformedPacket,
    /// A packet that has no place at this point of the flow (e.g. a second CONNACK).
    UnexpectedPacket,
    /// A reply topic that is not `$dps/registrations/res/{status}/?...`.
    ReplyTopic,
    /// A reply body that does not match the schema for its status.
    ReplyBody,
    /// `status: unassigned`, which DPS never sends over MQTT.
    Unassigned,
    /// `assigned` without `assignedHub` or `deviceId`.
    IncompleteAssignment,
    /// `assigning` without an operationId.
    MissingOperationId,
}

impl Violation {
    pub const ALL: [Violation; 7] = [
        Violation::MalformedPacket,
        Violation::UnexpectedPacket,
        Violation::ReplyTopic,
        Violation::ReplyBody,
        Violation::Unassigned,
        Violation::IncompleteAssignment,
        Violation::MissingOperationId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Violation::MalformedPacket => "malformed_packet",
            Violation::UnexpectedPacket => "unexpected_packet",
            Violation::ReplyTopic => "reply_topic",
            Violation::ReplyBody => "reply_body",
            Violation::Unassigned => "unassigned",
            Violation::IncompleteAssignment => "incomplete_assignment",
            Violation::MissingOperationId => "missing_operation_id",
        }
    }
}

/// The single result of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Assigned {
        hub: String,
        device_id: String,
    },
    /// CONNECT was accepted and the flow ended there, as a connect-only flow (the run's
    /// preflight, [`super::FlowSettings::connect_only`]) does: nothing registered.
    Connected,
    Failed(FailureKind),
}

/// Timestamps of one flow. `None` for steps the flow never reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// When the arrival plan wanted this device to start.
    pub intended_start: Instant,
    /// When it actually started.
    pub start: Instant,
    pub tcp_connected: Option<Instant>,
    pub tls_done: Option<Instant>,
    /// When the WebSocket upgrade completed (WebSocket transport only).
    pub ws_upgraded: Option<Instant>,
    pub connect_sent: Option<Instant>,
    pub connack: Option<Instant>,
    pub subscribe_sent: Option<Instant>,
    pub suback: Option<Instant>,
    pub register_sent: Option<Instant>,
    pub register_accepted: Option<Instant>,
    /// Round trip of each poll, in order.
    pub polls: Vec<Duration>,
    pub assigned: Option<Instant>,
    pub end: Option<Instant>,
}

impl Timings {
    pub fn new(intended_start: Instant, start: Instant) -> Self {
        Self {
            intended_start,
            start,
            tcp_connected: None,
            tls_done: None,
            ws_upgraded: None,
            connect_sent: None,
            connack: None,
            subscribe_sent: None,
            suback: None,
            register_sent: None,
            register_accepted: None,
            polls: Vec::new(),
            assigned: None,
            end: None,
        }
    }
}

/// Everything a finished flow reports, with its observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowReport<O = ()> {
    pub outcome: Outcome,
    pub timings: Timings,
    /// Register requests sent (1 plus retries).
    pub register_attempts: u32,
    /// Poll requests sent.
    pub polls: u32,
    /// `retry-after` values received, in seconds.
    pub retry_after_seconds: Vec<u32>,
    /// Replies by status code.
    pub statuses: Vec<u16>,
    /// Replies whose `$rid` matched no request in flight (ignored, as SDKs do).
    pub stray_replies: u32,
    /// The local address the device connected from, when a pool assigned one.
    pub source_address: Option<std::net::IpAddr>,
    /// Requests sent before the previous reply's `retry-after` had passed. Always 0 for the
    /// dpsbench profile (anything else is a harness bug); SDK profiles may do it on purpose.
    pub early_requests: u32,
    /// Whether the assignment returned a custom allocation payload equal to the one sent
    /// (`None` when none was sent or none came back).
    pub payload_returned: Option<bool>,
    /// The device's SDK personality.
    pub personality: super::Personality,
    /// What the network said when the flow failed on it (the TLS or socket error), for the
    /// failure's examples. Never a secret: errors of the transport only.
    pub failure_detail: Option<String>,
    /// What became of the operational certificate the device asked for; `None` when it sent
    /// no CSR.
    pub certificate: Option<crate::certificates::CertificateOutcome>,
    /// The observer the flow reported its observations to (the passive checks' log).
    pub observer: O,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_parses_back_to_its_kind_and_nothing_else_does() {
        let mut kinds = vec![
            FailureKind::Connect,
            FailureKind::Tls,
            FailureKind::WebSocket,
            FailureKind::Refused(5),
            FailureKind::SubscribeRefused,
            FailureKind::Status(429),
            FailureKind::Status(503),
            FailureKind::RegistrationFailed(None),
            FailureKind::RegistrationFailed(Some(400_209)),
            FailureKind::RegistrationFailed(Some(-1)),
            FailureKind::Disabled,
            FailureKind::Aborted,
        ];
        kinds.extend(Step::ALL.into_iter().flat_map(|s| [FailureKind::Timeout(s), FailureKind::ConnectionLost(s)]));
        kinds.extend(Violation::ALL.map(FailureKind::ProtocolViolation));
        kinds.extend(crate::certificates::ChainFailure::ALL.map(FailureKind::Certificate));
        for kind in kinds {
            assert_eq!(FailureKind::from_label(&kind.label()), Some(kind.clone()), "{}", kind.label());
        }
        for label in [
            "status429",
            "status_0429",
            "status_42",
            "refused_+5",
            "refused_256",
            "timeout_nap",
            "certificate_",
            "certificate_bogus",
            "Tls",
            "",
        ] {
            assert_eq!(FailureKind::from_label(label), None, "{label}");
        }
    }

    #[test]
    fn the_kinds_counted_from_start_are_distinct_labels_that_parse_back() {
        let kinds = FailureKind::counted_from_start();
        let labels: std::collections::BTreeSet<String> = kinds.iter().map(FailureKind::label).collect();
        assert_eq!(labels.len(), kinds.len(), "{labels:?}");
        let certificates = crate::certificates::ChainFailure::ALL.len();
        assert_eq!(kinds.len(), 6 + 5 + 6 + 2 * Step::ALL.len() + Violation::ALL.len() + certificates);
        for kind in &kinds {
            assert_eq!(FailureKind::from_label(&kind.label()).as_ref(), Some(kind));
        }
        assert!(labels.contains("status_429") && labels.contains("timeout_poll") && !labels.contains("aborted"));
    }
}
