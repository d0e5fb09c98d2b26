//! What a plan offers: when its last arrival is due and its average rate. Pure arithmetic on
//! the plan, shared by the dry run, the run's announcement and the run summary. (How many of a
//! shard's devices its time limits let start is `shard::Part::starts_within_limits`.)

use super::{Load, Plan};

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
}
