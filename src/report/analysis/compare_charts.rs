//! The charts of `compare.html`: per phase the runs' latency-by-percentile curves overlaid (one
//! colour per run, its folder in the legend), and the trend strip of a series of runs (one small
//! line per figure, the runs in the order given). Pure: histograms and summaries in, SVG text out.

use std::fmt::Write as _;

use crate::metrics::{Phase, PhaseHistograms};
use crate::report::render::charts::{self, Series};
use crate::report::render::text::escape;
use crate::results::RunSummary;

/// One run of a comparison as the page draws it: its folder, its summary, and its whole-run
/// histograms (`latency.hlog` added up) or why it has none.
pub struct ChartedRun<'a> {
    pub label: String,
    pub summary: &'a RunSummary,
    pub latency: Result<&'a PhaseHistograms, String>,
}

/// What a phase's section of the page shows: the runs' curves overlaid, or "no data" and why.
pub enum PhaseChart {
    Curves { svg: String, notes: Vec<String> },
    NoData(String),
}

/// The curves of `phase` in every run that has a sample of it, on one "1 in N" axis. Each curve
/// is a `polyline` of class `run-curve` with the run's index in `data-run`, so a reader can
/// count them; a run without a sample of the phase keeps its colour and legend entry and says
/// why in `notes`.
pub fn phase_chart(phase: Phase, runs: &[ChartedRun<'_>], x_max: f64) -> PhaseChart {
    let mut notes = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let mut drawn: Vec<usize> = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let points = match &run.latency {
            Ok(latency) if !latency.get(phase).is_empty() => charts::percentile_points(latency.get(phase), x_max),
            Ok(_) => {
                notes.push(format!("{}: no sample of {phase}", run.label));
                Vec::new()
            }
            Err(why) => {
                notes.push(format!("{}: no curve: {why}", run.label));
                Vec::new()
            }
        };
        if !points.is_empty() {
            drawn.push(index);
        }
        series.push((run.label.clone(), points));
    }
    if drawn.is_empty() {
        return PhaseChart::NoData(no_data_reason(phase, runs));
    }
    let svg = charts::percentiles(&format!("{phase} by percentile"), &series, x_max);
    PhaseChart::Curves { svg: tag_curves(&svg, &drawn), notes }
}

