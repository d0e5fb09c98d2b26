//! The run summary's parts the runner works out: the judgement of whether the generator kept
//! its plan, the shard a run was, the emulator's counters and the host. (The types are
//! `results`'.)

use crate::device::RetryProfile;
use crate::emulator::{Service, ServiceStats};
use crate::metrics::{Phase, Summary};
use crate::results::{EmulatorCounts, HostInfo, ShardInfo, Validity};
use crate::scenario::{Load, Plan};

impl ShardInfo {
    pub(super) fn of(plan: &Plan, options: &super::RunOptions, start_offset_seconds: Option<f64>) -> Self {
        let shard = options.part.shard();
        Self {
            index: shard.index,
            count: shard.count,
            plan_hash: crate::shard::plan_hash(plan),
            start_at: options.start_at.map(crate::timestamp::rfc3339),
            start_offset_seconds,
        }
    }
}

impl HostInfo {
    /// The machine this process runs on.
    pub(super) fn current() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Self {
            hostname,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            dpsbench_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl EmulatorCounts {
    pub(super) fn of(service: &Service) -> Self {
        let s = &service.stats;
        Self {
            connections: ServiceStats::get(&s.connections),
            connects_refused: ServiceStats::get(&s.connects_refused),
            registrations: ServiceStats::get(&s.registrations),
            polls: ServiceStats::get(&s.polls),
            throttled: ServiceStats::get(&s.throttled),
            faults: service.faults.counts.snapshot(),
        }
    }
}

/// Judges whether the generator kept its plan. `limit_cap` is the open-files limit and the
/// in-flight cap it imposed, when it imposed one the scenario did not ask for.
pub(super) fn validity(
    plan: &Plan,
    results: &Summary,
    runtime_stall_p99_us: u64,
    limit_cap: Option<(u64, u64)>,
) -> Validity {
    let schedule_lag_p99_us = results.phase(Phase::ScheduleLag).map(|p| p.p99_us).unwrap_or(0);
    let mut reasons = Vec::new();
    let bound = plan.max_schedule_lag_p99.as_micros() as u64;
    if matches!(plan.load, Load::Open(_)) && schedule_lag_p99_us > bound {
        let advice = match (limit_cap, plan.max_in_flight) {
            (Some((limit, cap)), _) => format!(
                "the open-files limit of {limit} allowed only {cap} devices in flight, so starts waited for a free \
                 slot (raise the hard limit, ulimit -Hn, or lower the rate)"
            ),
            (None, Some(cap)) => format!(
                "the generator could not keep the arrival plan (raise run.max_in_flight from {cap}, lower the rate, \
                 or add generator capacity)"
            ),
            (None, None) => {
                "the generator could not keep the arrival plan (lower the rate or add generator capacity)".to_string()
            }
        };
        reasons.push(format!(
            "schedule lag p99 {} exceeds run.max_schedule_lag_p99_ms ({}): {advice}",
            millis(schedule_lag_p99_us),
            millis(bound)
        ));
    }
    if results.early_requests > 0 && plan.flow.retry.profile == RetryProfile::Dpsbench {
        reasons.push(format!(
            "{} requests were sent before their retry-after had passed (a harness bug)",
            results.early_requests
        ));
    }
    Validity { valid: reasons.is_empty(), reasons, schedule_lag_p99_us, runtime_stall_p99_us }
}

/// Microseconds as milliseconds for a message: `1234.5 ms`.
fn millis(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}
