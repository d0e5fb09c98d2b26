//! Service-level gates (`[slo]` in a scenario): what they are, how a scenario states them, and
//! the verdict of a run against them.
//!
//! Sans-IO: the verdict is a pure function of the run's [`Summary`]. An invalid run is not
//! judged: its numbers describe the generator, not the target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{Phase, Summary};

/// The `[slo]` section as written. Latencies in milliseconds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSection {
    pub assigned_p99_ms: Option<f64>,
    pub assigned_p999_ms: Option<f64>,
    pub max_failed: Option<u64>,
    /// Failed devices over devices started, 0 to 1.
    pub max_failure_ratio: Option<f64>,
    pub min_flows_per_second: Option<f64>,
    /// p99 bound per phase, keyed by [`Phase`] name: `{ tls_handshake = 50 }`.
    #[serde(default)]
    pub phase_p99_ms: BTreeMap<String, f64>,
}

/// A gate of `[slo]` whose value does not hold: the field (`slo.…`) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct SloError {
    pub field: &'static str,
    pub reason: String,
}

/// One gate: a bound on one figure of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// `assigned` p99 at most this many milliseconds.
    AssignedP99Ms(f64),
    AssignedP999Ms(f64),
    MaxFailed(u64),
    MaxFailureRatio(f64),
    MinFlowsPerSecond(f64),
    /// The phase's p99 at most this many milliseconds.
    PhaseP99Ms(Phase, f64),
}

/// The gates of a scenario, in a stable order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates(Vec<Gate>);

/// How one gate fared: its limit, what the run measured, whether it held (`None`: not judged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    pub limit: f64,
    /// `None` when the run measured nothing the gate reads (a latency gate on a phase no device
    /// reached, a failure count of a run that started no device, a rate of a run that assigned
    /// none): such a gate does not hold, so a run in which every device failed cannot pass
    /// `assigned_p99_ms`, nor an empty run `max_failed`.
    pub observed: Option<f64>,
    pub held: Option<bool>,
}

/// The `slo` object of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloVerdict {
    /// Every gate held (false when not judged).
    pub passed: bool,
    /// False for an invalid run: its numbers describe the generator, so no gate is judged.
    pub judged: bool,
    /// Why the gates were not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Keyed by the gate's name: `assigned_p99_ms`, `phase_p99_ms.tls_handshake`, ...
    pub gates: BTreeMap<String, GateVerdict>,
}

impl SloSection {
    /// Checks every value and phase name.
    pub fn resolve(&self) -> Result<Gates, SloError> {
        let mut gates = Vec::new();
        let ms = |field: &'static str, value: Option<f64>| match value {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                Err(SloError { field, reason: format!("{v} is not a positive number of milliseconds") })
            }
            v => Ok(v),
        };
        if let Some(v) = ms("slo.assigned_p99_ms", self.assigned_p99_ms)? {
            gates.push(Gate::AssignedP99Ms(v));
        }
        if let Some(v) = ms("slo.assigned_p999_ms", self.assigned_p999_ms)? {
            gates.push(Gate::AssignedP999Ms(v));
        }
        if let Some(v) = self.max_failed {
            gates.push(Gate::MaxFailed(v));
        }
        match self.max_failure_ratio {
            Some(v) if !(0.0..=1.0).contains(&v) => {
                let reason = format!("{v} is not a ratio between 0 and 1");
                return Err(SloError { field: "slo.max_failure_ratio", reason });
            }
            Some(v) => gates.push(Gate::MaxFailureRatio(v)),
            None => {}
        }
        match self.min_flows_per_second {
            Some(v) if !(v.is_finite() && v >= 0.0) => {
                let reason = format!("{v} is not a number of flows per second");
                return Err(SloError { field: "slo.min_flows_per_second", reason });
            }
            Some(v) => gates.push(Gate::MinFlowsPerSecond(v)),
            None => {}
        }
        for (name, limit) in &self.phase_p99_ms {
            let Some(phase) = Phase::parse(name) else {
                let reason = format!("unknown phase {name:?}; the phases are {}", Phase::names());
                return Err(SloError { field: "slo.phase_p99_ms", reason });
            };
            if let Some(v) = ms("slo.phase_p99_ms", Some(*limit))? {
                gates.push(Gate::PhaseP99Ms(phase, v));
            }
        }
        Ok(Gates(gates))
    }
}

