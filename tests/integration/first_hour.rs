//! Issue 14, a new user's first hour: nothing left behind by a command that could not start,
//! setup mistakes named as such, skipped checks listed, and messages that say what to do.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::binary::{TV1_GROUP_KEY, dpsbench, spawn_emulator, temp_dir, text, write};
use crate::support::ports::unserved_port;
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");

/// Runs `dpsbench args` with `dir` as its working folder.
fn dpsbench_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.current_dir(dir).args(args).env_remove("DPS_GROUP_KEY").env_remove("DPS_DEVICE_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn emulator_config(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00TEST14\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 0\n\
             assign_delay_ms = 10\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    )
}

#[test]
fn issue_14_a_command_that_cannot_start_leaves_nothing_behind() {
    let dir = temp_dir("first-hour-nothing");
    let (_reserved, closed_port) = unserved_port();
    let ca = write(&dir, "ca.pem", dpsbench::tls::ServerIdentity::generate(&[]).unwrap().ca_pem());
    Scenario::unreachable(closed_port, ca.to_str().unwrap()).write(&dir, "unreachable.toml");
    let before = entries(&dir);
    let closed = format!("mqtts://127.0.0.1:{closed_port}");
    let key = [("BENCH_KEY", TV1_GROUP_KEY), ("DPS_GROUP_KEY", TV1_GROUP_KEY)];
    let cases: Vec<Vec<&str>> = vec![
        // The default folder under reports/ is not created either.
        vec!["run", "unreachable.toml"],
        vec!["run", "unreachable.toml", "--out", "out-run"],
        vec!["conform", "--target", &closed, "--ca", "ca.pem", "--id-scope", "0ne00TEST01", "--out", "out-conform"],
        // Renders "bad id 000000", not a registration ID: refused before the CA is made.
        vec!["certs", "--out", "ca-dir", "--count", "1", "--registration-id", "bad id {index:06}"],
    ];
    for args in cases {
        let output = dpsbench_in(&dir, &args, &key);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output.stderr));
        assert_eq!(entries(&dir), before, "{args:?} left something in {}", dir.display());
    }
}

#[test]
fn issue_14_an_out_folder_holding_a_report_is_refused_unless_forced() {
    let dir = temp_dir("first-hour-force");
    let scenario = Scenario::embedded("small")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 0)
        .devices(3)
        .rate(100.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "small.toml");
    let out = dir.join("out");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(extra);
        dpsbench(&args, &[])
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    let again = run(&[]);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already holds a report") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary, "the refused run changed nothing");
    assert_eq!(run(&["--force"]).status.code(), Some(0));
}

#[test]
fn issue_14_conform_names_the_setup_mistake_when_the_positive_control_fails() {
    let dir = temp_dir("first-hour-control");
    let (_emulator, port) = spawn_emulator(&emulator_config(&dir), &dir.join("ca.pem"));
    let wrong_ca = write(&dir, "other-ca.pem", dpsbench::tls::ServerIdentity::generate(&[]).unwrap().ca_pem());
    let target = format!("mqtts://127.0.0.1:{port}");
    let wrong_key = dpsbench::credentials::SymmetricKey::random().to_base64();
    let cases = [
        ("wrong CA", wrong_ca.to_str().unwrap().to_string(), "0ne00TEST14", TV1_GROUP_KEY, "--ca"),
        ("wrong key", dir.join("ca.pem").to_str().unwrap().to_string(), "0ne00TEST14", &wrong_key, "wrong group key"),
        ("wrong scope", dir.join("ca.pem").to_str().unwrap().to_string(), "0ne00OTHER1", TV1_GROUP_KEY, "--id-scope"),
    ];
    for (name, ca, scope, key, expected) in cases {
        let out = dir.join(format!("out-{}", name.replace(' ', "-")));
        let args = ["conform", "--target", &target, "--ca", &ca, "--id-scope", scope, "--out", out.to_str().unwrap()];
        let output = dpsbench(&args, &[("DPS_GROUP_KEY", key)]);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(2), "{name}: {stdout}\n{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: one line, got {stderr}");
        assert!(stderr.contains("positive control") && stderr.contains(expected), "{name}: {stderr}");
        assert!(!stdout.contains("failed"), "{name}: no suite ran: {stdout}");
        assert!(!out.exists(), "{name}: no report folder");
        assert!(!stderr.contains(TV1_GROUP_KEY) && !stderr.contains(key), "{name}: secret in {stderr}");
    }
}

