//! Faults on demand: each scenario of `scenarios/faults/` runs against the embedded emulator (on
//! virtual time) and must end as its `# expect:` comments say, with every device accounted for,
//! none left running, and the emulator's count of the faults it injected in the summary.

use std::path::{Path, PathBuf};

use dpsbench::results::RunSummary;
use dpsbench::runner;
use dpsbench::scenario::Plan;
use tokio::sync::watch;

use crate::support::scenario::Scenario;

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// One `# expect:` line: `assigned = 4`, `failure timeout_register = 4`, `fault throttle >= 8`,
/// `failure_prefix status_5 = 4`.
#[derive(Debug)]
struct Expectation {
    what: Vec<String>,
    at_least: bool,
    value: u64,
}

fn expectations(text: &str) -> Vec<Expectation> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (what, rest) = words.split_at(words.len() - 2);
            assert!(rest[0] == "=" || rest[0] == ">=", "bad expectation {line:?}");
            Expectation {
                what: what.iter().map(|w| w.to_string()).collect(),
                at_least: rest[0] == ">=",
                value: rest[1].parse().unwrap(),
            }
        })
        .collect()
}

fn observed(summary: &RunSummary, what: &[String]) -> u64 {
    let devices = &summary.results.devices;
    let faults = &summary.emulator.as_ref().expect("an embedded run reports its emulator").faults;
    match what {
        [field] if field == "assigned" => devices.assigned,
        [field] if field == "failed" => devices.failed,
        [kind, label] if kind == "failure" => summary.results.failures.get(label).copied().unwrap_or(0),
        // Failures whose label starts with one of the comma-separated prefixes.
        [kind, prefixes] if kind == "failure_prefix" => summary
            .results
            .failures
            .iter()
            .filter(|(label, _)| prefixes.split(',').any(|prefix| label.starts_with(prefix)))
            .map(|(_, n)| n)
            .sum(),
        [kind, label] if kind == "fault" => faults.get(label).copied().unwrap_or(0),
        _ => panic!("unknown expectation {what:?}"),
    }
}

async fn run(path: &Path) -> RunSummary {
    let plan = Plan::load(path, &|_| None).unwrap();
    let (_no_interrupts, interrupts) = watch::channel(0);
    runner::run(&plan, &dpsbench::runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_fault_scenario_ends_as_its_comment_says() {
    let files = scenarios();
    assert_eq!(files.len(), 11, "one scenario per fault: {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{} states no expected outcome", path.display());
        let summary = run(&path).await;
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let devices = &summary.results.devices;
        eprintln!(
            "{name}: {devices:?} {:?} {:?}",
            summary.results.failures,
            summary.emulator.as_ref().map(|e| &e.faults)
        );
        assert_eq!(devices.total, devices.assigned + devices.failed + devices.aborted + devices.not_finished, "{name}");
        assert_eq!(summary.scenario.devices, devices.total, "{name}: every planned device started");
        // Every device ended by itself, within its flow deadline (30 s) after the last start.
        assert_eq!((devices.aborted, devices.not_finished), (0, 0), "{name}");
        assert!(!summary.partial && summary.duration_seconds < 40.0, "{name}: {}", summary.duration_seconds);
        let failures: u64 = summary.results.failures.values().sum();
        assert_eq!(failures, devices.failed, "{name}: every failure has its kind");
        // The fault named by the file was injected.
        assert!(summary.emulator.as_ref().unwrap().faults.contains_key(&name), "{name}");
        for expectation in expected {
            let value = observed(&summary, &expectation.what);
            let holds = if expectation.at_least { value >= expectation.value } else { value == expectation.value };
            assert!(holds, "{name}: expected {expectation:?}, observed {value}");
        }
    }
}

fn plan_in_temp(scenario: Scenario, env: &dyn Fn(&str) -> Option<String>) -> Plan {
    let dir = crate::support::binary::temp_dir("faults");
    Plan::load(&scenario.write(&dir, "scenario.toml"), env).unwrap()
}

#[tokio::test(start_paused = true)]
async fn planned_devices_that_never_start_are_counted_as_not_started() {
    // 50 devices at 10/s need 5 s; the run may last 2 s: about 20 start, the rest never do.
    let capped = plan_in_temp(
        Scenario::embedded("not-started")
            .target("retry_after_seconds", 0)
            .devices(50)
            .rate(10.0)
            .run("max_duration_seconds", 2),
        &|_| None,
    );
    let (_no_interrupts, interrupts) = watch::channel(0);
    let summary =
        runner::run(&capped, &dpsbench::runner::RunOptions::whole(&capped), interrupts, |_| {}).await.unwrap();
    let devices = &summary.results.devices;
    assert!(summary.partial);
    assert!((15..=25).contains(&devices.total), "{devices:?}");
    assert_eq!(devices.total + devices.not_started, 50, "planned = started + not started: {devices:?}");
    assert_eq!(devices.total, devices.assigned + devices.failed + devices.aborted + devices.not_finished);

    // A complete run leaves none unstarted.
    let complete =
        plan_in_temp(Scenario::embedded("all-started").target("retry_after_seconds", 0).devices(5).rate(10.0), &|_| {
            None
        });
    let (_no_interrupts, interrupts) = watch::channel(0);
    let summary =
        runner::run(&complete, &dpsbench::runner::RunOptions::whole(&complete), interrupts, |_| {}).await.unwrap();
    assert_eq!((summary.results.devices.total, summary.results.devices.not_started), (5, 0));
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A target that accepts the runner's one preflight connect, then closes its port: every
/// device's connect is refused.
async fn port_that_closes_after_preflight() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), listener.accept()).await;
    });
    port
}

