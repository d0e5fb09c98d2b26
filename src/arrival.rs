//! Arrival plans: **when** devices start. Separate from the device flow (what) and the stop
//! condition (until); the runner composes the three.
//!
//! Sans-IO: an [`Arrivals`] iterator yields each device's intended start as an offset from the
//! run's start, never decreasing. Stochastic plans take a seed, so a run can be repeated. Each
//! start is generated when it is asked for, in constant memory whatever the plan's size (a
//! burst included): a plan of ten million devices costs nothing until its devices start.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Errors in an arrival plan; variants carry the offending text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArrivalError {
    #[error("stage {0:?} is not DURATION:RATE/s or DURATION:FROM->TO/s (e.g. \"30s:0->500/s\", \"2m:500/s\")")]
    BadStage(String),
    /// The rate, and whether 0 was allowed where it was given (a stage may start or end at 0).
    #[error("rate {0} per second is out of range: {range}", range = rate_range(*.1))]
    BadRate(f64, bool),
    #[error("the plan starts no device: every stage has rate 0")]
    Empty,
}

/// One stage of a staged plan: the rate moves linearly from `from` to `to` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

impl Stage {
    /// Parses `30s:0->500/s` (ramp) or `2m:500/s` (hold). Units: `ms`, `s`, `m`, `h`.
    pub fn parse(text: &str) -> Result<Self, ArrivalError> {
        let bad = || ArrivalError::BadStage(text.to_string());
        let (duration, rate) = text.trim().split_once(':').ok_or_else(bad)?;
        let duration = parse_duration(duration.trim()).ok_or_else(bad)?;
        let rate = rate.trim().strip_suffix("/s").ok_or_else(bad)?;
        let (from, to) = match rate.split_once("->") {
            Some((from, to)) => (from.trim().parse().map_err(|_| bad())?, to.trim().parse().map_err(|_| bad())?),
            None => {
                let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
                (rate, rate)
            }
        };
        for rate in [from, to] {
            check_rate(rate, true)?;
        }
        if duration.is_zero() {
            return Err(bad());
        }
        Ok(Self { duration, from, to })
    }

    /// Devices this stage starts (the area under its rate).
    fn devices(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.duration.as_secs_f64()
    }

    /// Seconds into the stage at which `n` devices have been started (`0 <= n <= devices()`).
    fn time_of(&self, n: f64) -> f64 {
        let d = self.duration.as_secs_f64();
        let slope = (self.to - self.from) / d;
        if slope.abs() < 1e-12 {
            return n / self.from;
        }
        // n = from*t + slope*t^2/2, solved for the root in [0, d].
        let disc = (self.from * self.from + 2.0 * slope * n).max(0.0);
        ((disc.sqrt() - self.from) / slope).clamp(0.0, d)
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn check_rate(rate: f64, zero_ok: bool) -> Result<(), ArrivalError> {
    let ok = rate.is_finite() && rate <= 1_000_000.0 && (rate > 0.0 || (zero_ok && rate == 0.0));
    if ok { Ok(()) } else { Err(ArrivalError::BadRate(rate, zero_ok)) }
}

fn rate_range(zero_ok: bool) -> &'static str {
    if zero_ok { "use 0 to 1,000,000" } else { "use more than 0 and at most 1,000,000" }
}

/// An open arrival plan.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalPlan {
    /// Evenly spaced starts at `rate` per second.
    Constant { rate: f64 },
    /// Piecewise-linear rate: ramp up, hold, ramp down.
    Stages(Vec<Stage>),
    /// Exponentially distributed gaps with mean `1/rate`.
    Poisson { rate: f64, seed: u64 },
    /// "Power restored": `devices` starts at uniformly random instants within `within`.
    Burst { devices: u64, within: Duration, seed: u64 },
}

impl ArrivalPlan {
    pub fn constant(rate: f64) -> Result<Self, ArrivalError> {
        check_rate(rate, false)?;
        Ok(Self::Constant { rate })
    }

    pub fn stages(stages: Vec<Stage>) -> Result<Self, ArrivalError> {
        if stages.iter().all(|s| s.devices() < 1.0) {
            return Err(ArrivalError::Empty);
        }
        Ok(Self::Stages(stages))
    }

    pub fn poisson(rate: f64, seed: u64) -> Result<Self, ArrivalError> {
        check_rate(rate, false)?;
        Ok(Self::Poisson { rate, seed })
    }

    /// Devices the plan starts by itself (`None` when it goes on forever).
    pub fn natural_count(&self) -> Option<u64> {
        match self {
            Self::Constant { .. } | Self::Poisson { .. } => None,
            Self::Stages(stages) => Some(stages.iter().map(Stage::devices).sum::<f64>().floor() as u64),
            Self::Burst { devices, .. } => Some(*devices),
        }
    }

    /// The plan's length (`None` when it goes on forever).
    pub fn natural_duration(&self) -> Option<Duration> {
        match self {
            Self::Constant { .. } | Self::Poisson { .. } => None,
            Self::Stages(stages) => Some(stages.iter().map(|s| s.duration).sum()),
            Self::Burst { within, .. } => Some(*within),
        }
    }

