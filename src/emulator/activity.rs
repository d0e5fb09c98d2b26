//! What the emulator did: its counters ([`ServiceStats`], which the service and the IO layer add
//! to), refusals counted by reason (never a secret, only which check refused), a snapshot of
//! every total, and the line a second that says what changed. Pure: it imports nothing of the
//! service; the standalone emulator reads the counters and its log prints the line.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what the emulator served, readable while it runs.
#[derive(Debug, Default)]
pub struct ServiceStats {
    pub connections: AtomicU64,
    pub connects_accepted: AtomicU64,
    pub connects_refused: AtomicU64,
    pub registrations: AtomicU64,
    pub polls: AtomicU64,
    pub assigned: AtomicU64,
    pub throttled: AtomicU64,
    /// Refused CONNECTs by reason (a part of `connects_refused`).
    pub refusals: RefusalCounts,
    /// Failed TLS handshakes by reason.
    pub tls_failures: HandshakeFailures,
    /// Operational certificates signed for CSRs, and CSRs refused.
    pub certificates_issued: AtomicU64,
    pub certificates_refused: AtomicU64,
}

impl ServiceStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Why a CONNECT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not MQTT 3.1.1.
    ProtocolVersion,
    /// The user name does not name this ID scope and the client ID's registration.
    UserName,
    /// The token or certificate did not authenticate (bad signature, expired, no enrollment).
    Credentials,
    /// An injected `connack_unavailable` fault (CONNACK 3).
    Fault,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [Refusal::ProtocolVersion, Refusal::UserName, Refusal::Credentials, Refusal::Fault];

    /// The reason as the log says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ProtocolVersion => "protocol_version",
            Refusal::UserName => "user_name",
            Refusal::Credentials => "credentials",
            Refusal::Fault => "fault",
        }
    }
}

/// Refused CONNECTs by [`Refusal`].
#[derive(Debug, Default)]
pub struct RefusalCounts([AtomicU64; Refusal::ALL.len()]);

impl RefusalCounts {
    pub fn add(&self, refusal: Refusal) {
        self.0[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, refusal: Refusal) -> u64 {
        self.0[refusal as usize].load(Ordering::Relaxed)
    }
}

/// Failed TLS handshakes by reason (the TLS library's error, or the deadline), so a log can say
/// why clients could not connect, not only that they connected. At most
/// [`HandshakeFailures::REASONS`] distinct reasons are kept; later ones count as `other`.
#[derive(Debug, Default)]
pub struct HandshakeFailures(std::sync::Mutex<Vec<(String, u64)>>);

impl HandshakeFailures {
    pub const REASONS: usize = 16;

    pub fn add(&self, reason: &str) {
        let mut reasons = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = reasons.iter().position(|(r, _)| r == reason);
        let full = reasons.len() >= Self::REASONS;
        match (known, full) {
            (Some(at), _) => reasons[at].1 += 1,
            (None, false) => reasons.push((reason.to_string(), 1)),
            (None, true) => match reasons.iter_mut().find(|(r, _)| r == "other") {
                Some(other) => other.1 += 1,
                None => reasons.push(("other".into(), 1)),
            },
        }
    }

    /// Each reason with its count, in the order first seen.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// One line per reason that grew since `before` (a [`Self::snapshot`]).
    pub fn lines_since(now: &[(String, u64)], before: &[(String, u64)]) -> Vec<String> {
        now.iter()
            .filter_map(|(reason, count)| {
                let then = before.iter().find(|(r, _)| r == reason).map_or(0, |(_, c)| *c);
                (*count > then).then(|| {
                    let hint = hint(reason).map(|h| format!("; {h}")).unwrap_or_default();
                    format!(
                        "dpsbench emulator: TLS handshake failed: {reason} (+{}, {count} in all{hint})",
                        count - then
                    )
                })
            })
            .collect()
    }
}

/// The reason of a handshake the client ended by closing its connection.
pub const CLOSED_IN_HANDSHAKE: &str = "the client closed the connection";

/// What a handshake failure most likely means for the person reading the log (and the client
/// report of a judging emulator no client got past its handshake).
pub fn hint(reason: &str) -> Option<&'static str> {
    if ["UnknownCA", "BadCertificate", "CertificateUnknown"].iter().any(|alert| reason.contains(alert)) {
        Some("the client does not trust this emulator's certificate: give it the --ca-out file as its CA")
    } else if reason.contains("Tls12NotOffered") || reason.contains("SupportedVersionsExtensionRequired") {
        Some("the client offered no TLS 1.2 (DPS serves TLS 1.2; tls_versions = [\"1.2\", \"1.3\"] also accepts 1.3)")
    } else if reason == CLOSED_IN_HANDSHAKE {
        Some(
            "a client that does not trust this emulator's certificate may close without an alert: check it trusts the --ca-out file",
        )
    } else if reason.contains("InvalidContentType") || reason.contains("corrupt message") {
        Some("the client may be speaking plain MQTT to the TLS port")
    } else {
        None
    }
}

