//! `dpsbench run --metrics-listen`: scraped during a run and parsed by an independent reader,
//! the Python `prometheus-client` package's exposition parser.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::binary::{KillOnDrop, temp_dir, text};
use crate::support::python::tools_python;
use crate::support::scenario::Scenario;

const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");

/// Reads a run's stderr up to the line where `done(line, whether the endpoint's address was
/// printed)` (at most 100 lines); returns the address (`127.0.0.1:PORT`) and that line.
pub fn read_until(stderr: &mut impl BufRead, done: impl Fn(&str, bool) -> bool) -> (Option<String>, String) {
    let mut address = None;
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(url) = line.trim().strip_prefix("dpsbench: live metrics at http://") {
            address = Some(url.trim_end_matches("/metrics").to_string());
        }
        if done(&line, address.is_some()) {
            break;
        }
    }
    (address, line)
}

/// One HTTP/1.1 GET on loopback; the whole response.
pub fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Parses `exposition` with prometheus-client; its families as JSON.
fn parse(python: &str, exposition: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/parse_exposition.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the exposition does not parse: {}\n{exposition}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample `name` with `labels` in the parsed families.
fn sample(families: &Value, family: &str, name: &str, labels: &Value) -> f64 {
    families[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}: {families}"))
        .iter()
        .find(|s| s[0] == name && &s[1] == labels)
        .unwrap_or_else(|| panic!("no sample {name} {labels} in {family}"))[2]
        .as_f64()
        .unwrap_or(f64::INFINITY)
}

#[test]
fn metrics_are_served_during_the_run_and_parse_with_prometheus_client() {
    let python = tools_python();
    let dir = temp_dir("live-metrics");
    let scenario = Scenario::embedded("live")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 20)
        .devices(300)
        .rate(100.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "live.toml");
    let out = dir.join("out");
    let mut run = KillOnDrop(
        Command::new(BIN)
            .args([
                "run",
                scenario.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    // The address line, then progress lines: the first with devices assigned means its page is
    // up with phases measured (the first tick can come as the first device starts, before any
    // finished, on a loaded machine).
    let (address, line) = read_until(&mut stderr, |line, address_seen| {
        address_seen && line.contains("assigned ") && !line.contains("assigned 0 ") && !line.contains("started 0 ")
    });
    let address = address.unwrap_or_else(|| panic!("no metrics address printed; last line {line:?}"));
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });

    let response = get(&address, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("version=0.0.4"), "{head}");
    let families = parse(&python, body);
    let none = serde_json::json!({});
    let started = sample(&families, "dpsbench_devices_started", "dpsbench_devices_started_total", &none);
    let assigned = sample(&families, "dpsbench_devices_assigned", "dpsbench_devices_assigned_total", &none);
    assert!(started > 0.0 && started < 300.0, "scraped mid-run: started {started}");
    assert!(assigned <= started);
    assert_eq!(families["dpsbench_devices_failed"]["type"], "counter");
    assert_eq!(families["dpsbench_devices_in_flight"]["type"], "gauge");
    assert_eq!(families["dpsbench_late_starts"]["type"], "counter");
    let histogram = &families["dpsbench_phase_duration_seconds"];
    assert_eq!(histogram["type"], "histogram");
    for phase in ["tcp_connect", "tls_handshake", "connack", "assigned"] {
        let buckets: Vec<(f64, f64)> = histogram["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s[0] == "dpsbench_phase_duration_seconds_bucket" && s[1]["phase"] == phase)
            .map(|s| (s[1]["le"].as_str().unwrap().parse::<f64>().unwrap(), s[2].as_f64().unwrap_or(f64::INFINITY)))
            .collect();
        assert_eq!(buckets.len(), 19, "{phase}: 18 bounds and +Inf");
        assert_eq!((buckets[0].0, buckets[17].0), (0.001, 300.0), "{phase}: 1 ms to 5 min");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{phase}: cumulative {buckets:?}");
        let labels = serde_json::json!({ "phase": phase });
        let count =
            sample(&families, "dpsbench_phase_duration_seconds", "dpsbench_phase_duration_seconds_count", &labels);
        assert!(count > 0.0, "{phase} measured by the time devices are assigned");
        assert_eq!(buckets[18].1, count, "{phase}: +Inf holds every observation");
    }
    let missing = get(&address, "/other");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    let status = run.wait().unwrap();
    let rest = drain.join().unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(TcpStream::connect(&address).is_err(), "the endpoint lasts only as long as the run");
}