    /// Offered rate at the plan's peak, for sizing checks.
    pub fn peak_rate(&self) -> f64 {
        match self {
            Self::Constant { rate } | Self::Poisson { rate, .. } => *rate,
            Self::Stages(stages) => stages.iter().map(|s| s.from.max(s.to)).fold(0.0, f64::max),
            Self::Burst { devices, within, .. } => *devices as f64 / within.as_secs_f64().max(1e-3),
        }
    }

    /// How many starts the plan has due before `elapsed`, on average (exact for constant and
    /// staged plans, the expected count for Poisson and burst plans).
    pub fn expected_by(&self, elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        match self {
            // Start n is due at n / rate: those with n < rate * t.
            Self::Constant { rate } => (rate * t).ceil(),
            // The first at 0, then `rate` a second.
            Self::Poisson { rate, .. } => 1.0 + rate * t,
            Self::Stages(stages) => {
                let (mut devices, mut left) = (0.0, t);
                for stage in stages {
                    let d = stage.duration.as_secs_f64();
                    if left >= d {
                        devices += stage.devices();
                        left -= d;
                        continue;
                    }
                    devices += stage.from * left + (stage.to - stage.from) / d * left * left / 2.0;
                    break;
                }
                devices.ceil().min(self.natural_count().unwrap_or(u64::MAX) as f64)
            }
            Self::Burst { devices, within, .. } => *devices as f64 * (t / within.as_secs_f64().max(1e-9)).min(1.0),
        }
    }

    pub fn arrivals(&self) -> Arrivals {
        let seed = match self {
            Self::Poisson { seed, .. } | Self::Burst { seed, .. } => *seed,
            _ => 0,
        };
        Arrivals { plan: self.clone(), n: 0, last: 0.0, rng: StdRng::seed_from_u64(seed) }
    }
}

