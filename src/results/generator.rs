//! What generating the load cost: the process's own CPU time over the run, per started device
//! and, against an external target, as flows per second one core sustains. This is the number
//! that sizes the machines of a capacity test. (The runner reads the process's clock.)

use serde::{Deserialize, Serialize};

/// `summary.json`'s `generator` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorCost {
    /// User CPU time of the whole process from the first arrival to the end of the run.
    pub cpu_user_seconds: f64,
    /// System (kernel) CPU time over the same span.
    pub cpu_system_seconds: f64,
    /// (user + system) / devices started, in microseconds.
    pub cpu_us_per_device: f64,
    /// True when the process also ran the emulator (embedded target): its CPU is then both
    /// sides' and says little about the generator alone.
    pub includes_emulator: bool,
    /// Assigned devices per CPU second: the flows per second one core sustains. Only against an
    /// external target (absent when the emulator shared the process, or nothing was assigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows_per_core_second: Option<f64>,
}

impl GeneratorCost {
    /// The cost of `used` CPU for `started` devices, `assigned` of them assigned.
    pub fn new(used: CpuTime, started: u64, assigned: u64, includes_emulator: bool) -> Self {
        let total = used.user_seconds + used.system_seconds;
        let cpu_us_per_device = if started == 0 { 0.0 } else { round(total * 1e6 / started as f64, 1) };
        let flows_per_core_second =
            (!includes_emulator && assigned > 0 && total > 0.0).then(|| round(assigned as f64 / total, 1));
        Self {
            cpu_user_seconds: round(used.user_seconds, 3),
            cpu_system_seconds: round(used.system_seconds, 3),
            cpu_us_per_device,
            includes_emulator,
            flows_per_core_second,
        }
    }

    /// Shards' costs added: CPU seconds summed, per-device and per-core figures recomputed
    /// over the merged counts.
    pub fn merge(costs: impl IntoIterator<Item = GeneratorCost>, started: u64, assigned: u64) -> Option<Self> {
        let mut used = CpuTime::default();
        let mut includes_emulator = false;
        let mut any = false;
        for cost in costs {
            used.user_seconds += cost.cpu_user_seconds;
            used.system_seconds += cost.cpu_system_seconds;
            includes_emulator |= cost.includes_emulator;
            any = true;
        }
        any.then(|| Self::new(used, started, assigned, includes_emulator))
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// CPU time a process used, from its own accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user_seconds: f64,
    pub system_seconds: f64,
}

impl CpuTime {
    /// The CPU used since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user_seconds: (self.user_seconds - earlier.user_seconds).max(0.0),
            system_seconds: (self.system_seconds - earlier.system_seconds).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_device_and_per_core_figures() {
        let used = CpuTime { user_seconds: 1.5, system_seconds: 0.5 };
        let external = GeneratorCost::new(used, 1000, 800, false);
        assert_eq!(external.cpu_us_per_device, 2000.0);
        assert_eq!(external.flows_per_core_second, Some(400.0));
        let embedded = GeneratorCost::new(used, 1000, 800, true);
        assert_eq!(embedded.flows_per_core_second, None, "the emulator's CPU is in it");
        assert_eq!(GeneratorCost::new(used, 0, 0, false).cpu_us_per_device, 0.0);
    }

    #[test]
    fn merged_shards_add_their_cpu() {
        let shard =
            |user, system| GeneratorCost::new(CpuTime { user_seconds: user, system_seconds: system }, 10, 10, false);
        let merged = GeneratorCost::merge([shard(1.0, 0.25), shard(2.0, 0.75)], 2000, 1600).unwrap();
        assert_eq!((merged.cpu_user_seconds, merged.cpu_system_seconds), (3.0, 1.0));
        assert_eq!(merged.cpu_us_per_device, 2000.0);
        assert_eq!(merged.flows_per_core_second, Some(400.0));
        assert_eq!(GeneratorCost::merge([], 10, 10), None);
    }
}
