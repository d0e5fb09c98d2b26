//! What generating the load cost: the process's own CPU time over the run (getrusage), per
//! started device and, against an external target, as flows per second one core sustains.
//! This is the number that sizes the machines of a capacity test.

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
    /// This process's CPU time so far, all threads (getrusage `RUSAGE_SELF`).
    pub fn of_process() -> Self {
        // SAFETY: `usage` is a valid, writable rusage for getrusage to fill; RUSAGE_SELF is a
        // valid `who`.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
                return Self::default();
            }
            usage
        };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Self { user_seconds: seconds(usage.ru_utime), system_seconds: seconds(usage.ru_stime) }
    }

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

    #[test]
    fn the_process_clock_counts_work_done() {
        // Spins until this thread has used 30 ms of CPU by the kernel's per-thread clock (an
        // independent reading, and not wall time, which a busy machine stretches): the process
        // clock must have counted at least that much.
        let thread_cpu = || {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `ts` is a valid timespec for the call to fill.
            assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }, 0);
            ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
        };
        let before = CpuTime::of_process();
        let start = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - start < 0.03 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let used = CpuTime::of_process().since(before);
        // The process clock ticks in 10 ms units on some kernels.
        assert!(used.user_seconds + used.system_seconds >= 0.02, "{used:?}");
    }
}