impl Gate {
    /// The gate's key in `summary.json` and reports.
    pub fn name(&self) -> String {
        match self {
            Gate::AssignedP99Ms(_) => "assigned_p99_ms".into(),
            Gate::AssignedP999Ms(_) => "assigned_p999_ms".into(),
            Gate::MaxFailed(_) => "max_failed".into(),
            Gate::MaxFailureRatio(_) => "max_failure_ratio".into(),
            Gate::MinFlowsPerSecond(_) => "min_flows_per_second".into(),
            Gate::PhaseP99Ms(phase, _) => format!("phase_p99_ms.{phase}"),
        }
    }

    /// The limit, what `results` measured (`None`: nothing), and whether the limit held.
    pub fn check(&self, results: &Summary) -> (f64, Option<f64>, bool) {
        let ms = |phase: Phase, pick: fn(&crate::metrics::PhaseStats) -> u64| {
            results.phase(phase).filter(|p| p.count > 0).map(|p| pick(p) as f64 / 1000.0)
        };
        let devices = &results.devices;
        // A run that started no device, or assigned none, has no sample of these figures.
        let started = (devices.total > 0).then_some(devices);
        match *self {
            Gate::AssignedP99Ms(limit) => at_most(limit, ms(Phase::Assigned, |p| p.p99_us)),
            Gate::AssignedP999Ms(limit) => at_most(limit, ms(Phase::Assigned, |p| p.p999_us)),
            Gate::PhaseP99Ms(phase, limit) => at_most(limit, ms(phase, |p| p.p99_us)),
            Gate::MaxFailed(limit) => at_most(limit as f64, started.map(|d| d.failed as f64)),
            Gate::MaxFailureRatio(limit) => at_most(limit, started.map(|d| d.failed as f64 / d.total as f64)),
            Gate::MinFlowsPerSecond(limit) => {
                let observed = (devices.assigned > 0).then_some(results.flows_per_second);
                (limit, observed, observed.is_some_and(|rate| rate >= limit))
            }
        }
    }
}

fn at_most(limit: f64, observed: Option<f64>) -> (f64, Option<f64>, bool) {
    (limit, observed, observed.is_some_and(|observed| observed <= limit))
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Gate> {
        self.0.iter()
    }

    /// The verdict on `results`. `invalid` is why the run is invalid, if it is: then every
    /// gate shows its limit and observation, and none is judged.
    pub fn judge(&self, results: &Summary, invalid: Option<&str>) -> SloVerdict {
        let gates: BTreeMap<String, GateVerdict> = self
            .0
            .iter()
            .map(|gate| {
                let (limit, observed, held) = gate.check(results);
                (gate.name(), GateVerdict { limit, observed, held: invalid.is_none().then_some(held) })
            })
            .collect();
        match invalid {
            Some(why) => SloVerdict {
                passed: false,
                judged: false,
                reason: Some(format!("not judged: the run is invalid ({why})")),
                gates,
            },
            None => {
                SloVerdict { passed: gates.values().all(|g| g.held == Some(true)), judged: true, reason: None, gates }
            }
        }
    }
}

