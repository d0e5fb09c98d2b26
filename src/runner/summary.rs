//! The run summary's parts the runner works out: the judgement of whether the generator kept
//! its plan, the shard a run was, the emulator's counters and the host. (The types are
//! `results`'.)

use super::stall::Readings;
use crate::device::RetryProfile;
use crate::emulator::{Service, ServiceStats};
use crate::metrics::{Phase, Summary};
use crate::results::{EmulatorCounts, HostInfo, ShardInfo, TargetStalls, Validity};
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

/// Judges whether the generator kept its plan, and names the side at fault when it did not.
/// `limit_cap` is the open-files limit and the in-flight cap it imposed, when it imposed one the
/// scenario did not ask for. A lag that only the target's stalls (`target_stalls`) pushed over
/// the bound leaves the run valid: outside them the plan was kept, and `assigned`, measured from
/// each intended start, shows the stall in full.
pub(super) fn validity(
    plan: &Plan,
    results: &Summary,
    readings: &Readings,
    target_stalls: Option<TargetStalls>,
    limit_cap: Option<(u64, u64)>,
) -> Validity {
    let schedule_lag_p99_us = results.phase(Phase::ScheduleLag).map(|p| p.p99_us).unwrap_or(0);
    let mut reasons = Vec::new();
    let bound = plan.max_schedule_lag_p99.as_micros() as u64;
    // The target's stalls excuse only when most starts fell outside them (the figure of the rest
    // then says whether the generator kept its plan).
    let starts = results.phase(Phase::ScheduleLag).map_or(0, |p| p.count);
    let excused = target_stalls.as_ref().filter(|t| t.starts_within.saturating_mul(2) <= starts);
    let outside_stalls = excused.map_or(schedule_lag_p99_us, |t| t.schedule_lag_p99_outside_us);
    if matches!(plan.load, Load::Open(_)) && schedule_lag_p99_us > bound && outside_stalls > bound {
        let machine = readings.machine_p99_us.unwrap_or(0);
        // The probe thread shares the cores: a generator using them all makes it late too, so
        // the machine is named only when the run left CPU to spare or the hypervisor took some.
        let host_held =
            readings.cpu_share.is_none_or(|share| share < 0.75) || readings.steal_percent.is_some_and(|p| p >= 5.0);
        let steal =
            readings.steal_percent.filter(|p| *p >= 1.0).map(|p| format!("; the hypervisor took {p}% of its CPU time"));
        let advice = match (limit_cap, plan.max_in_flight) {
            (Some((limit, cap)), _) => format!(
                "the open-files limit of {limit} allowed only {cap} devices in flight, so starts waited for a free \
                 slot (raise the hard limit, ulimit -Hn, or lower the rate)"
            ),
            // The machine alone makes a sleeping thread this late: the plan was held back by the
            // host (its hypervisor, other processes), not by the generator's load.
            _ if host_held && machine.saturating_mul(2) >= outside_stalls => format!(
                "this machine woke a plain sleeping thread outside the generator's runtime {} late at p99{}: the host, \
                 not the generator's load, held the starts back (run on a quieter or dedicated machine)",
                millis(machine),
                steal.unwrap_or_default()
            ),
            (None, Some(cap)) => format!(
                "the generator could not keep the arrival plan (raise run.max_in_flight from {cap}, lower the rate, \
                 or add generator capacity)"
            ),
            (None, None) => {
                "the generator could not keep the arrival plan (lower the rate or add generator capacity)".to_string()
            }
        };
        let outside = if excused.is_some() { " outside the target's stalls" } else { "" };
        reasons.push(format!(
            "schedule lag p99{outside} {} exceeds run.max_schedule_lag_p99_ms ({}): {advice}",
            millis(outside_stalls),
            millis(bound)
        ));
    }
    if results.early_requests > 0 && plan.flow.retry.profile == RetryProfile::Dpsbench {
        reasons.push(format!(
            "{} requests were sent before their retry-after had passed (a harness bug)",
            results.early_requests
        ));
    }
    Validity {
        valid: reasons.is_empty(),
        reasons,
        schedule_lag_p99_us,
        runtime_stall_p99_us: readings.runtime_p99_us,
        machine_stall_p99_us: readings.machine_p99_us,
        steal_percent: readings.steal_percent,
        target_stalls,
    }
}

/// What the summary says of the target's stalls: when they pushed the lag over the bound, that
/// the target, not the generator, did.
pub(super) fn target_stall_note(plan: &Plan, validity: &Validity) -> Option<String> {
    let stalls = validity.target_stalls.as_ref()?;
    let bound = plan.max_schedule_lag_p99.as_micros() as u64;
    let over = validity.valid && validity.schedule_lag_p99_us > bound && stalls.schedule_lag_p99_outside_us <= bound;
    let lag = if over {
        format!(
            "; the {} starts planned in them are what put the schedule lag p99 at {} (outside them {}: the generator \
             kept its plan)",
            stalls.starts_within,
            millis(validity.schedule_lag_p99_us),
            millis(stalls.schedule_lag_p99_outside_us)
        )
    } else {
        String::new()
    };
    Some(format!(
        "the target stopped answering waiting devices {} time{} ({:.3} s in all, the longest {:.3} s, each until the \
         generator caught up with the answers that then came at once){lag}",
        stalls.count,
        if stalls.count == 1 { "" } else { "s" },
        stalls.seconds,
        stalls.longest_seconds
    ))
}

