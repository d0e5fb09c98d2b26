//! Retry and wait policies: how long a device waits before its next request, and when it gives
//! up. Ready-made profiles mirror the SDKs' behaviour (`docs/dps-mqtt.md` §5),
//! so a capacity test can say "a fleet of C-SDK devices".
//!
//! Pure functions of the reply's `retry-after`, the retry count and a jitter draw in `[0, 1)`.

use std::time::Duration;

/// Whose retry behaviour a device mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryProfile {
    /// dpsbench's own: honour `retry-after`; exponential backoff with jitter when it is absent;
    /// bounded retries.
    #[default]
    Dpsbench,
    /// Python `azure-iot-device`: 2 s default, unbounded 429/5xx retries, and a fixed 2 s before
    /// the first poll whatever `retry-after` said.
    Python,
    /// Node: 2 s default, unbounded 429/5xx retries.
    Node,
    /// azure-iot-sdk-c: `retry-after` below 1 s or above 300 s becomes 1 s; 1 s default.
    C,
    /// C# v1: waits at least 2 s (default 2 s plus up to 5 s jitter); a 429 or 5xx goes to the
    /// application as an error: no automatic retry.
    Csharp,
    /// azure-sdk-for-c / FreeRTOS middleware: an error body is final; 3 s default poll interval.
    EmbeddedC,
}

/// What to do after a retryable error (429, 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Wait(Duration),
    GiveUp,
}

/// How a device waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub profile: RetryProfile,
    /// Retries of one request after 429/5xx; `None` retries until the flow's deadline.
    pub max_retries: Option<u32>,
    /// Wait when a reply carries no usable `retry-after`.
    pub default_wait: Duration,
    /// Extra random wait, up to this, added to `default_wait` (C#'s jitter).
    pub default_jitter: Duration,
    /// Waits are never shorter than this.
    pub min_wait: Duration,
    /// `retry-after` values outside this range (seconds) are replaced by 1 s (the C SDK).
    pub clamp_to_one_outside: Option<(u32, u32)>,
    /// The first poll after register waits exactly this, ignoring `retry-after` (Python).
    pub first_poll_wait: Option<Duration>,
    /// A 429/5xx ends the flow (embedded C, C#).
    pub error_is_final: bool,
    /// When `retry-after` is absent on an error: exponential backoff from `default_wait`, capped
    /// here, with full jitter.
    pub backoff_cap: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::profile(RetryProfile::Dpsbench)
    }
}

impl RetryPolicy {
    pub fn profile(profile: RetryProfile) -> Self {
        let base = Self {
            profile,
            max_retries: None,
            default_wait: Duration::from_secs(2),
            default_jitter: Duration::ZERO,
            min_wait: Duration::ZERO,
            clamp_to_one_outside: None,
            first_poll_wait: None,
            error_is_final: false,
            backoff_cap: None,
        };
        match profile {
            RetryProfile::Dpsbench => Self { max_retries: Some(5), backoff_cap: Some(Duration::from_secs(60)), ..base },
            RetryProfile::Python => Self { first_poll_wait: Some(Duration::from_secs(2)), ..base },
            RetryProfile::Node => base,
            RetryProfile::C => {
                Self { default_wait: Duration::from_secs(1), clamp_to_one_outside: Some((1, 300)), ..base }
            }
            RetryProfile::Csharp => Self {
                default_jitter: Duration::from_secs(5),
                min_wait: Duration::from_secs(2),
                error_is_final: true,
                ..base
            },
            RetryProfile::EmbeddedC => Self { default_wait: Duration::from_secs(3), error_is_final: true, ..base },
        }
    }

    /// The wait a `retry-after` asks for, after this profile's clamping; `None` when absent or
    /// empty.
    fn told(&self, retry_after: Option<Option<u32>>) -> Option<Duration> {
        let seconds = retry_after.flatten()?;
        match self.clamp_to_one_outside {
            Some((low, high)) if seconds < low || seconds > high => Some(Duration::from_secs(1)),
            _ => Some(Duration::from_secs(seconds.into())),
        }
    }

    fn default_with_jitter(&self, jitter: f64) -> Duration {
        self.default_wait + self.default_jitter.mul_f64(jitter)
    }