/// Every total the log reports, at one instant: `(name, value)` in log order, so a counter
/// added to [`ServiceStats`] joins the line by joining this list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals(pub Vec<(&'static str, u64)>);

impl Totals {
    pub fn of(stats: &ServiceStats) -> Self {
        let get = ServiceStats::get;
        let mut totals = vec![
            ("connections", get(&stats.connections)),
            ("registrations", get(&stats.registrations)),
            ("polls", get(&stats.polls)),
            ("assigned", get(&stats.assigned)),
            ("throttled", get(&stats.throttled)),
            ("tls handshakes failed", stats.tls_failures.snapshot().iter().map(|(_, count)| count).sum()),
            ("certificates issued", get(&stats.certificates_issued)),
            ("certificate requests refused", get(&stats.certificates_refused)),
        ];
        for refusal in Refusal::ALL {
            totals.push((refusal_key(refusal), stats.refusals.get(refusal)));
        }
        Totals(totals)
    }

    /// The line for the second from `before` to `self`: what changed, with the running totals
    /// of the busy counters; `None` when nothing did (an idle emulator stays quiet).
    pub fn line_since(&self, before: &Totals) -> Option<String> {
        let changes: Vec<String> = self
            .0
            .iter()
            .zip(&before.0)
            .filter(|((_, now), (_, then))| now > then)
            .map(|((name, now), (_, then))| format!("{name} +{} ({now})", now - then))
            .collect();
        (!changes.is_empty()).then(|| format!("dpsbench emulator: {}", changes.join(", ")))
    }
}

fn refusal_key(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::ProtocolVersion => "refused protocol_version",
        Refusal::UserName => "refused user_name",
        Refusal::Credentials => "refused credentials",
        Refusal::Fault => "refused by a fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_changed_and_nothing_when_idle() {
        let stats = ServiceStats::default();
        let before = Totals::of(&stats);
        assert_eq!(Totals::of(&stats).line_since(&before), None, "idle: no line");
        stats.connections.fetch_add(3, Ordering::Relaxed);
        stats.registrations.fetch_add(2, Ordering::Relaxed);
        stats.refusals.add(Refusal::Credentials);
        let line = Totals::of(&stats).line_since(&before).expect("a line");
        assert_eq!(line, "dpsbench emulator: connections +3 (3), registrations +2 (2), refused credentials +1 (1)");
        stats.certificates_issued.fetch_add(2, Ordering::Relaxed);
        let line = Totals::of(&stats).line_since(&before).expect("a line");
        assert!(line.contains("certificates issued +2 (2)"), "{line}");
    }

    #[test]
    fn handshake_failures_are_logged_by_reason_with_a_hint() {
        let failures = HandshakeFailures::default();
        let before = failures.snapshot();
        failures.add("received fatal alert: UnknownCA");
        failures.add("received fatal alert: UnknownCA");
        failures.add("no TLS handshake within 10 s");
        let lines = HandshakeFailures::lines_since(&failures.snapshot(), &before);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("UnknownCA (+2, 2 in all; the client does not trust") && lines[0].contains("--ca-out")
        );
        assert_eq!(lines[1], "dpsbench emulator: TLS handshake failed: no TLS handshake within 10 s (+1, 1 in all)");
        let seen = failures.snapshot();
        assert!(HandshakeFailures::lines_since(&failures.snapshot(), &seen).is_empty(), "nothing new, no line");
        for n in 0..HandshakeFailures::REASONS + 3 {
            failures.add(&format!("reason {n}"));
        }
        let kept = failures.snapshot();
        assert_eq!(kept.len(), HandshakeFailures::REASONS + 1, "the reasons are bounded: {kept:?}");
        assert_eq!(kept.last(), Some(&("other".to_string(), 5)));
    }
}
