//! Report writers: pure functions from a [`RunSummary`] to bytes. The CLI does the file IO.

use std::fmt::Write as _;

use crate::device::Transport;
use crate::metrics::PHASES;
use crate::runner::{RunSummary, Tick};
use crate::scenario::{Load, Plan, TargetPlan};

/// `summary.json`, pretty-printed.
pub fn summary_json(summary: &RunSummary) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(summary).expect("a summary always serialises");
    bytes.push(b'\n');
    bytes
}

/// A `timeseries.csv` column: its name and how a tick fills it.
type Column = (&'static str, fn(&Tick) -> String);

/// The columns of `timeseries.csv` (one row a second), in order.
const TIMESERIES_COLUMNS: &[Column] = &[
    ("elapsed_s", |t| format!("{:.3}", t.progress.elapsed.as_secs_f64())),
    ("started", |t| t.progress.started.to_string()),
    ("assigned", |t| t.progress.assigned.to_string()),
    ("failed", |t| t.progress.failed.to_string()),
    ("in_flight", |t| t.progress.in_flight.to_string()),
    ("late_starts", |t| t.progress.late_starts.to_string()),
    ("assigned_in_second", |t| t.progress.interval.assigned.to_string()),
    ("failed_in_second", |t| t.progress.interval.failed.to_string()),
    ("assigned_p50_us", |t| t.progress.interval.assigned_p50_us.to_string()),
    ("assigned_p99_us", |t| t.progress.interval.assigned_p99_us.to_string()),
    ("failures", |t| {
        let failures: Vec<String> = t.failures.iter().map(|(kind, n)| format!("{kind}={n}")).collect();
        failures.join(" ")
    }),
];

/// The header line of `timeseries.csv`.
pub fn timeseries_header() -> Vec<u8> {
    csv_line(TIMESERIES_COLUMNS.iter().map(|(name, _)| name.to_string()))
}

/// One line of `timeseries.csv`: the second `tick` reports.
pub fn timeseries_row(tick: &Tick) -> Vec<u8> {
    csv_line(TIMESERIES_COLUMNS.iter().map(|(_, value)| value(tick)))
}

/// The summary table printed at the end of `dpsbench run`.
pub fn summary_table(summary: &RunSummary) -> String {
    let r = &summary.results;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {} against {} ({}) in {:.1} s{}",
        summary.scenario.name,
        summary.target.address,
        summary.target.kind,
        summary.duration_seconds,
        if summary.partial { " [PARTIAL: stopped early]" } else { "" }
    );
    for note in &summary.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !summary.validity.valid {
        let _ = writeln!(out, "INVALID RUN: {}", summary.validity.reasons.join("; "));
    }
    let _ = writeln!(
        out,
        "devices  {} total, {} assigned, {} failed, {} aborted, {} not finished; {:.1} assigned/s",
        r.devices.total,
        r.devices.assigned,
        r.devices.failed,
        r.devices.aborted,
        r.devices.not_finished,
        r.flows_per_second
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<18} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "phase", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for name in PHASES {
        let Some(p) = r.phases.get(name) else { continue };
        if p.count == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<18} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            p.count,
            micros(p.p50_us),
            micros(p.p90_us),
            micros(p.p99_us),
            micros(p.p999_us),
            micros(p.max_us)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "register attempts per device: mean {:.2}, max {}; polls per device: mean {:.2}, max {}",
        r.register_attempts.mean, r.register_attempts.max, r.polls_per_device.mean, r.polls_per_device.max
    );
    let _ = writeln!(
        out,
        "late starts: {}; schedule lag p99 {}; runtime stall p99 {}; early requests: {}",
        r.late_starts,
        micros(summary.validity.schedule_lag_p99_us),
        micros(summary.validity.runtime_stall_p99_us),
        r.early_requests
    );
    if !r.failures.is_empty() {
        let failures: Vec<String> = r.failures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "failures: {}", failures.join(", "));
    }
    let violated: Vec<String> = r
        .conformance
        .iter()
        .filter(|(_, c)| c.violations > 0)
        .map(|(id, c)| format!("{id}={}", c.violations))
        .collect();
    if violated.is_empty() {
        let _ = writeln!(out, "conformance: {} passive checks, no violations", r.conformance.len());
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
    if !r.hubs.is_empty() {
        let hubs: Vec<String> = r.hubs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "hubs: {}", hubs.join(", "));
    }
    out
}

