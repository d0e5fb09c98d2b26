//! The Prometheus metrics of a run in progress: its [`Family`]s, built once from a [`Tick`], and
//! their text exposition (format 0.0.4), served at `/metrics` by `dpsbench run --metrics-listen`
//! (the remote-write encoding of the same families is `telemetry::remote_write`). Pure: a tick in,
//! families and text out.
//!
//! Written here rather than with a client crate: the runner already folds every flow into HDR
//! histograms and hands out coarse cumulative buckets once a second, and client crates' histograms
//! want one `observe` per event, which the hot path must not pay.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::device::FailureKind;
use crate::metrics::LIVE_BUCKETS_US;
use crate::results::Tick;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The gauge that says whether the run has ended.
const RUN_ENDED: &str = "dpsbench_run_ended";

/// One metric family: what `# HELP` and `# TYPE` say, and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One sample: its metric name (the family's, or a histogram's `_bucket`, `_sum`, `_count`), its
/// labels in the order written, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// A sample's value, kept exact: a count, or microseconds written as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Count(u64),
    Micros(u64),
}

impl Value {
    /// The value as Prometheus stores it (seconds for [`Value::Micros`]).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Count(count) => count as f64,
            Value::Micros(us) => us as f64 / 1e6,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Count(count) => write!(f, "{count}"),
            Value::Micros(us) => f.write_str(&seconds(*us)),
        }
    }
}

/// Every family of `tick`, all named `dpsbench_…`: device counters, in-flight devices, late
/// starts, 429 replies, whether the run has `ended`, and one latency histogram per phase. Each
/// labelled family has its series from the first tick on: a failure kind of
/// [`FailureKind::counted_from_start`] is at 0 until it happens, and every [`crate::metrics::Phase`] has its
/// histogram, empty until measured.
pub fn families(tick: &Tick, ended: bool) -> Vec<Family> {
    let p = &tick.progress;
    let mut failures: BTreeMap<String, u64> =
        FailureKind::counted_from_start().iter().map(|kind| (kind.label(), 0)).collect();
    failures.extend(tick.failures.iter().map(|(kind, count)| (kind.clone(), *count)));
    vec![
        single("dpsbench_devices_started_total", Kind::Counter, "Devices started.", p.started),
        single("dpsbench_devices_assigned_total", Kind::Counter, "Devices assigned to a hub.", p.assigned),
        Family {
            name: "dpsbench_devices_failed_total",
            kind: Kind::Counter,
            help: "Devices that failed, by failure kind.",
            samples: failures
                .into_iter()
                .map(|(kind, count)| Sample {
                    name: "dpsbench_devices_failed_total".into(),
                    labels: vec![("kind", kind)],
                    value: Value::Count(count),
                })
                .collect(),
        },
        single("dpsbench_devices_in_flight", Kind::Gauge, "Devices started and not yet finished.", p.in_flight),
        single(
            "dpsbench_late_starts_total",
            Kind::Counter,
            "Devices that started more than 2 ms after their intended instant.",
            p.late_starts,
        ),
        single(
            "dpsbench_throttled_total",
            Kind::Counter,
            "429 (throttled) replies received, counted as they arrive.",
            p.throttled,
        ),
        single(RUN_ENDED, Kind::Gauge, "1 once the run has ended and every figure is final, else 0.", u64::from(ended)),
        phase_histograms(tick),
    ]
}

/// Marks `families` (of [`families`]) as the final ones: `dpsbench_run_ended` becomes 1.
pub fn mark_ended(families: &mut [Family]) {
    let ended = families.iter_mut().find(|family| family.name == RUN_ENDED);
    if let Some(sample) = ended.and_then(|family| family.samples.first_mut()) {
        sample.value = Value::Count(1);
    }
}

/// The text exposition of `families`.
pub fn exposition(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let name = family.name;
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {}", family.help, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(&sample.name);
            if !sample.labels.is_empty() {
                let labels: Vec<String> =
                    sample.labels.iter().map(|(label, value)| format!("{label}=\"{}\"", escape(value))).collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = writeln!(out, " {}", sample.value);
        }
    }
    out
}

