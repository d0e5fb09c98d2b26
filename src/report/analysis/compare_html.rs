//! `compare.html`: one self-contained page (no network: inline style, inline SVG, a content
//! security policy that forbids fetching anything) of `dpsbench report compare`: the `--fail-if`
//! verdicts first, then per phase the runs' percentile curves overlaid, the per-phase deltas of
//! the current run against the baseline (or the baselines' mean), the run figures, and over
//! three runs or more a trend strip in the order given. Pure: runs and a comparison in, bytes out.

use std::fmt::Write as _;

use super::compare::baseline_cell;
use super::compare_charts::{self, ChartedRun, PhaseChart, TREND_FIGURES};
use super::comparison::{Comparison, Figure, Unit};
use super::expression::Verdict;
use crate::metrics::Phase;
use crate::report::render::text::escape;

/// How many runs make a series worth a trend strip.
pub const TREND_RUNS: usize = 3;

/// `compare.html` of `runs` (the baselines in the order given, the current run last), their
/// comparison and the `--fail-if` verdicts.
pub fn page(runs: &[ChartedRun<'_>], comparison: &Comparison, verdicts: &[Verdict]) -> Vec<u8> {
    let (current, baselines) = runs.split_last().expect("a comparison has a current run and a baseline");
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'\">\n<title>dpsbench compare: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>dpsbench compare</h1>\n<p class=\"runs\">baseline{} {}; current <code>{}</code></p>\n\
         <p class=\"contents\"><a href=\"#verdicts\">gates</a> · <a href=\"#curves\">curves</a> · \
         <a href=\"#deltas\">deltas</a>{}</p>\n",
        escape(&current.label),
        if baselines.len() > 1 { "s" } else { "" },
        baselines.iter().map(|b| format!("<code>{}</code>", escape(&b.label))).collect::<Vec<_>>().join(", "),
        escape(&current.label),
        if runs.len() >= TREND_RUNS { " · <a href=\"#trend\">trend</a>" } else { "" },
    );
    for note in &comparison.notes {
        let _ = writeln!(out, "<p class=\"note\">note: {}</p>", escape(note));
    }
    write_verdicts(&mut out, verdicts);
    write_curves(&mut out, runs);
    let baseline_header = match baselines.len() {
        1 => "baseline".to_string(),
        n => format!("mean of {n} baselines"),
    };
    write_deltas(&mut out, comparison, &baseline_header);
    if runs.len() >= TREND_RUNS {
        write_trend(&mut out, runs);
    }
    out.push_str(CHECK_SCRIPT);
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

/// The `--fail-if` verdicts: each gate tripped or held, with what it observed.
fn write_verdicts(out: &mut String, verdicts: &[Verdict]) {
    out.push_str("<section id=\"verdicts\">\n<h2>Gates</h2>\n");
    if verdicts.is_empty() {
        out.push_str("<p>No <code>--fail-if</code> given: nothing gated.</p>\n</section>\n");
        return;
    }
    let tripped = verdicts.iter().filter(|v| v.tripped).count();
    let _ = match tripped {
        0 => writeln!(out, "<p class=\"held\">No gate tripped: {} held.</p>", verdicts.len()),
        n => writeln!(out, "<p class=\"tripped\">{n} of {} gates tripped.</p>", verdicts.len()),
    };
    out.push_str("<table class=\"verdicts\">\n<tr><th>gate</th><th>observed</th><th>verdict</th></tr>\n");
    for v in verdicts {
        let (class, word) = if v.tripped { ("tripped", "tripped") } else { ("held", "held") };
        let _ = writeln!(
            out,
            "<tr class=\"verdict {class}\"><td><code>--fail-if {}</code></td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
            escape(&v.expression),
            escape(&v.observed)
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// Per phase, the runs' curves overlaid on one "1 in N" axis, or "no data" and why.
fn write_curves(out: &mut String, runs: &[ChartedRun<'_>]) {
    out.push_str("<section id=\"curves\">\n<h2>Latency by percentile, run over run</h2>\n");
    let x_max = compare_charts::shared_axis_end(runs);
    for phase in Phase::ALL {
        let _ = match compare_charts::phase_chart(phase, runs, x_max) {
            PhaseChart::Curves { svg, notes } => writeln!(
                out,
                "<figure class=\"chart\" id=\"curves-{phase}\" data-phase=\"{phase}\">{svg}<figcaption>{phase}: \
                 one line per run{}</figcaption></figure>",
                notes.iter().map(|n| format!("; {}", escape(n))).collect::<String>()
            ),
            PhaseChart::NoData(why) => writeln!(
                out,
                "<p class=\"no-data\" id=\"curves-{phase}\" data-phase=\"{phase}\">{phase}: no data: {}</p>",
                escape(&why)
            ),
        };
    }
    out.push_str("</section>\n");
}

/// The per-phase deltas (p50 … max), then the run figures, each with its change and a mark where
/// it got worse.
fn write_deltas(out: &mut String, comparison: &Comparison, baseline_header: &str) {
    let columns =
        format!("<th>{}</th><th>current</th><th>change</th><th>%</th><th></th></tr>\n", escape(baseline_header));
    out.push_str("<section id=\"deltas\">\n<h2>Per-phase deltas</h2>\n<table class=\"deltas\">\n");
    let _ = write!(out, "<tr><th>phase</th><th>latency</th>{columns}");
    let latencies: Vec<&Figure> = comparison.figures.iter().filter(|f| f.unit == Unit::Micros).collect();
    let mut previous = "";
    for figure in &latencies {
        let (phase, stat) = figure.name.split_once('.').unwrap_or((&figure.name, ""));
        let lead = if phase == previous {
            format!("<td class=\"stat\">{}</td>", escape(stat))
        } else {
            let rows = latencies.iter().filter(|f| f.name.split_once('.').is_some_and(|(p, _)| p == phase)).count();
            format!(
                "<th class=\"phase\" rowspan=\"{rows}\"><code>{}</code></th><td class=\"stat\">{}</td>",
                escape(phase),
                escape(stat)
            )
        };
        previous = phase;
        write_row(out, comparison, figure, &lead);
    }
    out.push_str("</table>\n<h2>Run figures</h2>\n<table class=\"run-figures\">\n");
    let _ = write!(out, "<tr><th>figure</th>{columns}");
    for figure in comparison.figures.iter().filter(|f| f.unit != Unit::Micros) {
        write_row(out, comparison, figure, &format!("<td><code>{}</code></td>", escape(&figure.name)));
    }
    out.push_str("</table>\n</section>\n");
}

/// A row of a delta table after its `lead` cells (what it measures): the raw values in
/// `data-value` (microseconds for a latency), the change in percent in `data-percent`, the row
/// of class `worse` where it got worse.
fn write_row(out: &mut String, comparison: &Comparison, f: &Figure, lead: &str) {
    let unmeasured = comparison.unmeasured_now(&f.name);
    let worse = unmeasured || got_worse(f);
    let (current, change, percent) = if unmeasured {
        ("no samples".to_string(), "no samples".to_string(), String::new())
    } else {
        let percent = f.change_percent();
        let shown = match percent {
            0.0 => "=".to_string(),
            p if p.is_finite() => format!("{p:+.1}%"),
            _ => "new".to_string(),
        };
        (f.format(f.current), f.change(), shown)
    };
    let current_value = if unmeasured { String::new() } else { format!(" data-value=\"{}\"", f.current) };
    let percent_value = match f.change_percent() {
        p if p.is_finite() && !unmeasured => format!(" data-percent=\"{p}\""),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<tr data-figure=\"{}\"{class}>{lead}<td class=\"baseline\" data-value=\"{}\">{}</td>\
         <td class=\"current\"{current_value}>{}</td><td>{}</td><td class=\"percent\"{percent_value}>{}</td><td>{}</td></tr>",
        escape(&f.name),
        f.baseline,
        escape(&baseline_cell(f)),
        escape(&current),
        escape(&change),
        escape(&percent),
        if worse { "<span class=\"mark\" title=\"got worse\">▲ worse</span>" } else { "" },
        class = if worse { " class=\"worse\"" } else { "" },
    );
}

/// Whether a figure moved the bad way: a latency, count or mean up; the flows per second or the
/// devices assigned down.
fn got_worse(f: &Figure) -> bool {
    let lower_is_worse = matches!(f.name.as_str(), "flows_per_second" | "assigned");
    if lower_is_worse { f.current < f.baseline } else { f.current > f.baseline }
}

/// The trend strip: one small line per figure across the runs, in the order given.
fn write_trend(out: &mut String, runs: &[ChartedRun<'_>]) {
    out.push_str("<section id=\"trend\">\n<h2>Trend over the runs, in the order given</h2>\n<ol class=\"trend-runs\">");
    for run in runs {
        let _ = write!(out, "<li><code>{}</code></li>", escape(&run.label));
    }
    out.push_str("</ol>\n<div class=\"trend-strip\">");
    for figure in &TREND_FIGURES {
        out.push_str(&compare_charts::trend_line(figure, runs));
    }
    out.push_str("</div>\n</section>\n");
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}\
th:first-child,td:first-child,th.phase{text-align:left}th{background:#f2f2f2}th.phase{vertical-align:top}\
tr.worse td{background:#fdecea}td.stat,table.verdicts td,table.verdicts th{text-align:left}\
.mark{color:#b00;font-weight:bold}.tripped{color:#b00;font-weight:bold}.held{color:#060}.note{color:#a60}\
.no-data{color:#555;font-style:italic}figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}\
figcaption{font-size:0.9em;color:#555}.trend-strip{display:flex;flex-wrap:wrap;gap:1.5em}\
.trend-figure{display:flex;flex-direction:column}.trend-name{font-family:monospace}.trend-ends{font-size:0.9em;color:#555}";

/// Checks the page once laid out and reports to the console: a phase chart without a drawn
/// curve, a legend name running past its chart's edge (cut short). Counts the curves laid out
/// (`data-curves`) and the legend names whole (`data-legend-names-whole` of `data-legend-names`).
const CHECK_SCRIPT: &str = "<script>\n(function(){var curves=0,names=0,whole=0;\
document.querySelectorAll('figure.chart').forEach(function(f){var svg=f.querySelector('svg');\
var drawn=svg?svg.querySelectorAll('polyline.run-curve'):[];if(!drawn.length){console.error('no curve in '+f.id);}\
drawn.forEach(function(p){var b=p.getBBox();if(b.width>0||b.height>0){curves++;}});if(!svg){return;}\
var edge=svg.viewBox.baseVal&&svg.viewBox.baseVal.width||svg.width.baseVal.value;\
svg.querySelectorAll('g.legend text').forEach(function(t){names++;var b=t.getBBox();\
if(b.x+b.width>edge){console.error('legend name cut short in '+f.id+': '+t.textContent);}else{whole++;}});});\
document.body.setAttribute('data-curves',curves);document.body.setAttribute('data-legend-names',names);\
document.body.setAttribute('data-legend-names-whole',whole);})();\n</script>\n";

#[cfg(test)]
mod tests;