/// What `dpsbench run --dry-run` prints: the resolved plan, what it will bill and the
/// throttling to expect, without touching the network.
pub fn dry_run(plan: &Plan) -> String {
    let mut out = String::new();
    let devices = plan.stop.devices;
    let _ = writeln!(out, "scenario    {} ({})", plan.name, plan.file.display());
    let (target, billed, quota) = match &plan.target {
        TargetPlan::Embedded { .. } => {
            ("the embedded emulator on 127.0.0.1 (nothing leaves this machine)".to_string(), false, None)
        }
        TargetPlan::Dps { host, port, ca, transport, loopback, dps_units, .. } => {
            let trust = match ca {
                Some((_, path)) => format!("trusting {}", path.display()),
                None => "trusting the public web roots".into(),
            };
            let transport = match transport {
                Transport::Mqtt => "MQTT over TLS 1.2".to_string(),
                Transport::WebSocket { path, .. } => format!("MQTT over WebSocket ({path}) over TLS 1.2"),
            };
            let place = if *loopback { "on this machine" } else { "NOT on this machine" };
            (format!("{host}:{port}, {transport}, {trust}; {place}"), !*loopback, Some(*dps_units))
        }
    };
    let _ = writeln!(out, "target      {target}");
    let _ = writeln!(out, "id scope    {}", plan.id_scope);
    let mix: Vec<&str> = plan.personalities.personalities().map(|p| p.name()).collect();
    let _ = writeln!(out, "devices     up to {devices} ({})", mix.join(", "));
    let _ = writeln!(out, "arrivals    {}", plan.load.describe());
    let arrivals = arrival_seconds(plan);
    match arrivals {
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
    if let Some(units) = quota {
        let per_second = f64::from(units) * 1000.0 / 60.0;
        let _ = write!(
            out,
            "quota       {units} DPS unit(s): about {:.0} registrations per minute ({per_second:.1}/s)",
            f64::from(units) * 1000.0
        );
        match arrivals.filter(|s| *s > 0.0).map(|s| devices as f64 / s) {
            Some(offered) if offered > per_second => {
                let drain = devices as f64 / per_second;
                let _ = writeln!(
                    out,
                    "; the plan offers {offered:.1}/s on average: expect 429 throttling, and about {drain:.0} s to register everyone"
                );
            }
            Some(offered) => {
                let _ = writeln!(out, "; the plan offers {offered:.1}/s on average: within the quota");
            }
            None => {
                let _ = writeln!(out);
            }
        }
    }
    out
}

/// When the last arrival of an open plan is due, in seconds.
fn arrival_seconds(plan: &Plan) -> Option<f64> {
    let Load::Open(arrivals) = &plan.load else { return None };
    let planned = match arrivals.natural_duration() {
        Some(duration) => duration.as_secs_f64(),
        None => plan.stop.devices.saturating_sub(1) as f64 / arrivals.peak_rate(),
    };
    Some(plan.stop.duration.map_or(planned, |d| d.as_secs_f64().min(planned)))
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

    #[test]
    fn timeseries_lines_are_csv_one_column_per_figure() {
        use crate::metrics::IntervalStats;
        use crate::runner::Progress;
        assert_eq!(
            timeseries_header(),
            b"elapsed_s,started,assigned,failed,in_flight,late_starts,assigned_in_second,failed_in_second,\
              assigned_p50_us,assigned_p99_us,failures\n"
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
                interval: IntervalStats { assigned: 40, failed: 1, assigned_p50_us: 12_000, assigned_p99_us: 48_000 },
            },
            failures: [("timeout".to_string(), 2), ("tls".to_string(), 1)].into_iter().collect(),
            draining: false,
        };
        assert_eq!(timeseries_row(&tick), b"3000.250,120,100,3,17,2,40,1,12000,48000,timeout=2 tls=1\n");
    }

    #[test]
    fn micros_formats() {
        assert_eq!(micros(840), "840us");
        assert_eq!(micros(12_345), "12.3ms");
        assert_eq!(micros(4_200_000), "4.20s");
    }
}
