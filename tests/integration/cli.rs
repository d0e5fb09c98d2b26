//! The `dpsbench` binary as scripts use it: exit codes, files written, one-line errors, and no
//! secret ever printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::binary::{
    BIN, KillOnDrop, TV1_GROUP_KEY, dpsbench, spawn_emulator, temp_dir, text, write, write_certificates,
};
use crate::support::scenario::Scenario;
use crate::support::schema::{check_schema, read_summary};

fn small_embedded_scenario(devices: u32) -> Scenario {
    Scenario::embedded("small")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 20)
        .devices(devices.into())
        .device("registration_id", "it-{index:04}")
        .rate(500.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
}

#[test]
fn run_assigns_every_device_and_writes_a_summary_matching_the_schema() {
    let dir = temp_dir("run");
    let scenario = small_embedded_scenario(60).write(&dir, "small.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for phase in ["tcp_connect", "tls_handshake", "connack", "suback", "register_accepted", "poll", "assigned"] {
        assert!(stdout.contains(phase), "summary table lacks {phase}:\n{stdout}");
    }
    let summary = read_summary(&out);
    let schema: Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/reports/summary.schema.json")))
            .unwrap();
    check_schema(&schema, &summary, "summary");
    assert_eq!(summary["devices"]["total"], 60);
    assert_eq!(summary["devices"]["assigned"], 60);
    assert_eq!(summary["devices"]["failed"], 0);
    assert!(summary["flows_per_second"].as_f64().unwrap() > 0.0);
    for phase in ["tcp_connect", "tls_handshake", "connack", "suback", "register_accepted", "poll", "assigned"] {
        let stats = &summary["phases"][phase];
        assert!(stats["count"].as_u64().unwrap() >= 60, "{phase}: {stats}");
        assert!(stats["p50_us"].as_u64().unwrap() <= stats["p99_us"].as_u64().unwrap());
        assert!(stats["p99_us"].as_u64().unwrap() <= stats["max_us"].as_u64().unwrap());
    }
    assert!(
        summary["phases"]["assigned"]["p50_us"].as_u64().unwrap() >= 20_000,
        "assignment delay is inside 'assigned'"
    );
    // 60 full TLS handshakes on both sides cost CPU, and the process says so.
    let generator = &summary["generator"];
    assert_eq!(generator["includes_emulator"], true);
    assert!(generator["cpu_us_per_device"].as_f64().unwrap() > 0.0, "{generator}");
    assert!(generator.get("flows_per_core_second").is_none(), "the emulator's CPU is in it: {generator}");
    assert!(stdout.contains("generator CPU: ") && stdout.contains("includes the embedded emulator"), "{stdout}");
}

#[test]
fn bad_input_is_one_line_naming_the_culprit_with_exit_2() {
    let dir = temp_dir("bad");
    let unknown = small_embedded_scenario(1).device("colour", 1).write(&dir, "unknown.toml");
    let bad_key = small_embedded_scenario(1).device("group_key_env", "BENCH_KEY").write(&dir, "badkey.toml");
    let ca = write(&dir, "ca.pem", dpsbench::tls::ServerIdentity::generate(&[]).unwrap().ca_pem());
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = Scenario::unreachable(closed_port, ca.to_str().unwrap()).write(&dir, "unreachable.toml");
    // A million devices in flight at once cannot fit any open-files limit here.
    let too_many = small_embedded_scenario(1_000_000)
        .remove("arrival.rate")
        .arrival("model", "closed")
        .arrival("concurrency", 1_000_000)
        .write(&dir, "too-many.toml");
    // (arguments, environment, what the error line must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<String>);
    let cases: Vec<Case> = vec![
        (vec!["run", unknown.to_str().unwrap()], vec![], vec![unknown.display().to_string(), "colour".into()]),
        (
            vec!["run", bad_key.to_str().unwrap()],
            vec![("BENCH_KEY", "very-secret-but-not-base64")],
            vec!["devices.group_key_env".into(), "base64".into()],
        ),
        (
            vec!["run", unreachable.to_str().unwrap()],
            vec![("BENCH_KEY", TV1_GROUP_KEY)],
            vec![format!("127.0.0.1:{closed_port}"), "unreachable".into()],
        ),
        (vec!["run", "/nonexistent/scenario.toml"], vec![], vec!["/nonexistent/scenario.toml".into()]),
        (
            vec!["run", too_many.to_str().unwrap()],
            vec![],
            vec!["open-files limit".into(), "arrival.concurrency".into()],
        ),
        (vec!["keys", "derive", "dev-1"], vec![], vec!["DPS_GROUP_KEY".into()]),
        (
            vec!["keys", "derive", "dev-1"],
            vec![("DPS_GROUP_KEY", "%%%")],
            vec!["DPS_GROUP_KEY".into(), "base64".into()],
        ),
        (vec!["keys", "derive", "bad id"], vec![("DPS_GROUP_KEY", TV1_GROUP_KEY)], vec!["bad id".into()]),
    ];
    for (args, env, expected) in cases {
        let output = dpsbench(&args, &env);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line, got {stderr}");
        for needle in expected {
            assert!(stderr.contains(&needle), "{args:?}: {stderr:?} lacks {needle:?}");
        }
        assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
        assert!(!stderr.contains("very-secret") && !stderr.contains(TV1_GROUP_KEY), "secret leaked: {stderr}");
    }
}

