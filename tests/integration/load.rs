//! The load engine: each load model and stop condition, run through `runner::run` against the
//! in-process emulator, on virtual time: tokio's clock is paused and jumps to the next timer
//! whenever every task waits, so waits cost no real time and timings do not depend on the
//! machine. Every device therefore waits on a timer, never spins: a plan with an assignment delay
//! also sets a `retry-after`.

use std::path::PathBuf;
use std::time::Duration;

use dpsbench::results::{RunSummary, Tick};
use dpsbench::runner;
use dpsbench::scenario::Plan;
use tokio::sync::watch;

fn plan(name: &str, body: &str) -> Plan {
    let dir = std::env::temp_dir().join(format!("dpsbench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("{name}.toml"));
    // Devices poll back to back unless a test asks for a retry-after.
    let retry_after = if body.contains("retry_after_seconds") { "" } else { "retry_after_seconds = 0\n" };
    std::fs::write(&path, format!("name = \"{name}\"\n[target]\nkind = \"embedded\"\n{retry_after}{body}")).unwrap();
    Plan::load(&path, &|_| None).unwrap()
}

/// What the run's latency histograms (microseconds, 3 significant digits) report for a latency
/// of exactly `duration`: `(min_us, max_us)` when every device took that long.
fn recorded_as(duration: Duration) -> (u64, u64) {
    let histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    let micros = duration.as_micros() as u64;
    (histogram.lowest_equivalent(micros), histogram.highest_equivalent(micros))
}

async fn run(plan: &Plan) -> RunSummary {
    let (_no_interrupts, interrupts) = watch::channel(0);
    runner::run(plan, &dpsbench::runner::RunOptions::whole(plan), interrupts, |_| {}).await.unwrap()
}

/// Runs `plan`, interrupting `times` times once `after` devices have started.
async fn run_interrupted(plan: &Plan, after: u64, times: u32) -> (RunSummary, Vec<Tick>) {
    let (interrupt, interrupts) = watch::channel(0);
    let mut ticks = Vec::new();
    let summary = runner::run(plan, &dpsbench::runner::RunOptions::whole(plan), interrupts, |tick| {
        if tick.progress.started >= after && *interrupt.borrow() == 0 {
            interrupt.send_replace(times);
        }
        ticks.push(tick.clone());
    })
    .await
    .unwrap();
    (summary, ticks)
}

#[tokio::test(start_paused = true)]
async fn closed_model_keeps_concurrency_fixed() {
    // One device in flight, each taking one retry-after (1 s): five devices need five seconds.
    let one = plan(
        "closed1",
        "assign_delay_ms = 40\nretry_after_seconds = 1\n[devices]\ncount = 5\n[arrival]\nmodel = \"closed\"\n\
         concurrency = 1\n",
    );
    let summary = run(&one).await;
    assert_eq!(summary.results.devices.assigned, 5);
    // The first device starts the moment the run does, 10 ms before the run's clock begins.
    assert_eq!(summary.duration_seconds, 4.99);
    assert_eq!(summary.scenario.arrival, "closed, 1 in flight");
    // A closed model starts each device the instant a slot frees: it has no plan to be late
    // against, so no schedule lag is reported (issue 14), and every device took exactly its
    // retry-after.
    assert!(!summary.results.phases.contains_key("schedule_lag"), "{:?}", summary.results.phases.keys());
    assert_eq!(summary.results.late_starts, 0);
    let assigned = &summary.results.phases["assigned"];
    assert_eq!((assigned.min_us, assigned.max_us), recorded_as(Duration::from_secs(1)), "{assigned:?}");
}

#[tokio::test(start_paused = true)]
async fn duration_stops_arrivals_before_the_count() {
    let timed = plan("timed", "[devices]\ncount = 1000\n[arrival]\nrate = 50\n[run]\nduration_seconds = 0.5\n");
    let summary = run(&timed).await;
    // Starts at 0, 20, ..., 480 ms: 25 devices, then the duration ends the arrivals.
    assert_eq!(summary.results.devices.total, 25);
    assert_eq!(summary.results.devices.assigned, 25);
    assert!(!summary.partial);
}

#[tokio::test(start_paused = true)]
async fn a_full_in_flight_cap_makes_starts_late_and_says_by_how_much() {
    // 20 devices offered at 1,000/s, but only 2 may be in flight and each takes one retry-after
    // (1 s): the last starts about 9 s after its slot. The lag is recorded, never hidden.
    let capped = plan(
        "capped",
        "assign_delay_ms = 50\nretry_after_seconds = 1\n[devices]\ncount = 20\n[arrival]\nrate = 1000\n[run]\n\
         max_in_flight = 2\n",
    );
    let summary = run(&capped).await;
    assert_eq!(summary.results.devices.assigned, 20);
    // Devices 2k and 2k+1 start k seconds in, as slots free; the last, due at 19 ms, starts at
    // 9.001 s. Only the first two start on time.
    let lag = &summary.results.phases["schedule_lag"];
    assert_eq!(lag.max_us, recorded_as(Duration::from_millis(8_982)).1, "{lag:?}");
    let assigned = &summary.results.phases["assigned"];
    let raw = &summary.results.phases["assigned_raw"];
    assert_eq!(raw.max_us, recorded_as(Duration::from_secs(1)).1, "{raw:?}");
    assert_eq!(assigned.max_us, recorded_as(Duration::from_millis(9_982)).1, "corrected {assigned:?} vs raw {raw:?}");
    assert_eq!(summary.results.late_starts, 18);
    assert!(!summary.validity.valid, "a run that could not keep its plan says so");
}

#[tokio::test(start_paused = true)]
async fn stages_and_bursts_start_their_natural_count() {
    let ramp = plan(
        "ramp",
        "[devices]\nregistration_id = \"r-{index}\"\n[arrival]\nmodel = \"stages\"\nstages = [\"500ms:0->80/s\", \"250ms:80/s\"]\n",
    );
    let summary = run(&ramp).await;
    assert_eq!(summary.results.devices.total, 40);
    assert_eq!(summary.results.devices.assigned, 40);
    assert!(summary.duration_seconds >= 0.7, "the ramp takes 750 ms: {}", summary.duration_seconds);

    let burst = plan("burst", "[devices]\ncount = 60\n[arrival]\nmodel = \"burst\"\nwithin_seconds = 0.3\nseed = 9\n");
    let summary = run(&burst).await;
    assert_eq!(summary.results.devices.assigned, 60);
}

#[tokio::test(start_paused = true)]
async fn embedded_quota_throttles_and_devices_retry_as_told() {
    let storm = plan(
        "quota",
        "registrations_per_minute = 60\n[devices]\ncount = 63\n[arrival]\nmodel = \"burst\"\nwithin_seconds = 0.2\n[flow]\nmax_retries = 20\n",
    );
    let summary = run(&storm).await;
    assert_eq!(summary.results.devices.assigned, 63, "{:?}", summary.results.failures);
    let throttled = summary.results.statuses.get("429").copied().unwrap_or(0);
    assert!(throttled >= 3, "three registrations over the full bucket: {:?}", summary.results.statuses);
    assert_eq!(summary.emulator.as_ref().unwrap().throttled, throttled);
    assert!(summary.results.register_attempts.max >= 2);
    // Each throttled device waited the retry-after it was given (1 s) before trying again.
    assert!(summary.results.phases["assigned"].max_us >= Duration::from_secs(1).as_micros() as u64);
}

#[tokio::test(start_paused = true)]
async fn one_interrupt_stops_arrivals_and_drains_in_flight_devices() {
    // 100 devices over 10 s; interrupted at the first tick after the 10th start.
    let slow =
        plan("drain", "assign_delay_ms = 300\nretry_after_seconds = 1\n[devices]\ncount = 100\n[arrival]\nrate = 10\n");
    let (summary, ticks) = run_interrupted(&slow, 10, 1).await;
    assert!(summary.partial);
    let devices = &summary.results.devices;
    assert!(devices.total < 100, "arrivals stopped: {devices:?}");
    assert_eq!(devices.assigned, devices.total, "every device in flight was drained: {devices:?}");
    assert_eq!(devices.not_finished, 0);
    assert!(ticks.iter().any(|t| t.draining));
    assert!(ticks.windows(2).all(|w| w[0].progress.started <= w[1].progress.started));
}

#[tokio::test(start_paused = true)]
async fn a_second_interrupt_stops_at_once_and_still_reports() {
    // Devices take 30 s to be assigned; a double interrupt must not wait for them.
    let stuck = plan(
        "stop",
        "assign_delay_ms = 30000\nretry_after_seconds = 1\n[devices]\ncount = 20\n[arrival]\nrate = 100\n",
    );
    let (summary, _) = run_interrupted(&stuck, 20, 2).await;
    assert!(summary.partial);
    // Stopped at once: at the tick 1 s after the run began (its clock starts 10 ms in), when
    // the interrupts came.
    assert_eq!(summary.duration_seconds, 0.99, "stopped at once");
    assert_eq!(summary.results.devices.total, 20);
    assert_eq!(summary.results.devices.aborted, 20, "aborted devices are reported, not lost");
    assert_eq!(summary.results.devices.not_finished, 0);
    assert_eq!(summary.results.phases["tls_handshake"].count, 20, "their completed phases are recorded");
}

#[tokio::test(start_paused = true)]
async fn a_source_address_pool_spreads_devices_and_counts_each_address() {
    let pooled = plan(
        "pool",
        "[devices]\ncount = 30\n[arrival]\nrate = 300\n[run]\nsource_addresses = [\"127.0.0.2\", \"127.0.0.10-127.0.0.11\"]\n",
    );
    let summary = run(&pooled).await;
    assert_eq!(summary.results.devices.assigned, 30);
    let sources = &summary.results.source_addresses;
    assert_eq!(sources.keys().collect::<Vec<_>>(), ["127.0.0.10", "127.0.0.11", "127.0.0.2"]);
    for counts in sources.values() {
        assert_eq!((counts.connections, counts.assigned, counts.connect_errors), (10, 10, 0), "{sources:?}");
    }
}

/// Passive checks in a load run: a target that puts `retry-after` before `$rid` is caught on
/// every flow, with evidence, while the devices still provision.
#[tokio::test(start_paused = true)]
async fn passive_checks_count_violations_per_check_in_a_run() {
    let emulator = crate::support::start_emulator(|c| {
        c.retry_after_seconds = 1;
        c.deviations.rid_not_first = true;
    });
    let dir = std::env::temp_dir().join(format!("dpsbench-passive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &emulator.ca_pem).unwrap();
    let scenario = format!(
        "name = \"passive\"\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nport = {}\nid_scope = \"{}\"\n\
         ca_certificate = \"ca.pem\"\nserver_name = \"localhost\"\n[devices]\ncount = 5\ngroup_key_env = \"KEY\"\n\
         [arrival]\nrate = 100\n",
        emulator.handle.address.port(),
        crate::support::SCOPE
    );
    let path = dir.join("passive.toml");
    std::fs::write(&path, scenario).unwrap();
    let key = emulator.group_key.to_base64();
    let plan = Plan::load(&path, &|name| (name == "KEY").then(|| key.clone())).unwrap();
    let summary = run(&plan).await;
    assert_eq!(summary.results.devices.assigned, 5);
    let conformance = &summary.conformance;
    let late_rid = &conformance["DPS-TOPIC-003"];
    // No assignment delay: each flow gets one 202 (with retry-after, so misordered) and one 200.
    assert_eq!((late_rid.flows, late_rid.violations), (5, 5), "{late_rid:?}");
    assert_eq!(late_rid.examples.len(), 3);
    assert!(late_rid.examples[0].evidence.contains("?retry-after=1&$rid="), "{:?}", late_rid.examples[0]);
    let others: Vec<_> = conformance.iter().filter(|(id, c)| *id != "DPS-TOPIC-003" && c.violations > 0).collect();
    assert!(others.is_empty(), "{others:?}");
    emulator.handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_fleet_mixing_every_sdk_personality_provisions() {
    // retry-after 1 and no assignment delay: every profile polls once after its own wait.
    let mixed = plan(
        "mix",
        "retry_after_seconds = 1\n[devices]\ncount = 12\npersonalities = { dpsbench = 1, python = 1, node = 1, c = 1, embedded-c = 1, csharp = 1 }\n\
         [arrival]\nrate = 100\n[run]\nmax_schedule_lag_p99_ms = 5000\n",
    );
    let summary = run(&mixed).await;
    assert_eq!(summary.results.devices.assigned, 12, "{:?}", summary.results.failures);
    let personalities = &summary.results.personalities;
    assert_eq!(personalities.len(), 6, "{personalities:?}");
    for (name, counts) in personalities {
        assert_eq!((counts.devices, counts.assigned), (2, 2), "{name}");
    }
    // Python waits a fixed 2 s before its first poll, C# at least 2 s: longer than retry-after 1,
    // so no profile polls early here.
    assert_eq!(summary.results.early_requests, 0, "no profile polls before a 1 s retry-after");
    assert!(summary.validity.valid, "{:?}", summary.validity);
    let checks: Vec<_> = summary.conformance.iter().filter(|(_, c)| c.violations > 0).collect();
    assert!(checks.is_empty(), "every dialect's exchange is conformant: {checks:?}");
}

#[tokio::test(start_paused = true)]
async fn individual_enrollments_from_csv_sign_with_their_own_keys() {
    let dir = std::env::temp_dir().join(format!("dpsbench-individual-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys: Vec<String> = (0..3).map(|_| dpsbench::credentials::SymmetricKey::random().to_base64()).collect();
    let csv = format!("registration_id,key\nsolo-1,{}\nsolo-2,{}\nsolo-3,{}\n", keys[0], keys[1], keys[2]);
    std::fs::write(dir.join("devices.csv"), csv).unwrap();
    let body =
        format!("[devices]\nregistration_ids_file = \"{}\"\n[arrival]\nrate = 50\n", dir.join("devices.csv").display());
    let summary = run(&plan("individual", &body)).await;
    assert_eq!(summary.results.devices.assigned, 3, "{:?}", summary.results.failures);
    assert_eq!(summary.emulator.as_ref().unwrap().connects_refused, 0);
}

#[tokio::test(start_paused = true)]
async fn custom_payloads_go_out_and_come_back() {
    let echoed = plan(
        "payload",
        "echo_payload = true\n[devices]\ncount = 6\npersonalities = { dpsbench = 1, python = 1, c = 1 }\n\
         payload = { modelId = \"dtmi:com:example:Thermostat;1\", site = \"site-{index}\", tier = { one_of = [\"gold\", \"silver\"] } }\n\
         [arrival]\nrate = 100\n[run]\nmax_schedule_lag_p99_ms = 5000\n",
    );
    let summary = run(&echoed).await;
    assert_eq!(summary.results.devices.assigned, 6);
    assert_eq!((summary.results.payloads.returned, summary.results.payloads.matching), (6, 6));
}
