//! Report writers: pure functions from a [`RunSummary`] to bytes, one file per format beyond
//! the small ones here. The CLI does the file IO.

pub mod charts;
pub mod devices;
pub mod hlog;
pub mod html;
mod html_tables;
pub mod table;
pub mod timeseries;

use std::fmt::Write as _;

pub mod compare;
pub mod expression;
pub mod folder;
pub mod markdown;
pub mod merge;
pub mod prediction;
pub mod prometheus;
pub mod remote_write;

use crate::device::Transport;
use crate::metrics::Phase;
use crate::results::RunSummary;
use crate::scenario::{Plan, TargetPlan};

/// `summary.json`, pretty-printed.
pub fn summary_json(summary: &RunSummary) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(summary).expect("a summary always serialises");
    bytes.push(b'\n');
    bytes
}

/// The rates, one line: offered, the one achieved rate, and the peak one-second rate.
fn rates_line(r: &crate::metrics::Summary) -> Option<String> {
    let rates = r.rates.as_ref()?;
    let offered = match rates.offered_per_second {
        Some(rate) => format!("offered {rate:.1}/s"),
        None => "offered: closed model".into(),
    };
    Some(format!(
        "{offered}; achieved {:.1} assigned/s (first to last assignment); peak {} assigned in one second",
        rates.achieved_per_second, rates.peak_one_second
    ))
}

/// The summary table printed at the end of `dpsbench run`.
/// The generator's CPU cost, one line: per started device, and per core against an external target.
/// The operational certificates the devices asked for, one line; `None` when none asked.
fn certificates_line(c: &crate::metrics::CertificateCounts) -> Option<String> {
    if c.is_empty() {
        return None;
    }
    let failures: Vec<String> = c.failures.iter().map(|(reason, n)| format!("{reason}={n}")).collect();
    let failures = if failures.is_empty() { String::new() } else { format!(" (failed: {})", failures.join(", ")) };
    Some(format!("{} requested, {} issued, {} verified{failures}", c.requested, c.issued, c.verified))
}