/// A family of one unlabelled sample.
fn single(name: &'static str, kind: Kind, help: &'static str, count: u64) -> Family {
    let samples = vec![Sample { name: name.into(), labels: Vec::new(), value: Value::Count(count) }];
    Family { name, kind, help, samples }
}

/// `dpsbench_phase_duration_seconds`: cumulative buckets, sum and count of each phase.
fn phase_histograms(tick: &Tick) -> Family {
    let name = "dpsbench_phase_duration_seconds";
    let mut samples = Vec::new();
    for buckets in &tick.phases {
        let phase = || ("phase", buckets.phase.as_str().to_string());
        let bucket = |le: String, count: u64| Sample {
            name: format!("{name}_bucket"),
            labels: vec![phase(), ("le", le)],
            value: Value::Count(count),
        };
        for (bound, count) in LIVE_BUCKETS_US.iter().zip(&buckets.cumulative) {
            samples.push(bucket(seconds(*bound), *count));
        }
        samples.push(bucket("+Inf".into(), buckets.count));
        samples.push(Sample {
            name: format!("{name}_sum"),
            labels: vec![phase()],
            value: Value::Micros(buckets.sum_us),
        });
        samples.push(Sample {
            name: format!("{name}_count"),
            labels: vec![phase()],
            value: Value::Count(buckets.count),
        });
    }
    Family {
        name,
        kind: Kind::Histogram,
        help: "Latency of each phase of the flow (assigned and end_to_end from the intended start).",
        samples,
    }
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
                throttled: 2,
                ..Progress::default()
            },
            failures: [("timeout_poll".to_string(), 1), ("odd\"kind\\".to_string(), 1)].into_iter().collect(),
            phases: vec![LiveBuckets { phase: Phase::TlsHandshake, cumulative, count: 5, sum_us: 301_234_500 }],
            ..Tick::default()
        };
        insta::assert_snapshot!(exposition(&families(&tick, false)));
    }

    #[test]
    fn every_labelled_series_is_there_from_the_first_tick() {
        let empty = Tick { phases: crate::metrics::Metrics::new().live_buckets(), ..Tick::default() };
        let families = families(&empty, false);
        let failed = families.iter().find(|f| f.name == "dpsbench_devices_failed_total").unwrap();
        let kinds: Vec<&str> = failed.samples.iter().map(|s| s.labels[0].1.as_str()).collect();
        assert_eq!(kinds.len(), FailureKind::counted_from_start().len());
        assert!(kinds.contains(&"status_429") && kinds.contains(&"timeout_register"), "{kinds:?}");
        assert!(failed.samples.iter().all(|s| s.value == Value::Count(0)));
        let histogram = families.iter().find(|f| f.name == "dpsbench_phase_duration_seconds").unwrap();
        for phase in Phase::ALL {
            let count = histogram
                .samples
                .iter()
                .filter(|s| s.labels[0].1 == phase.as_str() && s.name.ends_with("_bucket"))
                .count();
            assert_eq!(count, LIVE_BUCKETS_US.len() + 1, "{phase:?}: every bound and +Inf");
        }
        let ended =
            |families: &[Family]| families.iter().find(|f| f.name == "dpsbench_run_ended").unwrap().samples[0].value;
        assert_eq!(ended(&families), Value::Count(0));
        assert_eq!(ended(&super::families(&empty, true)), Value::Count(1));
        let mut marked = families.clone();
        mark_ended(&mut marked);
        assert_eq!(marked, super::families(&empty, true));
    }

    #[test]
    fn a_kind_counted_from_the_start_is_not_repeated_once_it_happens() {
        let tick = Tick { failures: [("status_429".to_string(), 7)].into_iter().collect(), ..Tick::default() };
        let text = exposition(&families(&tick, false));
        assert_eq!(text.matches("kind=\"status_429\"").count(), 1, "{text}");
        assert!(text.contains("dpsbench_devices_failed_total{kind=\"status_429\"} 7\n"), "{text}");
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(1_000), "0.001");
        assert_eq!(seconds(300_000_000), "300");
        assert_eq!(seconds(1_500), "0.0015");
        assert_eq!(seconds(0), "0");
    }
}