#[test]
fn issue_14_skipped_must_checks_are_listed_and_require_all_fails_on_them() {
    let dir = temp_dir("first-hour-skips");
    let (_emulator, port) = spawn_emulator(&emulator_config(&dir), &dir.join("ca.pem"));
    let key_file = write(&dir, "group.key", TV1_GROUP_KEY);
    let (_reserved, plain_port) = unserved_port();
    let (target, plain_port) = (format!("mqtts://127.0.0.1:{port}"), plain_port.to_string());
    let out = dir.join("out");
    let ca = dir.join("ca.pem");
    let args = [
        "conform",
        "--target",
        &target,
        "--ca",
        ca.to_str().unwrap(),
        "--id-scope",
        "0ne00TEST14",
        "--key-file",
        key_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--plain-port",
        &plain_port,
        "--deadline",
        "2",
        "--exclude-billable",
        "--require-all",
    ];
    let output = dpsbench(&args, &[]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(stdout.contains("0 failed (0 must)"), "{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "--require-all fails on skips: {stdout}\n{stderr}");
    let line = stderr.lines().find(|l| l.contains("must-checks skipped")).unwrap_or_else(|| panic!("{stderr}"));
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("conformance.json")).unwrap()).unwrap();
    let skipped: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "skipped" && r["level"] == "must")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(skipped.contains(&"DPS-WS-001") && skipped.contains(&"DPS-AUTH-005"), "{skipped:?}");
    for id in &skipped {
        assert!(line.contains(id), "{id} missing from {line}");
    }
    assert!(line.contains("DPS-AUTH-005 (--x509-ca-dir)"), "{line}");
    assert!(line.contains("DPS-WS-001") && line.contains("(--exclude-billable)"), "billable ones: {line}");
}

