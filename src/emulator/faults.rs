//! Faults on demand: the `[faults]` table of the emulator file (and `[target.faults]` of a
//! scenario), and the [`Injector`] that decides, per connection or per request, which fault
//! strikes.
//!
//! Sans IO: the decisions come from a generator seeded by `seed` (default 0), so a run is
//! reproducible; `server` and `service::session` carry them out. Every fault injected is counted
//! by [`Fault`], so a report shows cause next to effect.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;

/// The `[faults]` table as a file spells it: every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultsSection {
    /// Seed of the generator that draws the faults (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub reset_after_connect: Option<f64>,
    #[serde(default)]
    pub reset_after_subscribe: Option<f64>,
    #[serde(default)]
    pub reset_after_register: Option<f64>,
    #[serde(default)]
    pub connack_unavailable: Option<f64>,
    /// `[min, max]` milliseconds: each reply is delayed uniformly within it.
    #[serde(default)]
    pub reply_delay_ms: Option<[u64; 2]>,
    #[serde(default)]
    pub drop_reply: Option<f64>,
    #[serde(default)]
    pub server_error: Option<f64>,
    #[serde(default)]
    pub throttle: Option<f64>,
    #[serde(default)]
    pub malformed_reply: Option<f64>,
    #[serde(default)]
    pub tls_stall: Option<f64>,
    #[serde(default)]
    pub outage: Option<OutageSection>,
}

/// `outage = { at_seconds, for_seconds }`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutageSection {
    pub at_seconds: f64,
    pub for_seconds: f64,
}

/// A `[faults]` field that does not hold; `field` as the table spells it.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("field `{field}`: {reason}")]
pub struct FaultError {
    pub field: &'static str,
    pub reason: String,
}

/// A probability: 0 to 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Probability(f64);

impl Probability {
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=1.0).contains(&value).then_some(Self(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// A fault the emulator can inject; each is counted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    ResetAfterConnect,
    ResetAfterSubscribe,
    ResetAfterRegister,
    ConnackUnavailable,
    ReplyDelay,
    DropReply,
    ServerError,
    Throttle,
    MalformedReply,
    TlsStall,
    Outage,
    /// Not a configured fault: a connection closed at once beyond `max_connections`.
    ConnectionCap,
}

impl Fault {
    pub const ALL: [Fault; 12] = [
        Fault::ResetAfterConnect,
        Fault::ResetAfterSubscribe,
        Fault::ResetAfterRegister,
        Fault::ConnackUnavailable,
        Fault::ReplyDelay,
        Fault::DropReply,
        Fault::ServerError,
        Fault::Throttle,
        Fault::MalformedReply,
        Fault::TlsStall,
        Fault::Outage,
        Fault::ConnectionCap,
    ];

    /// The stable key it is counted under: the `[faults]` field's name.
    pub fn label(self) -> &'static str {
        match self {
            Fault::ResetAfterConnect => "reset_after_connect",
            Fault::ResetAfterSubscribe => "reset_after_subscribe",
            Fault::ResetAfterRegister => "reset_after_register",
            Fault::ConnackUnavailable => "connack_unavailable",
            Fault::ReplyDelay => "reply_delay",
            Fault::DropReply => "drop_reply",
            Fault::ServerError => "server_error",
            Fault::Throttle => "throttle",
            Fault::MalformedReply => "malformed_reply",
            Fault::TlsStall => "tls_stall",
            Fault::Outage => "outage",
            Fault::ConnectionCap => "connection_cap",
        }
    }
}

/// The listener closes at `at` after the start, every connection drops, and it comes back after
/// `length`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    pub at: Duration,
    pub length: Duration,
}

/// Validated faults; the default injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub seed: u64,
    probabilities: BTreeMap<Fault, Probability>,
    /// Each reply delayed uniformly within `[min, max]`.
    pub reply_delay: Option<(Duration, Duration)>,
    pub outage: Option<Outage>,
    /// Held from the start until [`Injector::arm`]: the embedded emulator of a run, whose
    /// preflight must neither meet a fault nor use one up (an outage counts from the arming).
    pub held: bool,
}

