//! Why a flow failed, in one line a user can act on: each [`FailureKind`] with its likely cause,
//! and the first examples of it. Plain data; no IO. Counting stays by [`FailureKind::label`]; the
//! reason is said beside the count, never used as a key.

use serde::{Deserialize, Serialize};

use super::outcome::{FailureKind, Step};

/// Examples kept per failure kind.
pub const EXAMPLES: usize = 3;

/// A failure kind's reason and its first examples (registration IDs, with what the network
/// said when it said something).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailureReason {
    pub reason: String,
    pub examples: Vec<String>,
}

impl FailureReason {
    /// The reason of `kind` whose first failure said `detail`.
    pub fn new(kind: &FailureKind, detail: Option<&str>) -> Self {
        Self { reason: kind.reason(detail), examples: Vec::new() }
    }

    /// Keeps `example` when fewer than [`EXAMPLES`] are kept.
    pub fn add_example(&mut self, example: String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(example);
        }
    }

    /// Adds another collector's reason of the same kind: the first reason said stands, its
    /// examples are kept up to the limit.
    pub fn add(&mut self, other: &FailureReason) {
        if self.reason.is_empty() {
            self.reason = other.reason.clone();
        }
        for example in &other.examples {
            self.add_example(example.clone());
        }
    }
}

impl FailureKind {
    /// One line: what happened and the likely cause. `detail` is what the network said, when
    /// it said something (a TLS or socket error).
    pub fn reason(&self, detail: Option<&str>) -> String {
        match self {
            FailureKind::Connect => {
                format!("TCP connect failed{} (is [target] host and port right, and the target running?)", said(detail))
            }
            FailureKind::Tls => {
                let what = match detail {
                    Some(text) if text.contains("UnknownIssuer") => ": certificate signed by an unknown issuer".into(),
                    // A CA of the same name but another key (e.g. another emulator's).
                    Some(text) if text.contains("BadSignature") => {
                        ": certificate not signed by the trusted CA of that name".into()
                    }
                    Some(text) if text.contains("NotValidForName") => {
                        ": the certificate is not valid for the host name".into()
                    }
                    other => said(other),
                };
                format!("TLS handshake failed{what} (is [target].ca_certificate the emulator's --ca-out?)")
            }
            FailureKind::WebSocket => "WebSocket upgrade refused or broken (is the endpoint's path right?)".into(),
            FailureKind::Refused(code) => format!("CONNACK {code} {}", connack_reason(*code)),
            FailureKind::SubscribeRefused => {
                "SUBACK refused $dps/registrations/res/# (is the target a DPS endpoint?)".into()
            }
            FailureKind::Status(status) => status_reason(*status),
            FailureKind::RegistrationFailed(Some(code)) => {
                format!("the registration ended `failed` with errorCode {code} (see the enrollment's allocation)")
            }
            FailureKind::RegistrationFailed(None) => "the registration ended `failed` without an errorCode".into(),
            FailureKind::Disabled => "the enrollment or registration is disabled".into(),
            FailureKind::Certificate(failure) => failure.reason().into(),
            FailureKind::Timeout(Step::Wait) => "the flow's deadline passed while waiting out retry-after".into(),
            FailureKind::Timeout(step) => {
                format!("no answer within the {} deadline (target overloaded or silent?)", step.as_str())
            }
            FailureKind::ConnectionLost(step) => {
                format!(
                    "the connection closed during {}{} (did the target refuse or restart?)",
                    step.as_str(),
                    said(detail)
                )
            }
            FailureKind::ProtocolViolation(violation) => {
                format!("the target broke the protocol: {} (see the passive checks)", violation.as_str())
            }
            FailureKind::Aborted => "the run stopped before this device finished".into(),
        }
    }
}

fn said(detail: Option<&str>) -> String {
    detail.map(|text| format!(": {text}")).unwrap_or_default()
}

fn connack_reason(code: u8) -> &'static str {
    match code {
        1 => "protocol version refused (is the target MQTT 3.1.1?)",
        2 => "client ID rejected (the client ID must be the registration ID)",
        3 => "server unavailable (is the target overloaded or restarting?)",
        4 => "bad user name or password (wrong ID scope or registration ID?)",
        5 => "not authorized (wrong group key or scope?)",
        _ => "refused",
    }
}

fn status_reason(status: u16) -> String {
    let cause = match status {
        400 => "bad request (a malformed register body?)",
        401 => "unauthorized (wrong key or scope?)",
        404 => "not found (no enrollment for this registration ID?)",
        412 => "precondition failed (the registration ID does not match the token?)",
        429 => "throttled after the last retry (the quota is reached: lower the rate)",
        500..=599 => "service error after the last retry",
        _ => "not a status the device could go on from",
    };
    format!("reply {status}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_likely_cause() {
        let tls = FailureKind::Tls.reason(Some("invalid peer certificate: UnknownIssuer"));
        assert_eq!(
            tls,
            "TLS handshake failed: certificate signed by an unknown issuer (is [target].ca_certificate the \
             emulator's --ca-out?)"
        );
        assert_eq!(FailureKind::Refused(5).reason(None), "CONNACK 5 not authorized (wrong group key or scope?)");
        assert!(FailureKind::Status(429).reason(None).contains("quota"));
        assert!(FailureKind::Timeout(Step::Connack).reason(None).contains("connack deadline"));
        assert!(FailureKind::Connect.reason(Some("Connection refused (os error 111)")).contains("os error 111"));
    }

    #[test]
    fn examples_stop_at_the_first_few() {
        let mut reason = FailureReason::new(&FailureKind::Tls, None);
        for n in 0..10 {
            reason.add_example(format!("dev-{n}"));
        }
        assert_eq!(reason.examples, ["dev-0", "dev-1", "dev-2"]);
    }
}
