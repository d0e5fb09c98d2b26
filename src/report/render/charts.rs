//! The charts of `report.html`, drawn by plotters into SVG strings. Pure: data in, SVG text
//! out; no fonts are read (plotters' SVG backend leaves text to the browser).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One series of a line chart: its name and its points.
pub type Series = (String, Vec<(f64, f64)>);

/// Line colours: Tableau's ten, distinct on white and for most colour-blind readers.
const COLORS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// A chart's mesh with the tick and axis-title fonts every chart uses: large enough to read at
/// the page's width.
macro_rules! mesh {
    ($chart:expr) => {
        $chart.configure_mesh().label_style(("sans-serif", 18)).axis_desc_style(("sans-serif", 19))
    };
}

const WIDTH: u32 = 880;
const HEIGHT: u32 = 420;

/// The points of a percentile plot, as HdrHistogram plots are drawn: x is "1 in N"
/// (1 / (1 − quantile)), y the latency in milliseconds. The last point (quantile 1) sits at
/// `x_max`.
pub fn percentile_points(histogram: &Histogram<u64>, x_max: f64) -> Vec<(f64, f64)> {
    histogram
        .iter_quantiles(5)
        .map(|step| {
            let quantile = step.quantile_iterated_to();
            let x = if quantile >= 1.0 { x_max } else { (1.0 / (1.0 - quantile)).min(x_max) };
            (x, histogram.highest_equivalent(step.value_iterated_to()) as f64 / 1000.0)
        })
        .collect()
}

/// The "1 in N" axis's end for histograms of up to `count` values: the next power of ten past it.
pub fn percentile_axis_end(count: u64) -> f64 {
    10f64.powi((count.max(10) as f64).log10().ceil() as i32 + 1)
}

/// Latency by percentile: one line per series on a log "1 in N" axis, the legend beside the
/// plot. The latency axis is logarithmic where the values span a decade or more, linear (from
/// just below the lowest value, so close latencies stay apart) where they do not.
pub fn percentiles(caption: &str, series: &[Series], x_max: f64) -> String {
    let (low, high) = bounds(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)));
    let names: Vec<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
    svg(&names, |root| {
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .margin_right(20)
            .x_label_area_size(48)
            .y_label_area_size(80);
        match LatencyAxis::for_range(low, high) {
            LatencyAxis::Log(range) => {
                let mut chart = builder.build_cartesian_2d((1.0..x_max).log_scale(), range.log_scale())?;
                mesh!(chart)
                    .x_desc("percentile (log scale of 1 in N)")
                    .y_desc("latency (log scale)")
                    .x_label_formatter(&percentile_label)
                    .y_label_formatter(&latency_label)
                    .draw()?;
                draw_lines(&mut chart, series, false)
            }
            LatencyAxis::Linear(range) => {
                let mut chart = builder.build_cartesian_2d((1.0..x_max).log_scale(), range)?;
                mesh!(chart)
                    .x_desc("percentile (log scale of 1 in N)")
                    .y_desc("latency")
                    .x_label_formatter(&percentile_label)
                    .y_label_formatter(&latency_label)
                    .draw()?;
                draw_lines(&mut chart, series, false)
            }
        }
    })
}

/// Latency by percentile in panels side by side, one series each, on one latency scale (so
/// `assigned` and `assigned_raw` compare at a glance); the scale starts just below the lowest
/// value, so 1.00 s and 1.09 s do not fall onto one line.
pub fn percentiles_side_by_side(caption: &str, panels: &[Series], x_max: f64) -> String {
    let (low, high) = bounds(panels.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)));
    let range = LatencyAxis::linear(low, high);
    svg(&[], |root| {
        let root = root.titled(caption, ("sans-serif", 20))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (index, (area, (name, points))) in areas.iter().zip(panels).enumerate() {
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 17))
                .margin(10)
                .margin_right(26)
                .x_label_area_size(48)
                .y_label_area_size(80)
                .build_cartesian_2d((1.0..x_max).log_scale(), range.clone())?;
            mesh!(chart)
                .x_desc("percentile (1 in N, log)")
                .y_desc("latency")
                .x_labels(4)
                .x_label_formatter(&percentile_label)
                .y_label_formatter(&latency_label)
                .draw()?;
            let color = COLORS[index % COLORS.len()];
            chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
        }
        Ok(())
    })
}

