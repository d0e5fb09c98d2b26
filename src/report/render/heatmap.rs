//! The latency heatmaps of `report.html`: one phase's latencies over the run, one column a
//! second (a `latency.hlog` interval), one row a latency bucket (four a power of two, log
//! spaced), each cell's shade its count (log scale, eight shades), with the second's p50 and p99
//! drawn as lines over it. Hand-written SVG, one path per shade, so a long run stays small. Pure:
//! counts in, SVG text out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::text::micros;
use crate::report::format::intervals::{Counts, value_at_quantile};

/// Rows a power of two: bucket edges at 2^(k/4), about 19% apart.
const ROWS_PER_OCTAVE: f64 = 4.0;
const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 64.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;
/// Cell shades, light to dark (few counts to many): ColorBrewer's Blues.
const SHADES: [&str; 8] = ["#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"];
/// The percentile lines: what they mark and their colour.
const LINES: [(f64, &str, &str); 2] = [(0.5, "p50", "#ff7f0e"), (0.99, "p99", "#d62728")];

/// The heatmap of one phase over the run's seconds `first..=last`. The SVG carries the seconds
/// and the plot's x extent (`data-first`, `data-last`, `data-x0`, `data-x1`) for the page's
/// window selection.
pub fn svg(phase: &str, seconds: &BTreeMap<u64, Counts>, (first, last): (u64, u64)) -> String {
    let columns = (last.saturating_sub(first) + 1) as f64;
    let column_width = (WIDTH - LEFT - RIGHT) / columns;
    let rows = seconds.values().flat_map(|counts| counts.keys().map(|value| row(*value)));
    let (low, high) = rows.fold((i64::MAX, i64::MIN), |(lo, hi), r| (lo.min(r), hi.max(r)));
    let (low, high) = if low > high { (0, 0) } else { (low, high) };
    let row_height = (HEIGHT - TOP - BOTTOM) / (high - low + 1) as f64;
    let plot_bottom = HEIGHT - BOTTOM;
    let x_of = |second: u64| LEFT + (second - first) as f64 * column_width;
    // y of a value on the log axis: rows' lower edges at 2^(row/4).
    let y_of = |value: f64| plot_bottom - ((value.max(1.0).log2() * ROWS_PER_OCTAVE) - low as f64) * row_height;

    let mut counted = BTreeMap::<(u64, i64), u64>::new();
    for (second, counts) in seconds {
        for (value, count) in counts {
            *counted.entry((*second, row(*value))).or_default() += count;
        }
    }
    let most = counted.values().copied().max().unwrap_or(1);
    let mut cells: BTreeMap<usize, Vec<(u64, i64)>> = BTreeMap::new();
    for (cell, count) in counted {
        cells.entry(shade(count, most)).or_default().push(cell);
    }
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" data-phase=\"{phase}\" data-first=\"{first}\" data-last=\"{last}\" \
         data-x0=\"{LEFT}\" data-x1=\"{}\" font-family=\"sans-serif\" font-size=\"13\">",
        WIDTH - RIGHT
    );
    let _ = write!(out, "<text x=\"{LEFT}\" y=\"18\" font-size=\"15\">{phase}: latency over the run</text>");
    for (level, cells) in &cells {
        let _ = write!(out, "<path fill=\"{}\" d=\"", SHADES[*level]);
        for (second, r) in cells {
            let y = plot_bottom - (r - low + 1) as f64 * row_height;
            let _ = write!(out, "M{:.1} {y:.1}h{column_width:.2}v{row_height:.2}h-{column_width:.2}z", x_of(*second));
        }
        out.push_str("\"/>");
    }
    for (quantile, name, colour) in LINES {
        let points: Vec<String> = seconds
            .iter()
            .filter_map(|(second, counts)| {
                let value = value_at_quantile(counts, quantile)? as f64;
                Some(format!("{:.1},{:.1}", x_of(*second) + column_width / 2.0, y_of(value).max(TOP)))
            })
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"{name}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    axes(&mut out, (first, last), column_width, (low, high), &y_of);
    key(&mut out, most);
    let _ = write!(
        out,
        "<rect class=\"window\" y=\"{TOP}\" height=\"{}\" x=\"0\" width=\"0\" fill=\"#fd8d3c\" fill-opacity=\"0.15\" \
         stroke=\"#000\" display=\"none\"/></svg>",
        HEIGHT - TOP - BOTTOM
    );
    out
}

/// The bucket row of a value: ⌊log2(value) × 4⌋.
fn row(value: u64) -> i64 {
    ((value.max(1) as f64).log2() * ROWS_PER_OCTAVE).floor() as i64
}

/// The shade of a count, on a log scale up to the busiest cell's count.
fn shade(count: u64, most: u64) -> usize {
    let share = (count as f64).ln_1p() / (most as f64).ln_1p().max(f64::MIN_POSITIVE);
    ((share * SHADES.len() as f64).ceil() as usize).clamp(1, SHADES.len()) - 1
}

