//! The Prometheus text exposition (format 0.0.4) of a run in progress, served at `/metrics` by
//! `dpsbench run --metrics-listen`. Pure: a [`Tick`] in, text out.
//!
//! Written here rather than with a client crate: the runner already folds every flow into HDR
//! histograms and hands out coarse cumulative buckets once a second, and client crates' histograms
//! want one `observe` per event, which the hot path must not pay.

use std::fmt::Write as _;

use crate::metrics::LIVE_BUCKETS_US;
use crate::results::Tick;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition of `tick`: device counters, in-flight devices, late starts and one latency
/// histogram per phase, all named `dpsbench_…`.
pub fn exposition(tick: &Tick) -> String {
    let p = &tick.progress;
    let mut out = String::new();
    family(&mut out, "dpsbench_devices_started_total", "counter", "Devices started.");
    let _ = writeln!(out, "dpsbench_devices_started_total {}", p.started);
    family(&mut out, "dpsbench_devices_assigned_total", "counter", "Devices assigned to a hub.");
    let _ = writeln!(out, "dpsbench_devices_assigned_total {}", p.assigned);
    family(&mut out, "dpsbench_devices_failed_total", "counter", "Devices that failed, by failure kind.");
    for (kind, count) in &tick.failures {
        let _ = writeln!(out, "dpsbench_devices_failed_total{{kind=\"{}\"}} {count}", escape(kind));
    }
    family(&mut out, "dpsbench_devices_in_flight", "gauge", "Devices started and not yet finished.");
    let _ = writeln!(out, "dpsbench_devices_in_flight {}", p.in_flight);
    family(
        &mut out,
        "dpsbench_late_starts_total",
        "counter",
        "Devices that started more than 2 ms after their intended instant.",
    );
    let _ = writeln!(out, "dpsbench_late_starts_total {}", p.late_starts);
    let name = "dpsbench_phase_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Latency of each phase of the flow (assigned and end_to_end from the intended start).",
    );
    for buckets in &tick.phases {
        let phase = buckets.phase.as_str();
        for (bound, count) in LIVE_BUCKETS_US.iter().zip(&buckets.cumulative) {
            let _ = writeln!(out, "{name}_bucket{{phase=\"{phase}\",le=\"{}\"}} {count}", seconds(*bound));
        }
        let _ = writeln!(out, "{name}_bucket{{phase=\"{phase}\",le=\"+Inf\"}} {}", buckets.count);
        let _ = writeln!(out, "{name}_sum{{phase=\"{phase}\"}} {}", seconds(buckets.sum_us));
        let _ = writeln!(out, "{name}_count{{phase=\"{phase}\"}} {}", buckets.count);
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Microseconds as seconds, without float noise (`0.001`, `300`).
fn seconds(us: u64) -> String {
    let text = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{LiveBuckets, Phase};
    use crate::results::Progress;

    #[test]
    fn exposition_of_a_tick() {
        let mut cumulative = vec![0; LIVE_BUCKETS_US.len()];
        cumulative[2..].iter_mut().for_each(|c| *c = 3);
        cumulative[9..].iter_mut().for_each(|c| *c = 4);
        let tick = Tick {
            progress: Progress {
                started: 9,
                assigned: 4,
                failed: 2,
                in_flight: 3,
                late_starts: 1,
                ..Progress::default()
            },
            failures: [("timeout_poll".to_string(), 1), ("odd\"kind\\".to_string(), 1)].into_iter().collect(),
            phases: vec![LiveBuckets { phase: Phase::TlsHandshake, cumulative, count: 5, sum_us: 301_234_500 }],
            ..Tick::default()
        };
        insta::assert_snapshot!(exposition(&tick));
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(1_000), "0.001");
        assert_eq!(seconds(300_000_000), "300");
        assert_eq!(seconds(1_500), "0.0015");
        assert_eq!(seconds(0), "0");
    }
}
