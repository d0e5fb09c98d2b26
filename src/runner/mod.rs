//! Runs a [`Plan`]: sets up the target (starting the embedded emulator when asked), prepares
//! devices' credentials a bounded window ahead of their start and outside the timed path,
//! starts devices on the arrival schedule, folds their reports into
//! [`Metrics`](crate::metrics::Metrics) and returns a [`RunSummary`].
//!
//! Writes no files (the CLI does), prints progress only through the callback it is given.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::device::driver::now;
use crate::device::{FlowSettings, Personality};
use crate::emulator;
use crate::metrics::Phase;
use crate::results::{
    CpuTime, EmulatorCounts, GeneratorCost, HostInfo, RunSummary, SUMMARY_SCHEMA, ScenarioInfo, ShardInfo, TargetInfo,
    Tick,
};
use crate::scenario::{Load, Plan};
use crate::tls;

mod generator;
mod limits;
mod misbehaving;
mod options;
mod preflight;
mod prepare;
mod schedule;
mod stall;
mod start;
mod summary;
mod target;
mod timer;

pub use limits::{DescriptorBudget, descriptor_budget, raise_open_files_limit};
pub use options::RunOptions;
use start::wait_for_start;
use target::prepare_target;
pub use target::{reach, resolve};

/// Task polls between checks of timers and sockets. A poll that runs a TLS handshake step costs
/// up to ~0.3 ms of crypto, so tokio's default of 61 can hold a due start back by many
/// milliseconds; checking more often keeps the arrival schedule (see scripts/bench-lag).
pub const EVENT_INTERVAL: u32 = 8;

/// The runtime runs are measured on: every core a worker, timers and sockets checked often.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().event_interval(EVENT_INTERVAL).enable_all().build()
}

/// Setup errors: the run could not start. Failures of the target during a run are data.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Emulator(#[from] emulator::StartError),
    #[error(transparent)]
    X509(#[from] crate::x509::X509Error),
    #[error("cannot resolve target host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("target {address} is unreachable: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("invalid server name {0:?} for TLS")]
    ServerName(String),
    #[error(
        "the plan keeps up to {in_flight} devices in flight, needing {needed} open files, but the open-files limit is \
         {limit}: lower arrival.concurrency or run.max_in_flight, or raise the hard limit (ulimit -Hn)"
    )]
    Descriptors { in_flight: u64, needed: u64, limit: u64 },
    #[error("interrupted before the run started: no device was started")]
    Interrupted,
    #[error("preflight: device {registration_id} could not connect, so no device was started: {reason}")]
    Preflight { registration_id: String, reason: String },
    #[error("cannot make a certificate signing request for device {0}")]
    Certificate(String),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every planned start happened and every device finished.
    Complete,
    /// Interrupted: arrivals stopped and in-flight devices drained (or were aborted).
    Interrupted,
    /// `max_duration_seconds` passed.
    TimedOut,
    /// A device could not be prepared (an X.509 certificate that could not be minted or
    /// cached): no device started after it.
    Unprepared,
}

/// What the summary says about preparing devices, when it is worth a word: arrivals stopped by
/// a device that could not be prepared, or starts of an open plan that found their device not
/// yet prepared (their schedule lag includes its preparation).
fn preparation_note(plan: &Plan, started: &schedule::Started) -> Option<String> {
    if let Some(unprepared) = &started.unprepared {
        return Some(unprepared.clone());
    }
    let open = matches!(plan.load, Load::Open(_));
    (open && started.prepared_late > 0).then(|| {
        format!(
            "{} starts found their device not yet prepared (the arrival loop had no time to prepare ahead) and \
             prepared it as they started; their schedule lag includes it",
            started.prepared_late
        )
    })
}

/// The flow settings of each personality the plan uses.
fn personality_settings(plan: &Plan) -> BTreeMap<Personality, Arc<FlowSettings>> {
    plan.personalities.personalities().map(|p| (p, Arc::new(p.settings(&plan.flow)))).collect()
}

