//! Runs a [`Plan`]: sets up the target (starting the embedded emulator when asked), prepares
//! devices' credentials a bounded window ahead of their start and outside the timed path,
//! starts devices on the arrival schedule, folds their reports into
//! [`Metrics`](crate::metrics::Metrics) and returns a [`RunSummary`].
//!
//! The plan is never changed once resolved: what the user typed for this run travels beside it
//! ([`RunOptions`]), and so does what setting up finds ([`RunContext`]: the target, the
//! open-files budget, the machine). The summary is assembled once, from all of them and what
//! the run measured (`summary`).
//!
//! Writes no files (the CLI does), prints progress only through the callback it is given.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::device::{FlowSettings, Personality};
use crate::results::{CpuTime, EmulatorCounts, RunSummary, Tick};
use crate::scenario::Plan;

mod context;
mod ended;
mod error;
mod generator;
mod limits;
mod misbehaving;
mod options;
mod preflight;
mod prepare;
mod schedule;
mod series;
mod stall;
mod start;
mod summary;
mod target;
mod timer;
mod validity;

pub use context::RunContext;
pub use error::RunError;
pub use limits::{DescriptorBudget, descriptor_budget, raise_open_files_limit};
pub use options::RunOptions;
use start::wait_for_start;
pub use target::{reach, resolve};

/// Task polls between checks of timers and sockets. A poll that runs a TLS handshake step costs
/// up to ~0.3 ms of crypto, so tokio's default of 61 can hold a due start back by many
/// milliseconds; checking more often keeps the arrival schedule (see scripts/bench-lag).
pub const EVENT_INTERVAL: u32 = 8;

/// The runtime runs are measured on: every core a worker, timers and sockets checked often.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().event_interval(EVENT_INTERVAL).enable_all().build()
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
    let ready = prepare(plan, options, &mut interrupts, |_| {}).await?;
    ready.run(interrupts, on_tick).await
}

/// A plan set up and checked, nothing started: its target (the embedded emulator running), the
/// first devices prepared, and the preflight passed. What can go wrong before a run is found
/// here, so a caller creates nothing (no report folder, no files) until it has a `Ready`.
pub struct Ready {
    /// The plan as resolved (shared with the arrival loop's task, never changed).
    plan: Arc<Plan>,
    options: RunOptions,
    context: RunContext,
    devices: prepare::Lookahead<prepare::DevicePreparer>,
    settings: BTreeMap<Personality, Arc<FlowSettings>>,
    /// What setting up said (an in-flight cap from the open-files limit, the preflight's).
    notes: Vec<String>,
}

/// Sets `plan` up as `options` say and runs its preflight ([`Ready`]), telling `on_preflight`
/// what it checks as it begins (one line, for the terminal). An interrupt meanwhile stops it
/// with nothing started.
pub async fn prepare(
    plan: &Plan,
    options: &RunOptions,
    interrupts: &mut watch::Receiver<u32>,
    on_preflight: impl FnOnce(&str),
) -> Result<Ready, RunError> {
    let context = RunContext::set_up(plan, options).await?;
    let plan = Arc::new(plan.clone());
    let devices = prepare::lookahead(&plan, &options.part, &context.target.roots)?;
    let settings = context.personality_settings(&plan);
    let mut notes: Vec<String> = context.budget.note.clone().into_iter().collect();
    // A failing control (`[devices] misbehave`) breaks the flow on purpose: a preflight would
    // refuse the control itself.
    let preflight = plan.preflight && plan.flow.misbehave.is_empty();
    if let Some(first) = devices.first().filter(|_| preflight) {
        on_preflight(&preflight::describe(&plan, &context.target.target, first));
        let check = preflight::preflight(&plan, &context.target.target, &settings[&first.personality], first);
        tokio::select! {
            checked = check => notes.extend(checked?),
            Ok(()) = interrupts.changed() => return Err(RunError::Interrupted),
        }
    }
    if let Some(emulator) = &context.target.emulator {
        emulator.service.faults.arm();
    }
    Ok(Ready { plan, options: options.clone(), context, devices, settings, notes })
}

impl Ready {
    /// Runs the prepared plan until every device finished or `max_duration` passed (see [`run`]).
    pub async fn run(
        self,
        interrupts: watch::Receiver<u32>,
        on_tick: impl FnMut(&Tick),
    ) -> Result<RunSummary, RunError> {
        let Ready { plan, options, mut context, devices, settings, notes } = self;
        let start_offset_seconds = wait_for_start(options.start_at, interrupts.clone()).await;
        let started_at = crate::timestamp::rfc3339(SystemTime::now());
        let target_stalls = Arc::new(stall::TargetStalls::default());
        // Under a paused clock (tests) time jumps ahead whenever the runtime waits, answers in
        // flight included: every wait would look like a silence of the target.
        let watch = context.target.target.watch.clone().filter(|_| !timer::clock_paused());
        let stall = stall::StallMonitor::start(watch.map(|watch| (watch, target_stalls.clone())));
        let cpu_before = CpuTime::of_process();
        let parts = LoopParts { plan: plan.clone(), options: options.clone(), settings, devices, target_stalls };
        let arrivals = arrive(parts, &context, interrupts, on_tick).await;
        let cpu_used = CpuTime::of_process().since(cpu_before);
        let cores = crate::host::cpus() as f64;
        let elapsed = arrivals.elapsed.as_secs_f64();
        let cpu_share = (elapsed > 0.0).then(|| (cpu_used.user_seconds + cpu_used.system_seconds) / (elapsed * cores));
        let readings = stall.stop(cpu_share).await;
        let emulator = match context.target.emulator.take() {
            Some(handle) => {
                let counts = EmulatorCounts::of(&handle.service);
                handle.stop().await;
                Some(counts)
            }
            None => None,
        };
        let measured =
            summary::Measured { started_at, start_offset_seconds, arrivals, cpu_used, readings, emulator, notes };
        Ok(summary::assemble(&plan, &options, &context, measured))
    }
}

/// What the arrival loop's task owns.
struct LoopParts {
    plan: Arc<Plan>,
    options: RunOptions,
    settings: BTreeMap<Personality, Arc<FlowSettings>>,
    devices: prepare::Lookahead<prepare::DevicePreparer>,
    /// Where the target's stalls are written.
    target_stalls: Arc<stall::TargetStalls>,
}

/// Runs the arrival loop to its end, handing each tick to `on_tick`.
///
/// The arrival loop runs as a task on the runtime's workers, not on the caller's thread
/// (`block_on` runs on a thread of its own): it starts each device and collects each report,
/// and on a thread of its own every one of those was a wake-up across threads. Ticks come back
/// to the caller once a second; a tick's interval histograms go back emptied (here, off the
/// workers) for the loop to record the next interval into.
async fn arrive(
    LoopParts { plan, options, settings, devices, target_stalls }: LoopParts,
    context: &RunContext,
    interrupts: watch::Receiver<u32>,
    mut on_tick: impl FnMut(&Tick),
) -> ended::Arrivals {
    let (ticks, mut ticked) = tokio::sync::mpsc::unbounded_channel();
    let (spares, spared) = tokio::sync::mpsc::unbounded_channel();
    let (target, cap) = (context.target.target.clone(), context.budget.in_flight_cap);
    let mut scheduled = tokio::spawn(async move {
        let on_tick = move |tick| {
            let _ = ticks.send(tick);
        };
        let arrivals = schedule::ArrivalLoop::new(&plan, &options, cap, &target, settings, devices);
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
    match scheduled {
        Ok(done) => done,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
