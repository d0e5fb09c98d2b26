use std::time::{Duration, SystemTime};

use super::*;
use crate::report::format::hlog;

/// A report folder's three files: the fixed summary of `report::tests` (its name made hostile),
/// three seconds of time series with failures, and a latency log of three intervals.
fn folder() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut summary = crate::report::tests::summary();
    summary["scenario"]["name"] = "<script>alert(1)</script>".into();
    summary["register_attempts"]["devices_by_count"] = serde_json::json!({ "1": 950, "2": 40, "3": 10 });
    summary["polls_per_device"]["devices_by_count"] = serde_json::json!({ "1": 1000 });
    let series = [
        "elapsed_s,started,assigned,failed,in_flight,late_starts,assigned_in_second,failed_in_second,assigned_p50_us,assigned_p99_us,failures",
        "0.000,0,0,0,0,0,0,0,0,0,",
        "1.000,100,60,1,39,0,60,1,1000,2000,timeout_connack=1",
        "2.001,200,150,4,46,0,90,3,1000,2000,timeout_connack=2 tls=2",
    ]
    .join("\n");
    let mut log = hlog::header(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000));
    for second in 0..3u64 {
        let mut latencies = PhaseHistograms::new();
        for (phase, micros) in
            [(Phase::Assigned, 1_000_000), (Phase::AssignedRaw, 990_000), (Phase::TlsHandshake, 2_000)]
        {
            let mut one = crate::metrics::latency_histogram();
            one.record(micros + second * 1000).expect("in range");
            latencies.add(phase, &one).expect("same bounds");
        }
        log.extend(hlog::interval(Duration::from_secs(second), Duration::from_secs(1), &latencies));
    }
    (serde_json::to_vec(&summary).expect("json"), series.into_bytes(), log)
}

/// `report.html` from the bytes of a folder's three files.
fn render_folder_files(summary: &[u8], series: &[u8], log: &[u8]) -> Result<Vec<u8>, String> {
    let report = Report::parse(summary, series, log).map_err(|e| e.to_string())?;
    of(&report).map_err(|e| e.to_string())
}

fn page() -> String {
    let (summary, series, log) = folder();
    String::from_utf8(render_folder_files(&summary, &series, &log).expect("the folder parses")).expect("UTF-8")
}

#[test]
fn the_page_is_self_contained_with_every_chart_inline() {
    let page = page();
    assert!(page.starts_with("<!DOCTYPE html>"));
    // The SVG namespace is a name, not a fetch.
    let page = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for external in ["<link", " src=", "url(", "@import", "http://", "https://"] {
        assert!(!page.contains(external), "the page must fetch nothing, found {external:?}");
    }
    assert!(page.contains("default-src 'none'"), "a CSP forbids any fetch");
    let figures = page.matches("<figure class=\"chart\"").count();
    assert_eq!(figures, 7);
    let heatmaps = page.matches("<figure class=\"chart heatmap\"").count();
    assert_eq!(heatmaps, 3, "one heatmap a phase logged");
    assert_eq!(page.matches("<svg").count(), figures + heatmaps, "one inline SVG per chart");
    for id in ["latency-assigned", "latency-phases", "over-time", "in-flight", "failures", "register-attempts", "polls"]
    {
        assert!(page.contains(&format!("id=\"{id}\"")), "chart {id}");
    }
}

#[test]
fn charts_show_the_folder_data() {
    let page = page();
    for series in ["tls_handshake", "arrivals per second", "429 replies per second", "timeout_connack", "tls"] {
        assert!(page.contains(&format!(">{series}</text>")), "legend entry {series}");
    }
    // The side-by-side panels are captioned by their series.
    assert!(page.contains(">\nassigned_raw\n<"), "panel assigned_raw");
    assert!(!page.contains("chart failed"));
}

/// The x coordinates of every plotted line of an SVG (axes and ticks are drawn 1 wide, lines wider).
fn plotted_x(svg: &str) -> Vec<f64> {
    svg.split("<polyline")
        .skip(1)
        .filter(|line| !line.contains("stroke-width=\"1\""))
        .filter_map(|line| line.split("points=\"").nth(1)?.split('"').next())
        .flat_map(|points| points.split_whitespace().filter_map(|p| p.split(',').next()?.parse::<f64>().ok()))
        .collect()
}

#[test]
fn legends_sit_beside_the_plot_never_over_a_line_and_ticks_carry_units() {
    let page = page();
    let mut legends = 0;
    for figure in page.split("<figure class=\"chart\"").skip(1) {
        let svg = &figure[..figure.find("</svg>").expect("an svg")];
        let Some(legend) = svg.find("<g class=\"legend\">") else { continue };
        legends += 1;
        // The legend is as wide as its longest name needs, at least LEGEND_WIDTH: its left edge
        // is its first mark's, less the margin.
        let first_mark = svg[legend..].split(" x1=\"").nth(1).and_then(|x| x.split('"').next()?.parse::<f64>().ok());
        let legend_left = first_mark.expect("a legend mark") - 14.0;
        assert!(legend_left <= f64::from(880 - crate::report::render::charts::LEGEND_WIDTH), "{legend_left}");
        // Every legend mark starts right of the plot; every plotted point lies left of it.
        let marks = &svg[legend..];
        for x in marks.split(" x1=\"").skip(1).chain(marks.split(" x=\"").skip(1)) {
            let x: f64 = x.split('"').next().unwrap().parse().unwrap();
            assert!(x >= legend_left, "a legend mark at x {x} is inside the plot");
        }
        let xs = plotted_x(&svg[..legend]);
        assert!(!xs.is_empty(), "lines are drawn");
        assert!(xs.iter().all(|x| *x < legend_left), "a line runs under the legend: {xs:?}");
    }
    assert_eq!(legends, 4, "the phases, rates, in-flight and failures charts have legends");
    // Ticks say their unit: latencies in µs/ms/s, elapsed time in s.
    assert!(page.contains(" ms\n<") || page.contains(">\n1 s\n<") || page.contains(" s\n<"), "latency ticks");
    assert!(page.contains(">\n1 s\n<") || page.contains(">\n2 s\n<"), "elapsed ticks in seconds");
    assert!(!page.contains(">\n1000.0\n<") && !page.contains(">\n2.0\n<"), "no bare decimals on ticks");
}