/// The frame, the seconds below (about eight labels) and the latencies left.
fn axes(
    out: &mut String,
    (first, last): (u64, u64),
    column_width: f64,
    (low, high): (i64, i64),
    y_of: &dyn Fn(f64) -> f64,
) {
    let (x1, bottom) = (WIDTH - RIGHT, HEIGHT - BOTTOM);
    let _ = write!(out, "<path fill=\"none\" stroke=\"#444\" d=\"M{LEFT} {TOP}V{bottom}H{x1}\"/>");
    let step = ((last - first + 1) / 8).max(1);
    for second in (first..=last).step_by(step as usize) {
        let x = LEFT + (second - first) as f64 * column_width + column_width / 2.0;
        let _ = write!(out, "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{second}</text>", bottom + 16.0);
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds of the run (one column a second)</text>",
        (LEFT + x1) / 2.0,
        HEIGHT - 4.0
    );
    let (lowest, highest) = (2f64.powf(low as f64 / ROWS_PER_OCTAVE), 2f64.powf((high + 1) as f64 / ROWS_PER_OCTAVE));
    let within = |value: &u64| (lowest..=highest).contains(&(*value as f64));
    let decades = |mantissas: &[u64]| -> Vec<u64> {
        (0..10).flat_map(|decade| mantissas.iter().map(move |m| m * 10u64.pow(decade))).filter(within).collect()
    };
    // 1, 2 and 5 a decade, then every digit where that leaves fewer than three in a narrow
    // band; a label closer than a line of text to one placed before it would overlap: left out.
    let mut values = decades(&[1, 2, 5]);
    if values.len() < 3 {
        values.extend(decades(&[3, 4, 6, 7, 8, 9]));
    }
    let mut placed: Vec<f64> = Vec::new();
    for value in values {
        let y = y_of(value as f64);
        if placed.iter().any(|other| (other - y).abs() < 16.0) {
            continue;
        }
        placed.push(y);
        let _ = write!(
            out,
            "<path stroke=\"#444\" d=\"M{} {y:.1}h5\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.0,
            micros(value)
        );
    }
    let ticks = placed.len();
    if ticks == 0 {
        // Every value in one narrow band: label the band.
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 8.0,
            (TOP + bottom) / 2.0,
            micros(lowest.round() as u64)
        );
    }
}

/// The percentile lines' names and the shade scale, in the right margin and above the plot.
fn key(out: &mut String, most: u64) {
    let mut x = WIDTH - RIGHT - 150.0;
    for (_, name, colour) in LINES {
        let _ = write!(
            out,
            "<path stroke=\"{colour}\" stroke-width=\"2\" d=\"M{x} 14h18\"/><text x=\"{}\" y=\"18\">{name}</text>",
            x + 22.0
        );
        x += 70.0;
    }
    let x = WIDTH - RIGHT + 12.0;
    let height = (HEIGHT - TOP - BOTTOM) / SHADES.len() as f64;
    for (level, colour) in SHADES.iter().enumerate() {
        let y = HEIGHT - BOTTOM - (level + 1) as f64 * height;
        let _ = write!(out, "<rect x=\"{x}\" y=\"{y:.1}\" width=\"12\" height=\"{height:.1}\" fill=\"{colour}\"/>");
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\">{most}</text><text x=\"{}\" y=\"{}\">1</text><text x=\"{x}\" y=\"{}\" font-size=\"11\">count</text>",
        x + 15.0,
        TOP + 10.0,
        x + 15.0,
        HEIGHT - BOTTOM,
        TOP - 4.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each second is a column of shaded cells whose p50 and p99 lines pass through every
    /// second; the busiest cell takes the darkest shade.
    #[test]
    fn a_phase_over_three_seconds_is_three_columns_with_percentile_lines() {
        let seconds: BTreeMap<u64, Counts> =
            (2..=4u64).map(|s| (s, Counts::from([(1_000 * s, 10), (50_000, s)]))).collect();
        let svg = svg("assigned", &seconds, (1, 5));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("data-first=\"1\" data-last=\"5\""));
        assert_eq!(svg.matches("h-").count(), 6, "two cells a second: {svg}");
        assert!(svg.contains(&format!("fill=\"{}\"", SHADES[7])));
        assert!(svg.contains(">10</text>"), "the busiest cell's count tops the shade scale: {svg}");
        for name in ["p50", "p99"] {
            let line = svg.split(&format!("class=\"{name}\"")).nth(1).expect("a line");
            let points = line.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
            assert_eq!(points.split(' ').count(), 3, "{name}: {points}");
        }
        assert!(svg.contains(">10.0ms<") && svg.contains(">50.0ms<"), "latency ticks in the page's units");
    }

    /// Latencies within less than a decade (1 s to 4 s) still get a tick a second.
    #[test]
    fn a_narrow_band_of_latencies_gets_a_tick_at_every_digit() {
        let seconds = BTreeMap::from([(0, Counts::from([(1_000_000, 5)])), (1, Counts::from([(4_000_000, 5)]))]);
        let svg = svg("assigned", &seconds, (0, 1));
        for tick in [">1.00s<", ">2.00s<", ">3.00s<", ">4.00s<"] {
            assert!(svg.contains(tick), "{tick} in {svg}");
        }
    }
}
