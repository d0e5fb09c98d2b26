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

/// Latency by percentile: one line per series on a log "1 in N" axis; a log latency axis when
/// `log_latency` (phases that differ by orders of magnitude).
pub fn percentiles(caption: &str, series: &[Series], x_max: f64, log_latency: bool) -> String {
    let (low, high) = bounds(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)));
    let label_x = percentile_label;
    svg(|root| {
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .margin_right(26)
            .x_label_area_size(44)
            .y_label_area_size(70);
        if log_latency {
            let mut chart =
                builder.build_cartesian_2d((1.0..x_max).log_scale(), (low.max(0.001)..high * 1.2).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("percentile (log scale of 1 in N)")
                .y_desc("latency, ms (log)")
                .x_label_formatter(&label_x)
                .draw()?;
            draw_lines(&mut chart, series, true)
        } else {
            let mut chart = builder.build_cartesian_2d((1.0..x_max).log_scale(), 0.0..high * 1.1)?;
            chart
                .configure_mesh()
                .x_desc("percentile (log scale of 1 in N)")
                .y_desc("latency, ms")
                .x_label_formatter(&label_x)
                .draw()?;
            draw_lines(&mut chart, series, true)
        }
    })
}

/// Latency by percentile in panels side by side, one series each, on one latency scale (so
/// `assigned` and `assigned_raw` compare at a glance).
pub fn percentiles_side_by_side(caption: &str, panels: &[Series], x_max: f64) -> String {
    let (_, high) = bounds(panels.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)));
    svg(|root| {
        let root = root.titled(caption, ("sans-serif", 20))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, (name, points)) in areas.iter().zip(panels) {
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 16))
                .margin(10)
                .margin_right(26)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..high * 1.1)?;
            chart
                .configure_mesh()
                .x_desc("percentile (1 in N, log)")
                .y_desc("latency, ms")
                .x_labels(4)
                .x_label_formatter(&percentile_label)
                .draw()?;
            draw_lines(&mut chart, std::slice::from_ref(&(name.clone(), points.clone())), false)?;
        }
        Ok(())
    })
}

/// A "1 in N" axis position as the percentile it stands for: 10 → `90%`.
fn percentile_label(x: &f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percent:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A line chart over the run's elapsed seconds.
pub fn over_time(caption: &str, y_desc: &str, series: &[Series]) -> String {
    let (_, x_high) = bounds(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.0)));
    let (_, y_high) = bounds(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)));
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_high.max(1.0), 0.0..(y_high * 1.1).max(1.0))?;
        chart.configure_mesh().x_desc("elapsed, s").y_desc(y_desc).draw()?;
        draw_lines(&mut chart, series, true)
    })
}

/// Bars: how many devices had each count.
pub fn distribution(caption: &str, x_desc: &str, devices_by_count: &BTreeMap<u64, u64>) -> String {
    let last = devices_by_count.keys().max().copied().unwrap_or(1).max(1);
    let tallest = devices_by_count.values().max().copied().unwrap_or(1).max(1);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d((0..last + 1).into_segmented(), 0..tallest + tallest / 10 + 1)?;
        chart.configure_mesh().disable_x_mesh().x_desc(x_desc).y_desc("devices").draw()?;
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
    legend: bool,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>>
where
    'b: 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (index, (name, points)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if legend && !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// Draws into a fresh SVG of the standard size.
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult) -> String {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        let drawn = root.fill(&WHITE).and_then(|()| draw(&root)).and_then(|()| root.present());
        // The SVG backend writes into a String: its only failures are bad ranges, which the
        // callers' bounds rule out. Say so in the chart rather than lose the report.
        if let Err(error) = drawn {
            let _ = root.draw(&Text::new(format!("chart failed: {error}"), (20, 20), ("sans-serif", 16)));
        }
    }
    text
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
            percentiles("Latency", &series, 1000.0, true),
            percentiles("Latency", &series, 1000.0, false),
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
}