#[test]
fn issue_14_embedded_conform_probes_a_plain_port_it_owns() {
    let out = temp_dir("first-hour-plain").join("out");
    let output = dpsbench(&["conform", "--out", out.to_str().unwrap(), "--deadline", "2", "--exclude-billable"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", text(&output.stdout), text(&output.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("conformance.json")).unwrap()).unwrap();
    let check = report["results"].as_array().unwrap().iter().find(|r| r["id"] == "DPS-TLS-002").unwrap();
    let evidence = check["evidence"].as_str().unwrap();
    assert_eq!(check["status"], "pass", "{evidence}");
    assert!(evidence.starts_with("port ") && !evidence.starts_with("port 1883:"), "{evidence}");
}

#[test]
fn issue_14_messages_say_what_happened_and_what_to_do() {
    let dir = temp_dir("first-hour-messages");
    let rate_zero = Scenario::embedded("z").devices(1).rate(0.0).write(&dir, "zero.toml");
    let output = dpsbench(&["run", rate_zero.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("arrival.rate") && stderr.contains("more than 0"), "{stderr}");
    assert!(!stderr.contains("between 0 and"), "{stderr}");

    let output = dpsbench(&["run", "/nonexistent/scenario.toml"], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(stderr.matches("os error 2").count(), 1, "the OS error once: {stderr}");

    let token = |expiry: &str| {
        dpsbench(
            &["token", "--id-scope", "0ne00000A0A", "--registration-id", "dev-1", "--expiry", expiry],
            &[("DPS_DEVICE_KEY", TV1_GROUP_KEY)],
        )
    };
    let past = token("1");
    assert_eq!(past.status.code(), Some(0));
    assert!(text(&past.stdout).starts_with("SharedAccessSignature "), "still printed for test vectors");
    assert!(text(&past.stderr).contains("warning") && text(&past.stderr).contains("in the past"));
    let future = token("4102444800");
    assert_eq!(text(&future.stderr), "", "no warning for a future expiry");

    let help = text(&dpsbench(&["token", "--help"], &[]).stdout);
    for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
        assert!(line.split("  ").filter(|part| !part.trim().is_empty()).count() >= 2, "no help text: {line}");
    }
    let help = text(&dpsbench(&["conform", "--help"], &[]).stdout);
    assert!(help.contains("--key-file") && help.contains("--require-all"), "{help}");

    // A flag given on the command line is not shown as required in the usage of the error.
    for args in [
        vec!["keys", "derive", "--key-file", "k", "--key-env", "K", "dev-1"],
        vec![
            "token",
            "--key-file",
            "k",
            "--key-env",
            "K",
            "--id-scope",
            "s",
            "--registration-id",
            "r",
            "--expiry",
            "1",
        ],
        vec!["conform", "--key-file", "k", "--key-env", "K", "--out", "o"],
    ] {
        let stderr = text(&dpsbench(&args, &[]).stderr);
        let usage = stderr.lines().find(|l| l.starts_with("Usage:")).unwrap_or_else(|| panic!("{stderr}"));
        assert!(usage.contains("[--key-env <VAR> | --key-file <FILE>]"), "{args:?}: {usage}");
    }
}

#[test]
fn issue_14_completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef dpsbench"), ("fish", "complete -c dpsbench")] {
        let output = dpsbench(&["completions", shell], &[]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = text(&output.stdout);
        assert!(script.contains(marker) && script.contains("conform") && script.contains("dry-run"), "{shell}");
    }
    let output = dpsbench(&["completions", "tcsh"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn issue_14_failures_carry_a_reason_and_examples_and_are_said_early() {
    let dir = temp_dir("first-hour-reasons");
    let (mut emulator, port) = spawn_emulator(&emulator_config(&dir), &dir.join("ca.pem"));
    // A CA of another name: the emulator's certificate has an unknown issuer.
    crate::support::binary::write_certificates(&dir);
    let scenario = |ca: &str| {
        Scenario::dps("reasons", "127.0.0.1", "0ne00TEST14")
            .target("port", port.parse::<i64>().unwrap())
            .target("ca_certificate", ca)
            .devices(4)
            .device("registration_id", "why-{index:02}")
            .device("group_key_env", "BENCH_KEY")
            .rate(40.0)
            .run("max_schedule_lag_p99_ms", 5000)
            .run("preflight", false)
    };
    // The preflight would stop both runs before any device (tests/integration/edges.rs): off,
    // every device meets the mistake and the reasons must say it.
    let wrong_key = dpsbench::credentials::SymmetricKey::random().to_base64();
    let cases = [
        ("trust.pem", TV1_GROUP_KEY, "tls", "certificate signed by an unknown issuer"),
        ("ca.pem", wrong_key.as_str(), "refused_5", "CONNACK 5 not authorized (wrong group key or scope?)"),
    ];
    for (ca, key, label, reason) in cases {
        let file = scenario(ca).write(&dir, &format!("{label}.toml"));
        let out = dir.join(format!("out-{label}"));
        let output = dpsbench(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()], &[("BENCH_KEY", key)]);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(1), "{label}: {stdout}\n{stderr}");
        let line = stdout.lines().find(|l| l.trim_start().starts_with(&format!("{label}:"))).unwrap_or_else(|| {
            panic!("{label}: no reason line in {stdout}");
        });
        assert!(line.contains(reason) && line.contains("e.g. why-0"), "{line}");
        assert!(
            stderr.contains(&format!("failed with {label}: ")) && stderr.contains(reason),
            "{label}: said early on stderr: {stderr}"
        );
        let summary = read_summary(&out);
        assert_eq!(summary["failures"][label], 4, "{label}: counted by label as before");
        let found = &summary["failure_reasons"][label];
        assert!(found["reason"].as_str().unwrap().contains(reason), "{found}");
        assert!(!found["examples"].as_array().unwrap().is_empty(), "{found}");
        for output in [&stdout, &stderr, &summary.to_string()] {
            assert!(!output.contains(key) && !output.contains("SharedAccessSignature"), "secret in output");
        }
    }

    // The emulator logged each busy second, refusals by reason, and no secret.
    let status = Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(emulator.wait().unwrap().code(), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut log).unwrap();
    // Each line opens with its instant (RFC 3339 UTC), then what happened.
    let unstamped = |line: &str| {
        let (instant, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no instant: {line:?}"));
        assert!(dpsbench::timestamp::parse_rfc3339(instant).is_ok() && instant.ends_with('Z'), "{line:?}");
        rest.to_string()
    };
    let lines: Vec<String> = log.lines().map(unstamped).collect();
    let busy: Vec<&String> = lines.iter().filter(|l| l.starts_with("dpsbench emulator: ")).collect();
    assert!(busy.iter().any(|l| l.contains("connections +")), "{log}");
    assert!(busy.iter().any(|l| l.contains("refused credentials +")), "{log}");
    assert!(!log.contains(TV1_GROUP_KEY) && !log.contains(&wrong_key) && !log.contains("SharedAccessSignature"));
}

/// A burst over a small quota: 429s are counted in the live line, the final table and the CSV,
/// and the rates are each named for what they are.
#[test]
fn issue_14_throttling_and_rates_are_visible_everywhere() {
    let dir = temp_dir("first-hour-throttled");
    let scenario = Scenario::embedded("burst")
        .target("retry_after_seconds", 1)
        .target("assign_delay_ms", 0)
        .target("registrations_per_minute", 120)
        .devices(130)
        .arrival("model", "burst")
        .arrival("within_seconds", 1)
        .arrival("seed", 1)
        .flow("max_retries", 100)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "burst.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary = read_summary(&out);
    let throttled = summary["statuses"]["429"].as_u64().expect("429s counted");
    assert!(throttled > 0);
    assert!(stdout.contains(&format!("throttled {throttled} replies 429 (")), "{stdout}");
    assert!(stderr.contains("throttled "), "the live line: {stderr}");

    let csv = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name}"));
    let (total, in_second) = (column("throttled"), column("throttled_in_second"));
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let per_second: u64 = rows.iter().map(|r| r[in_second].parse::<u64>().unwrap()).sum();
    assert_eq!(rows.last().unwrap()[total].parse::<u64>().unwrap(), throttled, "{csv}");
    assert_eq!(per_second, throttled, "the seconds add up to the total: {csv}");

    let rates = &summary["rates"];
    let offered = rates["offered_per_second"].as_f64().unwrap();
    assert!(offered > 100.0, "130 devices within 1 s: {rates}");
    let peak = rates["peak_one_second"].as_u64().unwrap();
    assert!(peak > 0 && peak <= 130, "{rates}");
    assert!(rates["achieved_per_second"].as_f64().unwrap() > 0.0, "{rates}");
    assert!(stdout.contains("rates    offered ") && stdout.contains("(first to last assignment)"), "{stdout}");
}

/// The dry run's forecast against the real run: throttling present or absent as predicted, and
/// the duration within 50 % + 3 s of the prediction (a shared, loaded machine adds seconds).
#[test]
fn issue_14_dry_run_predictions_hold_in_real_runs() {
    let dir = temp_dir("first-hour-predict");
    let embedded = |name: &str| {
        Scenario::embedded(name)
            .target("retry_after_seconds", 1)
            .target("assign_delay_ms", 100)
            .run("max_duration_seconds", 60)
            .run("max_schedule_lag_p99_ms", 5000)
    };
    let cases = [
        ("calm", embedded("calm").devices(100).rate(50.0), false),
        (
            "storm",
            embedded("storm")
                .target("registrations_per_minute", 120)
                .devices(130)
                .arrival("model", "burst")
                .arrival("within_seconds", 1)
                .arrival("seed", 1)
                .flow("max_retries", 100),
            true,
        ),
    ];
    for (name, file, throttled) in cases {
        let scenario = file.write(&dir, &format!("{name}.toml"));
        let dry = text(&dpsbench(&["run", scenario.to_str().unwrap(), "--dry-run"], &[]).stdout);
        let expect = dry.lines().find(|l| l.starts_with("expect")).unwrap_or_else(|| panic!("{dry}"));
        assert_eq!(expect.contains("429 throttling certain"), throttled, "{name}: {expect}");
        let predicted: f64 = expect
            .split("about ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no duration in {expect}"));

        let out = dir.join(format!("out-{name}"));
        let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
        assert_eq!(run.status.code(), Some(0), "{name}: {}", text(&run.stderr));
        let summary = read_summary(&out);
        let got_429 = summary["statuses"]["429"].as_u64().unwrap_or(0) > 0;
        assert_eq!(got_429, throttled, "{name}: {}", summary["statuses"]);
        let actual = summary["duration_seconds"].as_f64().unwrap();
        assert!(
            (actual - predicted).abs() <= predicted * 0.5 + 3.0,
            "{name}: predicted {predicted} s, took {actual} s"
        );
    }
}

/// scenarios/closed.toml does what its comment says, at a smaller scale: no schedule lag, no
/// late starts, and each device polls about once.
#[test]
fn issue_14_closed_model_has_no_schedule_lag_and_polls_about_once() {
    let dir = temp_dir("first-hour-closed");
    let shipped = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/closed.toml"));
    assert!(shipped.contains("count = 2000\n"), "the test scales the shipped file down");
    let scenario = write(&dir, "closed.toml", &shipped.replace("count = 2000\n", "count = 200\n"));
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("no schedule lag (closed model"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("schedule_lag")), "{stdout}");
    let summary = read_summary(&out);
    assert!(summary["phases"].get("schedule_lag").is_none(), "{}", summary["phases"]);
    assert_eq!(summary["late_starts"], 0);
    assert!(summary["polls_per_device"]["mean"].as_f64().unwrap() <= 2.0, "{}", summary["polls_per_device"]);
}

#[test]
fn issue_14_the_emulator_warns_when_no_client_can_trust_it() {
    let dir = temp_dir("first-hour-ca-out");
    let mut emulator = crate::support::binary::KillOnDrop(
        Command::new(BIN)
            .args(["emulator", "--config", emulator_config(&dir).to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The warning comes before the ready line: once that is out, the warning is too.
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(emulator.stdout.take().unwrap()), &mut ready).unwrap();
    assert!(ready.contains("listening on 127.0.0.1:"), "{ready}");
    let mut warning = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(emulator.stderr.take().unwrap()), &mut warning).unwrap();
    assert!(warning.contains("warning: no --ca-out") && warning.contains("[target].ca_certificate"), "{warning}");
}

/// A line's shape: every word holding a digit becomes `#`, so numbers may differ but the words,
/// their order and the columns may not.
fn shape(line: &str) -> String {
    line.split_whitespace()
        .map(|word| if word.chars().any(|c| c.is_ascii_digit()) { "#" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// README's "What a run prints" is the quickstart's real output: the quickstart, scaled down,
/// prints every line of the sample in order, and every line of its head is in the sample.
#[test]
fn issue_14_the_readme_sample_output_has_the_real_output_shape() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let sample: Vec<&str> = readme
        .split("## What a run prints\n\n```\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md has the sample output")
        .lines()
        .filter(|line| *line != "...")
        .collect();
    assert!(sample.len() > 5, "{sample:?}");

    let dir = temp_dir("first-hour-sample");
    let shipped = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quickstart.toml"));
    assert!(shipped.contains("count = 1000\n"));
    let scenario = write(&dir, "quickstart.toml", &shipped.replace("count = 1000\n", "count = 100\n"));
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    let stdout = text(&output.stdout);
    assert!(matches!(output.status.code(), Some(0 | 3)), "{stdout}{}", text(&output.stderr));
    // Lines a loaded machine may add (an invalid run, a note) are not part of the shape.
    let real: Vec<String> =
        stdout.lines().filter(|l| !l.starts_with("INVALID RUN") && !l.starts_with("note:")).map(shape).collect();
    let mut rest = real.iter();
    for line in &sample {
        let wanted = shape(line);
        assert!(rest.any(|r| *r == wanted), "README line {line:?} is not in the real output, in order:\n{stdout}");
    }
    let head = real.iter().take_while(|l| !l.is_empty());
    let sample_shapes: Vec<String> = sample.iter().map(|l| shape(l)).collect();
    for line in head {
        assert!(sample_shapes.contains(line), "the real output's {line:?} is missing from README's sample");
    }
}