/// Runs the plan as `options` say until every device finished or `max_duration` passed. Each change of
/// `interrupts` counts one interrupt: the first stops arrivals and drains in-flight devices for
/// up to `drain`, the second stops at once. `on_tick` is called about once a second.
pub async fn run(
    plan: &Plan,
    options: &RunOptions,
    mut interrupts: watch::Receiver<u32>,
    on_tick: impl FnMut(&Tick),
) -> Result<RunSummary, RunError> {
    let ready = prepare(plan, options, &mut interrupts).await?;
    ready.run(interrupts, on_tick).await
}

/// A plan set up and checked, nothing started: its target (the embedded emulator running), the
/// first devices prepared, and the preflight passed. What can go wrong before a run is found
/// here, so a caller creates nothing (no report folder, no files) until it has a `Ready`.
pub struct Ready {
    budget: DescriptorBudget,
    prepared: target::PreparedTarget,
    owned_plan: Arc<Plan>,
    options: RunOptions,
    devices: prepare::Lookahead<prepare::DevicePreparer>,
    settings: BTreeMap<Personality, Arc<FlowSettings>>,
    notes: Vec<String>,
}

/// Sets `plan` up as `options` say and runs its preflight ([`Ready`]). An interrupt meanwhile
/// stops it with nothing started.
pub async fn prepare(
    plan: &Plan,
    options: &RunOptions,
    interrupts: &mut watch::Receiver<u32>,
) -> Result<Ready, RunError> {
    let budget = descriptor_budget(plan, &options.part, raise_open_files_limit())?;
    let prepared = prepare_target(plan).await?;
    let mut owned_plan = plan.clone();
    // The embedded emulator's issuing CA is known only once it started.
    if let Some(issuer) = &prepared.certificate_issuer {
        owned_plan.flow.certificate_issuer = Some(issuer.clone());
    }
    let owned_plan = Arc::new(owned_plan);
    let devices = prepare::lookahead(&owned_plan, &options.part, &prepared.roots)?;
    let settings = personality_settings(&owned_plan);
    let mut notes: Vec<String> = budget.note.clone().into_iter().collect();
    // A failing control (`[devices] misbehave`) breaks the flow on purpose: a preflight would
    // refuse the control itself.
    let preflight = plan.preflight && plan.flow.misbehave.is_empty();
    if let Some(first) = devices.first().filter(|_| preflight) {
        let check = preflight::preflight(plan, &prepared.target, &settings[&first.personality], first);
        tokio::select! {
            checked = check => notes.extend(checked?),
            Ok(()) = interrupts.changed() => return Err(RunError::Interrupted),
        }
    }
    if let Some(emulator) = &prepared.emulator {
        emulator.service.faults.arm();
    }
    Ok(Ready { budget, prepared, owned_plan, options: options.clone(), devices, settings, notes })
}

impl Ready {
    /// Runs the prepared plan until every device finished or `max_duration` passed (see [`run`]).
    pub async fn run(
        self,
        interrupts: watch::Receiver<u32>,
        on_tick: impl FnMut(&Tick),
    ) -> Result<RunSummary, RunError> {
        let plan = self.owned_plan.clone();
        record(&plan, self, interrupts, on_tick).await
    }
}

