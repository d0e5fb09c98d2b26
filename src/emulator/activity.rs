//! What the emulator did, for its log: refusals counted by reason (the service adds to them;
//! never a secret, only which check refused), a snapshot of every total, and the line a second
//! that says what changed. Pure: the CLI reads the counters and prints the line.

use std::sync::atomic::{AtomicU64, Ordering};

use super::ServiceStats;

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
}
