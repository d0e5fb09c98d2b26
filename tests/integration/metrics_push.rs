//! `dpsbench run --metrics-push`: a run pushes Prometheus remote write to a receiver in this
//! test (HTTP/1.1 on a free loopback port), which checks the headers, undoes the snappy block
//! compression and decodes each `WriteRequest` with prost. A real Prometheus receives the same
//! pushes in tests/prometheus/run.sh.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dpsbench::telemetry::remote_write::WriteRequest;
use prost::Message as _;

use crate::live_metrics::{get, read_until};
use crate::support::binary::{KillOnDrop, dpsbench, temp_dir, text, wait_for_exit};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");

/// One request the receiver got: its head (request line and headers) and its decoded body.
struct Push {
    head: String,
    request: WriteRequest,
}

/// A remote-write receiver on a free loopback port that answers `answer(n)` to the n-th push
/// (from 0): a status line and a body. Its thread blocks in `accept` until the test binary ends.
fn receiver(answer: fn(usize) -> (&'static str, &'static str)) -> (String, Arc<Mutex<Vec<Push>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let pushes = Arc::new(Mutex::new(Vec::new()));
    let received = pushes.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let received = received.clone();
            std::thread::spawn(move || serve(stream, &received, answer));
        }
    });
    (address, pushes)
}

/// Serves the requests of one kept-alive connection until the client closes it.
fn serve(stream: TcpStream, received: &Mutex<Vec<Push>>, answer: fn(usize) -> (&'static str, &'static str)) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length: usize = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().to_string()))
            .expect("a push says its length")
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let decoded = snap::raw::Decoder::new().decompress_vec(&body).expect("the body is snappy's block format");
        let request = WriteRequest::decode(decoded.as_slice()).expect("the body is a WriteRequest");
        let n = {
            let mut pushes = received.lock().unwrap();
            pushes.push(Push { head, request });
            pushes.len() - 1
        };
        let (status, text) = answer(n);
        write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{text}", text.len()).unwrap();
    }
}

/// The value of the series named `name` with `labels` (besides its name) in `request`.
fn value(request: &WriteRequest, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    request.timeseries.iter().find_map(|series| {
        let has = |key: &str, wanted: &str| series.labels.iter().any(|l| l.name == key && l.value == wanted);
        (has("__name__", name) && labels.iter().all(|(k, v)| has(k, v))).then(|| series.samples[0].value)
    })
}

fn scenario(dir: &std::path::Path) -> std::path::PathBuf {
    Scenario::embedded("push")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 20)
        .devices(150)
        .rate(60.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, "push.toml")
}

#[test]
fn a_run_pushes_remote_write_each_second_and_its_final_figures() {
    // The second push is refused, as a receiver refuses out-of-order samples: one counted line.
    let (address, pushes) = receiver(|n| match n {
        1 => ("400 Bad Request", "out of order sample\n"),
        _ => ("200 OK", ""),
    });
    let dir = temp_dir("metrics-push");
    let out = dir.join("out");
    let url = format!("http://{address}/api/v1/write");
    let output = Command::new(BIN)
        .args(["run", scenario(&dir).to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .args(["--metrics-push", &url, "--metrics-push-label", "instance=it-run", "--metrics-push-label", "team=dps"])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let summary = read_summary(&out);
    let assigned = summary["devices"]["assigned"].as_f64().unwrap();
    assert_eq!(assigned, 150.0);

    let pushes = pushes.lock().unwrap();
    assert!(pushes.len() >= 3, "about one push a second over a 2.5 s run, and a final one: {}", pushes.len());
    for push in pushes.iter() {
        let head = push.head.to_ascii_lowercase();
        assert!(head.starts_with("post /api/v1/write http/1.1\r\n"), "{head}");
        for header in [
            "content-encoding: snappy",
            "content-type: application/x-protobuf",
            "x-prometheus-remote-write-version: 0.1.0",
            "user-agent: dpsbench/",
        ] {
            assert!(head.contains(header), "{header} in {head}");
        }
    }
    let stamps: Vec<i64> = pushes.iter().map(|p| p.request.timeseries[0].samples[0].timestamp).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "timestamps strictly increase: {stamps:?}");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now_ms - stamps[0]).abs() < 120_000, "milliseconds since the epoch: {stamps:?}");

    let first = &pushes[0].request;
    let last = &pushes.last().unwrap().request;
    let labels = [("job", "dpsbench"), ("instance", "it-run"), ("team", "dps")];
    assert_eq!(value(first, "dpsbench_run_ended", &labels), Some(0.0));
    assert_eq!(value(last, "dpsbench_run_ended", &labels), Some(1.0), "the final push says the run ended");
    assert_eq!(value(last, "dpsbench_devices_assigned_total", &labels), Some(assigned));
    assert_eq!(value(last, "dpsbench_devices_started_total", &labels), Some(150.0));
    assert_eq!(value(last, "dpsbench_devices_in_flight", &labels), Some(0.0));
    for kind in ["status_429", "timeout_poll", "tls", "connect"] {
        assert_eq!(
            value(first, "dpsbench_devices_failed_total", &[("kind", kind)]),
            Some(0.0),
            "{kind} from the start"
        );
    }
    let count = value(last, "dpsbench_phase_duration_seconds_count", &[("phase", "assigned")]);
    assert_eq!(count, Some(150.0));
    assert_eq!(value(last, "dpsbench_phase_duration_seconds_bucket", &[("phase", "assigned"), ("le", "+Inf")]), count);

    let failures: Vec<&str> = stderr.lines().filter(|l| l.contains("metrics push to")).collect();
    assert_eq!(failures.len(), 1, "{stderr}");
    assert!(failures[0].contains("failed (1 so far): answered 400: out of order sample"), "{stderr}");
    let tally = format!("metrics pushed to {url}: 1 of {} pushes failed (last: answered 400", pushes.len());
    assert!(stderr.contains(&tally), "{tally} in {stderr}");
}

