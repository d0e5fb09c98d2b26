//! Facts about the machine this runs on: its host name, its cores and the CPU time its
//! hypervisor took (Linux `steal`). Reads `/proc` and the environment, and nothing else; knows
//! nothing of runs or reports (the runner puts these facts into a summary).

/// The machine's host name: the kernel's, else `$HOSTNAME`, else `unknown`.
pub fn name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The cores this process may use (1 when unknown).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The machine's CPU time so far, from the first line of `/proc/stat` (Linux).
#[derive(Debug, Clone, Copy)]
pub struct CpuTicks {
    total: u64,
    steal: u64,
}

impl CpuTicks {
    /// The machine's CPU time now; `None` off Linux or when `/proc/stat` cannot be read.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        Self::parse(stat.lines().next()?)
    }

    /// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: guest time is
    /// already counted in user and nice.
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        (fields.next()? == "cpu").then_some(())?;
        let ticks: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
        Some(Self { total: ticks.iter().sum(), steal: *ticks.get(7)? })
    }

    /// The share of the machine's CPU time the hypervisor took since `before`, in percent to
    /// one decimal.
    pub fn steal_since(self, before: Self) -> Option<f64> {
        let total = self.total.checked_sub(before.total).filter(|t| *t > 0)?;
        let steal = self.steal.checked_sub(before.steal)?;
        Some((steal as f64 * 1000.0 / total as f64).round() / 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_the_share_of_all_cpu_time() {
        let before = CpuTicks::parse("cpu  100 0 50 800 0 0 0 50 0 0").unwrap();
        let after = CpuTicks::parse("cpu  200 0 100 1500 0 0 0 200 0 0").unwrap();
        assert_eq!(after.steal_since(before), Some(15.0), "150 of 1,000 ticks");
        assert!(CpuTicks::parse("cpu0 1 2 3").is_none());
    }
}