async fn record(
    plan: &Plan,
    ready: Ready,
    interrupts: watch::Receiver<u32>,
    mut on_tick: impl FnMut(&Tick),
) -> Result<RunSummary, RunError> {
    let Ready { budget, prepared, owned_plan, options, devices, settings, mut notes } = ready;
    let start_offset = wait_for_start(options.start_at, interrupts.clone()).await;
    let started_at = crate::timestamp::rfc3339(SystemTime::now());

    let target_stalls = Arc::new(stall::TargetStalls::default());
    // Under a paused clock (tests) time jumps ahead whenever the runtime waits, answers in
    // flight included: every wait would look like a silence of the target.
    let watch = prepared.target.watch.clone().filter(|_| !timer::clock_paused());
    let stall = stall::StallMonitor::start(watch.map(|watch| (watch, target_stalls.clone())));
    let cpu_before = CpuTime::of_process();
    // The arrival loop runs as a task on the runtime's workers, not on the caller's thread
    // (`block_on` runs on a thread of its own): it starts each device and collects each report,
    // and on a thread of its own every one of those was a wake-up across threads. Ticks come
    // back to the caller once a second.
    // A tick's interval histograms go back emptied (here, off the workers) for the loop to record
    // the next interval into.
    let (ticks, mut ticked) = tokio::sync::mpsc::unbounded_channel();
    let (spares, spared) = tokio::sync::mpsc::unbounded_channel();
    let (target, cap, scheduled_options) = (prepared.target.clone(), budget.in_flight_cap, options.clone());
    let mut scheduled = tokio::spawn(async move {
        let on_tick = move |tick| {
            let _ = ticks.send(tick);
        };
        let arrivals = schedule::ArrivalLoop::new(&owned_plan, &scheduled_options, cap, &target, settings, devices);
        arrivals.recycling(spared).watching(target_stalls).run(interrupts, on_tick).await
    });
    let scheduled = loop {
        tokio::select! {
            biased;
            Some(tick) = ticked.recv() => {
                on_tick(&tick);
                let Tick { mut latencies, .. } = tick;
                latencies.clear();
                let _ = spares.send(latencies);
            }
            joined = &mut scheduled => break joined,
        }
    };
    while let Ok(tick) = ticked.try_recv() {
        on_tick(&tick);
    }
    let schedule::Arrivals { metrics, checks, started, ending, elapsed, lag_outside_stalls } = match scheduled {
        Ok(done) => done,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    let cpu_used = CpuTime::of_process().since(cpu_before);
    let mut readings = stall.stop().await;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    readings.cpu_share = (elapsed.as_secs_f64() > 0.0)
        .then(|| (cpu_used.user_seconds + cpu_used.system_seconds) / (elapsed.as_secs_f64() * cores));
    notes.extend(preparation_note(plan, &started));
    notes.extend(started.panicked.note());
    let mut results = metrics.summary(started.started);
    results.devices.not_started = started.not_started;
    let generator =
        GeneratorCost::new(cpu_used, started.started, results.devices.assigned, prepared.emulator.is_some());
    if matches!(plan.load, Load::Closed { .. }) {
        // No arrival plan, so no lag behind one (every start is on time by definition).
        results.phases.remove(Phase::ScheduleLag.as_str());
    }
    if let Some(rates) = &mut results.rates {
        rates.offered_per_second = plan.offered_rate();
    }
    let limit_cap = budget.note.is_some().then_some(budget.in_flight_cap).flatten().map(|cap| (budget.limit, cap));
    let target_stalls = lag_outside_stalls.and_then(|lag| lag.stalls());
    let validity = summary::validity(plan, &results, &readings, target_stalls, limit_cap);
    notes.extend(summary::target_stall_note(plan, &validity));
    let slo = (!plan.slo.is_empty()).then(|| {
        let invalid = (!validity.valid).then(|| validity.reasons.join("; "));
        plan.slo.judge(&results, invalid.as_deref())
    });

    let emulator = match prepared.emulator {
        Some(handle) => {
            let counts = EmulatorCounts::of(&handle.service);
            handle.stop().await;
            Some(counts)
        }
        None => None,
    };
    Ok(RunSummary {
        schema: SUMMARY_SCHEMA.into(),
        scenario: ScenarioInfo {
            name: plan.name.clone(),
            file: plan.file.display().to_string(),
            devices: plan.stop.devices,
            arrival: plan.load.describe(),
            duration_seconds: plan.stop.duration.map(|d| d.as_secs_f64()),
            // What the command line changed travels beside the plan; the CLI fills it in.
            overrides: Vec::new(),
        },
        target: TargetInfo {
            kind: prepared.kind.into(),
            address: prepared.target.address.to_string(),
            id_scope: plan.id_scope.to_string(),
        },
        host: HostInfo::current(),
        started_at,
        duration_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        partial: ending != Ending::Complete,
        validity,
        open_files_limit: budget.limit,
        notes,
        results,
        conformance: checks.counts(),
        emulator,
        generator: Some(generator),
        slo,
        shard: Some(ShardInfo::of(plan, &options, start_offset)),
        merged: None,
        misbehave: plan.flow.misbehave.list(),
    })
}