/// How a latency axis (milliseconds) is scaled.
enum LatencyAxis {
    /// From the decade below the lowest value to the decade above the highest, so the top of
    /// every line is under a labelled tick.
    Log(std::ops::Range<f64>),
    Linear(std::ops::Range<f64>),
}

impl LatencyAxis {
    fn for_range(low: f64, high: f64) -> Self {
        let low = low.max(0.001);
        if high / low >= 10.0 {
            let floor = 10f64.powf(low.log10().floor());
            let ceil = 10f64.powf((high * 1.0001).log10().ceil());
            LatencyAxis::Log(floor..ceil)
        } else {
            LatencyAxis::Linear(Self::linear(low, high))
        }
    }

    /// A tenth of the span (or of the value, when all are one) below the lowest and above the
    /// highest value, never below zero.
    fn linear(low: f64, high: f64) -> std::ops::Range<f64> {
        let pad = if high > low { (high - low) * 0.1 } else { high.abs().max(0.001) * 0.1 };
        (low - pad).max(0.0)..high + pad
    }
}

/// A latency of `ms` milliseconds for a tick: `250 µs`, `12 ms`, `1.5 s`.
fn latency_label(ms: &f64) -> String {
    match *ms {
        ms if ms < 1.0 => format!("{} µs", trimmed(ms * 1000.0, 0)),
        ms if ms < 1000.0 => format!("{} ms", trimmed(ms, if ms < 10.0 { 2 } else { 1 })),
        ms => format!("{} s", trimmed(ms / 1000.0, 3)),
    }
}

/// `value` with at most `decimals` decimals and no trailing zeros: 2.50 → `2.5`, 3.0 → `3`.
fn trimmed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// A "1 in N" axis position as the percentile it stands for: 10 → `90%`.
fn percentile_label(x: &f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percent:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A line chart over the run's elapsed seconds, counts on the y axis, the legend beside it.
pub fn over_time(caption: &str, y_desc: &str, series: &[Series]) -> String {
    let (_, x_high) = bounds(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.0)));
    let (_, y_high) = bounds(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)));
    let names: Vec<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
    svg(&names, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .margin_right(20)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_high.max(1.0), 0.0..(y_high * 1.1).max(1.0))?;
        mesh!(chart)
            .x_desc("elapsed")
            .y_desc(y_desc)
            .x_label_formatter(&|s| format!("{} s", trimmed(*s, 1)))
            .y_label_formatter(&|n| trimmed(*n, 1))
            .draw()?;
        draw_lines(&mut chart, series, true)
    })
}

/// Bars: how many devices had each count.
pub fn distribution(caption: &str, x_desc: &str, devices_by_count: &BTreeMap<u64, u64>) -> String {
    let last = devices_by_count.keys().max().copied().unwrap_or(1).max(1);
    let tallest = devices_by_count.values().max().copied().unwrap_or(1).max(1);
    svg(&[], |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d((0..last + 1).into_segmented(), 0..tallest + tallest / 10 + 1)?;
        mesh!(chart).disable_x_mesh().x_desc(x_desc).y_desc("devices").draw()?;
        chart.draw_series(
            plotters::series::Histogram::vertical(&chart)
                .style(COLORS[0].filled())
                .margin(6)
                .data(devices_by_count.iter().map(|(count, devices)| (*count, *devices))),
        )?;
        // Each bar's number above it: a bar of 3 devices beside one of 950 is otherwise invisible.
        chart.draw_series(devices_by_count.iter().map(|(count, devices)| {
            let style = ("sans-serif", 13).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            Text::new(devices.to_string(), (SegmentValue::CenterOf(*count), *devices), style)
        }))?;
        Ok(())
    })
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_lines<'a, 'b, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    series: &[Series],
    widen_first: bool,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>>
where
    'b: 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (index, (_, points)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        // With `widen_first`, the first line wider, so a line that runs on it (arrivals and
        // assignments at a steady rate) leaves it visible on both sides.
        let width = if widen_first && index == 0 && series.len() > 1 { 5 } else { 2 };
        chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(width)))?;
    }
    Ok(())
}

