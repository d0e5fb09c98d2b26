//! Client checks (issue 21): a judging emulator holds every client to what the DPS MQTT page
//! asks of a device. Failing controls: each `[devices] misbehave` switch, run against a judging
//! emulator, fails exactly the checks the catalogue says it fails. Passing controls: every
//! dpsbench personality passes every must-check, and breaks only the should-checks pinned here
//! for the SDK it mirrors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dpsbench::credentials::SymmetricKey;
use dpsbench::device::Misbehaviour;
use dpsbench::emulator::client_checks::{self, ClientReport, Judge, JudgeConfig, Verdict};
use dpsbench::emulator::faults::{Fault, Faults, Probability};
use dpsbench::emulator::{self, Service, ServiceConfig};
use dpsbench::scenario::Plan;

use crate::support::binary::{KillOnDrop, temp_dir};
use crate::support::scenario::Scenario;

const SCOPE: &str = "0ne00CLNT01";

/// What a judged run is made of.
struct Run<'a> {
    name: &'a str,
    devices: u64,
    /// A `[devices]` field beyond count, IDs and key.
    device: Option<(&'static str, toml::Value)>,
    faults: Faults,
    x509: bool,
}

impl<'a> Run<'a> {
    fn new(name: &'a str) -> Self {
        Self { name, devices: 2, device: None, faults: Faults::default(), x509: false }
    }
}

