//! `dpsbench conform` as CI jobs use it: reports, exit codes, waivers, and a general MQTT broker
//! (mosquitto, with TLS) that is not DPS: the suite must end within its deadlines with clear
//! failures, never hang.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::binary::{KillOnDrop, TV1_GROUP_KEY, dpsbench, temp_dir, text, write, write_certificates};
use crate::support::ports::unserved_port;

fn results(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("conformance.json")).unwrap()).unwrap()
}

/// Reads `conformance.junit.xml` with an independent JUnit parser (junitparser) and checks it
/// says what `conformance.json` says: one test case per check, each with its status, and the
/// suite's counts. Returns what the parser read.
fn junit_agrees_with_json(dir: &Path) -> Value {
    let junit = crate::support::python::read_junit(&dir.join("conformance.junit.xml"));
    let report = results(dir);
    let checks = report["results"].as_array().unwrap();
    let cases = junit["cases"].as_array().unwrap();
    assert_eq!(cases.len(), checks.len());
    let mut counts = [0u64; 3];
    for (case, check) in cases.iter().zip(checks) {
        let id = check["id"].as_str().unwrap();
        assert!(case["name"].as_str().unwrap().starts_with(id), "{case} for {id}");
        let expected = match check["status"].as_str().unwrap() {
            "pass" => "passed",
            "fail" => "failure",
            "inconclusive" => "error",
            _ => "skipped",
        };
        assert_eq!(case["result"], expected, "{id}");
        if let Some(slot) = ["failure", "error", "skipped"].iter().position(|r| *r == expected) {
            counts[slot] += 1;
        }
    }
    let suite = &junit["suites"][0];
    assert_eq!([&suite["failures"], &suite["errors"], &suite["skipped"]], counts.map(Value::from).each_ref());
    assert_eq!(suite["tests"], checks.len());
    junit
}

fn status_of<'a>(report: &'a Value, id: &str) -> &'a str {
    let result = report["results"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap();
    result["status"].as_str().unwrap()
}