impl SloVerdict {
    /// The gates that failed, by name.
    pub fn failed(&self) -> impl Iterator<Item = &str> {
        self.gates.iter().filter(|(_, g)| g.held == Some(false)).map(|(name, _)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CountStats, DeviceCounts, PayloadCounts, PhaseStats};

    fn section(toml: &str) -> Result<Gates, SloError> {
        let section: SloSection = toml::from_str(toml).expect("the test TOML parses");
        section.resolve()
    }

    fn stats(p99_us: u64, p999_us: u64) -> PhaseStats {
        PhaseStats { count: 100, min_us: 1, mean_us: 1, p50_us: 1, p90_us: 1, p99_us, p999_us, max_us: p999_us }
    }

    fn results(failed: u64, flows_per_second: f64) -> Summary {
        let counts = CountStats { mean: 1.0, p50: 1, p99: 1, max: 1, devices_by_count: Default::default() };
        Summary {
            devices: DeviceCounts {
                total: 100,
                assigned: 100 - failed,
                failed,
                aborted: 0,
                not_finished: 0,
                not_started: 0,
            },
            flows_per_second,
            phases: [("assigned".to_string(), stats(80_000, 120_000)), ("tls_handshake".into(), stats(4_000, 9_000))]
                .into_iter()
                .collect(),
            register_attempts: counts.clone(),
            polls_per_device: counts,
            failures: BTreeMap::new(),
            failure_reasons: BTreeMap::new(),
            rates: None,
            statuses: BTreeMap::new(),
            retry_after_seconds: BTreeMap::new(),
            hubs: BTreeMap::new(),
            source_addresses: BTreeMap::new(),
            personalities: BTreeMap::new(),
            payloads: PayloadCounts::default(),
            certificates: Default::default(),
            stray_replies: 0,
            early_requests: 0,
            late_starts: 0,
        }
    }

    const ALL_GATES: &str = "assigned_p99_ms = 100\nassigned_p999_ms = 150\nmax_failed = 2\n\
                             max_failure_ratio = 0.05\nmin_flows_per_second = 50\n\
                             phase_p99_ms = { tls_handshake = 5 }\n";

    #[test]
    fn every_gate_holds_on_a_run_within_its_limits() {
        let verdict = section(ALL_GATES).unwrap().judge(&results(1, 80.0), None);
        assert!(verdict.passed && verdict.judged);
        assert_eq!(verdict.gates.len(), 6);
        let tls = &verdict.gates["phase_p99_ms.tls_handshake"];
        assert_eq!((tls.limit, tls.observed, tls.held), (5.0, Some(4.0), Some(true)));
        assert_eq!(verdict.gates["max_failure_ratio"].observed, Some(0.01));
    }

    #[test]
    fn each_gate_fails_on_its_own_figure() {
        let gates = section(ALL_GATES).unwrap();
        let mut slow = results(0, 80.0);
        slow.phases.insert("assigned".into(), stats(100_001, 120_000));
        let failed: Vec<String> = gates.judge(&slow, None).failed().map(String::from).collect();
        assert_eq!(failed, ["assigned_p99_ms"]);
        let failed: Vec<String> = gates.judge(&results(6, 40.0), None).failed().map(String::from).collect();
        assert_eq!(failed, ["max_failed", "max_failure_ratio", "min_flows_per_second"]);
    }

    #[test]
    fn a_latency_gate_on_a_phase_nothing_reached_does_not_hold() {
        let mut all_failed = results(100, 0.0);
        all_failed.phases.insert("assigned".into(), PhaseStats { count: 0, ..stats(0, 0) });
        let verdict = section("assigned_p99_ms = 100\nphase_p99_ms = { poll = 10 }").unwrap().judge(&all_failed, None);
        assert!(!verdict.passed);
        for name in ["assigned_p99_ms", "phase_p99_ms.poll"] {
            assert_eq!((verdict.gates[name].observed, verdict.gates[name].held), (None, Some(false)), "{name}");
        }
    }

    #[test]
    fn no_gate_holds_on_a_run_with_no_samples_of_its_figure() {
        // Every device failed: a floor on the rate cannot hold on no assignment, even at 0.
        let verdict = section("min_flows_per_second = 0").unwrap().judge(&results(100, 0.0), None);
        let rate = &verdict.gates["min_flows_per_second"];
        assert_eq!((rate.observed, rate.held, verdict.passed), (None, Some(false), false));
        // No device started: no failure count, no ratio, nothing to pass on.
        let mut empty = results(0, 0.0);
        empty.devices = DeviceCounts { total: 0, assigned: 0, failed: 0, aborted: 0, not_finished: 0, not_started: 0 };
        empty.phases.clear();
        let verdict = section(ALL_GATES).unwrap().judge(&empty, None);
        assert!(!verdict.passed && verdict.judged);
        for (name, gate) in &verdict.gates {
            assert_eq!((gate.observed, gate.held), (None, Some(false)), "{name}");
        }
    }

    #[test]
    fn an_invalid_run_is_not_judged() {
        let verdict = section(ALL_GATES).unwrap().judge(&results(50, 1.0), Some("schedule lag"));
        assert!(!verdict.passed && !verdict.judged);
        assert!(verdict.reason.as_deref().unwrap().contains("schedule lag"));
        assert!(verdict.gates.values().all(|g| g.held.is_none()));
        assert_eq!(verdict.failed().count(), 0);
    }

    #[test]
    fn unknown_phases_are_refused_with_the_accepted_names() {
        let error = section("phase_p99_ms = { tls = 50 }").unwrap_err();
        assert_eq!(error.field, "slo.phase_p99_ms");
        assert!(error.reason.contains("\"tls\""), "{error}");
        assert!(error.reason.contains("tls_handshake, ws_upgrade"), "{error}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        for (toml, field) in [
            ("assigned_p99_ms = -1", "slo.assigned_p99_ms"),
            ("assigned_p999_ms = 0", "slo.assigned_p999_ms"),
            ("max_failure_ratio = 1.5", "slo.max_failure_ratio"),
            ("min_flows_per_second = -3", "slo.min_flows_per_second"),
            ("phase_p99_ms = { connack = 0 }", "slo.phase_p99_ms"),
        ] {
            assert_eq!(section(toml).unwrap_err().field, field, "{toml}");
        }
        assert!(toml::from_str::<SloSection>("p99 = 3").is_err(), "unknown fields are refused");
    }
}
