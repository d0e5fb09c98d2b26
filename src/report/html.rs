//! `report.html`: one self-contained page (no network: inline style, inline SVG charts, a
//! content security policy that forbids fetching anything) built from a report folder's files
//! alone, so `dpsbench report render` can rebuild it after a merge. Pure: bytes in, bytes out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::{self, Series};
use super::folder::ReportFolder;
use super::hlog::{self, HlogError, LatencyLog};
use super::micros;
use crate::metrics::Phase;
use crate::results::RunSummary;

/// What the page is built from: the parsed contents of `summary.json`, `timeseries.csv` and
/// `latency.hlog`.
#[derive(Debug, Clone)]
pub struct HtmlInputs {
    pub summary: RunSummary,
    pub series: Vec<super::timeseries::Row>,
    pub latency: LatencyLog,
}

/// A report folder file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("summary.json: {0}")]
    Summary(serde_json::Error),
    #[error("timeseries.csv: {0}")]
    Series(String),
    #[error("latency.hlog: {0}")]
    Latency(#[from] HlogError),
    #[error("the folder has no {0}")]
    Missing(&'static str),
}

impl HtmlInputs {
    /// Parses a report folder's `summary.json`, `timeseries.csv` and `latency.hlog`.
    pub fn parse(summary_json: &[u8], timeseries_csv: &[u8], latency_hlog: &[u8]) -> Result<Self, InputError> {
        Ok(Self {
            summary: serde_json::from_slice(summary_json).map_err(InputError::Summary)?,
            series: read_series(timeseries_csv)?,
            latency: hlog::read(latency_hlog)?,
        })
    }
}

/// `report.html` from a report folder read back: what `dpsbench run` writes at its end and
/// `dpsbench report render` rebuilds. It needs the folder's `timeseries.csv` and `latency.hlog`.
pub fn from_folder(folder: &ReportFolder) -> Result<Vec<u8>, InputError> {
    let series = folder.timeseries.as_deref().ok_or(InputError::Missing("timeseries.csv"))?;
    let latency = folder.latency_hlog.as_deref().ok_or(InputError::Missing("latency.hlog"))?;
    let inputs = HtmlInputs {
        summary: folder.summary.clone(),
        series: read_series(series.as_bytes())?,
        latency: hlog::read(latency)?,
    };
    Ok(html(&inputs))
}

/// `report.html` from the bytes of a report folder's three files.
pub fn render_folder_files(
    summary_json: &[u8],
    timeseries_csv: &[u8],
    latency_hlog: &[u8],
) -> Result<Vec<u8>, InputError> {
    Ok(html(&HtmlInputs::parse(summary_json, timeseries_csv, latency_hlog)?))
}

/// The page.
pub fn html(inputs: &HtmlInputs) -> Vec<u8> {
    let s = &inputs.summary;
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
    out.push_str("<h2>Charts</h2>\n");
    for (id, caption, svg) in charts_of(inputs) {
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

/// Every chart, in page order.
fn charts_of(inputs: &HtmlInputs) -> Vec<Chart> {
    let mut charts = latency_charts(&inputs.latency);
    charts.extend(series_charts(&inputs.series));
    let r = &inputs.summary.results;
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

/// Latency by percentile from the log's totals: `assigned` beside `assigned_raw`, then the rest.
fn latency_charts(latency: &LatencyLog) -> Vec<Chart> {
    let totals = latency.totals();
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
            "Every other phase by percentile (log latency axis)".into(),
            Some(charts::percentiles("Phases by percentile", &phase_series(&others), x_max)),
        ),
    ]
}

/// The run over time and its failures, from `timeseries.csv`.
fn series_charts(rows: &[super::timeseries::Row]) -> Vec<Chart> {
    let arrivals: Vec<(f64, f64)> = rows
        .windows(2)
        .map(|w| {
            let seconds = (w[1].elapsed_s - w[0].elapsed_s).max(0.001);
            (w[1].elapsed_s, w[1].started.saturating_sub(w[0].started) as f64 / seconds)
        })
        .collect();
    let per_second = |pick: fn(&super::timeseries::Row) -> u64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.elapsed_s, pick(r) as f64)).collect()
    };
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
            let count = |row: &super::timeseries::Row| row.failures.get(kind).copied().unwrap_or(0);
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

/// Reads `timeseries.csv` by column name.
fn read_series(bytes: &[u8]) -> Result<Vec<super::timeseries::Row>, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|_| InputError::Series("not UTF-8 text".into()))?;
    super::timeseries::read(text).map_err(InputError::Series)
}

/// Escapes text for HTML.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Formats microseconds for a table cell.
pub(super) fn cell_micros(us: u64) -> String {
    micros(us)
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}.invalid{color:#b00;font-weight:bold}\
figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}figcaption{font-size:0.9em;color:#555}";

/// Marks the page once every chart has laid out with a non-empty box (`data-charts-drawn`), so
/// a headless browser's DOM dump shows the charts really drew; reports errors to the console,
/// among them a legend whose laid-out box overlaps a plotted line.
const CHECK_SCRIPT: &str = "<script>\n(function(){var figures=document.querySelectorAll('figure.chart');\
var drawn=0;figures.forEach(function(f){var svg=f.querySelector('svg');if(!svg){console.error('no svg in '+f.id);return;}\
var box=svg.getBBox();if(box.width>0&&box.height>0&&svg.querySelectorAll('polyline,rect,path,line').length>2){drawn++;}\
else{console.error('empty chart '+f.id);}var legend=svg.querySelector('g.legend');if(legend){var l=legend.getBoundingClientRect();\
svg.querySelectorAll('polyline:not([stroke-width=\"1\"])').forEach(function(p){var b=p.getBoundingClientRect();\
if(b.left<l.right&&l.left<b.right&&b.top<l.bottom&&l.top<b.bottom){console.error('legend overlaps a line in '+f.id);}});}});\
document.body.setAttribute('data-charts',figures.length);\
document.body.setAttribute('data-charts-drawn',drawn);})();\n</script>\n";

#[cfg(test)]
mod tests;
