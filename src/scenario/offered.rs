//! What a plan offers: when its last arrival is due, its average rate, and how many of its
//! devices its time limits let start. Pure arithmetic on the plan, shared by the dry run, the
//! run's announcement and the run summary.

use std::time::Duration;

use super::{Load, Plan};
use crate::shard::Shard;

impl Plan {
    /// When the last arrival of an open plan is due, in seconds (none for a closed model).
    pub fn arrival_seconds(&self) -> Option<f64> {
        let Load::Open(arrivals) = &self.load else { return None };
        let planned = match arrivals.natural_duration() {
            Some(duration) => duration.as_secs_f64(),
            None => self.stop.devices.saturating_sub(1) as f64 / arrivals.peak_rate(),
        };
        Some(self.stop.duration.map_or(planned, |d| d.as_secs_f64().min(planned)))
    }

    /// Devices a second the plan offers on average over its arrivals (none for a closed model,
    /// whose rate is the target's speed).
    pub fn offered_rate(&self) -> Option<f64> {
        let Load::Open(arrivals) = &self.load else { return None };
        let seconds = self.arrival_seconds()?;
        if seconds <= 0.0 {
            return Some(arrivals.peak_rate());
        }
        // N arrivals span N - 1 gaps.
        let rate = self.stop.devices.saturating_sub(1) as f64 / seconds;
        Some((rate * 10.0).round() / 10.0)
    }

    /// When an open plan has more devices than its time limits let start (`run.duration_seconds`,
    /// `run.max_duration_seconds`): how many it has and about how many will start, for this
    /// shard. `None` when all can start, and for a closed model (its pace is the target's).
    pub fn starts_within_limits(&self) -> Option<StartsWithinLimits> {
        let Load::Open(arrivals) = &self.load else { return None };
        let limit = self.stop.duration.map_or(self.max_duration, |d| d.min(self.max_duration));
        let whole = (arrivals.expected_by(limit).round() as u64).min(self.stop.devices);
        let (devices, starting) = (self.shard.devices_of(self.stop.devices), self.shard.devices_of(whole));
        (starting < devices).then(|| StartsWithinLimits {
            shard: self.shard,
            plan_devices: self.stop.devices,
            devices,
            starting,
            load: self.load.describe(),
            limit,
        })
    }
}

/// A plan larger than its run can start: said before the run, so a user sees at once that most
/// of a ten-million-device plan will be counted as not started.
#[derive(Debug, Clone, PartialEq)]
pub struct StartsWithinLimits {
    pub shard: Shard,
    /// The whole plan's devices.
    pub plan_devices: u64,
    /// This shard's devices (the whole plan's, unsharded).
    pub devices: u64,
    /// About how many of them will start.
    pub starting: u64,
    /// The arrival plan, described (`constant 50/s`).
    pub load: String,
    /// How long devices may start for.
    pub limit: Duration,
}

impl std::fmt::Display for StartsWithinLimits {
    /// `the plan has 1,000,000 devices; at constant 50/s for at most 4 s, about 200 will start`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shard.is_whole() {
            true => write!(f, "the plan has {} devices", grouped(self.devices))?,
            false => write!(
                f,
                "shard {} has {} of the plan's {} devices",
                self.shard,
                grouped(self.devices),
                grouped(self.plan_devices)
            )?,
        }
        write!(
            f,
            "; at {} for at most {} s, about {} will start (the rest count as not started)",
            self.load,
            self.limit.as_secs_f64(),
            grouped(self.starting)
        )
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