/// Width kept right of the plot for the legend, at least; more when a name needs it.
pub const LEGEND_WIDTH: u32 = 200;
/// The most of the chart's width the legend takes; a longer name wraps onto more lines.
const LEGEND_MAX_WIDTH: u32 = 340;
/// The width a legend character is given at the legend's 15 px (0.6 em): wider than the average
/// glyph of the sans-serif fonts browsers pick (DejaVu Sans about 0.52 em over failure kinds), so
/// a name ends inside the chart, whole.
const LEGEND_CHAR: u32 = 9;
/// Right of the plot, before a legend name: a margin, the colour mark and a gap.
const LEGEND_TEXT_LEFT: u32 = 48;
/// Right of a legend name, before the chart's edge.
const LEGEND_RIGHT: u32 = 12;

/// Draws into a fresh SVG of the standard size: the plot, and right of it (never over it) a
/// legend of `names` in the lines' colours when there are any, as wide as its longest name needs.
fn svg(names: &[&str], draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult) -> String {
    let mut text = String::new();
    let legend_width = legend_width(names);
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        let plot = if names.is_empty() { root.clone() } else { root.split_horizontally(WIDTH - legend_width).0 };
        let drawn = root.fill(&WHITE).and_then(|()| draw(&plot)).and_then(|()| root.present());
        // The SVG backend writes into a String: its only failures are bad ranges, which the
        // callers' bounds rule out. Say so in the chart rather than lose the report.
        if let Err(error) = drawn {
            let _ = root.draw(&Text::new(format!("chart failed: {error}"), (20, 20), ("sans-serif", 16)));
        }
    }
    if !names.is_empty() {
        if let Some(end) = text.rfind("</svg>") {
            text.insert_str(end, &legend(names, legend_width));
        }
    }
    text
}

/// The legend's width for `names`: room for the longest, from [`LEGEND_WIDTH`] up to
/// [`LEGEND_MAX_WIDTH`].
fn legend_width(names: &[&str]) -> u32 {
    let longest = names.iter().map(|name| name.chars().count() as u32).max().unwrap_or(0);
    (LEGEND_TEXT_LEFT + longest * LEGEND_CHAR + LEGEND_RIGHT).clamp(LEGEND_WIDTH, LEGEND_MAX_WIDTH)
}

/// The legend: for each series a short line in its colour and its whole name, wrapped onto more
/// lines where it is longer than the legend is wide, the name again as the entry's title (a
/// tooltip); in a group of its own (`class="legend"`) right of the plot.
fn legend(names: &[&str], width: u32) -> String {
    let x = WIDTH - width + 14;
    let room = ((width - LEGEND_TEXT_LEFT - LEGEND_RIGHT) / LEGEND_CHAR) as usize;
    let mut out = String::from("<g class=\"legend\">");
    let mut y = 60;
    for (index, name) in names.iter().enumerate() {
        let RGBColor(r, g, b) = COLORS[index % COLORS.len()];
        let lines = wrapped(name, room);
        let text = match lines.as_slice() {
            [one] => super::text::escape(one),
            lines => lines
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let dy = if i == 0 { 0 } else { 18 };
                    format!("<tspan x=\"{}\" dy=\"{dy}\">{}</tspan>", x + 34, super::text::escape(line))
                })
                .collect(),
        };
        out.push_str(&format!(
            "<g><title>{}</title><line x1=\"{x}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#{r:02x}{g:02x}{b:02x}\" \
             stroke-width=\"3\"/><text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"15\">{text}</text></g>",
            super::text::escape(name),
            x + 26,
            x + 34,
            y + 5,
        ));
        y += 26 + 18 * (lines.len() as u32 - 1);
    }
    out.push_str("</g>");
    out
}

