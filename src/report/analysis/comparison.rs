//! What `dpsbench report compare` compares: the figures of a baseline (one run, or the mean and
//! spread of several) beside the current run's, with the change of each, and the notes that make
//! two runs less comparable than they look. Pure: [`RunSummary`]s in, a [`Comparison`] out.

use std::collections::BTreeSet;

use crate::metrics::{Phase, PhaseStats};
use crate::report::render::text::micros;
use crate::results::RunSummary;

/// What a figure measures, for formatting and for which thresholds apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A latency in microseconds.
    Micros,
    /// Devices, replies or violations.
    Count,
    PerSecond,
    /// A per-device mean.
    Mean,
}

/// A latency statistic: its name in a figure (`assigned.p99`) and how a phase gives it.
pub type PhaseStat = (&'static str, fn(&PhaseStats) -> u64);

/// A figure that is not per phase: its name, unit, and how a run gives it.
type RunFigure = (&'static str, Unit, fn(&RunSummary) -> f64);

/// Latency statistics compared per phase.
pub const PHASE_STATS: [PhaseStat; 5] = [
    ("p50", |p| p.p50_us),
    ("p90", |p| p.p90_us),
    ("p99", |p| p.p99_us),
    ("p99.9", |p| p.p999_us),
    ("max", |p| p.max_us),
];

/// Figures that are not per phase, with their unit and value.
const FIGURES: [RunFigure; 9] = [
    ("flows_per_second", Unit::PerSecond, |s| s.results.flows_per_second),
    ("assigned", Unit::Count, |s| s.results.devices.assigned as f64),
    ("failed", Unit::Count, |s| s.results.devices.failed as f64),
    ("aborted", Unit::Count, |s| s.results.devices.aborted as f64),
    ("register_attempts.mean", Unit::Mean, |s| s.results.register_attempts.mean),
    ("register_attempts.max", Unit::Count, |s| s.results.register_attempts.max as f64),
    ("polls.mean", Unit::Mean, |s| s.results.polls_per_device.mean),
    ("throttled", Unit::Count, |s| s.results.throttled() as f64),
    ("violations", Unit::Count, |s| s.conformance.values().map(|c| c.violations).sum::<u64>() as f64),
];

/// One figure of both runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figure {
    pub name: String,
    #[serde(skip)]
    pub unit: Unit,
    /// The baseline's value; over several baseline runs, their mean.
    pub baseline: f64,
    pub current: f64,
    /// Over several baseline runs: how their values spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// How a figure spread over the baseline runs: the noise a change must stand out of.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub runs: usize,
    /// The sample standard deviation (n - 1).
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of two values or more (`None` for fewer: one value has no spread). The
    /// standard deviation is at least the figure's resolution, or a thousandth of the mean
    /// (latencies are kept to three significant digits): runs that agree to the last step do
    /// not make every later step a change beyond the noise.
    fn of(values: &[f64], unit: Unit) -> Option<Self> {
        if values.len() < 2 {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let resolution: f64 = match unit {
            Unit::Micros | Unit::Count => 1.0,
            Unit::PerSecond => 0.1,
            Unit::Mean => 0.01,
        };
        let floor = resolution.max(mean.abs() * 0.001);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Spread { runs: values.len(), sd: variance.sqrt().max(floor), min, max })
    }
}

/// Every figure of two runs, in table order, and what makes them less comparable.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub figures: Vec<Figure>,
    /// Differences of scenario or host, and runs whose numbers describe the generator.
    pub notes: Vec<String>,
    /// Phases a baseline run measured and the current run has no sample of: their latencies
    /// read 0 in `figures`, which is no improvement (a gate on them trips).
    pub unmeasured: BTreeSet<Phase>,
    /// The current run started no device: none of its figures has a sample.
    pub current_empty: bool,
}

impl Figure {
    /// The change from baseline to current in percent; infinite when the baseline is 0 and the
    /// current is not.
    pub fn change_percent(&self) -> f64 {
        if self.current == self.baseline {
            0.0
        } else if self.baseline == 0.0 {
            f64::INFINITY.copysign(self.current)
        } else {
            (self.current - self.baseline) / self.baseline.abs() * 100.0
        }
    }