/// Values from a fixed list (arrival model, transport, attestation, TLS versions) are typed: an
/// unknown one is refused on one line naming the file, the field and the values accepted.
#[test]
fn unknown_values_name_the_file_the_field_and_the_accepted_ones() {
    let dir = temp_dir("unknown-values");
    let scenario = small_embedded_scenario(1);
    let cases = [
        ("model.toml", scenario.clone().arrival("model", "steady"), "model", "`closed`"),
        ("transport.toml", scenario.clone().target("transport", "quic"), "target.transport", "`websocket`"),
        ("attestation.toml", scenario.clone().device("attestation", "tpm"), "attestation", "`symmetric-key`"),
        ("tls.toml", scenario.clone().target("tls_versions", vec!["1.0"]), "target.tls_versions", "`1.2`"),
    ];
    for (name, file, field, accepted) in cases {
        let path = file.write(&dir, name);
        let output = dpsbench(&["run", path.to_str().unwrap(), "--dry-run"], &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: one line, got {stderr}");
        for needle in [path.display().to_string().as_str(), field, accepted] {
            assert!(stderr.contains(needle), "{name}: {stderr:?} lacks {needle:?}");
        }
    }
}

#[test]
fn keys_derive_and_token_reproduce_the_published_vectors() {
    let output = dpsbench(
        &["keys", "derive", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", "dev-2"],
        &[("DPS_GROUP_KEY", TV1_GROUP_KEY)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines: Vec<String> = text(&output.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");

    let dir = temp_dir("token");
    let key_file = write(&dir, "device.key", "00mysymmetrickey\n");
    let output = dpsbench(
        &[
            "token",
            "--id-scope",
            "myIdScope",
            "--registration-id",
            "mydeviceregistrationid",
            "--expiry",
            "1630175722",
            "--key-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim_end(),
        "SharedAccessSignature sr=myIdScope%2Fregistrations%2Fmydeviceregistrationid&sig=SDpdbUNk%2F1DSjEpeb29BLVe6gRDZI7T41Y4BPsHHoUg%3D&se=1630175722&skn=registration"
    );
}

/// `token --style` prints each SDK's exact form of the same token: the `sr` encoding (and so the
/// signature), the escapes' hex case, `skn` and the field order (docs/dps-mqtt.md §2).
#[test]
fn token_style_prints_each_sdks_exact_form() {
    let dir = temp_dir("token-style");
    let key_file = write(&dir, "device.key", "00mysymmetrickey\n");
    let token = |style: &str| {
        let output = dpsbench(
            &[
                "token",
                "--id-scope",
                "myIdScope",
                "--registration-id",
                "mydeviceregistrationid",
                "--expiry",
                "1630175722",
                "--key-file",
                key_file.to_str().unwrap(),
                "--style",
                style,
            ],
            &[],
        );
        assert_eq!(output.status.code(), Some(0), "{style}: {}", text(&output.stderr));
        text(&output.stdout).trim_end().to_string()
    };
    let upper_sr = "sr=myIdScope%2Fregistrations%2Fmydeviceregistrationid";
    let upper_sig = "sig=SDpdbUNk%2F1DSjEpeb29BLVe6gRDZI7T41Y4BPsHHoUg%3D";
    let documented = format!("SharedAccessSignature {upper_sr}&{upper_sig}&se=1630175722&skn=registration");
    assert_eq!(token("dpsbench"), documented);
    assert_eq!(token("csharp"), documented);
    assert_eq!(token("python"), format!("SharedAccessSignature {upper_sr}&{upper_sig}&se=1630175722"));
    // Node signs the raw resource (test vector 2) and puts skn before se.
    assert_eq!(
        token("node"),
        "SharedAccessSignature sr=myIdScope/registrations/mydeviceregistrationid&sig=l6nCPQlqkWB046a6n2bBXzmeBzVE3rfYFvAMaLBzGDA%3D&skn=registration&se=1630175722"
    );
    // The C SDK signs its lower-case sr and writes every escape in lower case, sig's too.
    let c = token("c");
    assert!(c.starts_with("SharedAccessSignature sr=myIdScope%2fregistrations%2fmydeviceregistrationid&sig="), "{c}");
    assert!(c.ends_with("&se=1630175722&skn=registration"), "{c}");
    let embedded = token("embedded-c");
    assert!(embedded.starts_with("SharedAccessSignature sr=myIdScope%2fregistrations%2fmydeviceregistrationid&sig="));
    assert!(embedded.ends_with("&se=1630175722") && !embedded.contains("skn"), "{embedded}");
    let sig = |token: &str| token.split("&sig=").nth(1).unwrap().split('&').next().unwrap().to_string();
    // Both C SDKs sign the same sr; only the case of sig's escapes differs.
    assert_eq!(sig(&c), sig(&embedded).replace("%2F", "%2f").replace("%2B", "%2b").replace("%3D", "%3d"));
    assert!(sig(&c).contains('%'), "this key's signature has escapes: {c}");
    assert!(!c.split('%').skip(1).any(|escape| escape[..2].chars().any(|ch| ch.is_ascii_uppercase())), "{c}");

    let output =
        dpsbench(&["token", "--id-scope", "s", "--registration-id", "r", "--expiry", "1", "--style", "java"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("expected one of dpsbench, python, node, c, embedded-c, csharp"));
}

/// The standalone emulator serves a run in another process, writes its CA, and stops on SIGTERM.
#[test]
fn standalone_emulator_serves_a_dps_target_run_and_stops_on_sigterm() {
    let dir = temp_dir("emulator");
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00TEST02\"\nhubs = [\"hub-a.azure-devices.net\", \"hub-b.azure-devices.net\"]\n\
             retry_after_seconds = 0\nassign_delay_ms = 10\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    );
    let ca = dir.join("ca.pem");
    let (mut emulator, port) = spawn_emulator(&config, &ca);
    assert!(std::fs::read_to_string(&ca).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

    let scenario = Scenario::dps("remote", "127.0.0.1", "0ne00TEST02")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(40)
        .device("registration_id", "remote-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .rate(400.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "remote.toml");
    let out = dir.join("out");
    let run =
        dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[("BENCH_KEY", TV1_GROUP_KEY)]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary_text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let summary: Value = serde_json::from_str(&summary_text).unwrap();
    assert_eq!(summary["devices"]["assigned"], 40);
    assert_eq!(summary["target"]["kind"], "dps");
    // Against an external target the process's CPU is the generator's alone: per core too.
    let generator = &summary["generator"];
    assert_eq!(generator["includes_emulator"], false);
    let per_device = generator["cpu_us_per_device"].as_f64().unwrap();
    let per_core = generator["flows_per_core_second"].as_f64().unwrap();
    let cpu = generator["cpu_user_seconds"].as_f64().unwrap() + generator["cpu_system_seconds"].as_f64().unwrap();
    assert!(per_device > 0.0 && per_core > 0.0, "{generator}");
    assert!((per_core - 40.0 / cpu).abs() <= 0.01 * per_core + 1.0, "{generator}");
    assert!(stdout.contains("flows/s per core"), "{stdout}");
    for output in [&stdout, &stderr, &summary_text] {
        assert!(!output.contains(TV1_GROUP_KEY) && !output.contains("SharedAccessSignature"), "secret in output");
    }

    // SIGTERM: the emulator stops cleanly and reports what it served.
    let status = Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = emulator.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let mut served = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut served).unwrap();
    assert!(served.contains("40 registrations"), "{served}");
}

#[test]
fn emulator_config_errors_name_file_and_field() {
    let dir = temp_dir("emu-bad");
    let config = write(&dir, "bad.toml", "id_scope = \"0ne00TEST02\"\nhubs = []\n");
    let output = dpsbench(&["emulator", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml") && stderr.contains("`hubs`"), "{stderr}");
}

/// With `[tls]` files, the emulator serves that chain and `--ca-out` writes the configured CA.
#[test]
fn standalone_emulator_serves_certificates_from_files() {
    let dir = temp_dir("emulator-tls");
    let ca = write_certificates(&dir);
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00TEST03\"\nhubs = [\"hub-a\"]\nretry_after_seconds = 0\nassign_delay_ms = 0\n\
             [[enrollment_groups]]\nname = \"g\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n\
             [tls]\ncertificate_chain = \"chain.pem\"\nprivate_key = \"key.pem\"\nca_certificate = \"trust.pem\"\n"
        ),
    );
    let ca_out = dir.join("ca-out.pem");
    let (mut emulator, port) = spawn_emulator(&config, &ca_out);
    assert_eq!(std::fs::read_to_string(&ca_out).unwrap().trim(), ca.trim(), "--ca-out writes the configured CA");

    let scenario = Scenario::loopback("files", port.parse().unwrap(), "0ne00TEST03", "trust.pem")
        .devices(5)
        .device("group_key_env", "BENCH_KEY")
        .rate(100.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "remote.toml");
    let run = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap(), "--quiet"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    let _ = emulator.kill();
    let _ = emulator.wait();
    assert_eq!(run.status.code(), Some(0), "{}\n{}", text(&run.stdout), text(&run.stderr));
}

#[test]
fn a_run_that_cannot_keep_its_plan_is_invalid_with_exit_3() {
    // 20 devices offered at 1,000/s through one in-flight slot, each taking 20 ms or more:
    // starts fall hundreds of milliseconds behind the plan.
    let dir = temp_dir("invalid");
    let scenario = Scenario::cannot_keep_its_plan().write(&dir, "invalid.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("INVALID"), "{}", text(&output.stdout));
    let summary = read_summary(&out);
    assert_eq!(summary["validity"]["valid"], false);
    assert!(summary["validity"]["reasons"][0].as_str().unwrap().contains("schedule lag p99"));
    assert_eq!(summary["devices"]["assigned"], 20, "the devices themselves succeeded");
    let series = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(series.starts_with("elapsed_s,started,assigned,failed,in_flight,late_starts,"), "{series}");
    let last: Vec<&str> = series.lines().last().unwrap().split(',').collect();
    assert_eq!(last[2], "20", "the last row counts every assigned device: {series}");
    assert!(last[5].parse::<u64>().unwrap() >= 10, "late starts are counted: {series}");
}

/// SIGINT stops arrivals, drains the devices in flight and still writes a partial summary.
#[test]
fn sigint_drains_and_writes_a_partial_summary() {
    let dir = temp_dir("sigint");
    let scenario = Scenario::embedded("slow")
        .target("retry_after_seconds", 1)
        .target("assign_delay_ms", 500)
        .devices(1000)
        .rate(20.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "slow.toml");
    let out = dir.join("out");
    let mut run = KillOnDrop(
        Command::new(BIN)
            .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait for the second progress line: devices are in flight by then.
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let mut lines = 0;
    let mut line = String::new();
    while lines < 3 && stderr.read_line(&mut line).unwrap() > 0 {
        lines += 1;
        line.clear();
    }
    assert!(Command::new("kill").args(["-INT", &run.id().to_string()]).status().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(1), "stopped early is exit 1: {rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    let summary = read_summary(&out);
    assert_eq!(summary["partial"], true);
    let devices = &summary["devices"];
    let total = devices["total"].as_u64().unwrap();
    assert!(total > 0 && total < 1000, "{devices}");
    assert_eq!(devices["assigned"].as_u64().unwrap(), total, "in-flight devices were drained: {devices}");
    let series = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(series.lines().count() >= 3, "{series}");
}

/// --dry-run resolves the plan and says what it will bill and how DPS will throttle it, without
/// connecting anywhere (the host here does not even resolve).
#[test]
fn dry_run_prints_the_plan_billing_and_throttling_without_connecting() {
    let dir = temp_dir("dry-run");
    let scenario = Scenario::dps("rollout", "dps.example.invalid", "0ne0026656D")
        .target("max_devices_per_second", 50)
        .target("dps_units", 2)
        .devices(6000)
        .device("group_key_env", "BENCH_KEY")
        .rate(40.0)
        .write(&dir, "rollout.toml");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--dry-run"], &[("BENCH_KEY", TV1_GROUP_KEY)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("dps.example.invalid:8883") && stdout.contains("NOT on this machine"), "{stdout}");
    assert!(stdout.contains("6000 registrations are billable"), "{stdout}");
    // 2 units: 2,000 registrations a minute (33.3/s) against 40/s offered for 150 s. DPS does
    // not publish its burst: a bucket that starts full (2,000) holds the plan, one that starts
    // empty refills slower than devices come, so those that find no token within dpsbench's 5
    // retries give up; DPS's usual retry-after of 3 s before the last assignment is read.
    assert!(
        stdout.contains("forecast for one that starts full (2000) and one that starts empty")
            && stdout.contains("no throttling if the bucket starts full, 429 throttling if it starts empty")
            && stdout.contains("between about 153 and 156 s"),
        "{stdout}"
    );
    assert!(stdout.contains("bucket full at the start: about 6000 assigned, 0 give up"), "{stdout}");
    assert!(stdout.contains("bucket empty at the start: about 5100 assigned, 900 give up"), "{stdout}");
    assert!(!stdout.contains(TV1_GROUP_KEY));
}