/// The intended start offsets of a plan, in order.
#[derive(Debug)]
pub struct Arrivals {
    plan: ArrivalPlan,
    n: u64,
    /// Poisson: the last start, in seconds. Burst: `ln(1 - u)` of the last uniform drawn.
    last: f64,
    rng: StdRng,
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let n = self.n;
        let seconds = match &self.plan {
            ArrivalPlan::Constant { rate } => n as f64 / rate,
            ArrivalPlan::Poisson { rate, .. } => {
                if n > 0 {
                    // Inverse-CDF sampling of an exponential gap; 1 - u is in (0, 1].
                    let u: f64 = self.rng.random();
                    self.last += -(1.0 - u).ln() / rate;
                }
                self.last
            }
            ArrivalPlan::Stages(stages) => {
                let mut before = 0.0;
                let mut elapsed = 0.0;
                let mut found = None;
                for stage in stages {
                    let here = stage.devices();
                    if (n as f64) < before + here {
                        found = Some(elapsed + stage.time_of(n as f64 - before));
                        break;
                    }
                    before += here;
                    elapsed += stage.duration.as_secs_f64();
                }
                found?
            }
            ArrivalPlan::Burst { devices, within, .. } => {
                // The uniform instants in ascending order, one at a time (no sorted list of
                // them all): after k of the `devices` uniforms, the rest are uniform above the
                // last, so the gap to 1 shrinks by the smallest of `devices - k` uniforms,
                // V^(1/(devices - k)); kept in log space so ten million steps lose no precision.
                let left = devices.checked_sub(n).filter(|left| *left > 0)?;
                let v = 1.0 - self.rng.random::<f64>();
                self.last += v.ln() / left as f64;
                -self.last.exp_m1() * within.as_secs_f64()
            }
        };
        self.n += 1;
        Some(Duration::from_secs_f64(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn constant_is_evenly_spaced() {
        let starts: Vec<f64> = ArrivalPlan::constant(4.0).unwrap().arrivals().take(5).map(secs).collect();
        assert_eq!(starts, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn stages_parse_and_follow_the_ramp() {
        assert_eq!(
            Stage::parse("30s:0->500/s").unwrap(),
            Stage { duration: Duration::from_secs(30), from: 0.0, to: 500.0 }
        );
        assert_eq!(
            Stage::parse("2m:500/s").unwrap(),
            Stage { duration: Duration::from_secs(120), from: 500.0, to: 500.0 }
        );
        for bad in ["30s", "30x:5/s", "30s:5", "0s:5/s", "1s:-5/s", "1s:a->b/s"] {
            assert!(Stage::parse(bad).is_err(), "{bad}");
        }
        let plan = ArrivalPlan::stages(
            ["10s:0->100/s", "10s:100/s", "10s:100->0/s"].iter().map(|s| Stage::parse(s).unwrap()).collect(),
        )
        .unwrap();
        // 500 + 1000 + 500 devices over 30 s.
        assert_eq!(plan.natural_count(), Some(2000));
        let starts: Vec<f64> = plan.arrivals().map(secs).collect();
        assert_eq!(starts.len(), 2000);
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "never decreasing");
        // During the ramp the rate is half its peak at 5 s: 125 devices started by then.
        let by_5s = starts.iter().filter(|t| **t < 5.0).count();
        assert!((124..=126).contains(&by_5s), "{by_5s}");
        let hold = starts.iter().filter(|t| (10.0..20.0).contains(*t)).count();
        assert!((999..=1001).contains(&hold), "{hold}");
        assert!(*starts.last().unwrap() <= 30.0);
    }

    #[test]
    fn a_plan_of_zero_rates_is_refused() {
        assert_eq!(ArrivalPlan::stages(vec![Stage::parse("10s:0/s").unwrap()]), Err(ArrivalError::Empty));
        assert!(ArrivalPlan::constant(0.0).is_err());
        assert!(ArrivalPlan::poisson(f64::NAN, 1).is_err());
    }

    #[test]
    fn poisson_has_the_right_mean_and_is_reproducible() {
        let plan = ArrivalPlan::poisson(1000.0, 42).unwrap();
        let starts: Vec<Duration> = plan.arrivals().take(20_001).collect();
        let mean_gap = secs(*starts.last().unwrap()) / 20_000.0;
        assert!((0.00095..0.00105).contains(&mean_gap), "{mean_gap}");
        assert_eq!(starts[..100], plan.arrivals().take(100).collect::<Vec<_>>()[..]);
        assert_ne!(
            starts[..100],
            ArrivalPlan::poisson(1000.0, 43).unwrap().arrivals().take(100).collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn burst_starts_everyone_within_the_window() {
        let plan = ArrivalPlan::Burst { devices: 1000, within: Duration::from_secs(10), seed: 7 };
        let starts: Vec<f64> = plan.arrivals().map(secs).collect();
        assert_eq!(starts.len(), 1000);
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
        assert!(starts.iter().all(|t| (0.0..10.0).contains(t)));
        let first_half = starts.iter().filter(|t| **t < 5.0).count();
        assert!((400..600).contains(&first_half), "{first_half}");
        assert_eq!(starts, plan.arrivals().map(secs).collect::<Vec<_>>(), "the seed repeats the burst");
        let other = ArrivalPlan::Burst { devices: 1000, within: Duration::from_secs(10), seed: 8 };
        assert_ne!(starts, other.arrivals().map(secs).collect::<Vec<_>>());
    }

    #[test]
    fn burst_instants_are_uniform_over_the_window() {
        // 100,000 uniform instants over 10 s: each second holds 10,000 of them, give or take a
        // few standard deviations (about 95 each).
        let plan = ArrivalPlan::Burst { devices: 100_000, within: Duration::from_secs(10), seed: 3 };
        let mut per_second = [0u32; 10];
        let mut count = 0;
        for at in plan.arrivals() {
            per_second[at.as_secs() as usize] += 1;
            count += 1;
        }
        assert_eq!(count, 100_000);
        assert!(per_second.iter().all(|n| (9_600..10_400).contains(n)), "{per_second:?}");
    }

    #[test]
    fn a_burst_of_any_size_yields_its_first_starts_at_once() {
        // Generated one at a time: a trillion-device burst costs what its first starts cost.
        let plan = ArrivalPlan::Burst { devices: 1 << 40, within: Duration::from_secs(3600), seed: 5 };
        let first: Vec<Duration> = plan.arrivals().take(1000).collect();
        assert!(first.windows(2).all(|w| w[0] <= w[1]));
        assert!(first[999] < Duration::from_millis(1), "the first thousand of 2^40 fall in the first instant");
    }

    #[test]
    fn the_expected_starts_by_an_instant_match_the_plans_arrivals() {
        let stages = ["10s:0->100/s", "10s:100/s", "10s:100->0/s"].iter().map(|s| Stage::parse(s).unwrap()).collect();
        let plans = [
            ArrivalPlan::constant(50.0).unwrap(),
            ArrivalPlan::constant(3.3).unwrap(),
            ArrivalPlan::stages(stages).unwrap(),
            ArrivalPlan::poisson(400.0, 17).unwrap(),
            ArrivalPlan::Burst { devices: 20_000, within: Duration::from_secs(20), seed: 9 },
        ];
        for plan in &plans {
            for seconds in [0.5, 4.0, 15.0, 25.0, 40.0] {
                let by = Duration::from_secs_f64(seconds);
                let actual = plan.arrivals().take(100_000).take_while(|at| *at < by).count() as f64;
                let expected = plan.expected_by(by);
                let exact = matches!(plan, ArrivalPlan::Constant { .. } | ArrivalPlan::Stages(_));
                // Random plans: within four standard deviations of a Poisson count.
                let tolerance = if exact { 1.0 } else { 4.0 * expected.sqrt() + 1.0 };
                assert!((actual - expected).abs() <= tolerance, "{plan:?} by {seconds} s: {actual} vs {expected}");
            }
        }
        assert_eq!(ArrivalPlan::constant(50.0).unwrap().expected_by(Duration::from_secs(4)), 200.0);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5d"), None);
    }
}