/// Each logged phase is a heatmap of its three seconds with p50 and p99 lines; the others say
/// why they have none; the page embeds every second's counts (each value its HDR bucket's
/// highest equivalent, then steps) and the whole run's figures in the window table.
#[test]
fn latency_over_time_is_a_heatmap_a_phase_with_the_seconds_embedded() {
    let page = page();
    let heatmap =
        page.split("<figure class=\"chart heatmap\" id=\"heatmap-tls_handshake\">").nth(1).expect("a heatmap");
    let svg = &heatmap[..heatmap.find("</svg>").expect("an svg")];
    assert!(svg.contains("class=\"heatmap\"") && svg.contains("data-first=\"0\" data-last=\"2\""), "{svg}");
    assert_eq!(svg.matches("h-").count(), 3, "one cell a second: {svg}");
    for line in ["p50", "p99"] {
        assert!(svg.contains(&format!("<polyline class=\"{line}\"")), "{line} line");
    }
    assert!(page.contains(
        "<p class=\"no-chart\" id=\"heatmap-poll\">poll over time: no data: latency.hlog holds no interval for it, \
         although summary.json counts 1000</p>"
    ));
    assert!(page.contains("id=\"heatmap-ws_upgrade\">ws_upgrade over time: no data: the run measured no ws_upgrade"));
    let top = |micros: u64| crate::metrics::latency_histogram().highest_equivalent(micros);
    let seconds: Vec<String> = (0..3).map(|s| format!("[{s},[{},1]]", top(2_000 + s * 1000))).collect();
    let json = format!("\"tls_handshake\":[{}]", seconds.join(","));
    assert!(page.contains(&json), "embedded {json}");
    assert!(page.contains("<script type=\"application/json\" id=\"latency-intervals\">{\"first\":0,\"last\":2,"));
    let row = page.split("<tr data-phase=\"tls_handshake\">").nth(1).expect("a window row");
    assert!(row.starts_with(&format!(
        "<td>tls_handshake</td><td data-field=\"count\" data-value=\"3\">3</td><td data-field=\"p50\" data-value=\"{}\">",
        top(3_000)
    )), "{row}");
}

#[test]
fn an_empty_series_is_a_line_saying_so_not_an_empty_chart() {
    let (summary, series, log) = folder();
    let series =
        String::from_utf8(series).unwrap().replace("timeout_connack=1", "").replace("timeout_connack=2 tls=2", "");
    let page = String::from_utf8(render_folder_files(&summary, series.as_bytes(), &log).unwrap()).unwrap();
    assert!(page.contains("<p class=\"no-chart\" id=\"failures\">Failures per second by kind: none failed</p>"));
    assert_eq!(page.matches("<figure class=\"chart\"").count(), 6);
}

#[test]
fn tables_hold_the_summary_and_text_is_escaped() {
    let page = page();
    assert!(!page.contains("<script>alert"), "the scenario name is escaped");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("<td>tls_handshake</td><td>1000</td>"), "per-phase rows from summary.json");
    assert!(page.contains("<td>DPS-TOPIC-003</td><td>1000</td><td>0</td>"), "conformance rows");
    assert!(page.contains("hub-a.example=497"));
}

#[test]
fn unreadable_inputs_name_the_file() {
    let (summary, series, log) = folder();
    let error = render_folder_files(b"{", &series, &log).expect_err("bad JSON");
    assert!(error.to_string().starts_with("summary.json:"), "{error}");
    let error = render_folder_files(&summary, b"elapsed_s\n1.0\n", &log).expect_err("missing columns");
    assert!(error.to_string().starts_with("timeseries.csv:"), "{error}");
    let error = render_folder_files(&summary, &series, b"Tag=nope,0.0,1.0,1.0,AAAA\n").expect_err("bad log");
    assert!(error.to_string().starts_with("latency.hlog:"), "{error}");
}

#[test]
fn the_slo_verdict_is_on_the_page_gate_by_gate() {
    let (_, series, log) = folder();
    let mut summary = crate::report::tests::summary();
    summary["slo"] = crate::report::tests::slo_verdict();
    let verdict: crate::slo::SloVerdict = serde_json::from_value(summary["slo"].clone()).unwrap();
    let page =
        String::from_utf8(render_folder_files(&serde_json::to_vec(&summary).unwrap(), &series, &log).unwrap()).unwrap();
    assert!(page.contains("<h2>SLO gates</h2>"), "a table of the gates");
    for name in verdict.gates.keys() {
        assert!(page.contains(&format!("<td>{name}</td>")), "gate {name}");
    }
    let headline = if verdict.passed { "every gate held" } else { "FAILED" };
    assert!(page.contains(&format!("<p class=\"slo-verdict\">SLO gates: {headline}")), "the verdict");
}