#[test]
fn conform_against_the_embedded_emulator_passes_and_writes_three_reports() {
    let out = temp_dir("conform-embedded");
    let (_reserved, port) = unserved_port();
    let port = port.to_string();
    let output = dpsbench(&["conform", "--out", out.to_str().unwrap(), "--deadline", "2", "--plain-port", &port], &[]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stdout).contains("0 failed (0 must)"), "{}", text(&output.stdout));
    let report = results(&out);
    assert_eq!(report["schema"], "dpsbench.conformance/v2");
    assert_eq!(report["results"].as_array().unwrap().len(), dpsbench::conformance::CATALOGUE.len());
    let junit = std::fs::read_to_string(out.join("conformance.junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), dpsbench::conformance::CATALOGUE.len());
    assert!(junit.contains("failures=\"0\""), "{junit}");
    junit_agrees_with_json(&out);
    let markdown = std::fs::read_to_string(out.join("conformance.md")).unwrap();
    assert!(markdown.starts_with("# DPS MQTT conformance") && markdown.contains("| `DPS-TLS-001` |"), "{markdown}");
}

#[test]
fn conform_input_errors_are_one_line_with_exit_2() {
    let dir = temp_dir("conform-bad");
    let waivers = write(&dir, "waivers.toml", "[[waiver]]\ncheck = \"DPS-NOPE-001\"\nreason = \"typo\"\n");
    let empty_reason = write(&dir, "empty.toml", "[[waiver]]\ncheck = \"DPS-TLS-002\"\nreason = \" \"\n");
    let ca = write(&dir, "ca.pem", dpsbench::tls::ServerIdentity::generate(&[]).unwrap().ca_pem());
    let (_reserved, closed_port) = unserved_port();
    let closed = format!("mqtts://127.0.0.1:{closed_port}");
    let out = dir.join("out");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--waivers", waivers.to_str().unwrap()], "DPS-NOPE-001"),
        (vec!["--waivers", empty_reason.to_str().unwrap()], "waiver[0].reason"),
        (vec!["--target", "http://example"], "mqtts://"),
        // No --ca: the public roots, as `run` trusts them; the scope is still required.
        (vec!["--target", &closed], "--id-scope"),
        (vec!["--target", &closed, "--ca", ca.to_str().unwrap(), "--id-scope", "0ne1"], "unreachable"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["conform", "--out", out.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let output = dpsbench(&args, &[("DPS_GROUP_KEY", TV1_GROUP_KEY)]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_general_mqtt_broker_fails_clearly_within_the_deadlines() {
    let dir = temp_dir("mosquitto");
    write_certificates(&dir);
    if crate::support::parts::on_path("mosquitto").is_none() {
        return crate::support::parts::missing("mosquitto", "mosquitto is not installed (apt-get install mosquitto)");
    }
    let (_mosquitto, port) = start_mosquitto(&dir);
    let (_reserved, plain_port) = unserved_port();

    let out = dir.join("out");
    let started = Instant::now();
    let target = format!("mqtts://127.0.0.1:{port}");
    let output = dpsbench(
        &[
            "conform",
            "--target",
            &target,
            "--ca",
            dir.join("trust.pem").to_str().unwrap(),
            "--id-scope",
            "0ne00MOSQ01",
            "--out",
            out.to_str().unwrap(),
            "--deadline",
            "2",
            "--throttle-requests",
            "3",
            "--plain-port",
            &plain_port.to_string(),
        ],
        &[("DPS_GROUP_KEY", TV1_GROUP_KEY)],
    );
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}\n{}", text(&output.stdout), text(&output.stderr));
    assert!(elapsed < Duration::from_secs(120), "the suite must not hang: {elapsed:?}");
    assert!(text(&output.stderr).contains("billable"), "real targets are warned about billable probes");
    let report = results(&out);
    // A broker accepts anyone and anything: DPS's promises fail, each with its evidence.
    for failing in
        ["DPS-AUTH-001", "DPS-AUTH-002", "DPS-AUTH-003", "DPS-MQTT-001", "DPS-MQTT-006", "DPS-MQTT-007", "DPS-FLOW-005"]
    {
        assert_eq!(status_of(&report, failing), "fail", "{failing}");
    }
    // One root cause (no reply to register) is one failure, DPS-FLOW-005: what the lifecycle
    // would have shown is inconclusive, blocked by it, and so is DPS-MQTT-002, whose control
    // (a reply while subscribed) never came.
    let blocked_by = |id: &str| {
        let result = report["results"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap();
        result["blocked_by"].as_str().unwrap_or_default().to_string()
    };
    for inconclusive in ["DPS-TOPIC-001", "DPS-TOPIC-002", "DPS-FLOW-001", "DPS-FLOW-002", "DPS-BODY-001"] {
        assert_eq!(status_of(&report, inconclusive), "inconclusive", "{inconclusive}");
        assert_eq!(blocked_by(inconclusive), "lifecycle (DPS-FLOW-005)", "{inconclusive}");
    }
    assert_eq!(status_of(&report, "DPS-MQTT-002"), "inconclusive");
    assert!(blocked_by("DPS-MQTT-002").starts_with("clean-session-0"), "{}", blocked_by("DPS-MQTT-002"));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("inconclusive, blocked by lifecycle (DPS-FLOW-005)"), "{stdout}");
    assert!(!stdout.contains("not observed: the lifecycle ended") || stdout.contains("INCONC"), "{stdout}");
    // What a broker does keep: TLS 1.2, no plain MQTT on the TLS port.
    for passing in ["DPS-TLS-001", "DPS-TLS-003"] {
        assert_eq!(status_of(&report, passing), "pass", "{passing}");
    }
    let junit = std::fs::read_to_string(out.join("conformance.junit.xml")).unwrap();
    assert!(junit.contains("classname=\"dpsbench.conformance.passive.lifecycle\""), "{junit}");
    let read = junit_agrees_with_json(&out);
    let cases = read["cases"].as_array().unwrap();
    assert!(cases.iter().any(|c| c["result"] == "failure" && c["type"] == "must"), "{junit}");
    assert!(
        cases.iter().any(|c| c["result"] == "error"
            && c["type"] == "inconclusive"
            && c["message"] == "must: inconclusive, blocked by lifecycle (DPS-FLOW-005)"),
        "{junit}"
    );
}

/// `--prefix` starts every probe's registration ID: a bad one is refused at the edge (it used
/// to panic with exit 101 when the first probe built its ID).
#[test]
fn a_bad_prefix_is_refused_with_exit_2_naming_the_flag() {
    let out = temp_dir("conform-prefix").join("out");
    for prefix in ["bad prefix", "-dash-first", &"x".repeat(65)] {
        let flag = format!("--prefix={prefix}");
        let output = dpsbench(&["conform", "--out", out.to_str().unwrap(), &flag], &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{prefix:?}: {stderr}");
        assert!(stderr.contains("--prefix") && stderr.contains("letters, digits"), "{prefix:?}: {stderr}");
    }
    assert!(!out.exists(), "nothing runs with a bad prefix");
}

/// Starts mosquitto with TLS on a free loopback port. It cannot bind port 0 and say which port it
/// got, so a free port is picked; should another process take it first, mosquitto exits and the
/// next free port is tried.
fn start_mosquitto(dir: &Path) -> (KillOnDrop, u16) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = write(
            dir,
            "mosquitto.conf",
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/trust.pem\ncertfile {0}/chain.pem\n\
                 keyfile {0}/key.pem\ntls_version tlsv1.2\npersistence false\nlog_dest stderr\n",
                dir.display()
            ),
        );
        let mut mosquitto = Command::new("mosquitto")
            .args(["-c", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto starts (apt-get install mosquitto; ./scripts/test installs it)");
        // Its log says "... running" once its listener is open; the log is read to its end, so
        // mosquitto never blocks on a full pipe, and ends before that line if mosquitto exits.
        let log = BufReader::new(mosquitto.stderr.take().unwrap());
        let mosquitto = KillOnDrop(mosquitto);
        let (running, on_running) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if line.ends_with(" running") {
                    let _ = running.send(());
                }
            }
        });
        match on_running.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => return (mosquitto, port),
            Err(RecvTimeoutError::Timeout) => panic!("mosquitto did not start on {port}"),
            Err(RecvTimeoutError::Disconnected) => {} // it exited: the port was taken
        }
    }
    panic!("mosquitto did not start on any of 5 free ports");
}
