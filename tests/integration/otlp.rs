//! Issue 33, OpenTelemetry out: `run --metrics-otlp URL` pushes OTLP/HTTP protobuf to a receiver
//! in this test that decodes every request with the official `opentelemetry-proto` Python
//! package (tests/tools/otlp_receiver.py); the final push's figures are held to summary.json.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::binary::{KillOnDrop, dpsbench, temp_dir, text};
use crate::support::python::tools_python;
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

/// Starts the receiver, appending each decoded request to `log`; returns it and its port.
fn receiver(log: &Path) -> (KillOnDrop, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/otlp_receiver.py");
    let mut child = KillOnDrop(
        Command::new(tools_python()).arg(script).arg(log).stdout(Stdio::piped()).spawn().expect("python starts"),
    );
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().parse().unwrap_or_else(|_| panic!("the receiver printed no port: {line:?}"));
    (child, port)
}

/// The metric named `name` of a decoded request.
fn metric<'a>(request: &'a Value, name: &str) -> &'a Value {
    let metrics = request["resource_metrics"][0]["scope_metrics"][0]["metrics"].as_array().unwrap();
    metrics.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no metric {name} in {request}"))
}

/// A JSON number or a decimal string (protobuf's JSON writes 64-bit integers as strings).
fn number(value: &Value) -> f64 {
    value.as_f64().or_else(|| value.as_str().and_then(|s| s.parse().ok())).unwrap_or(0.0)
}

#[test]
fn otlp_pushes_decode_with_the_official_messages_and_agree_with_the_summary() {
    let dir = temp_dir("otlp");
    let log = dir.join("requests.jsonl");
    let (_receiver, port) = receiver(&log);
    let scenario = Scenario::embedded("otlp")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 20)
        .devices(90)
        .rate(30.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "otlp.toml");
    let out = dir.join("otlp-run");
    let url = format!("http://127.0.0.1:{port}/v1/metrics");
    let output = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--metrics-otlp", &url],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("dpsbench: OTLP metrics pushed to {url}: ")), "{stderr}");
    assert!(stderr.contains("pushes, none failed"), "{stderr}");

    let lines = std::fs::read_to_string(&log).unwrap();
    let records: Vec<Value> = lines.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(records.len() >= 2, "a push a second and a final one: {}", records.len());
    for record in &records {
        assert_eq!(
            (record["path"].as_str(), record["content_type"].as_str()),
            (Some("/v1/metrics"), Some("application/x-protobuf"))
        );
    }
    let last = &records.last().unwrap()["request"];
    let summary = read_summary(&out);

    // The resource names the service, the scenario and the run's folder.
    let attributes: Vec<(String, String)> = last["resource_metrics"][0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (kv["key"].as_str().unwrap().to_string(), kv["value"]["string_value"].as_str().unwrap_or("").to_string())
        })
        .collect();
    for expected in [("service.name", "dpsbench"), ("dpsbench.scenario", "otlp"), ("dpsbench.run", "otlp-run")] {
        assert!(attributes.iter().any(|(k, v)| (k.as_str(), v.as_str()) == expected), "{expected:?} in {attributes:?}");
    }
    assert!(!attributes.iter().any(|(k, _)| k == "dpsbench.shard"), "not a shard: {attributes:?}");

    // The counters are cumulative monotonic sums holding the summary's figures; the run has ended.
    let assigned = &metric(last, "dpsbench_devices_assigned")["sum"];
    assert_eq!(assigned["is_monotonic"], true);
    assert_eq!(assigned["aggregation_temporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE");
    assert_eq!(number(&assigned["data_points"][0]["as_int"]), number(&summary["devices"]["assigned"]));
    assert_eq!(number(&metric(last, "dpsbench_devices_started")["sum"]["data_points"][0]["as_int"]), 90.0);
    assert_eq!(number(&metric(last, "dpsbench_run_ended")["gauge"]["data_points"][0]["as_int"]), 1.0);

    // Each measured phase: an exponential histogram in seconds whose count, min and max are the
    // summary's, whose buckets add up to its count, and whose p50 bucket holds the summary's p50.
    let durations = metric(last, "dpsbench_phase_duration");
    assert_eq!(durations["unit"], "s");
    let points = durations["exponential_histogram"]["data_points"].as_array().unwrap();
    let mut checked = 0;
    for (phase, figures) in summary["phases"].as_object().unwrap() {
        let count = number(&figures["count"]);
        let point = points
            .iter()
            .find(|p| p["attributes"][0]["value"]["string_value"] == phase.as_str())
            .unwrap_or_else(|| panic!("no point for {phase}"));
        assert_eq!(number(&point["count"]), count, "{phase}");
        if count == 0.0 {
            continue;
        }
        let scale = number(&point["scale"]) as i32;
        let offset = number(&point["positive"]["offset"]) as i32;
        let buckets: Vec<f64> = point["positive"]["bucket_counts"].as_array().unwrap().iter().map(number).collect();
        let zero = number(&point["zero_count"]);
        assert_eq!(zero + buckets.iter().sum::<f64>(), count, "{phase}: the buckets add up to the count");
        let close = |otlp: f64, us: f64| (otlp * 1e6 - us).abs() <= us * 0.001 + 1.0;
        assert!(close(number(&point["min"]), number(&figures["min_us"])), "{phase} min: {point}");
        assert!(close(number(&point["max"]), number(&figures["max_us"])), "{phase} max: {point}");
        let mean_us = number(&point["sum"]) * 1e6 / count;
        assert!(
            (mean_us - number(&figures["mean_us"])).abs() <= number(&figures["mean_us"]) * 0.002 + 1.0,
            "{phase} sum: {point}"
        );
        let base = 2f64.powf(2f64.powi(-scale));
        let half = (count / 2.0).ceil();
        let mut seen = zero;
        let p50_us = number(&figures["p50_us"]);
        if seen >= half {
            assert!(p50_us <= 1.0, "{phase}: p50 in the zero bucket, summary says {p50_us} us");
        } else {
            let position = buckets.iter().position(|c| {
                seen += c;
                seen >= half
            });
            let index = offset + position.unwrap() as i32;
            let (low, high) = (base.powi(index) * 1e6, base.powi(index + 1) * 1e6);
            assert!(
                low * 0.998 <= p50_us && p50_us <= high * 1.002,
                "{phase}: p50 {p50_us} us outside ({low}, {high}]"
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "every phase of the flow was measured and checked: {checked}");
}