impl Faults {
    /// The probability configured for `fault` (0 when absent).
    pub fn probability(&self, fault: Fault) -> f64 {
        self.probabilities.get(&fault).map_or(0.0, |p| p.get())
    }

    /// Sets `fault` to strike with probability `p` (tests and builders).
    pub fn with(mut self, fault: Fault, p: Probability) -> Self {
        self.probabilities.insert(fault, p);
        self
    }
}

impl FaultsSection {
    /// Validates every field; errors name it as the table spells it.
    pub fn resolve(&self) -> Result<Faults, FaultError> {
        let mut faults = Faults { seed: self.seed.unwrap_or(0), ..Faults::default() };
        let fields = [
            (Fault::ResetAfterConnect, self.reset_after_connect),
            (Fault::ResetAfterSubscribe, self.reset_after_subscribe),
            (Fault::ResetAfterRegister, self.reset_after_register),
            (Fault::ConnackUnavailable, self.connack_unavailable),
            (Fault::DropReply, self.drop_reply),
            (Fault::ServerError, self.server_error),
            (Fault::Throttle, self.throttle),
            (Fault::MalformedReply, self.malformed_reply),
            (Fault::TlsStall, self.tls_stall),
        ];
        for (fault, value) in fields {
            if let Some(value) = value {
                let p = Probability::new(value).ok_or_else(|| FaultError {
                    field: fault.label(),
                    reason: format!("{value} is not a probability between 0 and 1"),
                })?;
                faults.probabilities.insert(fault, p);
            }
        }
        if let Some([min, max]) = self.reply_delay_ms {
            if min > max || max > 600_000 {
                return Err(FaultError {
                    field: "reply_delay_ms",
                    reason: format!("[{min}, {max}] must be [min, max] with min <= max <= 600000"),
                });
            }
            faults.reply_delay = Some((Duration::from_millis(min), Duration::from_millis(max)));
        }
        if let Some(OutageSection { at_seconds, for_seconds }) = self.outage {
            let valid = |s: f64| s.is_finite() && (0.0..=86_400.0).contains(&s);
            if !valid(at_seconds) || !valid(for_seconds) {
                return Err(FaultError {
                    field: "outage",
                    reason: format!(
                        "at_seconds = {at_seconds}, for_seconds = {for_seconds}: each must be 0 to 86400 seconds"
                    ),
                });
            }
            faults.outage =
                Some(Outage { at: Duration::from_secs_f64(at_seconds), length: Duration::from_secs_f64(for_seconds) });
        }
        Ok(faults)
    }
}

/// How a malformed reply is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A 202 whose body is not JSON.
    InvalidJson,
    /// Half of the reply's PUBLISH, then the connection closes.
    Truncated,
    /// The reply topic carries a `$rid` the device never sent.
    WrongRid,
    /// A status DPS never sends.
    UnknownStatus,
}

impl Malformed {
    /// The status DPS never sends that [`Malformed::UnknownStatus`] replies with.
    pub const UNKNOWN_STATUS: u16 = 299;
}

/// What happens to one request's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    /// PUBACK, then no reply.
    DropReply,
    /// 500 or 503 with an error body and `retry-after`.
    ServerError(u16),
    /// 429 with `retry-after`, whatever the quota says.
    Throttle,
    Malformed(Malformed),
}

/// Counts of the faults injected, by [`Fault`].
#[derive(Debug, Default)]
pub struct FaultCounts([AtomicU64; Fault::ALL.len()]);

impl FaultCounts {
    pub fn add(&self, fault: Fault) {
        self.0[fault as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, fault: Fault) -> u64 {
        self.0[fault as usize].load(Ordering::Relaxed)
    }

    /// Every fault injected at least once, by label.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        Fault::ALL.iter().map(|&f| (f.label().to_string(), self.get(f))).filter(|(_, count)| *count > 0).collect()
    }

    /// All faults injected.
    pub fn total(&self) -> u64 {
        Fault::ALL.iter().map(|&f| self.get(f)).sum()
    }
}