/// Microseconds as milliseconds for a message: `1234.5 ms`.
fn millis(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, PhaseStats};

    fn plan() -> Plan {
        let text = "name = \"v\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 10\n[arrival]\nrate = 10\n";
        let file = crate::toml_file::parse(text).expect("the scenario parses");
        Plan::resolve(file, std::path::Path::new("v.toml"), &|_| None).expect("it resolves")
    }

    /// A summary whose schedule lag p99 is `lag_us`.
    fn lagging(lag_us: u64) -> Summary {
        let mut results = Metrics::new().summary(10);
        let stats = PhaseStats {
            count: 5000,
            min_us: 1,
            mean_us: lag_us,
            p50_us: 1,
            p90_us: 1,
            p99_us: lag_us,
            p999_us: lag_us,
            max_us: lag_us,
        };
        results.phases.insert(Phase::ScheduleLag.as_str().into(), stats);
        results
    }

    fn readings(runtime_ms: u64, machine_ms: u64) -> Readings {
        Readings {
            runtime_p99_us: runtime_ms * 1000,
            machine_p99_us: Some(machine_ms * 1000),
            steal_percent: Some(6.5),
            cpu_share: Some(0.5),
        }
    }

    fn stalls(outside_us: u64) -> TargetStalls {
        TargetStalls {
            count: 1,
            seconds: 1.2,
            longest_seconds: 1.2,
            starts_within: 600,
            schedule_lag_p99_outside_us: outside_us,
        }
    }

    #[test]
    fn a_lag_the_generator_caused_is_its_fault() {
        let validity = validity(&plan(), &lagging(20_000), &readings(8, 1), None, None);
        assert!(!validity.valid);
        assert!(
            validity.reasons[0].contains("the generator could not keep the arrival plan"),
            "{:?}",
            validity.reasons
        );
        assert_eq!((validity.machine_stall_p99_us, validity.steal_percent), (Some(1_000), Some(6.5)));
    }

    #[test]
    fn a_lag_the_machine_itself_shows_names_the_machine() {
        let validity = validity(&plan(), &lagging(20_000), &readings(12, 11), None, None);
        assert!(!validity.valid);
        let reason = &validity.reasons[0];
        assert!(reason.contains("this machine woke a plain sleeping thread") && reason.contains("11.0 ms"), "{reason}");
        assert!(reason.contains("the hypervisor took 6.5%") && !reason.contains("generator could not"), "{reason}");
        // A generator using every core makes the probe late too: that is not the host's doing.
        let busy = Readings { cpu_share: Some(0.95), steal_percent: Some(0.5), ..readings(12, 11) };
        let judged = super::validity(&plan(), &lagging(20_000), &busy, None, None);
        assert!(judged.reasons[0].contains("the generator could not keep the arrival plan"), "{:?}", judged.reasons);
    }

    #[test]
    fn a_lag_only_the_targets_stall_caused_leaves_the_run_valid_and_says_so() {
        let plan = plan();
        let validity = validity(&plan, &lagging(20_000), &readings(5, 1), Some(stalls(900)), None);
        assert!(validity.valid, "{:?}", validity.reasons);
        assert_eq!(validity.schedule_lag_p99_us, 20_000, "the whole run's lag is still reported");
        let note = target_stall_note(&plan, &validity).expect("a note");
        assert!(note.contains("the target stopped answering waiting devices 1 time"), "{note}");
        assert!(note.contains("600 starts") && note.contains("outside them 0.9 ms"), "{note}");
        // Outside the stalls the generator fell behind too: invalid, on the lag outside them.
        let validity = validity_of(&plan, Some(stalls(15_000)));
        assert!(
            !validity.valid && validity.reasons[0].contains("schedule lag p99 outside the target's stalls 15.0 ms"),
            "{:?}",
            validity.reasons
        );
        // Most starts inside the windows: they excuse nothing.
        let validity = validity_of(&plan, Some(TargetStalls { starts_within: 4000, ..stalls(900) }));
        assert!(!validity.valid && validity.reasons[0].contains("schedule lag p99 20.0 ms"), "{:?}", validity.reasons);
        assert!(target_stall_note(&plan, &validity).unwrap().ends_with("came at once)"), "no excuse claimed");
    }

    fn validity_of(plan: &Plan, stalls: Option<TargetStalls>) -> Validity {
        validity(plan, &lagging(20_000), &readings(5, 1), stalls, None)
    }
}
