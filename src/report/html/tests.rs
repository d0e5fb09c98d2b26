use std::time::{Duration, SystemTime};

use super::*;
use crate::metrics::PhaseHistograms;

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
    assert_eq!(figures, 6);
    assert_eq!(page.matches("<svg").count(), figures, "one inline SVG per chart");
    for id in ["latency-assigned", "latency-phases", "over-time", "failures", "register-attempts", "polls"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "chart {id}");
    }
}

#[test]
fn charts_show_the_folder_data() {
    let page = page();
    for series in
        ["assigned_raw", "tls_handshake", "arrivals per second", "devices in flight", "timeout_connack", "tls"]
    {
        assert!(page.contains(&format!(">\n{series}\n<")), "legend entry {series}");
    }
    assert!(!page.contains("chart failed"));
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
