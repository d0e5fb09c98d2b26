//! `dpsbench emulator` as an operator meets it (issue 24, item 4): `hubs` optional, a warning
//! for a configuration that enrols nobody, counts said in the singular when there is one, the
//! CA written only once the emulator listens, a log whose every line carries its instant, the
//! reason of a failed TLS handshake in that log, and a server certificate that also names DPS's
//! global endpoint.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::support::binary::{KillOnDrop, TV1_GROUP_KEY, dpsbench, temp_dir, text, write, write_certificates};
use crate::support::scenario::Scenario;

/// Starts the emulator on a free port; returns it with its ready line.
fn start(config: &Path, ca_out: &Path) -> (KillOnDrop, String) {
    start_with(config, ca_out, &[])
}

/// [`start`] with `extra` arguments.
pub fn start_with(config: &Path, ca_out: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    crate::support::binary::spawn_emulator_ready(config, ca_out, extra)
}

/// SIGTERM, then everything the emulator wrote on stderr; it must have stopped with exit 0.
fn stop(mut emulator: KillOnDrop) -> String {
    let status = Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(emulator.wait().unwrap().code(), Some(0));
    let mut log = String::new();
    emulator.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    log
}

/// Every line of `log` opens with an RFC 3339 UTC instant; returns the lines without it.
fn stamped_lines(log: &str) -> Vec<String> {
    log.lines()
        .map(|line| {
            let (instant, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no instant: {line:?}"));
            assert!(instant.ends_with('Z'), "not UTC: {line:?}");
            dpsbench::timestamp::parse_rfc3339(instant).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            rest.to_string()
        })
        .collect()
}

/// An emulator file with `scope`, no hubs, answers without delay, and one group of
/// [`TV1_GROUP_KEY`].
pub fn one_group_config(dir: &Path, scope: &str) -> std::path::PathBuf {
    write(
        dir,
        "emulator.toml",
        &format!(
            "id_scope = \"{scope}\"\nretry_after_seconds = 0\nassign_delay_ms = 0\n\
             [[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    )
}

fn port_of(ready: &str) -> &str {
    ready.split_whitespace().find_map(|w| w.strip_prefix("127.0.0.1:")).unwrap_or_else(|| panic!("{ready:?}"))
}

fn remote_scenario(dir: &Path, name: &str, port: &str, ca: &str, server_name: &str) -> std::path::PathBuf {
    remote(name, port, ca, server_name).write(dir, &format!("{name}.toml"))
}

fn remote(name: &str, port: &str, ca: &str, server_name: &str) -> Scenario {
    Scenario::dps(name, "127.0.0.1", "0ne00POL001")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", ca)
        .target("server_name", server_name)
        .devices(4)
        .device("registration_id", format!("{name}-{{index}}"))
        .device("group_key_env", "BENCH_KEY")
        .rate(40.0)
        .run("max_schedule_lag_p99_ms", 5000)
}

#[test]
fn an_emulator_without_hubs_serves_sdk_samples_aimed_at_the_global_endpoint_and_logs_why_tls_failed() {
    let dir = temp_dir("emulator-polish");
    let config = one_group_config(&dir, "0ne00POL001");
    let ca = dir.join("ca.pem");
    let (emulator, ready) = start(&config, &ca);
    assert!(ready.contains("(id scope 0ne00POL001, 1 enrollment group, 0 individual enrollments)"), "{ready}");
    let port = port_of(&ready).to_string();

    // The host-name check against DPS's global name passes, as an SDK sample sent there by an
    // /etc/hosts line makes it; the devices are assigned to the default hubs.
    let global = remote_scenario(&dir, "global", &port, "ca.pem", dpsbench::tls::DPS_GLOBAL_ENDPOINT);
    let out = dir.join("out");
    let run = dpsbench(
        &["run", global.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let summary = crate::support::schema::read_summary(&out);
    let hubs: Vec<&String> = summary["hubs"].as_object().unwrap().keys().collect();
    assert_eq!(hubs, ["hub-a.azure-devices.net", "hub-b.azure-devices.net"], "{}", summary["hubs"]);

    // Devices that trust another CA, and devices that offer TLS 1.3 alone, fail their
    // handshakes; the emulator's log says why, with what to check.
    write_certificates(&dir);
    let wrong = remote_scenario(&dir, "wrong-ca", &port, "trust.pem", "localhost");
    let tls13 = remote("tls13", &port, "ca.pem", "localhost").target("tls_versions", vec!["1.3"]);
    let tls13 = tls13.write(&dir, "tls13.toml");
    for scenario in [&wrong, &tls13] {
        let out = dir.join("out-refused");
        let run = dpsbench(
            &["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()],
            &[("BENCH_KEY", TV1_GROUP_KEY)],
        );
        assert_eq!(run.status.code(), Some(2), "the preflight stops it: {}", text(&run.stderr));
    }

    let log = stop(emulator);
    let lines = stamped_lines(&log);
    let failed: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("dpsbench emulator: TLS handshake failed: ")).collect();
    let said = |reason: &str, hint: &str| failed.iter().any(|l| l.contains(reason) && l.contains(hint));
    assert!(said("received fatal alert: UnknownCA", "--ca-out"), "the wrong CA's failure:\n{log}");
    // Each run first checks the port is reachable with a bare TCP connection: not a failure.
    assert!(!failed.iter().any(|l| l.contains("closed the connection")), "{log}");
    let total = lines.iter().rev().find_map(|l| {
        let after = l.split_once("tls handshakes failed +")?.1;
        after.split_once('(')?.1.split_once(')')?.0.parse::<u64>().ok()
    });
    assert_eq!(total, Some(2), "two failures, no more:\n{log}");
    assert!(said("peer is incompatible", "offered no TLS 1.2"), "TLS 1.3 alone:\n{log}");
    assert!(lines.iter().any(|l| l.starts_with("dpsbench emulator stopped: ")), "{log}");
    assert!(!log.contains(TV1_GROUP_KEY));
}

#[test]
fn an_emulator_that_enrols_nobody_says_so() {
    let dir = temp_dir("emulator-empty");
    let config = write(&dir, "empty.toml", "id_scope = \"0ne00POL002\"\n");
    let (emulator, ready) = start(&config, &dir.join("ca.pem"));
    assert!(ready.contains("0 enrollment groups, 0 individual enrollments"), "{ready}");
    let log = stop(emulator);
    let lines = stamped_lines(&log);
    let warning = lines.iter().find(|l| l.contains("warning: 0 enrollment groups"));
    assert!(warning.is_some_and(|w| w.contains("every device will be refused")), "{log}");
}

#[test]
fn the_ca_is_written_only_once_the_emulator_listens() {
    let dir = temp_dir("emulator-taken");
    let config = write(
        &dir,
        "emulator.toml",
        "id_scope = \"0ne00POL003\"\n[[enrollment_groups]]\nname = \"g\"\nprimary_key = \"c2VjcmV0\"\n",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let fresh = dir.join("fresh.pem");
    let owned = write(&dir, "owned.pem", "the user's own file\n");
    for (listen, ws_listen, ca_out) in [
        (address.as_str(), None, &fresh),
        (address.as_str(), None, &owned),
        ("127.0.0.1:0", Some(address.as_str()), &fresh),
    ] {
        let mut args = vec!["emulator", "--config", config.to_str().unwrap(), "--listen", listen];
        args.extend(["--ca-out", ca_out.to_str().unwrap()]);
        if let Some(ws) = ws_listen {
            args.extend(["--ws-listen", ws]);
        }
        let output = dpsbench(&args, &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&address), "{args:?}: the error names the address: {stderr}");
        assert!(!fresh.exists(), "{args:?}: --ca-out was written by an emulator that never listened");
        assert_eq!(std::fs::read_to_string(&owned).unwrap(), "the user's own file\n", "{args:?}");
    }
}