fn generator_line(cost: &crate::results::GeneratorCost) -> String {
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

pub fn summary_table(summary: &RunSummary) -> String {
    let r = &summary.results;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}{} against {} ({}) in {:.1} s{}",
        summary.scenario.name,
        summary.scenario.typed_overrides().map(|typed| format!(" ({typed})")).unwrap_or_default(),
        summary.target.address,
        summary.target.kind,
        summary.duration_seconds,
        summary.partial_reason().map(|why| format!(" [PARTIAL: {why}]")).unwrap_or_default()
    );
    for note in &summary.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !summary.validity.valid {
        let _ = writeln!(out, "INVALID RUN: {}", summary.validity.reasons.join("; "));
    }
    let _ = writeln!(
        out,
        "devices  {} total, {} assigned, {} failed, {} aborted, {} not finished",
        r.devices.total, r.devices.assigned, r.devices.failed, r.devices.aborted, r.devices.not_finished,
    );
    if let Some(rates) = rates_line(r) {
        let _ = writeln!(out, "rates    {rates}");
    }
    let throttled = r.throttled();
    let per_second = if summary.duration_seconds > 0.0 { throttled as f64 / summary.duration_seconds } else { 0.0 };
    let _ = writeln!(out, "throttled {throttled} replies 429 ({per_second:.1}/s over the run)");
    let _ = writeln!(out);
    out.push_str(&table::phases(r).terminal());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "register attempts per device: mean {:.2}, max {}; polls per device: mean {:.2}, max {}",
        r.register_attempts.mean, r.register_attempts.max, r.polls_per_device.mean, r.polls_per_device.max
    );
    let lag = match r.phase(Phase::ScheduleLag) {
        Some(_) => {
            format!("late starts: {}; schedule lag p99 {}", r.late_starts, micros(summary.validity.schedule_lag_p99_us))
        }
        None => "no schedule lag (closed model: no arrival plan to be late against)".into(),
    };
    let _ = writeln!(
        out,
        "{lag}; runtime stall p99 {}{}; early requests: {}",
        micros(summary.validity.runtime_stall_p99_us),
        machine_stall(&summary.validity),
        r.early_requests
    );
    if let Some(cost) = &summary.generator {
        let _ = writeln!(out, "{}", generator_line(cost));
    }
    if !r.failures.is_empty() {
        let failures: Vec<String> = r.failures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "failures: {}", failures.join(", "));
        for (label, reason) in &r.failure_reasons {
            let examples: Vec<&str> =
                reason.examples.iter().map(|e| e.split_once(": ").map_or(e.as_str(), |(id, _)| id)).collect();
            let _ = writeln!(out, "  {label}: {}; e.g. {}", reason.reason, examples.join(", "));
        }
    }
    let violated: Vec<String> = summary
        .conformance
        .iter()
        .filter(|(_, c)| c.violations > 0)
        .map(|(id, c)| format!("{id}={}", c.violations))
        .collect();
    if violated.is_empty() {
        let _ = writeln!(out, "conformance: {} passive checks, no violations", summary.conformance.len());
    } else {
        let _ = writeln!(out, "conformance violations: {} (examples in summary.json)", violated.join(", "));
    }
    if r.personalities.len() > 1 || !r.personalities.contains_key("dpsbench") {
        let mix: Vec<String> =
            r.personalities.iter().map(|(name, c)| format!("{name}={}/{}", c.assigned, c.devices)).collect();
        let _ = writeln!(out, "personalities (assigned/devices): {}", mix.join(", "));
    }
    if r.payloads.returned > 0 {
        let _ = writeln!(
            out,
            "payloads returned: {}, matching what was sent: {}",
            r.payloads.returned, r.payloads.matching
        );
    }
    if let Some(line) = certificates_line(&r.certificates) {
        let _ = writeln!(out, "certificates: {line}");
    }
    if !r.hubs.is_empty() {
        let hubs: Vec<String> = r.hubs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "hubs: {}", hubs.join(", "));
    }
    if let Some(slo) = &summary.slo {
        gate_lines(&mut out, slo);
    }
    out
}

/// The `[slo]` verdict under the summary table: a headline, then one line per gate.
fn gate_lines(out: &mut String, slo: &crate::slo::SloVerdict) {
    let _ = writeln!(out);
    let headline = match (slo.judged, slo.passed) {
        (false, _) => format!("SLO gates NOT JUDGED: {}", slo.reason.as_deref().unwrap_or("the run is invalid")),
        (true, true) => "SLO gates PASSED".to_string(),
        (true, false) => "SLO gates FAILED".to_string(),
    };
    let _ = writeln!(out, "{headline}");
    for (name, gate) in &slo.gates {
        let verdict = match gate.held {
            Some(true) => "held",
            Some(false) => "FAILED",
            None => "-",
        };
        let _ = writeln!(
            out,
            "  {name:<32} limit {:>10}  observed {:>10}  {verdict}",
            markdown::number(gate.limit),
            markdown::observed(gate.observed)
        );
    }
}