    /// A value of this figure, for people.
    pub fn format(&self, value: f64) -> String {
        match self.unit {
            Unit::Micros => micros(value.max(0.0).round() as u64),
            Unit::Count => format!("{value:.0}"),
            Unit::PerSecond => format!("{value:.1}/s"),
            Unit::Mean => format!("{value:.2}"),
        }
    }

    /// The change in standard deviations of the baseline runs (`None` without a spread: fewer
    /// than two baseline runs measured the figure).
    pub fn change_sd(&self) -> Option<f64> {
        let spread = self.spread?;
        // The spread's floor keeps sd above zero.
        Some((self.current - self.baseline) / spread.sd)
    }

    /// The change, e.g. `+1.2ms (+12.3%)`, or `=` when there is none.
    pub fn change(&self) -> String {
        if self.current == self.baseline {
            return "=".into();
        }
        let delta = self.current - self.baseline;
        let sign = if delta > 0.0 { "+" } else { "-" };
        let percent = self.change_percent();
        let percent = if percent.is_finite() { format!(" ({percent:+.1}%)") } else { " (new)".into() };
        format!("{sign}{}{percent}", self.format(delta.abs()))
    }
}

/// The unit of a figure named `name`, if there can be one by that name (whether or not either
/// run has it): `<phase>.<p50|p90|p99|p99.9|max>`, the fixed figures, `failures.<kind>`,
/// `violations.<check>`.
pub fn unit_of(name: &str) -> Option<Unit> {
    if let Some((_, unit, _)) = FIGURES.iter().find(|(n, _, _)| *n == name) {
        return Some(*unit);
    }
    if let Some((head, tail)) = name.split_once('.') {
        if Phase::parse(head).is_some() && PHASE_STATS.iter().any(|(stat, _)| *stat == tail) {
            return Some(Unit::Micros);
        }
        if matches!(head, "failures" | "violations") && !tail.is_empty() {
            return Some(Unit::Count);
        }
    }
    None
}

/// The names `unit_of` accepts, for error messages.
pub fn figure_names() -> String {
    let fixed: Vec<&str> = FIGURES.iter().map(|(name, _, _)| *name).collect();
    format!(
        "<phase>.p50|p90|p99|p99.9|max (phases: {}), {}, failures.<kind>, violations.<check>",
        Phase::names(),
        fixed.join(", ")
    )
}

impl Comparison {
    pub fn of(baseline: &RunSummary, current: &RunSummary) -> Self {
        let mut figures = Vec::new();
        let mut unmeasured = BTreeSet::new();
        for phase in Phase::ALL {
            let Some(b) = baseline.results.phase(phase) else { continue };
            let c = current.results.phase(phase).filter(|c| c.count > 0);
            if b.count == 0 && c.is_none() {
                continue;
            }
            if c.is_none() {
                unmeasured.insert(phase);
            }
            for (stat, value) in PHASE_STATS {
                let name = format!("{phase}.{stat}");
                figures.push(Figure {
                    name,
                    unit: Unit::Micros,
                    baseline: value(b) as f64,
                    current: c.map_or(0.0, |c| value(c) as f64),
                    spread: None,
                });
            }
        }
        for (name, unit, value) in FIGURES {
            figures.push(Figure {
                name: name.into(),
                unit,
                baseline: value(baseline),
                current: value(current),
                spread: None,
            });
        }
        let kinds: BTreeSet<&String> =
            baseline.results.failures.keys().chain(current.results.failures.keys()).collect();
        for kind in kinds {
            let count = |s: &RunSummary| s.results.failures.get(kind).copied().unwrap_or(0) as f64;
            let name = format!("failures.{kind}");
            figures.push(Figure {
                name,
                unit: Unit::Count,
                baseline: count(baseline),
                current: count(current),
                spread: None,
            });
        }
        let violations = |s: &RunSummary, id: &str| s.conformance.get(id).map_or(0, |c| c.violations) as f64;
        let checks: BTreeSet<&String> = baseline.conformance.keys().chain(current.conformance.keys()).collect();
        for id in checks {
            let (b, c) = (violations(baseline, id), violations(current, id));
            if b > 0.0 || c > 0.0 {
                figures.push(Figure {
                    name: format!("violations.{id}"),
                    unit: Unit::Count,
                    baseline: b,
                    current: c,
                    spread: None,
                });
            }
        }
        let current_empty = current.results.devices.total == 0;
        Self { figures, notes: notes(baseline, current), unmeasured, current_empty }
    }

