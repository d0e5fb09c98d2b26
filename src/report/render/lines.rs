//! The one-line phrases of a summary that several renderers print alike: the rates, the
//! certificates, the generator's CPU cost, the machine's stall. Pure.

use super::text::micros;

/// The rates, one line: offered, the one achieved rate, and the peak one-second rate. A shard
/// offers its share of the plan's rate (beside which the plan's own is named), so its offered
/// and achieved rates are of the same devices; a merge of shards offers the whole plan's.
pub(super) fn rates_line(summary: &crate::results::RunSummary) -> Option<String> {
    let rates = summary.results.rates.as_ref()?;
    let shard = summary.shard.as_ref().filter(|shard| shard.count > 1 && summary.merged.is_none());
    let offered = match (rates.offered_per_second, shard) {
        (Some(rate), Some(shard)) => format!(
            "shard {} of {} offered {:.1}/s (its share of the plan's {rate:.1}/s)",
            shard.index,
            shard.count,
            rate / shard.count as f64
        ),
        (Some(rate), None) => format!("offered {rate:.1}/s"),
        (None, _) => "offered: closed model".into(),
    };
    Some(format!(
        "{offered}; achieved {:.1} assigned/s (first to last assignment); peak {} assigned in one second",
        rates.achieved_per_second, rates.peak_one_second
    ))
}

/// The operational certificates the devices asked for, one line; `None` when none asked.
pub(super) fn certificates_line(c: &crate::metrics::CertificateCounts) -> Option<String> {
    if c.is_empty() {
        return None;
    }
    let failures: Vec<String> = c.failures.iter().map(|(reason, n)| format!("{reason}={n}")).collect();
    let failures = if failures.is_empty() { String::new() } else { format!(" (failed: {})", failures.join(", ")) };
    Some(format!("{} requested, {} issued, {} verified{failures}", c.requested, c.issued, c.verified))
}

/// The generator's CPU cost, one line: per started device, and per core against an external target.
pub(super) fn generator_line(cost: &crate::results::GeneratorCost) -> String {
    let scope = match cost.flows_per_core_second {
        Some(flows) => format!("; {flows:.0} flows/s per core"),
        None if cost.includes_emulator => "; includes the embedded emulator's CPU".into(),
        None => String::new(),
    };
    format!(
        "generator CPU: {} per started device (user {:.2} s, system {:.2} s){scope}",
        micros(cost.cpu_us_per_device.round() as u64),
        cost.cpu_user_seconds,
        cost.cpu_system_seconds
    )
}

/// ` (machine 3.2 ms, steal 4.1%)`: how late the machine itself woke a plain thread, beside
/// the runtime's stall, and what its hypervisor took; empty for a summary without them.
pub(super) fn machine_stall(validity: &crate::results::Validity) -> String {
    let Some(machine) = validity.machine_stall_p99_us else { return String::new() };
    let steal = validity.steal_percent.map(|p| format!(", steal {p}%")).unwrap_or_default();
    format!(" (machine {}{steal})", micros(machine))
}