/// `name` in lines of at most `room` characters, broken after a `_`, `-` or space where it
/// can be, inside a word where one is longer than a line.
fn wrapped(name: &str, room: usize) -> Vec<String> {
    let room = room.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for piece in name.split_inclusive(['_', '-', ' ']) {
        if !line.is_empty() && line.chars().count() + piece.chars().count() > room {
            lines.push(std::mem::take(&mut line));
        }
        line.push_str(piece);
        while line.chars().count() > room {
            lines.push(line.chars().take(room).collect());
            line = line.chars().skip(room).collect();
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Lowest and highest of `values`, (0, 1) when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v)))))
        .filter(|(lo, hi)| hi > lo || *hi > 0.0)
        .unwrap_or((0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_points_run_from_the_median_side_to_the_max_at_the_axis_end() {
        let mut histogram = crate::metrics::latency_histogram();
        for micros in 1..=1000u64 {
            histogram.record(micros * 10).expect("in range");
        }
        let points = percentile_points(&histogram, percentile_axis_end(histogram.len()));
        assert_eq!(percentile_axis_end(1000), 10_000.0);
        let last = points.last().expect("points");
        assert_eq!(*last, (10_000.0, histogram.max() as f64 / 1000.0));
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "monotonic: {points:?}");
        let median = points.iter().find(|(x, _)| *x >= 2.0).expect("a point at 50%");
        assert!((4.9..=5.1).contains(&median.1), "{median:?}");
    }

    #[test]
    fn every_chart_is_an_svg_with_its_caption_and_drawn_lines() {
        let series = vec![("assigned".to_string(), vec![(1.0, 2.0), (10.0, 3.0), (100.0, 9.0)])];
        for chart in [
            percentiles("Latency", &series, 1000.0),
            over_time("Over time", "devices", &series),
            percentiles_side_by_side("Side by side", &[series[0].clone(), series[0].clone()], 1000.0),
        ] {
            assert!(chart.starts_with("<svg"), "{chart}");
            assert!(chart.contains("<polyline"), "a line is drawn: {chart}");
            assert!(!chart.contains("chart failed"), "{chart}");
        }
        let bars = distribution("Attempts", "register attempts", &[(1, 950), (2, 50)].into_iter().collect());
        assert!(bars.contains("<rect"), "{bars}");
        assert!(bars.contains(">\n950\n<") && bars.contains(">\n50\n<"), "each bar is labelled: {bars}");
        let empty = over_time("Failures", "per second", &[]);
        assert!(empty.starts_with("<svg") && !empty.contains("chart failed"), "an empty chart still draws axes");
    }

    /// Issue 35: a legend name is never cut short by the chart's edge: the legend widens for a
    /// long failure kind, wraps a longer one, and keeps the whole name as the entry's title.
    #[test]
    fn legend_names_end_inside_the_chart_whole() {
        let long = "certificate_chain_not_issued_for_the_requested_key_pair";
        let series: Vec<Series> = ["tls", "connection_lost_register", long]
            .iter()
            .map(|name| (name.to_string(), vec![(1.0, 1.0), (2.0, 3.0)]))
            .collect();
        let chart = over_time("Failures per second by kind", "failed devices per second", &series);
        let legend = &chart[chart.find("<g class=\"legend\">").expect("a legend")..];
        // A glyph of a 15 px sans-serif font is 0.6 em at the most on average (DejaVu Sans,
        // the widest of the usual defaults, about 0.52 em): each line's end from its x and its
        // characters.
        let mut lines = 0;
        for text in legend.split("<text x=\"").skip(1) {
            let x: f64 = text.split('"').next().unwrap().parse().unwrap();
            let body = &text[text.find('>').unwrap() + 1..text.find("</text>").unwrap()];
            let body = body.replace("</tspan>", "\n");
            for line in body.split('\n').filter(|l| !l.is_empty()) {
                let line = line.rsplit('>').next().unwrap();
                lines += 1;
                let end = x + line.chars().count() as f64 * 15.0 * 0.6;
                assert!(end <= f64::from(WIDTH), "{line:?} ends at {end}, past the chart's {WIDTH}: {legend}");
            }
        }
        assert!(lines > 3, "the longest name wraps: {legend}");
        for name in ["connection_lost_register", long] {
            assert!(legend.contains(&format!("<title>{name}</title>")), "{name} whole: {legend}");
        }
        assert!(legend.contains(">connection_lost_register</text>"), "it fits on one line: {legend}");
        assert_eq!(wrapped(long, 31).concat(), long, "wrapping keeps every character");
    }
}
