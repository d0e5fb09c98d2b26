//! `report.html`: one self-contained page (no network: inline style, inline SVG charts, a
//! content security policy that forbids fetching anything) built from a [`Report`] alone, so
//! `dpsbench report render` can rebuild it after a merge; each phase's latency over time and its
//! window selection are [`super::html_window`]'s. Pure: a report in, bytes out.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::{self, Series};
use super::text::escape;
use crate::metrics::{Phase, PhaseHistograms};
use crate::report::format::intervals::LatencyIntervals;
use crate::report::format::report::{InputError, Report};
use crate::report::format::timeseries::Row;
use crate::results::RunSummary;

/// `report.html` of `report`, or why it cannot be drawn: it needs the per-second rows and the
/// latencies (a folder's `timeseries.csv` and `latency.hlog`).
pub fn of(report: &Report) -> Result<Vec<u8>, &InputError> {
    let (series, latency) = report.charted()?;
    Ok(page(&report.summary, series, latency, &report.intervals))
}

/// The page of a run's summary, its rows a second, its whole-run histograms and each second's
/// latencies.
pub fn page(s: &RunSummary, series: &[Row], latency: &PhaseHistograms, intervals: &LatencyIntervals) -> Vec<u8> {
    let title = format!("dpsbench: {} against {}", s.scenario.name, s.target.address);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    super::html_tables::write_tables(&mut out, s);
    super::html_window::write_section(&mut out, s, intervals);
    out.push_str("<h2>Charts</h2>\n");
    for (id, caption, svg) in charts_of(s, series, latency) {
        let _ = match svg {
            Some(svg) => writeln!(
                out,
                "<figure class=\"chart\" id=\"{id}\">{svg}<figcaption>{}</figcaption></figure>",
                escape(&caption)
            ),
            // Nothing to draw: a line says so, rather than an empty 0-1 chart.
            None => writeln!(out, "<p class=\"no-chart\" id=\"{id}\">{}</p>", escape(&caption)),
        };
    }
    out.push_str(CHECK_SCRIPT);
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

/// A chart of the page: its element ID, caption and SVG (none when there is nothing to draw).
type Chart = (&'static str, String, Option<String>);

/// Every chart, in page order; one with nothing to draw is a line saying "no data" and why.
fn charts_of(summary: &RunSummary, series: &[Row], latency: &PhaseHistograms) -> Vec<Chart> {
    let empty = super::no_data::charts_without_data(&summary.results, Some(series));
    drawn_charts(summary, series, latency)
        .into_iter()
        .map(|chart| match empty.iter().find(|e| e.id == chart.0) {
            Some(empty) => (chart.0, empty.line(), None),
            None => chart,
        })
        .collect()
}

/// Every chart drawn, in page order.
fn drawn_charts(summary: &RunSummary, series: &[Row], latency: &PhaseHistograms) -> Vec<Chart> {
    let mut charts = latency_charts(latency);
    charts.extend(series_charts(series));
    let r = &summary.results;
    charts.push((
        "register-attempts",
        "Register requests per device (more than one: retried after 429 or an error)".into(),
        Some(charts::distribution(
            "Register attempts per device",
            "register attempts",
            &numeric_keys(&r.register_attempts.devices_by_count),
        )),
    ));
    charts.push((
        "polls",
        "Status polls per device".into(),
        Some(charts::distribution("Polls per device", "polls", &numeric_keys(&r.polls_per_device.devices_by_count))),
    ));
    charts
}

/// Latency by percentile from the whole-run histograms: `assigned` beside `assigned_raw`, then
/// the rest.
fn latency_charts(totals: &PhaseHistograms) -> Vec<Chart> {
    let most = Phase::ALL.iter().map(|p| totals.get(*p).len()).max().unwrap_or(0);
    let x_max = charts::percentile_axis_end(most);
    let phase_series = |phases: &[Phase]| -> Vec<Series> {
        phases
            .iter()
            .filter(|phase| !totals.get(**phase).is_empty())
            .map(|phase| (phase.as_str().to_string(), charts::percentile_points(totals.get(*phase), x_max)))
            .collect()
    };
    let others: Vec<Phase> =
        Phase::ALL.into_iter().filter(|p| !matches!(p, Phase::Assigned | Phase::AssignedRaw)).collect();
    vec![
        (
            "latency-assigned",
            "assigned (from the intended start) beside assigned_raw (from the actual start): where they \
             differ, the generator started devices late and assigned_raw hides it (coordinated omission)"
                .into(),
            Some(charts::percentiles_side_by_side(
                "Time to assignment by percentile",
                &phase_series(&[Phase::Assigned, Phase::AssignedRaw]),
                x_max,
            )),
        ),
        (
            "latency-phases",
            "Every other phase by percentile (log latency axis); end_to_end counts every device that ended: \
             assigned, failed or aborted"
                .into(),
            Some(charts::percentiles("Phases by percentile", &phase_series(&others), x_max)),
        ),
    ]
}

/// The run over time and its failures, from `timeseries.csv`.
fn series_charts(rows: &[Row]) -> Vec<Chart> {
    let arrivals: Vec<(f64, f64)> = rows
        .windows(2)
        .map(|w| {
            let seconds = (w[1].elapsed_s - w[0].elapsed_s).max(0.001);
            (w[1].elapsed_s, w[1].started.saturating_sub(w[0].started) as f64 / seconds)
        })
        .collect();
    let per_second =
        |pick: fn(&Row) -> u64| -> Vec<(f64, f64)> { rows.iter().map(|r| (r.elapsed_s, pick(r) as f64)).collect() };
    let rates = vec![
        ("arrivals per second".to_string(), arrivals),
        ("assigned per second".to_string(), per_second(|r| r.assigned_in_second)),
        ("429 replies per second".to_string(), per_second(|r| r.throttled_in_second)),
    ];
    let in_flight = vec![("devices in flight".to_string(), per_second(|r| r.in_flight))];
    let kinds: std::collections::BTreeSet<&String> = rows.iter().flat_map(|r| r.failures.keys()).collect();
    let failures: Vec<Series> = kinds
        .into_iter()
        .map(|kind| {
            let count = |row: &Row| row.failures.get(kind).copied().unwrap_or(0);
            let points = rows.windows(2).map(|w| (w[1].elapsed_s, count(&w[1]).saturating_sub(count(&w[0])) as f64));
            (kind.clone(), points.collect())
        })
        .collect();
    vec![
        (
            "over-time",
            "Arrivals, assignments and 429 replies, one point a second".into(),
            Some(charts::over_time("Rates over the run", "per second", &rates)),
        ),
        (
            "in-flight",
            "Devices started and not yet finished, one point a second".into(),
            Some(charts::over_time("Devices in flight", "devices", &in_flight)),
        ),
        match failures.is_empty() {
            true => ("failures", "Failures per second by kind: none failed".into(), None),
            false => (
                "failures",
                "Failures per second by kind".into(),
                Some(charts::over_time("Failures per second by kind", "failed devices per second", &failures)),
            ),
        },
    ]
}

/// `devices_by_count` with its keys as numbers (keys that are not are left out).
fn numeric_keys(map: &BTreeMap<String, u64>) -> BTreeMap<u64, u64> {
    map.iter().filter_map(|(count, devices)| Some((count.parse().ok()?, *devices))).collect()
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}.invalid{color:#b00;font-weight:bold}\
figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}figcaption{font-size:0.9em;color:#555}";

/// Marks the page once every chart has laid out with a non-empty box (`data-charts-drawn`), so
/// a headless browser's DOM dump shows the charts really drew; reports errors to the console,
/// among them a legend whose laid-out box overlaps a plotted line and a legend name that runs
/// past the chart's edge (cut short); counts the legend names laid out whole
/// (`data-legend-names-whole` of `data-legend-names`).
const CHECK_SCRIPT: &str = "<script>\n(function(){var figures=document.querySelectorAll('figure.chart');\
var drawn=0,names=0,whole=0;figures.forEach(function(f){var svg=f.querySelector('svg');if(!svg){console.error('no svg in '+f.id);return;}\
var box=svg.getBBox();if(box.width>0&&box.height>0&&svg.querySelectorAll('polyline,rect,path,line').length>2){drawn++;}\
else{console.error('empty chart '+f.id);}var legend=svg.querySelector('g.legend');if(legend){var l=legend.getBoundingClientRect();\
svg.querySelectorAll('polyline:not([stroke-width=\"1\"])').forEach(function(p){var b=p.getBoundingClientRect();\
if(b.left<l.right&&l.left<b.right&&b.top<l.bottom&&l.top<b.bottom){console.error('legend overlaps a line in '+f.id);}});\
var edge=svg.viewBox.baseVal&&svg.viewBox.baseVal.width||svg.width.baseVal.value;\
legend.querySelectorAll('text').forEach(function(t){names++;var b=t.getBBox();\
if(b.x+b.width>edge){console.error('legend name cut short in '+f.id+': '+t.textContent);}else{whole++;}});}});\
document.body.setAttribute('data-charts',figures.length);\
document.body.setAttribute('data-legend-names',names);document.body.setAttribute('data-legend-names-whole',whole);\
document.body.setAttribute('data-charts-drawn',drawn);})();\n</script>\n";

#[cfg(test)]
mod tests;
