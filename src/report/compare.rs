//! `dpsbench report compare`: the figures of two runs side by side with the change of each, as a
//! terminal table and as `compare.md`. Pure: two [`RunSummary`]s in, text out.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::expression::Verdict;
use super::micros;
use crate::metrics::{Phase, PhaseStats};
use crate::runner::RunSummary;

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
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: String,
    pub unit: Unit,
    pub baseline: f64,
    pub current: f64,
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
                figures.push(Figure { name, unit: Unit::Micros, baseline: value(b) as f64, current: value(c) as f64 });
            }
        }
        for (name, unit, value) in FIGURES {
            figures.push(Figure { name: name.into(), unit, baseline: value(baseline), current: value(current) });
        }
        let kinds: BTreeSet<&String> =
            baseline.results.failures.keys().chain(current.results.failures.keys()).collect();
        for kind in kinds {
            let count = |s: &RunSummary| s.results.failures.get(kind).copied().unwrap_or(0) as f64;
            let name = format!("failures.{kind}");
            figures.push(Figure { name, unit: Unit::Count, baseline: count(baseline), current: count(current) });
        }
        let violations = |s: &RunSummary, id: &str| s.conformance.get(id).map_or(0, |c| c.violations) as f64;
        let checks: BTreeSet<&String> = baseline.conformance.keys().chain(current.conformance.keys()).collect();
        for id in checks {
            let (b, c) = (violations(baseline, id), violations(current, id));
            if b > 0.0 || c > 0.0 {
                figures.push(Figure { name: format!("violations.{id}"), unit: Unit::Count, baseline: b, current: c });
            }
        }
        Self { figures, notes: notes(baseline, current) }
    }

    /// The figure named `name`; a failure kind or check neither run has counts 0 in both.
    pub fn get(&self, name: &str) -> Option<Figure> {
        if let Some(figure) = self.figures.iter().find(|f| f.name == name) {
            return Some(figure.clone());
        }
        (unit_of(name) == Some(Unit::Count) && (name.starts_with("failures.") || name.starts_with("violations.")))
            .then(|| Figure { name: name.into(), unit: Unit::Count, baseline: 0.0, current: 0.0 })
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
    let _ = writeln!(out, "{:<32} {:>12} {:>12}  change", "figure", "baseline", "current");
    for f in &comparison.figures {
        let _ =
            writeln!(out, "{:<32} {:>12} {:>12}  {}", f.name, f.format(f.baseline), f.format(f.current), f.change());
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
        let _ = writeln!(out, "| `{}` | {} | {} | {} |", f.name, f.format(f.baseline), f.format(f.current), f.change());
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
