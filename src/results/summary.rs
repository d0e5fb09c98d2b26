//! What `summary.json` holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::GeneratorCost;
use crate::conformance::passive::CheckCounts;
use crate::metrics::Summary;
use crate::slo::SloVerdict;

/// Identifies the format of `summary.json`; bump on incompatible changes.
pub const SUMMARY_SCHEMA: &str = "dpsbench.summary/v1";

/// Whether the generator kept up with its plan: when it did not, its numbers describe the
/// generator, not the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validity {
    /// Whether the generator kept its plan; false also when it was not judged (see
    /// [`Validity::NOT_JUDGED`]): a verdict never passes on nothing.
    pub valid: bool,
    /// Why the run is invalid (empty when valid).
    pub reasons: Vec<String>,
    pub schedule_lag_p99_us: u64,
    /// How late a 10 ms timer on the runtime fired, p99: high values mean the runtime (CPU) was
    /// saturated.
    pub runtime_stall_p99_us: u64,
    /// How late a thread outside the runtime woke from a 10 ms sleep, p99: what this machine
    /// gives any thread (the hypervisor, other processes), the floor under the runtime's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_stall_p99_us: Option<u64>,
    /// The share of the machine's CPU time its hypervisor took during the run (Linux `steal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_percent: Option<f64>,
    /// When the target stopped answering waiting devices (and then answered them at once):
    /// those windows and the schedule lag outside them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_stalls: Option<TargetStalls>,
}

impl Validity {
    /// The one reason of a report whose run ended before it could be judged (rebuilt by `report
    /// render` from a killed run's per-second files).
    pub const NOT_JUDGED: &'static str =
        "not judged: the run was killed before it ended, and this report was rebuilt from its per-second files";

    /// Whether validity was not judged at all.
    pub fn not_judged(&self) -> bool {
        !self.valid && self.reasons.iter().any(|reason| reason == Self::NOT_JUDGED)
    }
}

/// The windows in which a run's target stopped answering for at least 250 ms while devices
/// waited on it and the generator's runtime was on time, each until the generator had caught up
/// with the answers that then came at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStalls {
    pub count: u64,
    pub seconds: f64,
    pub longest_seconds: f64,
    /// Devices whose intended start fell in a window.
    pub starts_within: u64,
    /// Schedule lag p99 of the starts outside every window.
    pub schedule_lag_p99_outside_us: u64,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema: String,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    pub host: HostInfo,
    pub started_at: String,
    pub duration_seconds: f64,
    /// True when the run ended early (interrupt or `max_duration_seconds`).
    pub partial: bool,
    pub validity: Validity,
    /// The open-files limit the run had.
    pub open_files_limit: u64,
    /// Things the run decided that the user should know (e.g. an in-flight cap from the limit).
    pub notes: Vec<String>,
    #[serde(flatten)]
    pub results: Summary,
    /// Passive conformance checks by ID: flows checked, violations, first examples.
    pub conformance: BTreeMap<String, CheckCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator: Option<EmulatorCounts>,
    /// What generating the load cost this process in CPU; absent from summaries before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorCost>,
    /// The verdict on the scenario's `[slo]` gates; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloVerdict>,
    /// Which part of which plan this run was (`0/1` unsharded); absent from summaries before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// Set by `report merge`: the shards this summary adds up, and those missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
    /// The client checks the devices broke on purpose (`[devices] misbehave`); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misbehave: Vec<crate::device::Misbehaviour>,
}

/// The shard a run was, of which plan, and how close to `--start-at` it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u64,
    pub count: u64,
    /// The same for every shard of one plan (see `shard::plan_hash`).
    pub plan_hash: String,
    /// `--start-at`, RFC 3339, when given.
    pub start_at: Option<String>,
    /// Where the plan's zero fell from `start_at`, in seconds (positive: late).
    pub start_offset_seconds: Option<f64>,
}

/// What `report merge` added up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeInfo {
    /// Each shard merged: its index, folder, host and start offset.
    pub shards: Vec<MergedShard>,
    /// Indexes of the plan's shards that were not given (the result is then `partial`).
    pub missing: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    pub index: u64,
    pub folder: String,
    pub hostname: String,
    pub started_at: String,
    pub start_offset_seconds: Option<f64>,
}

impl RunSummary {
    /// Exit status of `dpsbench run`: 0 when every device was assigned, else 1.
    pub fn all_assigned(&self) -> bool {
        !self.partial && self.results.devices.assigned == self.results.devices.total
    }

    /// Why the summary is partial, in a few words (none when it is whole): a merge with shards
    /// missing says so; otherwise the run (or a merged shard) stopped early.
    pub fn partial_reason(&self) -> Option<String> {
        if !self.partial {
            return None;
        }
        Some(match &self.merged {
            Some(merged) if !merged.missing.is_empty() => {
                let missing: Vec<String> = merged.missing.iter().map(u64::to_string).collect();
                let of = merged.shards.len() + merged.missing.len();
                format!("{} of {of} shards missing: {}", merged.missing.len(), missing.join(", "))
            }
            Some(_) => "a shard stopped early".into(),
            None => "stopped early".into(),
        })
    }

    /// Whether the `[slo]` gates (if any) held. An invalid run's gates are not judged: false.
    pub fn gates_held(&self) -> bool {
        self.slo.as_ref().is_none_or(|slo| slo.passed)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    /// Most devices the run may start.
    pub devices: u64,
    /// The load model, e.g. `constant 200/s`.
    pub arrival: String,
    /// Arrivals stop after this many seconds, if set.
    pub duration_seconds: Option<f64>,
    /// The fields `dpsbench run`'s flags replaced (`--count 1000`: `devices.count`), in the
    /// order given; the figures above are the effective ones.
    #[serde(default)]
    pub overrides: Vec<crate::scenario::Applied>,
}

impl ScenarioInfo {
    /// The overrides as typed (`--count 30 --rate 100`), for the reports; `None` without any.
    pub fn typed_overrides(&self) -> Option<String> {
        let typed: Vec<String> = self.overrides.iter().map(|o| format!("{} {}", o.flag, o.value)).collect();
        (!typed.is_empty()).then(|| typed.join(" "))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub kind: String,
    pub address: String,
    pub id_scope: String,
}

/// The machine a run was measured on, so figures can be compared honestly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub cpus: usize,
    pub os: String,
    pub dpsbench_version: String,
}

/// What the embedded emulator served during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmulatorCounts {
    pub connections: u64,
    pub connects_refused: u64,
    pub registrations: u64,
    pub polls: u64,
    pub throttled: u64,
    /// Faults injected on demand, by `[faults]` field (only those injected at least once).
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
}

impl EmulatorCounts {
    /// Adds another emulator's counters (every field named, so none is forgotten).
    pub fn add(&mut self, other: &EmulatorCounts) {
        let EmulatorCounts { connections, connects_refused, registrations, polls, throttled, faults } = other;
        self.connections += connections;
        self.connects_refused += connects_refused;
        self.registrations += registrations;
        self.polls += polls;
        self.throttled += throttled;
        crate::metrics::add_counts(&mut self.faults, faults);
    }
}