/// Runs `run`'s devices through `dpsbench run` against a judging emulator on loopback; returns
/// the emulator's client report and the run's summary.
async fn judged(run: Run<'_>) -> (ClientReport, dpsbench::results::RunSummary) {
    let dir = temp_dir(run.name);
    let group_key = SymmetricKey::random();
    let mut config = ServiceConfig::single_group(
        dpsbench::credentials::IdScope::new(SCOPE).unwrap(),
        vec!["hub-a.example".into()],
        group_key.clone(),
    );
    config.retry_after_seconds = 1;
    config.assign_delay = Duration::from_millis(300);
    config.faults = run.faults.clone();
    let mut scenario = Scenario::loopback(run.name, 0, SCOPE, "ca.pem")
        .devices(run.devices)
        .device("registration_id", format!("{}-{{index:02}}", run.name))
        .device("group_key_env", "KEY")
        .rate(50.0)
        .flow("connect_timeout_ms", 3000)
        .flow("reply_timeout_ms", 3000)
        .flow("flow_timeout_seconds", 20)
        .run("max_schedule_lag_p99_ms", 5000);
    if let Some((field, value)) = run.device {
        scenario = scenario.device(field, value);
    }
    if run.x509 {
        let ca = dpsbench::x509::CertificateAuthority::generate().unwrap();
        ca.write(&dir.join("ca")).unwrap();
        config.trust_x509_ca("x509", ca.root_pem(), &dir.join("ca/root.pem")).unwrap();
        scenario = scenario.device("attestation", "x509").device("x509_ca_dir", "ca");
    }
    let judge = Arc::new(Judge::new(JudgeConfig::default()));
    let service = Service::new(config).observed_by(judge.clone());
    let started = emulator::start_service_on_loopback(service, Default::default()).unwrap();
    std::fs::write(dir.join("ca.pem"), &started.ca_pem).unwrap();
    let port = started.handle.address.port();
    let scenario = scenario.target("port", i64::from(port)).write(&dir, "scenario.toml");
    let key = group_key.to_base64();
    let plan = Plan::load(&scenario, &|name| (name == "KEY").then(|| key.clone())).unwrap();
    let (_keep, interrupts) = tokio::sync::watch::channel(0);
    let summary =
        dpsbench::runner::run(&plan, &dpsbench::runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap();
    // Returns once every connection has ended and folded its checks in.
    started.handle.stop().await;
    (judge.report(), summary)
}

fn failed(report: &ClientReport) -> BTreeSet<String> {
    report.failed().into_iter().map(String::from).collect()
}

fn ids(checks: &[client_checks::ClientCheck]) -> BTreeSet<String> {
    checks.iter().map(|c| c.id().to_string()).collect()
}

fn seeded(seed: u64) -> Faults {
    let mut faults = Faults::default();
    faults.seed = seed;
    faults
}

/// The faults a switch needs to get its chance: a 429 to ignore, connections that fail.
fn faults_for(misbehaviour: Misbehaviour) -> Faults {
    let p = |x| Probability::new(x).unwrap();
    match misbehaviour {
        Misbehaviour::IgnoreThrottleRetryAfter => seeded(7).with(Fault::Throttle, p(0.5)),
        Misbehaviour::ReconnectTightLoop => Faults::default().with(Fault::ConnackUnavailable, p(1.0)),
        _ => Faults::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_fails_exactly_its_client_checks() {
    let runs = Misbehaviour::ALL.map(|misbehaviour| {
        Box::pin(async move {
            let name = misbehaviour.name().replace('_', "-");
            let mut run = Run::new(&name);
            run.device = Some(("misbehave", vec![misbehaviour.to_string()].into()));
            run.faults = faults_for(misbehaviour);
            run.x509 = misbehaviour == Misbehaviour::CnMismatch;
            let (report, summary) = judged(run).await;
            (misbehaviour, report, summary)
        })
    });
    let mut problems = Vec::new();
    for (misbehaviour, report, summary) in futures_util::future::join_all(runs).await {
        assert_eq!(summary.misbehave, [misbehaviour], "summary.json lists the switch");
        let expected = ids(&client_checks::catalogue::failed_by(misbehaviour));
        let found = failed(&report);
        if found != expected {
            let evidence: Vec<String> = report
                .checks
                .iter()
                .filter(|c| c.verdict == Verdict::Fail)
                .map(|c| format!("{}: {:?}", c.check.id, c.examples.first()))
                .collect();
            problems.push(format!("{misbehaviour}: expected {expected:?}, failed {found:?} ({evidence:?})"));
        }
        assert!(report.connections > 0 || misbehaviour == Misbehaviour::Tls13Only, "{misbehaviour}: nothing judged");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The should-checks each personality breaks, as the SDK it mirrors does: CleanSession 0
/// (Python, azure-sdk-for-c), no `skn` (Python, azure-sdk-for-c), no registrationId in the
/// register body (azure-sdk-for-c, C#).
fn pinned_should_breaks(personality: &str) -> BTreeSet<String> {
    let ids: &[&str] = match personality {
        "python" => &["DPS-CLIENT-AUTH-002", "DPS-CLIENT-MQTT-004"],
        "embedded-c" => &["DPS-CLIENT-AUTH-002", "DPS-CLIENT-BODY-002", "DPS-CLIENT-MQTT-004"],
        "csharp" => &["DPS-CLIENT-BODY-002"],
        _ => &[],
    };
    ids.iter().map(|id| id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dpsbench_personality_passes_every_must_check() {
    let personalities = ["dpsbench", "python", "node", "c", "embedded-c", "csharp"];
    let runs = personalities.map(|personality| {
        Box::pin(async move {
            let name = format!("personality-{personality}");
            let mut run = Run::new(&name);
            run.devices = 4;
            run.device = Some(("personality", personality.into()));
            // Throttling gives the 429 check its chance; every flow still ends assigned or failed.
            run.faults = seeded(3).with(Fault::Throttle, Probability::new(0.3).unwrap());
            let (report, summary) = judged(run).await;
            (personality, report, summary)
        })
    });
    for (personality, report, summary) in futures_util::future::join_all(runs).await {
        assert!(report.connections >= 4, "{personality}: {} connections judged", report.connections);
        assert!(!report.must_broken, "{personality} broke a must-check: {:?}", report.failed());
        assert_eq!(failed(&report), pinned_should_breaks(personality), "{personality}");
        for check in ["DPS-CLIENT-TLS-001", "DPS-CLIENT-SUB-001", "DPS-CLIENT-FLOW-001", "DPS-CLIENT-CONN-002"] {
            let result = report.checks.iter().find(|c| c.check.id == check).unwrap();
            assert!(result.judged > 0, "{personality}: {check} was never judged");
        }
        assert!(summary.misbehave.is_empty(), "no misbehaviour by default");
    }
}

#[test]
fn a_scenario_names_its_misbehaviours_and_refuses_unknown_ones() {
    let dir = temp_dir("scenario");
    let scenario = Scenario::embedded("s").rate(1.0).devices(1);
    let write = |misbehave: &[&str]| {
        let scenario = scenario.clone();
        if misbehave.is_empty() { scenario } else { scenario.device("misbehave", misbehave.to_vec()) }
            .write(&dir, "s.toml")
    };
    let plan = Plan::load(&write(&["poll_early", "no_skn"]), &|_| None).unwrap();
    assert_eq!(plan.flow.misbehave.list(), [Misbehaviour::NoSkn, Misbehaviour::PollEarly]);
    let default = Plan::load(&write(&[]), &|_| None).unwrap();
    assert!(default.flow.misbehave.is_empty(), "never on by default");
    let error = Plan::load(&write(&["be_rude"]), &|_| None).unwrap_err().to_string();
    assert!(error.contains("be_rude") && error.contains("s.toml"), "{error}");
    let error = Plan::load(&write(&["cn_mismatch"]), &|_| None).unwrap_err().to_string();
    assert!(error.contains("devices.misbehave"), "{error}");
    let _ = Path::new(&*dir);
}

/// Starts `dpsbench emulator --client-report DIR --exit-after N`; returns it and its port.
fn spawn_judging_emulator(dir: &Path, report: &Path, exit_after: u64, extra: &[&str]) -> (KillOnDrop, String) {
    let config = crate::support::binary::write(
        dir,
        "emulator.toml",
        &format!(
            "id_scope = \"{SCOPE}\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 1\nassign_delay_ms = 200\n\
             [[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{}\"\n",
            crate::support::binary::TV1_GROUP_KEY
        ),
    );
    let exit_after = exit_after.to_string();
    let mut args = vec!["--client-report", report.to_str().unwrap(), "--exit-after", &exit_after];
    args.extend_from_slice(extra);
    crate::support::binary::spawn_emulator_with(&config, &dir.join("ca.pem"), &args)
}

/// A fleet of `devices` against a judging emulator, one connection each (no preflight, so the
/// report's `connections` counts the fleet's alone).
fn remote_scenario(dir: &Path, port: &str, devices: u32, misbehave: &[&str]) -> PathBuf {
    Scenario::loopback("remote", port.parse().unwrap(), SCOPE, "ca.pem")
        .devices(devices.into())
        .device("registration_id", "fw-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .device("misbehave", misbehave.to_vec())
        .rate(100.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .run("preflight", false)
        .write(dir, "remote.toml")
}

fn wait_with_deadline(child: &mut KillOnDrop, seconds: u64) -> std::process::ExitStatus {
    let status = crate::support::binary::wait_for_exit(child, Duration::from_secs(seconds));
    status.unwrap_or_else(|| panic!("the emulator did not exit within {seconds} s"))
}

/// Reads `clients.junit.xml` in `dir` with an independent JUnit parser (junitparser) and checks it
/// says what `clients.json` says: one test case per check, named and grouped by its level, each
/// with its verdict (a broken check a failure whose type is its level), and the suite's counts.
/// Returns what the parser read.
fn junit_agrees_with_json(dir: &Path) -> serde_json::Value {
    let junit = crate::support::python::read_junit(&dir.join("clients.junit.xml"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("clients.json")).unwrap()).unwrap();
    let checks = json["checks"].as_array().unwrap();
    let cases = junit["cases"].as_array().unwrap();
    assert_eq!((cases.len(), checks.len()), (client_checks::CATALOGUE.len(), client_checks::CATALOGUE.len()));
    let (mut failures, mut skipped) = (0, 0);
    for (case, check) in cases.iter().zip(checks) {
        let (id, level) = (check["id"].as_str().unwrap(), check["level"].as_str().unwrap());
        assert_eq!(case["name"], format!("{id} {}", check["title"].as_str().unwrap()), "{case}");
        assert_eq!(case["classname"], format!("dpsbench.clients.{level}"), "{case}");
        let expected = match check["verdict"].as_str().unwrap() {
            "pass" => "passed",
            "fail" => "failure",
            _ => "skipped",
        };
        assert_eq!(case["result"], expected, "{id}");
        match expected {
            "failure" => {
                failures += 1;
                assert_eq!(case["type"], level, "{id}");
            }
            "skipped" => skipped += 1,
            _ => {}
        }
    }
    let suite = &junit["suites"][0];
    assert_eq!(suite["name"], "dpsbench.clients");
    assert_eq!(
        [&suite["tests"], &suite["failures"], &suite["errors"], &suite["skipped"]],
        [checks.len(), failures, 0, skipped].map(serde_json::Value::from).each_ref()
    );
    junit
}

#[test]
fn the_standalone_emulator_writes_a_client_report_and_exits_1_on_a_broken_must_check() {
    use crate::support::binary::{TV1_GROUP_KEY, dpsbench, text};
    let dir = temp_dir("standalone");
    let report = dir.join("clients");
    // A well-behaved fleet: exit 0 after its 3 connections, three reports written.
    let (mut emulator, port) = spawn_judging_emulator(&dir, &report, 3, &["--client-detail", "fw-002"]);
    let scenario = remote_scenario(&dir, &port, 3, &[]);
    let run = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", dir.join("run-ok").to_str().unwrap(), "--quiet"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(wait_with_deadline(&mut emulator, 30).code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("clients.json")).unwrap()).unwrap();
    assert_eq!(
        (json["schema"].as_str(), json["connections"].as_u64(), json["must_broken"].as_bool()),
        (Some("dpsbench.clients/v1"), Some(3), Some(false)),
        "{json}"
    );
    assert!(json["clients"].as_array().unwrap().iter().any(|c| c["registration_id"] == "fw-002"), "{json}");
    let junit = std::fs::read_to_string(report.join("clients.junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\"") && junit.contains("DPS-CLIENT-FLOW-001"), "{junit}");
    assert_eq!(junit_agrees_with_json(&report)["suites"][0]["failures"], 0, "{junit}");
    assert!(std::fs::read_to_string(report.join("clients.md")).unwrap().contains("**pass**"));

    // The same folder again is refused (exit 2) without --force, and nothing in it changes.
    let again = dpsbench(
        &[
            "emulator",
            "--config",
            dir.join("emulator.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--client-report",
            report.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));

    // A fleet that polls early: exit 1, the check failed with the first registration IDs as
    // evidence and no secret in any report.
    let (mut emulator, port) = spawn_judging_emulator(&dir, &report, 2, &["--force"]);
    let scenario = remote_scenario(&dir, &port, 2, &["poll_early"]);
    let run = dpsbench(
        &["run", scenario.to_str().unwrap(), "--out", dir.join("run-early").to_str().unwrap(), "--quiet"],
        &[("BENCH_KEY", TV1_GROUP_KEY)],
    );
    assert!(run.status.code().is_some(), "{}", text(&run.stderr));
    let status = wait_with_deadline(&mut emulator, 30);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 must-checks"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("clients.json")).unwrap()).unwrap();
    let flow = json["checks"].as_array().unwrap().iter().find(|c| c["id"] == "DPS-CLIENT-FLOW-001").unwrap();
    assert_eq!(flow["verdict"], "fail", "{flow}");
    assert!(flow["examples"][0]["registration_id"].as_str().unwrap().starts_with("fw-"), "{flow}");
    let read = junit_agrees_with_json(&report);
    let case = read["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("DPS-CLIENT-FLOW-001"));
    let message = case.and_then(|c| c["message"].as_str()).unwrap_or_default();
    assert!(message.contains("connections broke this must-check"), "{case:?}");
    for file in ["clients.json", "clients.md", "clients.junit.xml"] {
        let written = std::fs::read_to_string(report.join(file)).unwrap();
        assert!(
            !written.contains("SharedAccessSignature") && !written.contains("sig=") && !written.contains(TV1_GROUP_KEY),
            "{file}"
        );
    }
}

/// The nightly job's script judges dpsbench's own devices (exit 0), and a client command given
/// the emulator's address, scope, CA and group key through its environment (here a fleet that
/// polls early: exit 1).
#[test]
fn the_nightly_judge_client_script_passes_a_good_client_and_fails_a_bad_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("nightly");
    let script = root.join("deploy/nightly/judge-client.sh");
    let judge = |client: Option<&str>| {
        let mut command = std::process::Command::new(&script);
        command
            .env("DPSBENCH", env!("CARGO_BIN_EXE_dpsbench"))
            .env("OUT", dir.join("out"))
            .env("CONNECTIONS", "2")
            .env("TIMEOUT", "60")
            .env_remove("CLIENT_COMMAND");
        if let Some(client) = client {
            command.env("CLIENT_COMMAND", client);
        }
        command.output().unwrap()
    };
    let good = judge(None);
    assert_eq!(good.status.code(), Some(0), "{}", String::from_utf8_lossy(&good.stderr));
    assert!(dir.join("out/clients/clients.junit.xml").exists());
    let bad = format!(
        "printf '%s\\n' 'name = \"bad\"' '[target]' 'kind = \"dps\"' \"host = \\\"$DPS_HOST\\\"\" \"port = $DPS_PORT\" \
         \"id_scope = \\\"$DPS_ID_SCOPE\\\"\" \"ca_certificate = \\\"$DPS_CA\\\"\" 'server_name = \"localhost\"' \
         '[devices]' 'count = 2' 'group_key_env = \"DPS_GROUP_KEY\"' 'misbehave = [\"poll_early\"]' '[arrival]' 'rate = 10' \
         > {dir}/bad.toml && {bin} run {dir}/bad.toml --out {dir}/bad-run --quiet --force",
        dir = dir.display(),
        bin = env!("CARGO_BIN_EXE_dpsbench"),
    );
    let bad = judge(Some(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 must-checks"), "{stderr}");
}