/// Why no run has a curve of `phase`.
fn no_data_reason(phase: Phase, runs: &[ChartedRun<'_>]) -> String {
    if runs.iter().all(|run| run.summary.results.devices.total == 0) {
        return "no run started a device".into();
    }
    let missing: Vec<&str> = runs.iter().filter(|run| run.latency.is_err()).map(|run| run.label.as_str()).collect();
    let why = match phase {
        Phase::WebSocketUpgrade => "no run connected over WebSocket".to_string(),
        Phase::Assigned | Phase::AssignedRaw => "no device was assigned in any run".to_string(),
        _ => format!("none of the {} runs measured it", runs.len()),
    };
    match missing.as_slice() {
        [] => why,
        missing => format!("{why} ({} without latency.hlog)", missing.join(", ")),
    }
}

/// Marks the series' polylines (plotters draws one per series, in order, two pixels wide; axes
/// and ticks are one pixel wide) with `class="run-curve" data-run="INDEX"`.
fn tag_curves(svg: &str, drawn: &[usize]) -> String {
    let mut out = String::with_capacity(svg.len() + drawn.len() * 40);
    let mut rest = svg;
    let mut runs = drawn.iter();
    while let Some(at) = rest.find("<polyline") {
        let end = rest[at..].find("/>").map_or(rest.len(), |e| at + e);
        let element = &rest[at..end];
        out.push_str(&rest[..at]);
        match element.contains("stroke-width=\"2\"").then(|| runs.next()).flatten() {
            Some(run) => {
                let _ = write!(out, "<polyline class=\"run-curve\" data-run=\"{run}\"");
                out.push_str(&element["<polyline".len()..]);
            }
            None => out.push_str(element),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A figure of the trend strip: its name and how a run gives it (`None`: not measured).
pub type TrendFigure = (&'static str, fn(&RunSummary) -> Option<f64>, fn(f64) -> String);

/// The figures of the trend strip: the assigned p99 and the flows per second.
pub const TREND_FIGURES: [TrendFigure; 2] = [
    (
        "assigned.p99",
        |s| s.results.phase(Phase::Assigned).filter(|p| p.count > 0).map(|p| p.p99_us as f64),
        |us| crate::report::render::text::micros(us.round() as u64),
    ),
    (
        "flows_per_second",
        |s| (s.results.devices.total > 0).then_some(s.results.flows_per_second),
        |v| format!("{v:.1}/s"),
    ),
];

const TREND_WIDTH: f64 = 300.0;
const TREND_HEIGHT: f64 = 86.0;
/// Above and beside the line; below it, the runs' numbers.
const TREND_PAD: f64 = 10.0;
const TREND_LINE_HEIGHT: f64 = 56.0;
/// The least span of the strip's latency axis, as a share of the values' mean: a change of a
/// tenth of a percent stays a flat line, not a cliff.
const TREND_LEAST_SPAN: f64 = 0.1;

/// One small line of `figure` across `runs` in the order given: an SVG of class `trend` with
/// `data-figure`, a point per run that measured it (`circle` with `data-run` and `data-value`,
/// its folder and value as its title) over the run's number, and the first and last values and
/// the axis's range written under it.
pub fn trend_line(figure: &TrendFigure, runs: &[ChartedRun<'_>]) -> String {
    let (name, value_of, format) = figure;
    let values: Vec<Option<f64>> = runs.iter().map(|run| value_of(run.summary)).collect();
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let low = known.iter().copied().fold(f64::INFINITY, f64::min);
    let high = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = known.iter().sum::<f64>() / known.len().max(1) as f64;
    let span = (high - low).max(mean.abs() * TREND_LEAST_SPAN).max(f64::MIN_POSITIVE);
    let bottom = (low + high) / 2.0 - span / 2.0;
    let step = (TREND_WIDTH - 2.0 * TREND_PAD) / (runs.len().max(2) - 1) as f64;
    let y = |v: f64| TREND_PAD + TREND_LINE_HEIGHT - (v - bottom) / span * TREND_LINE_HEIGHT;
    let mut points = String::new();
    let mut dots = String::new();
    for (index, run) in runs.iter().enumerate() {
        let px = TREND_PAD + step * index as f64;
        let _ = write!(
            dots,
            "<text x=\"{px:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            TREND_HEIGHT - 4.0,
            index + 1
        );
        let Some(value) = values[index] else { continue };
        let py = y(value);
        let _ = write!(points, "{px:.1},{py:.1} ");
        let _ = write!(
            dots,
            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3.5\" fill=\"#1f77b4\" data-run=\"{index}\" data-value=\"{value}\">\
             <title>{}: {}</title></circle>",
            escape(&run.label),
            escape(&format(value))
        );
    }
    let ends = match (values.iter().flatten().next(), values.iter().flatten().last()) {
        (Some(first), Some(last)) => format!(
            "{} → {} (axis {} to {})",
            format(*first),
            format(*last),
            format(bottom.max(0.0)),
            format(bottom + span)
        ),
        _ => "no data: no run measured it".into(),
    };
    format!(
        "<div class=\"trend-figure\"><span class=\"trend-name\">{name}</span>\
         <svg class=\"trend\" data-figure=\"{name}\" width=\"{TREND_WIDTH}\" height=\"{TREND_HEIGHT}\" \
         viewBox=\"0 0 {TREND_WIDTH} {TREND_HEIGHT}\"><polyline class=\"trend-line\" fill=\"none\" stroke=\"#1f77b4\" \
         stroke-width=\"2\" points=\"{}\"/>{dots}</svg><span class=\"trend-ends\">{}</span></div>",
        points.trim_end(),
        escape(&ends)
    )
}

/// The "1 in N" axis's end shared by every phase chart: past the largest histogram of any run.
pub fn shared_axis_end(runs: &[ChartedRun<'_>]) -> f64 {
    let most = runs
        .iter()
        .filter_map(|run| run.latency.as_ref().ok())
        .flat_map(|latency| Phase::ALL.iter().map(|phase| latency.get(*phase).len()))
        .max()
        .unwrap_or(0);
    charts::percentile_axis_end(most)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_polylines_are_tagged_by_run_and_axes_are_not() {
        let svg = "<svg><polyline stroke-width=\"1\" points=\"0,0\"/><polyline stroke-width=\"2\" points=\"1,1\"/>\
                   <polyline stroke-width=\"2\" points=\"2,2\"/></svg>";
        let tagged = tag_curves(svg, &[0, 2]);
        assert_eq!(tagged.matches("class=\"run-curve\"").count(), 2, "{tagged}");
        assert!(tagged.contains("data-run=\"0\" stroke-width=\"2\" points=\"1,1\""), "{tagged}");
        assert!(tagged.contains("data-run=\"2\" stroke-width=\"2\" points=\"2,2\""), "{tagged}");
        assert!(tagged.contains("<polyline stroke-width=\"1\" points=\"0,0\"/>"), "{tagged}");
    }
}
