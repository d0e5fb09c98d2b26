//! `dpsbench report compare`: the figures of two runs side by side with the change of each, as a
//! terminal table and as `compare.md`. Pure: two [`RunSummary`]s in, text out.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::expression::Verdict;
use super::micros;
use crate::metrics::{Phase, PhaseStats};
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
        for phase in Phase::ALL {
            let (Some(b), Some(c)) = (baseline.results.phase(phase), current.results.phase(phase)) else { continue };
            if b.count == 0 && c.count == 0 {
                continue;
            }
            for (stat, value) in PHASE_STATS {
                let name = format!("{phase}.{stat}");
                figures.push(Figure {
                    name,
                    unit: Unit::Micros,
                    baseline: value(b) as f64,
                    current: value(c) as f64,
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
        Self { figures, notes: notes(baseline, current) }
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
        for note in each.into_iter().flat_map(|c| c.notes) {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        Self { figures, notes }
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

/// The side-by-side table for the terminal, then one line per `--fail-if`.
pub fn table(comparison: &Comparison, baseline: &str, current: &str, verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "baseline {baseline}\ncurrent  {current}");
    for note in &comparison.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out);
    let runs = comparison.figures.iter().find_map(|f| f.spread).map(|s| s.runs);
    let baseline_header = runs.map_or("baseline".to_string(), |n| format!("mean of {n} ± sd"));
    let _ = writeln!(out, "{:<32} {:>22} {:>12}  change", "figure", baseline_header, "current");
    for f in &comparison.figures {
        let _ = writeln!(out, "{:<32} {:>22} {:>12}  {}", f.name, baseline_cell(f), f.format(f.current), f.change());
    }
    if !verdicts.is_empty() {
        let _ = writeln!(out);
    }
    for verdict in verdicts {
        let mark = if verdict.tripped { "TRIPPED" } else { "ok     " };
        let _ = writeln!(out, "{mark} --fail-if {}: {}", verdict.expression, verdict.observed);
    }
    out
}

/// A figure's baseline: the value, or the mean of several runs with their standard deviation.
fn baseline_cell(f: &Figure) -> String {
    match f.spread {
        Some(spread) => format!("{} ± {}", f.format(f.baseline), f.format(spread.sd)),
        None => f.format(f.baseline),
    }
}

/// The short form (`--summary`): the verdicts, and the figures that changed most, a few lines
/// instead of the whole table.
pub fn summary(comparison: &Comparison, baseline: &str, current: &str, verdicts: &[Verdict]) -> String {
    const MOST: usize = 5;
    let mut out = String::new();
    let _ = writeln!(out, "baseline {baseline}\ncurrent  {current}");
    for note in &comparison.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let mut changed: Vec<&Figure> = comparison.figures.iter().filter(|f| f.current != f.baseline).collect();
    changed.sort_by(|a, b| b.change_percent().abs().total_cmp(&a.change_percent().abs()));
    let _ = writeln!(out, "{} figures compared, {} changed", comparison.figures.len(), changed.len());
    for f in changed.iter().take(MOST) {
        let _ = writeln!(out, "  {:<32} {} -> {}  {}", f.name, baseline_cell(f), f.format(f.current), f.change());
    }
    for verdict in verdicts {
        let mark = if verdict.tripped { "TRIPPED" } else { "ok     " };
        let _ = writeln!(out, "{mark} --fail-if {}: {}", verdict.expression, verdict.observed);
    }
    out
}

/// `--json`: the comparison for programs: the runs, every figure (with its change and, over
/// several baseline runs, its spread) and every verdict.
pub fn json(comparison: &Comparison, baselines: &[String], current: &str, verdicts: &[Verdict]) -> Vec<u8> {
    let figures: Vec<serde_json::Value> = comparison
        .figures
        .iter()
        .map(|f| {
            let mut value = serde_json::to_value(f).expect("a figure serialises");
            let change = f.change_percent();
            value["change_percent"] = if change.is_finite() { change.into() } else { serde_json::Value::Null };
            if let Some(sd) = f.change_sd().filter(|sd| sd.is_finite()) {
                value["change_sd"] = sd.into();
            }
            value
        })
        .collect();
    let verdicts: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|v| serde_json::json!({ "expression": v.expression, "tripped": v.tripped, "observed": v.observed }))
        .collect();
    let value = serde_json::json!({
        "schema": "dpsbench.compare/v1",
        "baselines": baselines,
        "current": current,
        "notes": comparison.notes,
        "tripped": verdicts.iter().any(|v| v["tripped"] == true),
        "verdicts": verdicts,
        "figures": figures,
    });
    let mut bytes = serde_json::to_vec_pretty(&value).expect("a comparison serialises");
    bytes.push(b'\n');
    bytes
}

/// `compare.md`: the same table in Markdown, with the `--fail-if` verdicts first.
pub fn markdown(comparison: &Comparison, baseline: &str, current: &str, verdicts: &[Verdict]) -> Vec<u8> {
    let mut out = String::new();
    let _ = writeln!(out, "# dpsbench compare\n\nbaseline `{baseline}`, current `{current}`\n");
    for note in &comparison.notes {
        let _ = writeln!(out, "> ⚠️ {note}\n");
    }
    if !verdicts.is_empty() {
        let tripped = verdicts.iter().filter(|v| v.tripped).count();
        let headline = if tripped == 0 {
            "✅ no regression gate tripped".into()
        } else {
            format!("❌ {tripped} gate(s) tripped")
        };
        let _ = writeln!(out, "{headline}\n\n| gate | observed | verdict |\n|---|---|---|");
        for v in verdicts {
            let verdict = if v.tripped { "❌ tripped" } else { "✅ ok" };
            let _ = writeln!(out, "| `{}` | {} | {verdict} |", v.expression, v.observed);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "| figure | baseline | current | change |\n|---|---:|---:|---:|");
    for f in &comparison.figures {
        let _ = writeln!(out, "| `{}` | {} | {} | {} |", f.name, baseline_cell(f), f.format(f.current), f.change());
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(edit: impl FnOnce(&mut serde_json::Value)) -> RunSummary {
        let mut value = super::super::tests::summary();
        edit(&mut value);
        serde_json::from_value(value).expect("the test summary matches RunSummary")
    }

    #[test]
    fn figures_cover_phases_throughput_failures_retries_and_violations() {
        let baseline = summary(|_| {});
        let current = summary(|s| {
            s["phases"]["assigned"]["p99_us"] = 1_214_400.into();
            s["failures"] = serde_json::json!({ "tls": 3 });
            s["conformance"]["DPS-TOPIC-003"]["violations"] = 2.into();
        });
        let comparison = Comparison::of(&baseline, &current);
        let p99 = comparison.get("assigned.p99").unwrap();
        assert_eq!((p99.baseline, p99.current), (1_012_000.0, 1_214_400.0));
        assert!((p99.change_percent() - 20.0).abs() < 1e-9);
        assert_eq!(p99.change(), "+202.4ms (+20.0%)");
        assert!(comparison.get("ws_upgrade.p50").is_none(), "a phase neither run measured is left out");
        assert_eq!(comparison.get("failures.tls").unwrap().change(), "+3 (new)");
        assert_eq!(comparison.get("failures.refused_5").unwrap().current, 0.0);
        assert_eq!(comparison.get("violations").unwrap().current, 2.0);
        assert_eq!(comparison.get("violations.DPS-TOPIC-003").unwrap().baseline, 0.0);
        assert_eq!(comparison.get("flows_per_second").unwrap().change(), "=");
        assert!(comparison.notes.is_empty(), "{:?}", comparison.notes);
    }

    #[test]
    fn several_baselines_give_each_figure_its_mean_and_spread_and_a_gate_beyond_the_noise() {
        let run = |p99: u64, failed: u64| {
            summary(|s| {
                s["phases"]["assigned"]["p99_us"] = p99.into();
                s["devices"]["failed"] = failed.into();
            })
        };
        let baselines = [run(1_000_000, 0), run(1_020_000, 2), run(1_010_000, 1)];
        let refs: Vec<&RunSummary> = baselines.iter().collect();
        let current = run(1_050_000, 1);
        let comparison = Comparison::of_many(&refs, &current);
        let p99 = comparison.get("assigned.p99").unwrap();
        assert_eq!(p99.baseline, 1_010_000.0, "the mean");
        let spread = p99.spread.unwrap();
        assert_eq!((spread.runs, spread.min, spread.max), (3, 1_000_000.0, 1_020_000.0));
        assert!((spread.sd - 10_000.0).abs() < 1e-6, "{spread:?}");
        assert!((p99.change_sd().unwrap() - 4.0).abs() < 1e-9);
        let gate = |text: &str| super::super::expression::Expression::parse(text).unwrap().evaluate(&comparison);
        assert!(gate("assigned.p99 > +3sd").tripped, "4 sd beyond the noise");
        assert!(!gate("assigned.p99 > +5σ").tripped);
        assert!(gate("assigned.p99 > +3sd").observed.contains("+4.0 sd of 3 baseline runs"));
        assert!(!gate("failed > +1sd").tripped, "1 failure is the baselines' mean");
        // Baselines that agree to the last step: the floor (a thousandth of the mean) keeps a
        // step of rounding from counting as a change beyond the noise.
        let tied = [run(1_000_000, 0), run(1_000_000, 0)];
        let tied_refs: Vec<&RunSummary> = tied.iter().collect();
        let stepped = Comparison::of_many(&tied_refs, &run(1_001_000, 0));
        let p99 = stepped.get("assigned.p99").unwrap();
        assert_eq!(p99.spread.unwrap().sd, 1_000.0);
        assert!((p99.change_sd().unwrap() - 1.0).abs() < 1e-9, "{p99:?}");
        // A phase only one baseline run measured has no spread (and no zero dragging its mean).
        let mut without = run(1_000_000, 0);
        without.results.phases.remove("tls_handshake");
        let partial: Vec<&RunSummary> = vec![&without, &tied[0]];
        let tls = Comparison::of_many(&partial, &current).get("tls_handshake.p50").unwrap();
        assert_eq!(
            (tls.spread, tls.baseline),
            (None, Comparison::of(&tied[0], &current).get("tls_handshake.p50").unwrap().baseline)
        );
        // One baseline: no spread, and a gate in sd cannot trip (the CLI refuses it up front).
        let single = Comparison::of_many(&refs[..1], &current);
        assert_eq!(single, Comparison::of(&baselines[0], &current));
        assert!(!super::super::expression::Expression::parse("assigned.p99 > +1sd").unwrap().evaluate(&single).tripped);
        // The short form and the JSON say the same.
        let short = summary_text(&comparison);
        assert!(short.lines().count() < table(&comparison, "b", "c", &[]).lines().count() / 2, "{short}");
        assert!(short.contains("assigned.p99"), "{short}");
        let json: serde_json::Value = serde_json::from_slice(&json(&comparison, &["a".into()], "c", &[])).unwrap();
        let figure = json["figures"].as_array().unwrap().iter().find(|f| f["name"] == "assigned.p99").unwrap();
        assert_eq!(figure["spread"]["runs"], 3);
        assert!((figure["change_sd"].as_f64().unwrap() - 4.0).abs() < 1e-9);
    }

    fn summary_text(comparison: &Comparison) -> String {
        super::summary(comparison, "b", "c", &[])
    }

    #[test]
    fn figure_names_are_known_by_pattern() {
        assert_eq!(unit_of("tls_handshake.p99.9"), Some(Unit::Micros));
        assert_eq!(unit_of("failures.timeout_poll"), Some(Unit::Count));
        assert_eq!(unit_of("flows_per_second"), Some(Unit::PerSecond));
        for bad in ["tls.p99", "assigned.p98", "failures.", "latency", "assigned"] {
            assert_ne!(unit_of(bad), Some(Unit::Micros), "{bad}");
        }
        assert_eq!(unit_of("latency"), None);
    }

    #[test]
    fn compare_md_of_a_regression() {
        let baseline = summary(|_| {});
        let current = summary(|s| {
            s["phases"]["tls_handshake"]["p50_us"] = 2_600.into();
            s["flows_per_second"] = 91.0.into();
            s["devices"]["failed"] = 4.into();
            s["failures"] = serde_json::json!({ "timeout_poll": 4 });
            s["host"]["hostname"] = "bench-2".into();
        });
        let comparison = Comparison::of(&baseline, &current);
        let verdicts: Vec<Verdict> = ["tls_handshake.p50 > 5ms", "failed > 0"]
            .into_iter()
            .map(|e| super::super::expression::Expression::parse(e).unwrap().evaluate(&comparison))
            .collect();
        let text =
            String::from_utf8(markdown(&comparison, "reports/last-night", "reports/tonight", &verdicts)).unwrap();
        insta::assert_snapshot!(text);
    }
}
