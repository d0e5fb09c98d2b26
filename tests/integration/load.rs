//! The load engine: each load model and stop condition, run through `runner::run` against the
//! in-process emulator, on virtual time: tokio's clock is paused and jumps to the next timer
//! whenever every task waits, so waits cost no real time and timings do not depend on the
//! machine. Every device therefore waits on a timer, never spins: a plan with an assignment delay
//! also sets a `retry-after`.

use std::time::Duration;

use dpsbench::results::{RunSummary, Tick};
use dpsbench::runner;
use dpsbench::scenario::Plan;
use tokio::sync::watch;

use crate::support::binary::temp_dir;
use crate::support::scenario::{Scenario, table};

/// A scenario `name` against the embedded emulator whose devices poll back to back, unless a
/// test sets `retry_after_seconds` itself.
fn embedded(name: &str) -> Scenario {
    Scenario::embedded(name).target("retry_after_seconds", 0)
}

/// `scenario` written to a scratch folder and loaded.
fn plan(scenario: Scenario) -> Plan {
    let dir = temp_dir("load");
    Plan::load(&scenario.write(&dir, "scenario.toml"), &|_| None).unwrap()
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
        embedded("closed1")
            .target("assign_delay_ms", 40)
            .target("retry_after_seconds", 1)
            .devices(5)
            .arrival("model", "closed")
            .arrival("concurrency", 1),
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
    let timed = plan(embedded("timed").devices(1000).rate(50.0).run("duration_seconds", 0.5));
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
        embedded("capped")
            .target("assign_delay_ms", 50)
            .target("retry_after_seconds", 1)
            .devices(20)
            .rate(1000.0)
            .run("max_in_flight", 2),
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
        embedded("ramp")
            .device("registration_id", "r-{index}")
            .arrival("model", "stages")
            .arrival("stages", vec!["500ms:0->80/s", "250ms:80/s"]),
    );
    let summary = run(&ramp).await;
    assert_eq!(summary.results.devices.total, 40);
    assert_eq!(summary.results.devices.assigned, 40);
    assert!(summary.duration_seconds >= 0.7, "the ramp takes 750 ms: {}", summary.duration_seconds);

    let burst =
        plan(embedded("burst").devices(60).arrival("model", "burst").arrival("within_seconds", 0.3).arrival("seed", 9));
    let summary = run(&burst).await;
    assert_eq!(summary.results.devices.assigned, 60);
}

#[tokio::test(start_paused = true)]
async fn embedded_quota_throttles_and_devices_retry_as_told() {
    let storm = plan(
        embedded("quota")
            .target("registrations_per_minute", 60)
            .devices(63)
            .arrival("model", "burst")
            .arrival("within_seconds", 0.2)
            .flow("max_retries", 20),
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
        plan(embedded("drain").target("assign_delay_ms", 300).target("retry_after_seconds", 1).devices(100).rate(10.0));
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
        embedded("stop").target("assign_delay_ms", 30000).target("retry_after_seconds", 1).devices(20).rate(100.0),
    );
    let (summary, _) = run_interrupted(&stuck, 20, 2).await;
    assert!(summary.partial);
    // Stopped at once: at the first tick, when the interrupts came (it closes the first
    // interval, 1 s from the run's clock, 0.2 s after that interval's end).
    assert_eq!(summary.duration_seconds, 1.2, "stopped at once");
    assert_eq!(summary.results.devices.total, 20);
    assert_eq!(summary.results.devices.aborted, 20, "aborted devices are reported, not lost");
    assert_eq!(summary.results.devices.not_finished, 0);
    assert_eq!(summary.results.phases["tls_handshake"].count, 20, "their completed phases are recorded");
}

#[tokio::test(start_paused = true)]
async fn a_source_address_pool_spreads_devices_and_counts_each_address() {
    let pooled = plan(
        embedded("pool").devices(30).rate(300.0).run("source_addresses", vec!["127.0.0.2", "127.0.0.10-127.0.0.11"]),
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
    let dir = temp_dir("passive");
    std::fs::write(dir.join("ca.pem"), &emulator.ca_pem).unwrap();
    let path = Scenario::loopback("passive", emulator.handle.address.port(), crate::support::SCOPE, "ca.pem")
        .devices(5)
        .device("group_key_env", "KEY")
        .rate(100.0)
        .write(&dir, "passive.toml");
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
    let every_personality = ["dpsbench", "python", "node", "c", "embedded-c", "csharp"].map(|name| (name, 1.into()));
    let mixed = plan(
        embedded("mix")
            .target("retry_after_seconds", 1)
            .devices(12)
            .device("personalities", table(every_personality))
            .rate(100.0)
            .run("max_schedule_lag_p99_ms", 5000),
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
    let dir = temp_dir("individual");
    let keys: Vec<String> = (0..3).map(|_| dpsbench::credentials::SymmetricKey::random().to_base64()).collect();
    let csv = format!("registration_id,key\nsolo-1,{}\nsolo-2,{}\nsolo-3,{}\n", keys[0], keys[1], keys[2]);
    std::fs::write(dir.join("devices.csv"), csv).unwrap();
    let individual = embedded("individual").device("registration_ids_file", dir.join("devices.csv").to_str().unwrap());
    let summary = run(&plan(individual.rate(50.0))).await;
    assert_eq!(summary.results.devices.assigned, 3, "{:?}", summary.results.failures);
    assert_eq!(summary.emulator.as_ref().unwrap().connects_refused, 0);
}

#[tokio::test(start_paused = true)]
async fn custom_payloads_go_out_and_come_back() {
    let payload = table([
        ("modelId", "dtmi:com:example:Thermostat;1".into()),
        ("site", "site-{index}".into()),
        ("tier", table([("one_of", vec!["gold", "silver"].into())])),
    ]);
    let echoed = plan(
        embedded("payload")
            .target("echo_payload", true)
            .devices(6)
            .device("personalities", table(["dpsbench", "python", "c"].map(|name| (name, 1.into()))))
            .device("payload", payload)
            .rate(100.0)
            .run("max_schedule_lag_p99_ms", 5000),
    );
    let summary = run(&echoed).await;
    assert_eq!(summary.results.devices.assigned, 6);
    assert_eq!((summary.results.payloads.returned, summary.results.payloads.matching), (6, 6));
}