async fn failing_run(devices: u64) -> RunSummary {
    let port = port_that_closes_after_preflight().await;
    let key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=";
    let plan = plan_in_temp(
        Scenario::dps(&format!("refused-{devices}"), "127.0.0.1", "0ne00000001")
            .target("port", i64::from(port))
            .devices(devices)
            .device("registration_id", "refused-{index:06}")
            .device("group_key_env", "K")
            .arrival("model", "closed")
            .arrival("concurrency", 200)
            .flow("connect_timeout_ms", 2000)
            .run("max_duration_seconds", 300)
            .run("preflight", false),
        &|name| (name == "K").then(|| key.to_string()),
    );
    let (_no_interrupts, interrupts) = watch::channel(0);
    runner::run(&plan, &dpsbench::runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_failing_devices_keep_no_state_per_device() {
    let small = failing_run(1_000).await;
    let before = rss_kib();
    let large = failing_run(100_000).await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    let devices = &large.results.devices;
    assert_eq!((devices.total, devices.failed, devices.assigned), (100_000, 100_000, 0), "{devices:?}");
    assert_eq!(devices.total, devices.assigned + devices.failed + devices.aborted + devices.not_finished);
    assert_eq!(large.results.failures.values().sum::<u64>(), 100_000);
    // Failures are counted by kind, never listed per device: the summary of 100,000 failures is
    // the size of the summary of 1,000 (a few digits more), and the process grew by far less
    // than a few hundred bytes per failed device would take.
    let size = |s: &RunSummary| serde_json::to_vec(s).unwrap().len();
    assert!(size(&large) < size(&small) + 512, "{} vs {}", size(&large), size(&small));
    assert!(large.results.failures.len() <= 3, "{:?}", large.results.failures);
    eprintln!("failures {:?}, RSS grew {grown_mib} MiB", large.results.failures);
    assert!(grown_mib < 256, "RSS grew {grown_mib} MiB over 100,000 failed devices");
}

#[test]
fn a_bad_fault_names_the_file_and_the_field() {
    let dir = crate::support::binary::temp_dir("faults-bad");
    let path = dir.join("bad.toml");
    for (fault, field) in [
        ("throttle = 1.5", "target.faults.throttle"),
        ("reply_delay_ms = [9, 1]", "target.faults.reply_delay_ms"),
        ("outage = { at_seconds = 1.0, for_seconds = -2.0 }", "target.faults.outage"),
    ] {
        std::fs::write(
            &path,
            format!("name = \"bad\"\n[devices]\ncount = 1\n[target]\nkind = \"embedded\"\n[target.faults]\n{fault}\n"),
        )
        .unwrap();
        let err = Plan::load(&path, &|_| None).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains(field), "{fault}: {err}");
    }
}

#[test]
fn the_standalone_emulator_injects_the_faults_of_its_file_and_reports_them() {
    use crate::support::binary::{TV1_GROUP_KEY, dpsbench, spawn_emulator, temp_dir, text, write};
    let dir = temp_dir("emulator-faults");
    let config = write(
        &dir,
        "emulator.toml",
        &format!(
            "id_scope = \"0ne00TEST03\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 0\n\
             assign_delay_ms = 0\n[[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n\
             [faults]\nseed = 1\nconnack_unavailable = 1.0\n"
        ),
    );
    let (mut emulator, port) = spawn_emulator(&config, &dir.join("ca.pem"));
    let scenario = Scenario::dps("remote", "127.0.0.1", "0ne00TEST03")
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(5)
        .device("registration_id", "remote-{index:03}")
        .device("group_key_env", "BENCH_KEY")
        .rate(100.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "remote.toml");
    let out = dir.join("out");
    let run =
        dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()], &[("BENCH_KEY", TV1_GROUP_KEY)]);
    assert_eq!(run.status.code(), Some(1), "not every device was assigned: {}", text(&run.stderr));
    let summary = crate::support::schema::read_summary(&out);
    assert_eq!(summary["failures"]["refused_3"], 5, "{summary}");
    let status = std::process::Command::new("kill").args(["-TERM", &emulator.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(emulator.wait().unwrap().code(), Some(0));
    let mut served = String::new();
    std::io::Read::read_to_string(&mut emulator.stderr.take().unwrap(), &mut served).unwrap();
    // The 5 devices' refusals and the preflight's 3 attempts, which the summary's note names
    // (a CONNACK 3 may pass, so the run went on).
    assert!(served.contains("injected faults: connack_unavailable 8"), "{served}");
    let notes = summary["notes"].to_string();
    assert!(notes.contains("3 attempts") && notes.contains("CONNECT refused with code 3"), "{notes}");
}

#[tokio::test]
async fn a_reset_fault_is_a_tcp_reset_not_a_clean_close() {
    use dpsbench::emulator::faults::{Fault, Faults, Probability};
    use tokio::io::AsyncReadExt;
    let emulator = crate::support::start_emulator(|c| {
        c.faults = Faults::default().with(Fault::ResetAfterConnect, Probability::new(1.0).unwrap());
    });
    let tcp = tokio::net::TcpStream::connect(emulator.handle.address).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(emulator.target.tls.clone());
    let tls = connector.connect(emulator.target.server_name.clone(), tcp).await.unwrap();
    let mut framed = dpsbench::mqtt::Framed::new(tls);
    let mut connect = rumqttc::mqttbytes::v4::Connect::new("dev-1");
    let identity = crate::support::device(&emulator.group_key, "dev-1");
    let password = identity.password.as_ref().unwrap().expose().to_string();
    connect.set_login(format!("{}/registrations/dev-1/api-version=2019-03-31", crate::support::SCOPE), password);
    framed.send(&rumqttc::mqttbytes::v4::Packet::Connect(connect)).await.unwrap();
    let mut stream = framed.into_inner();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await.unwrap();
    // An authenticated CONNECT gets no CONNACK and no clean close (FIN): ECONNRESET.
    let error = read.expect_err("a reset, not bytes or a clean end of stream");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    assert_eq!(emulator.handle.service.faults.counts.get(Fault::ResetAfterConnect), 1);
}