/// What `dpsbench run --dry-run` prints: the resolved plan (this shard's `part` of it), what it will bill and the
/// throttling to expect, without touching the network.
pub fn dry_run(plan: &Plan, part: &crate::shard::Part) -> String {
    let mut out = String::new();
    // A shard runs its own part of the plan: the devices it starts, and bills, are those.
    let devices = part.devices();
    let _ = writeln!(out, "scenario    {} ({})", plan.name, plan.file.display());
    let (target, billed) = match &plan.target {
        TargetPlan::Embedded { .. } => {
            ("the embedded emulator on 127.0.0.1 (nothing leaves this machine)".to_string(), false)
        }
        TargetPlan::Dps { host, port, ca, transport, loopback, .. } => {
            let trust = match ca {
                Some((_, path)) => format!("trusting {}", path.display()),
                None => "trusting the public web roots".into(),
            };
            let transport = match transport {
                Transport::Mqtt => "MQTT over TLS 1.2".to_string(),
                Transport::WebSocket { path, .. } => format!("MQTT over WebSocket ({path}) over TLS 1.2"),
            };
            let place = if *loopback { "on this machine" } else { "NOT on this machine" };
            (format!("{host}:{port}, {transport}, {trust}; {place}"), !*loopback)
        }
    };
    let _ = writeln!(out, "target      {target}");
    let _ = writeln!(out, "id scope    {}", plan.id_scope);
    let mix: Vec<&str> = plan.personalities.personalities().map(|p| p.name()).collect();
    let of_plan = match part.shard().is_whole() {
        true => String::new(),
        false => format!(", shard {} of the plan's {}", part.shard(), plan.stop.devices),
    };
    let _ = writeln!(out, "devices     up to {devices} ({}){of_plan}", mix.join(", "));
    let _ = writeln!(out, "arrivals    {}", plan.load.describe());
    let prediction = prediction::predict(plan);
    match plan.arrival_seconds() {
        Some(seconds) => {
            let _ = writeln!(
                out,
                "duration    arrivals end after about {seconds:.0} s; run limit {} s",
                plan.max_duration.as_secs()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "duration    set by the target's speed (closed model); run limit {} s",
                plan.max_duration.as_secs()
            );
        }
    }
    if billed {
        let _ = writeln!(
            out,
            "billing     {devices} registrations are billable (register requests; retries after 429 bill again; polls are free)"
        );
    }
    let _ = writeln!(out, "{}", forecast_line(plan, &prediction));
    out
}

/// The dry run's `expect` line: the quota, whether 429s are certain, and about how long.
fn forecast_line(plan: &Plan, prediction: &prediction::Prediction) -> String {
    let quota = match (prediction.quota, &plan.target) {
        (Some(q), _) => format!(
            "a quota of {:.0} registrations per minute ({:.1}/s, from {})",
            q.per_second * 60.0,
            q.per_second,
            q.source
        ),
        (None, TargetPlan::Embedded { .. }) => "no registration quota".into(),
        (None, _) => "the local target's own quota (the plan does not say it)".into(),
    };
    let throttling = match (prediction.quota, prediction.throttled) {
        (_, true) => "429 throttling certain",
        (Some(_), false) => "no throttling (the plan fits the quota)",
        (None, _) => "no throttling predicted",
    };
    let duration = match prediction.seconds {
        Some(seconds) => format!("about {seconds:.0} s to register everyone"),
        None => "duration set by the target's speed".into(),
    };
    format!("expect      {quota}: {throttling}; {duration}")
}

/// ` (machine 3.2 ms, steal 4.1%)`: how late the machine itself woke a plain thread, beside
/// the runtime's stall, and what its hypervisor took; empty for a summary without them.
pub fn machine_stall(validity: &crate::results::Validity) -> String {
    let Some(machine) = validity.machine_stall_p99_us else { return String::new() };
    let steal = validity.steal_percent.map(|p| format!(", steal {p}%")).unwrap_or_default();
    format!(" (machine {}{steal})", micros(machine))
}

/// Formats microseconds for humans: `840us`, `12.3ms`, `4.20s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1000.0),
        _ => format!("{:.2}s", us as f64 / 1_000_000.0),
    }
}

