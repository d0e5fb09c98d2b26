//! Whether the target is answering: how many devices wait on it right now and when it last
//! answered any of them, shared by a run's devices, so the runner can tell a target that stopped
//! answering (and then woke every waiting device at once) from a generator that fell behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Devices waiting on the target and the instant of its last answer (a finished TLS handshake or
/// an MQTT packet; not a TCP connect, which the kernel accepts for a server standing still), for
/// every device of a run. Two relaxed atomic updates a
/// wait and one store an answer.
#[derive(Debug)]
pub struct TargetWatch {
    origin: Instant,
    awaiting: AtomicU64,
    /// Microseconds from `origin` to the last answer.
    last_answer_us: AtomicU64,
    /// Microseconds from `origin` to when a device began to wait while none did: a silence
    /// counts from the later of this and the last answer.
    waiting_since_us: AtomicU64,
}

impl TargetWatch {
    pub fn new() -> Self {
        Self {
            origin: super::clock::now(),
            awaiting: AtomicU64::new(0),
            last_answer_us: AtomicU64::new(0),
            waiting_since_us: AtomicU64::new(0),
        }
    }

    /// Counts one device as waiting on the target until the guard drops (whatever ends the
    /// wait: an answer, a timeout, an abort).
    pub fn awaiting(&self) -> Awaiting<'_> {
        if self.awaiting.fetch_add(1, Ordering::Relaxed) == 0 {
            self.waiting_since_us.store(self.micros(super::clock::now()), Ordering::Relaxed);
        }
        Awaiting(self)
    }

    /// The target answered a device at `at`.
    pub fn answered(&self, at: Instant) {
        self.last_answer_us.fetch_max(self.micros(at), Ordering::Relaxed);
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// When the target last answered, or the watch's start when it never did.
    pub fn last_answer(&self) -> Instant {
        self.origin + Duration::from_micros(self.last_answer_us.load(Ordering::Relaxed))
    }

    /// How long devices have waited with no answer from the target at `now`, counted from the
    /// later of its last answer and the instant devices began to wait (a first wait after a
    /// quiet spell is no silence yet): `None` when no device waits on it.
    pub fn silence(&self, now: Instant) -> Option<Duration> {
        (self.awaiting.load(Ordering::Relaxed) > 0).then(|| {
            let since = self.last_answer_us.load(Ordering::Relaxed).max(self.waiting_since_us.load(Ordering::Relaxed));
            now.saturating_duration_since(self.origin + Duration::from_micros(since))
        })
    }
}

impl Default for TargetWatch {
    fn default() -> Self {
        Self::new()
    }
}

/// One device waiting on the target (see [`TargetWatch::awaiting`]).
#[must_use = "the device counts as waiting only while the guard lives"]
pub struct Awaiting<'a>(&'a TargetWatch);

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.0.awaiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_only_while_a_device_waits() {
        let watch = TargetWatch::new();
        let later = watch.origin + Duration::from_millis(500);
        assert_eq!(watch.silence(later), None, "nobody waits");
        let waiting = watch.awaiting();
        assert!(watch.silence(later).unwrap() <= Duration::from_millis(500));
        watch.answered(watch.origin + Duration::from_millis(450));
        assert_eq!(watch.silence(later), Some(Duration::from_millis(50)));
        watch.answered(watch.origin + Duration::from_millis(400));
        assert_eq!(
            watch.silence(later),
            Some(Duration::from_millis(50)),
            "an older answer reported late changes nothing"
        );
        drop(waiting);
        assert_eq!(watch.silence(later), None, "the guard ended the wait");
    }

    #[test]
    fn a_first_wait_after_a_quiet_spell_is_no_silence() {
        let watch = TargetWatch::new();
        watch.answered(watch.origin);
        // Nobody waited for a while (a shard waiting for --start-at, devices in retry-after).
        std::thread::sleep(Duration::from_millis(30));
        let _waiting = watch.awaiting();
        let silence = watch.silence(super::super::clock::now()).unwrap();
        assert!(silence < Duration::from_millis(20), "the silence counts from the wait: {silence:?}");
    }
}
