//! Reading the process's own CPU time (getrusage), for `results::GeneratorCost`.

use crate::results::CpuTime;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