/// Draws faults from the seeded generator and counts those it injects.
#[derive(Debug)]
pub struct Injector {
    faults: Faults,
    rng: Mutex<SmallRng>,
    /// Off, nothing strikes and nothing is drawn: held while a run's preflight device connects,
    /// so the check of the user's setup neither meets a fault nor uses one up.
    armed: std::sync::atomic::AtomicBool,
    /// Told when the faults are armed: an `outage` counts its `at_seconds` from then.
    armed_now: tokio::sync::Notify,
    pub counts: FaultCounts,
}

impl Injector {
    pub fn new(faults: Faults) -> Self {
        let rng = Mutex::new(SmallRng::seed_from_u64(faults.seed));
        let armed = (!faults.held).into();
        Self { faults, rng, armed, armed_now: tokio::sync::Notify::new(), counts: FaultCounts::default() }
    }

    /// Holds every fault (none strikes) until [`Injector::arm`].
    pub fn hold(&self) {
        self.armed.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::Relaxed);
        self.armed_now.notify_waiters();
    }

    /// Returns once the faults are armed (at once when they are).
    pub async fn armed_wait(&self) {
        loop {
            // Made before the check: a notification between the two is not lost.
            let notified = self.armed_now.notified();
            if self.armed() {
                return;
            }
            notified.await;
        }
    }

    fn armed(&self) -> bool {
        self.armed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    fn draw<T>(&self, draw: impl FnOnce(&mut SmallRng) -> T) -> T {
        draw(&mut self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Whether `fault` strikes now (counted when it does). A fault not configured draws nothing,
    /// so adding one fault does not reshuffle the others' draws.
    pub fn strikes(&self, fault: Fault) -> bool {
        let p = self.faults.probability(fault);
        let strikes = p > 0.0 && self.armed() && self.draw(|rng| rng.random_bool(p));
        if strikes {
            self.counts.add(fault);
        }
        strikes
    }

    /// How long to hold this reply back, if `reply_delay_ms` is set (counted when non-zero).
    pub fn reply_delay(&self) -> Option<Duration> {
        let (min, max) = self.faults.reply_delay.filter(|_| self.armed())?;
        let delay = self.draw(|rng| rng.random_range(min..=max));
        (!delay.is_zero()).then(|| {
            self.counts.add(Fault::ReplyDelay);
            delay
        })
    }

    /// What happens to this request's reply: the first fault that strikes, in table order.
    pub fn request_fault(&self) -> Option<RequestFault> {
        if self.strikes(Fault::DropReply) {
            return Some(RequestFault::DropReply);
        }
        if self.strikes(Fault::ServerError) {
            return Some(RequestFault::ServerError(if self.draw(|rng| rng.random_bool(0.5)) { 500 } else { 503 }));
        }
        if self.strikes(Fault::Throttle) {
            return Some(RequestFault::Throttle);
        }
        if self.strikes(Fault::MalformedReply) {
            let kinds = [Malformed::InvalidJson, Malformed::Truncated, Malformed::WrongRid, Malformed::UnknownStatus];
            return Some(RequestFault::Malformed(kinds[self.draw(|rng| rng.random_range(0..kinds.len()))]));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml: &str) -> Result<Faults, String> {
        let section: FaultsSection = toml::from_str(toml).map_err(|e| e.to_string())?;
        section.resolve().map_err(|e| e.to_string())
    }

    #[test]
    fn every_field_is_optional_and_the_default_injects_nothing() {
        let faults = section("").unwrap();
        assert_eq!(faults, Faults::default());
        let injector = Injector::new(faults);
        for fault in Fault::ALL {
            assert!(!injector.strikes(fault), "{fault:?}");
        }
        assert_eq!((injector.request_fault(), injector.reply_delay()), (None, None));
        assert_eq!(injector.counts.total(), 0);
    }

    #[test]
    fn fields_are_checked_and_errors_name_them() {
        assert_eq!(
            section("throttle = 1.5").unwrap_err(),
            "field `throttle`: 1.5 is not a probability between 0 and 1"
        );
        assert!(section("drop_reply = -0.1").unwrap_err().starts_with("field `drop_reply`"));
        assert!(section("reply_delay_ms = [10, 5]").unwrap_err().starts_with("field `reply_delay_ms`"));
        assert!(
            section("outage = { at_seconds = -1.0, for_seconds = 1.0 }").unwrap_err().starts_with("field `outage`")
        );
        assert!(section("no_such_fault = 1.0").unwrap_err().contains("no_such_fault"));
        let faults = section(
            "seed = 7\nthrottle = 0.25\nreply_delay_ms = [5, 10]\noutage = { at_seconds = 1.5, for_seconds = 2.0 }",
        )
        .unwrap();
        assert_eq!((faults.seed, faults.probability(Fault::Throttle)), (7, 0.25));
        assert_eq!(faults.reply_delay, Some((Duration::from_millis(5), Duration::from_millis(10))));
        assert_eq!(faults.outage, Some(Outage { at: Duration::from_millis(1500), length: Duration::from_secs(2) }));
    }

    #[test]
    fn draws_are_reproducible_from_the_seed_and_counted() {
        let faults = section("seed = 3\nserver_error = 0.5\nmalformed_reply = 0.5\nreply_delay_ms = [1, 9]").unwrap();
        let draws = |injector: &Injector| {
            (0..200).map(|_| (injector.request_fault(), injector.reply_delay())).collect::<Vec<_>>()
        };
        let (first, second) = (Injector::new(faults.clone()), Injector::new(faults));
        let drawn = draws(&first);
        assert_eq!(drawn, draws(&second));
        let errors = drawn.iter().filter(|(f, _)| matches!(f, Some(RequestFault::ServerError(_)))).count() as u64;
        let malformed = drawn.iter().filter(|(f, _)| matches!(f, Some(RequestFault::Malformed(_)))).count() as u64;
        // Half strike a server error; half of the rest a malformed reply.
        assert!((70..=130).contains(&errors), "{errors}");
        assert!((25..=75).contains(&malformed), "{malformed}");
        assert_eq!(first.counts.get(Fault::ServerError), errors);
        assert_eq!(first.counts.get(Fault::MalformedReply), malformed);
        assert!(drawn.iter().all(|(_, d)| d.is_some_and(|d| (1..=9).contains(&d.as_millis()))));
        assert_eq!(first.counts.get(Fault::ReplyDelay), 200);
        assert!(drawn.iter().any(|(f, _)| matches!(f, Some(RequestFault::ServerError(500)))));
        assert!(drawn.iter().any(|(f, _)| matches!(f, Some(RequestFault::ServerError(503)))));
    }

    #[tokio::test]
    async fn waiting_for_the_arming_ends_when_armed() {
        let injector = std::sync::Arc::new(Injector::new(Faults::default()));
        injector.armed_wait().await;
        injector.hold();
        let waiter = tokio::spawn({
            let injector = injector.clone();
            async move { injector.armed_wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "held: still waiting");
        injector.arm();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("armed: done").unwrap();
    }

    #[test]
    fn a_held_injector_strikes_nothing_and_draws_nothing() {
        let faults =
            section("seed = 3\nserver_error = 0.5\nreset_after_connect = 1.0\nreply_delay_ms = [1, 9]").unwrap();
        let (held, fresh) = (Injector::new(faults.clone()), Injector::new(faults));
        held.hold();
        assert!((0..20).all(|_| held.request_fault().is_none() && held.reply_delay().is_none()));
        assert!(!held.strikes(Fault::ResetAfterConnect));
        assert_eq!(held.counts.total(), 0);
        held.arm();
        // Nothing was drawn while held: armed, it draws what a fresh one draws.
        let draws = |i: &Injector| (0..50).map(|_| (i.request_fault(), i.reply_delay())).collect::<Vec<_>>();
        assert_eq!(draws(&held), draws(&fresh));
    }

    #[test]
    fn certain_faults_always_strike_and_snapshot_by_label() {
        let injector = Injector::new(Faults::default().with(Fault::DropReply, Probability::new(1.0).unwrap()));
        assert!((0..10).all(|_| injector.request_fault() == Some(RequestFault::DropReply)));
        assert_eq!(injector.counts.snapshot(), BTreeMap::from([("drop_reply".to_string(), 10)]));
    }
}