#[test]
fn an_unreachable_receiver_is_counted_and_the_run_goes_on() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = temp_dir("metrics-push-unreachable");
    let out = dir.join("out");
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let output = dpsbench(
        &["run", scenario(&dir).to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--metrics-push", &url],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(out.join("summary.json").exists());
    // The same error each second is reported once.
    assert_eq!(stderr.matches("cannot connect to 127.0.0.1").count(), 2, "one line, and the tally: {stderr}");
    assert!(stderr.contains("pushes failed (last: cannot connect to 127.0.0.1"), "{stderr}");
}

#[test]
fn bad_push_and_linger_flags_exit_2_naming_the_flag_before_anything_runs() {
    let dir = temp_dir("metrics-push-flags");
    let scenario = scenario(&dir);
    let out = dir.join("out");
    for (flags, names) in [
        (&["--metrics-push", "ftp://127.0.0.1/api/v1/write"][..], "--metrics-push"),
        (&["--metrics-push", "127.0.0.1:9090/api/v1/write"], "--metrics-push"),
        (&["--metrics-push", "http:///api/v1/write"], "--metrics-push"),
        (&["--metrics-push", "http://127.0.0.1/w", "--metrics-push-label", "le=1"], "--metrics-push-label"),
        (&["--metrics-push-label", "a=b"], "--metrics-push"),
        (&["--metrics-linger", "30s"], "--metrics-listen"),
        (&["--metrics-listen", "127.0.0.1:0", "--metrics-linger", "forever"], "--metrics-linger"),
    ] {
        let mut args = vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(flags);
        let output = dpsbench(&args, &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(names), "{flags:?} names {names}: {stderr}");
        assert!(!out.exists(), "{flags:?}: nothing is created");
    }
}

#[test]
fn the_endpoint_lingers_until_its_final_page_is_scraped() {
    let dir = temp_dir("metrics-linger");
    let out = dir.join("out");
    let mut run = KillOnDrop(
        Command::new(BIN)
            .args(["run", scenario(&dir).to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
            .args(["--metrics-listen", "127.0.0.1:0", "--metrics-linger", "60s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let (address, line) = read_until(&mut stderr, |line, _| line.contains("serving the final metrics"));
    assert!(line.contains("until scraped, at most 60s"), "{line}");
    let address = address.expect("the endpoint's address is printed");
    assert!(out.join("summary.json").exists(), "the reports are written before the endpoint lingers");
    assert!(run.try_wait().unwrap().is_none(), "still serving after the run");

    let page = get(&address, "/metrics");
    for sample in [
        "dpsbench_run_ended 1\n",
        "dpsbench_devices_assigned_total 150\n",
        "dpsbench_devices_in_flight 0\n",
        "dpsbench_devices_failed_total{kind=\"status_429\"} 0\n",
    ] {
        assert!(page.contains(sample), "{sample} in {page}");
    }
    let status = wait_for_exit(&mut run, Duration::from_secs(10));
    let status = status.expect("the run ends once its final page was scraped");
    assert_eq!(status.code(), Some(0));
    assert!(TcpStream::connect(&address).is_err(), "the endpoint is closed");
}

#[test]
fn an_unscraped_endpoint_lingers_for_its_duration_only() {
    let dir = temp_dir("metrics-linger-unscraped");
    let out = dir.join("out");
    let output = dpsbench(
        &[
            "run",
            scenario(&dir).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "1s",
        ],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the final metrics were not scraped within 1s"), "{stderr}");
}

#[test]
fn a_shard_pushes_with_its_shard_label() {
    let (address, pushes) = receiver(|_| ("200 OK", ""));
    let dir = temp_dir("metrics-push-shard");
    let out = dir.join("out");
    let url = format!("http://{address}/api/v1/write");
    let scenario = scenario(&dir);
    let args = ["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--shard", "1/2"];
    let output = dpsbench(&[&args[..], &["--metrics-push", &url]].concat(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let pushes = pushes.lock().unwrap();
    let last = &pushes.last().expect("pushed").request;
    let labels = [("shard", "1/2"), ("job", "dpsbench")];
    assert_eq!(value(last, "dpsbench_devices_started_total", &labels), Some(75.0), "half of 150 devices");
}