    /// `current` against several baseline runs: each figure's baseline is their mean, with its
    /// spread (a figure some baseline runs lack counts 0 in them when it is a count, and is
    /// left out of those runs otherwise). One baseline is [`Comparison::of`].
    pub fn of_many(baselines: &[&RunSummary], current: &RunSummary) -> Self {
        let [first, rest @ ..] = baselines else { panic!("compare needs at least one baseline run") };
        if rest.is_empty() {
            return Self::of(first, current);
        }
        let each: Vec<Comparison> = baselines.iter().map(|b| Self::of(b, current)).collect();
        let mut names: Vec<(String, Unit)> = Vec::new();
        for figure in each.iter().flat_map(|c| &c.figures) {
            if !names.iter().any(|(n, _)| *n == figure.name) {
                names.push((figure.name.clone(), figure.unit));
            }
        }
        let figures = names
            .into_iter()
            .filter_map(|(name, unit)| {
                // A latency of a phase a baseline run never measured is no value of that run.
                let measured = |b: &RunSummary| {
                    unit != Unit::Micros
                        || name
                            .split_once('.')
                            .and_then(|(phase, _)| b.results.phases.get(phase))
                            .is_some_and(|p| p.count > 0)
                };
                let found: Vec<Figure> =
                    each.iter().zip(baselines).filter(|(_, b)| measured(b)).filter_map(|(c, _)| c.get(&name)).collect();
                let current = each.iter().find_map(|c| c.get(&name))?.current;
                if found.is_empty() {
                    return Some(Figure { name, unit, baseline: 0.0, current, spread: None });
                }
                let values: Vec<f64> = found.iter().map(|f| f.baseline).collect();
                let baseline = values.iter().sum::<f64>() / values.len() as f64;
                Some(Figure { name, unit, baseline, current, spread: Spread::of(&values, unit) })
            })
            .collect();
        let mut notes: Vec<String> = Vec::new();
        let mut unmeasured = BTreeSet::new();
        for comparison in each {
            unmeasured.extend(comparison.unmeasured);
            for note in comparison.notes {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        Self { figures, notes, unmeasured, current_empty: current.results.devices.total == 0 }
    }

    /// Whether `name` has no sample in the current run: a latency of a phase it never measured
    /// (its baseline did), or any figure of a run that started no device. Its 0 is no value.
    pub fn unmeasured_now(&self, name: &str) -> bool {
        self.current_empty
            || name
                .split_once('.')
                .and_then(|(phase, _)| Phase::parse(phase))
                .is_some_and(|p| self.unmeasured.contains(&p))
    }

    /// The figure named `name`; a failure kind or check neither run has counts 0 in both.
    pub fn get(&self, name: &str) -> Option<Figure> {
        if let Some(figure) = self.figures.iter().find(|f| f.name == name) {
            return Some(figure.clone());
        }
        (unit_of(name) == Some(Unit::Count) && (name.starts_with("failures.") || name.starts_with("violations.")))
            .then(|| Figure { name: name.into(), unit: Unit::Count, baseline: 0.0, current: 0.0, spread: None })
    }
}

/// What makes two runs less comparable than they look.
fn notes(baseline: &RunSummary, current: &RunSummary) -> Vec<String> {
    let mut notes = Vec::new();
    let (b, c) = (&baseline.scenario, &current.scenario);
    if (&b.name, b.devices, &b.arrival) != (&c.name, c.devices, &c.arrival) {
        notes.push(format!(
            "the runs ran different plans: {} ({} devices, {}) and {} ({} devices, {})",
            b.name, b.devices, b.arrival, c.name, c.devices, c.arrival
        ));
    }
    let (bh, ch) = (&baseline.host, &current.host);
    if (&bh.hostname, bh.cpus) != (&ch.hostname, ch.cpus) {
        notes.push(format!(
            "the runs ran on different hosts: {} ({} CPUs) and {} ({} CPUs)",
            bh.hostname, bh.cpus, ch.hostname, ch.cpus
        ));
    }
    for (which, run) in [("baseline", baseline), ("current", current)] {
        if !run.validity.valid {
            notes.push(format!("the {which} run is invalid: its numbers describe the generator"));
        }
        if let Some(why) = run.partial_reason() {
            notes.push(format!("the {which} run is partial ({why})"));
        }
    }
    notes
}