    /// Wait before polling after an `assigning` reply.
    pub fn poll_wait(&self, retry_after: Option<Option<u32>>, first_poll: bool, jitter: f64) -> Duration {
        if first_poll && let Some(wait) = self.first_poll_wait {
            return wait;
        }
        let wait = self.told(retry_after).unwrap_or_else(|| self.default_with_jitter(jitter));
        wait.max(self.min_wait)
    }

    /// What to do after the `retries`-th consecutive 429/5xx of one request (0-based).
    pub fn after_error(&self, retry_after: Option<Option<u32>>, retries: u32, jitter: f64) -> Decision {
        if self.error_is_final || self.max_retries.is_some_and(|max| retries >= max) {
            return Decision::GiveUp;
        }
        let wait = match (self.told(retry_after), self.backoff_cap) {
            (Some(told), _) => told,
            (None, Some(cap)) => {
                let ceiling = self.default_wait.saturating_mul(1u32 << retries.min(16)).min(cap);
                ceiling.mul_f64(jitter.clamp(0.0, 1.0)).max(Duration::from_millis(100))
            }
            (None, None) => self.default_with_jitter(jitter),
        };
        Decision::Wait(wait.max(self.min_wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn dpsbench_honours_retry_after_and_backs_off_without_it() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.poll_wait(Some(Some(3)), true, 0.5), S(3));
        assert_eq!(policy.poll_wait(Some(Some(0)), false, 0.5), S(0));
        assert_eq!(policy.poll_wait(None, false, 0.5), S(2));
        assert_eq!(policy.after_error(Some(Some(7)), 0, 0.9), Decision::Wait(S(7)));
        // Full jitter under a doubling ceiling: 2 s, 4 s, 8 s ... capped at 60 s.
        assert_eq!(policy.after_error(None, 2, 1.0), Decision::Wait(S(8)));
        assert_eq!(policy.after_error(None, 4, 0.5), Decision::Wait(S(16)));
        assert_eq!(policy.after_error(None, 4, 1.0), Decision::Wait(S(32)));
        assert_eq!(RetryPolicy { max_retries: Some(9), ..policy }.after_error(None, 8, 1.0), Decision::Wait(S(60)));
        assert_eq!(policy.after_error(Some(Some(1)), 5, 0.0), Decision::GiveUp);
    }

    #[test]
    fn python_waits_two_seconds_before_its_first_poll() {
        let policy = RetryPolicy::profile(RetryProfile::Python);
        assert_eq!(policy.poll_wait(Some(Some(3)), true, 0.0), S(2));
        assert_eq!(policy.poll_wait(Some(Some(3)), false, 0.0), S(3));
        assert_eq!(policy.after_error(None, 1_000, 0.0), Decision::Wait(S(2)), "retries without limit");
    }

    #[test]
    fn c_clamps_out_of_range_retry_after_to_one_second() {
        let policy = RetryPolicy::profile(RetryProfile::C);
        assert_eq!(policy.poll_wait(Some(Some(0)), false, 0.0), S(1));
        assert_eq!(policy.poll_wait(Some(Some(301)), false, 0.0), S(1));
        assert_eq!(policy.poll_wait(Some(Some(300)), false, 0.0), S(300));
        assert_eq!(policy.after_error(None, 50, 0.0), Decision::Wait(S(1)));
    }

    #[test]
    fn csharp_waits_at_least_two_seconds_and_does_not_retry_errors() {
        let policy = RetryPolicy::profile(RetryProfile::Csharp);
        assert_eq!(policy.poll_wait(Some(Some(0)), false, 0.0), S(2));
        assert_eq!(policy.poll_wait(None, false, 0.5), Duration::from_millis(4500));
        assert_eq!(policy.after_error(Some(Some(3)), 0, 0.0), Decision::GiveUp);
    }

    #[test]
    fn embedded_c_treats_an_error_body_as_final() {
        let policy = RetryPolicy::profile(RetryProfile::EmbeddedC);
        assert_eq!(policy.after_error(Some(Some(1)), 0, 0.0), Decision::GiveUp);
        assert_eq!(policy.poll_wait(None, false, 0.0), S(3));
    }
}
