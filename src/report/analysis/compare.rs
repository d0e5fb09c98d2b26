//! `dpsbench report compare`'s output: a [`Comparison`] and the `--fail-if` verdicts as a
//! terminal table, a short summary, JSON and `compare.md`. Pure: a comparison in, text out.

use std::fmt::Write as _;

use super::comparison::{Comparison, Figure};
use super::expression::Verdict;

/// The schema name of `report compare --json`'s output.
pub const COMPARE_SCHEMA: &str = "dpsbench.compare/v1";

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
        let (current, change) = current_cells(comparison, f);
        let _ = writeln!(out, "{:<32} {:>22} {:>12}  {change}", f.name, baseline_cell(f), current);
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
pub(super) fn baseline_cell(f: &Figure) -> String {
    match f.spread {
        Some(spread) => format!("{} ± {}", f.format(f.baseline), f.format(spread.sd)),
        None => f.format(f.baseline),
    }
}

/// A figure's current value and change: `no samples` for a latency the current run did not
/// measure (its 0 is no value).
fn current_cells(comparison: &Comparison, f: &Figure) -> (String, String) {
    if comparison.unmeasured_now(&f.name) {
        ("no samples".into(), "no samples".into())
    } else {
        (f.format(f.current), f.change())
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
        let (current, change) = current_cells(comparison, f);
        let _ = writeln!(out, "  {:<32} {} -> {current}  {change}", f.name, baseline_cell(f));
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
            if comparison.unmeasured_now(&f.name) {
                value["current"] = serde_json::Value::Null;
                value["change_percent"] = serde_json::Value::Null;
            }
            value
        })
        .collect();
    let verdicts: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|v| serde_json::json!({ "expression": v.expression, "tripped": v.tripped, "observed": v.observed }))
        .collect();
    let value = serde_json::json!({
        "schema": COMPARE_SCHEMA,
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
        let (current, change) = current_cells(comparison, f);
        let _ = writeln!(out, "| `{}` | {} | {current} | {change} |", f.name, baseline_cell(f));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests;