fn csv_line(fields: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(fields).expect("writing CSV into memory cannot fail");
    writer.into_inner().expect("flushing CSV into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Tick;

    fn phase(count: u64, p50_us: u64, p99_us: u64, max_us: u64) -> serde_json::Value {
        serde_json::json!({
            "count": count, "min_us": p50_us / 2, "mean_us": p50_us, "p50_us": p50_us, "p90_us": (p50_us + p99_us) / 2,
            "p99_us": p99_us, "p999_us": max_us, "max_us": max_us
        })
    }

    /// A summary with fixed values: 1,000 devices against the embedded emulator.
    pub(super) fn summary() -> serde_json::Value {
        serde_json::json!({
            "schema": "dpsbench.summary/v1",
            "scenario": {
                "name": "steady", "file": "scenarios/steady.toml", "devices": 1000,
                "arrival": "constant 100/s", "duration_seconds": null
            },
            "target": { "kind": "embedded", "address": "127.0.0.1:41883", "id_scope": "0ne00DPS001" },
            "host": { "hostname": "bench-1", "cpus": 8, "os": "linux-x86_64", "dpsbench_version": "0.1.0" },
            "started_at": "2026-01-02T03:04:05.0000000Z",
            "duration_seconds": 10.042,
            "partial": false,
            "validity": { "valid": true, "reasons": [], "schedule_lag_p99_us": 840, "runtime_stall_p99_us": 1_250 },
            "open_files_limit": 1_048_576,
            "notes": [],
            "devices": { "total": 1000, "assigned": 1000, "failed": 0, "aborted": 0, "not_finished": 0 },
            "flows_per_second": 99.58,
            "rates": { "offered_per_second": 100.0, "achieved_per_second": 99.9, "peak_one_second": 104 },
            "phases": {
                "schedule_lag": phase(1000, 120, 840, 1_900),
                "tcp_connect": phase(1000, 95, 410, 2_300),
                "tls_handshake": phase(1000, 2_100, 6_800, 14_000),
                "ws_upgrade": phase(0, 0, 0, 0),
                "connack": phase(1000, 310, 1_200, 3_100),
                "suback": phase(1000, 180, 700, 1_600),
                "register_accepted": phase(1000, 420, 1_900, 5_200),
                "poll": phase(1000, 380, 1_500, 4_100),
                "assigned": phase(1000, 1_004_000, 1_012_000, 1_030_000),
                "assigned_raw": phase(1000, 1_003_900, 1_011_000, 1_029_000),
                "end_to_end": phase(1000, 1_005_000, 1_013_000, 1_031_000)
            },
            "register_attempts": { "mean": 1.0, "p50": 1, "p99": 1, "max": 1 },
            "polls_per_device": { "mean": 1.0, "p50": 1, "p99": 1, "max": 1 },
            "failures": {},
            "statuses": { "200": 1000, "202": 1000 },
            "retry_after_seconds": { "1": 1000 },
            "hubs": { "hub-a.example": 497, "hub-b.example": 503 },
            "source_addresses": {},
            "conformance": {
                "DPS-TOPIC-002": { "flows": 1000, "violations": 0, "examples": [] },
                "DPS-TOPIC-003": { "flows": 1000, "violations": 0, "examples": [] }
            },
            "personalities": { "dpsbench": { "devices": 1000, "assigned": 1000, "failed": 0 } },
            "payloads": { "returned": 0, "matching": 0 },
            "stray_replies": 0,
            "early_requests": 0,
            "late_starts": 0,
            "emulator": {
                "connections": 1000, "connects_refused": 0, "registrations": 1000, "polls": 1000, "throttled": 0
            },
            "generator": {
                "cpu_user_seconds": 0.31, "cpu_system_seconds": 0.12, "cpu_us_per_device": 430.0,
                "includes_emulator": true
            }
        })
    }

    fn table(summary: serde_json::Value) -> String {
        summary_table(&serde_json::from_value(summary).expect("the test summary matches RunSummary"))
    }

    #[test]
    fn summary_table_of_a_clean_run() {
        insta::assert_snapshot!(table(summary()));
    }

    /// Every optional line: notes, an invalid and partial run, failures, violations, a mix of
    /// personalities and returned payloads.
    #[test]
    fn summary_table_of_an_interrupted_invalid_run_with_failures() {
        let mut summary = summary();
        let edits = serde_json::json!({
            "partial": true,
            "duration_seconds": 4.5,
            "validity": {
                "valid": false, "reasons": ["schedule lag p99 120.0ms exceeds 50.0ms"],
                "schedule_lag_p99_us": 120_000, "runtime_stall_p99_us": 48_000
            },
            "notes": ["in flight capped at 4000 by the open-files limit"],
            "devices": { "total": 450, "assigned": 400, "failed": 30, "aborted": 15, "not_finished": 5 },
            "flows_per_second": 88.9,
            "statuses": { "200": 400, "202": 800, "429": 36 },
            "failures": { "timeout_connack": 20, "tls": 10 },
            "failure_reasons": {
                "timeout_connack": {
                    "reason": "no answer within the connack deadline (target overloaded or silent?)",
                    "examples": ["dev-000007", "dev-000012"]
                },
                "tls": {
                    "reason": "TLS handshake failed: certificate signed by an unknown issuer (is [target].ca_certificate the emulator's --ca-out?)",
                    "examples": ["dev-000001: invalid peer certificate: UnknownIssuer"]
                }
            },
            "conformance": {
                "DPS-TOPIC-002": { "flows": 450, "violations": 0, "examples": [] },
                "DPS-TOPIC-003": { "flows": 450, "violations": 7, "examples": [] }
            },
            "personalities": {
                "dpsbench": { "devices": 225, "assigned": 200, "failed": 15 },
                "python": { "devices": 225, "assigned": 200, "failed": 15 }
            },
            "payloads": { "returned": 400, "matching": 398 },
            "register_attempts": { "mean": 1.25, "p50": 1, "p99": 3, "max": 4 },
            "early_requests": 12,
            "late_starts": 310,
            "generator": {
                "cpu_user_seconds": 0.061, "cpu_system_seconds": 0.034, "cpu_us_per_device": 211.1,
                "includes_emulator": false, "flows_per_core_second": 4210.5
            }
        });
        for (field, value) in edits.as_object().expect("an object") {
            summary[field] = value.clone();
        }
        insta::assert_snapshot!(table(summary));
    }

    /// A verdict on three gates, one of which failed.
    pub(super) fn slo_verdict() -> serde_json::Value {
        serde_json::json!({
            "passed": false, "judged": true,
            "gates": {
                "assigned_p99_ms": { "limit": 1000.0, "observed": 1012.0, "held": false },
                "max_failed": { "limit": 0.0, "observed": 0.0, "held": true },
                "phase_p99_ms.tls_handshake": { "limit": 50.0, "observed": 6.8, "held": true }
            }
        })
    }

    #[test]
    fn summary_table_with_slo_gates() {
        let mut summary = summary();
        summary["slo"] = slo_verdict();
        insta::assert_snapshot!(table(summary));
    }

    #[test]
    fn timeseries_lines_are_csv_one_column_per_figure() {
        use crate::metrics::IntervalStats;
        use crate::results::Progress;
        assert_eq!(
            timeseries::header(),
            b"elapsed_s,started,assigned,failed,in_flight,late_starts,assigned_in_second,failed_in_second,\
              assigned_p50_us,assigned_p99_us,throttled,throttled_in_second,failures\n"
        );
        let tick = Tick {
            progress: Progress {
                elapsed: std::time::Duration::from_millis(3_000_250),
                started: 120,
                assigned: 100,
                failed: 3,
                in_flight: 17,
                late_starts: 2,
                assigned_p99_us: 99_000,
                throttled: 9,
                interval: IntervalStats {
                    assigned: 40,
                    failed: 1,
                    throttled: 4,
                    assigned_p50_us: 12_000,
                    assigned_p99_us: 48_000,
                },
            },
            latencies: Default::default(),
            finished: Vec::new(),
            failures: [("timeout".to_string(), 2), ("tls".to_string(), 1)].into_iter().collect(),
            failure_reasons: Default::default(),
            phases: Vec::new(),
            draining: false,
        };
        assert_eq!(
            timeseries::Row::of(&tick).line(),
            b"3000.250,120,100,3,17,2,40,1,12000,48000,9,4,timeout=2 tls=1\n"
        );
    }

    #[test]
    fn micros_formats() {
        assert_eq!(micros(840), "840us");
        assert_eq!(micros(12_345), "12.3ms");
        assert_eq!(micros(4_200_000), "4.20s");
    }
}
