//! `dpsbench run`: its arguments, loading and sharding the plan, preparing it, recording the run
//! into its report folder and picking the exit status.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::files::{DevicesCsvFile, LatencyLogFile, TimeseriesFile, write_rendered, write_whole};
use super::live_metrics::LiveMetrics;
use super::out_folder::OutFolder;
use super::progress::ProgressView;
use super::sinks::Sinks;
use super::{EXIT_INVALID, interrupt_counter, overrides, say, sharding};
use crate::report::format::report::{PerSecond, Report};
use crate::report::format::summary::json as summary_json;
use crate::report::render::terminal::summary_table;
use crate::results::Tick;
use crate::runner::{self, RunOptions};
use crate::scenario::Plan;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML), e.g. scenarios/quickstart.toml [default: a quick run against the
    /// embedded emulator, shaped by the overrides below].
    pub scenario: Option<PathBuf>,
    /// Folder for the run's reports: summary.json, report.md, report.html, timeseries.csv,
    /// latency.hlog (and devices.csv) [default: a new folder reports/SCENARIO-YYYYMMDD-HHMMSS, with -2,
    /// -3, ... when a run started in the same second holds that name].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite the report already in --out.
    #[arg(long)]
    pub force: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary (summary.json's content) on stdout, and the table and every other line
    /// on stderr: for scripts (`dpsbench run s.toml --json | jq .devices`).
    #[arg(long, conflicts_with = "dry_run")]
    pub json: bool,
    /// Print the resolved plan (target, devices, rate, expected duration, billable
    /// registrations, expected throttling) and exit without connecting anywhere.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub metrics: super::live_metrics::MetricsArgs,
    /// Also write devices.csv: one row per device (registration ID, personality, outcome and
    /// failure kind, every phase's time, register attempts, polls, hub), as devices finish.
    #[arg(long)]
    pub devices_csv: bool,
    /// Run only shard K of N (K from 0 to N-1): the devices whose index i has i mod N = K, each
    /// at the instant the whole plan gives it; a closed model's concurrency is split. Merge the
    /// shards' folders with `dpsbench report merge`.
    #[arg(long, value_name = "K/N", env = "DPSBENCH_SHARD", value_parser = sharding::parse_shard)]
    pub shard: Option<crate::shard::Shard>,
    /// The wall-clock instant (RFC 3339) of the plan's zero, the same for every shard; refused
    /// when more than a second past.
    #[arg(long, value_name = "RFC3339", env = "DPSBENCH_START_AT", value_parser = sharding::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    // Last, so that its heading covers only the overrides.
    #[command(
        flatten,
        next_help_heading = "Overrides (each replaces one field of the scenario; without SCENARIO, of a quick run \
                             against the embedded emulator: 1,000 devices at 200/s)"
    )]
    pub overrides: crate::scenario::Overrides,
}

pub(super) async fn run(args: RunArgs) -> Result<i32> {
    let (plan, applied) = overrides::load_plan(args.scenario.as_deref(), &args.overrides)?;
    let mut options = RunOptions::whole(&plan);
    let wait = sharding::apply(&mut options, &plan, args.shard, args.start_at, std::time::SystemTime::now())?;
    options.device_records = args.devices_csv;
    if args.dry_run {
        say(&overrides::dry_run(&plan, &options.part, &applied));
        return Ok(0);
    }
    options.overrides = applied;
    let mut folder = match &args.out {
        Some(out) => OutFolder::check(out, "--out", args.force)?,
        None => OutFolder::numbered(&default_out_dir(&plan.name))?,
    };
    // Said before anything is set up: most of a plan this large will never start.
    if let Some(estimate) = options.part.starts_within_limits(&plan) {
        errln!("dpsbench: {estimate}");
    }
    // Set up and preflighted before the folder is touched: a run that cannot start leaves
    // nothing behind, and an old report under --force stays whole.
    let mut interrupts = interrupt_counter();
    let ready = runner::prepare(&plan, &options, &mut interrupts, |checks| {
        if !args.quiet {
            errln!("dpsbench: {checks}");
        }
    })
    .await?;
    // Created now, and taken back if the run cannot start: a run that never ran leaves nothing.
    // A default folder is made under a name no other run holds.
    folder.create()?;
    let run = super::live_metrics::RunIdentity { scenario: &plan.name, folder: folder.path(), shard: args.shard };
    let live = match LiveMetrics::start(&args.metrics, &run).await {
        Ok(live) => live,
        Err(error) => {
            folder.discard();
            return Err(error);
        }
    };
    let (summary, kept) = match record_run(&plan, &args, &mut folder, live.as_ref(), wait, ready, interrupts).await {
        Ok(recorded) => recorded,
        Err(error) => {
            folder.discard();
            if let Some(live) = live {
                live.stop().await;
            }
            return Err(error);
        }
    };
    let out = folder.path();
    let path = out.join("summary.json");
    // Each file is written whole or not at all, and every file before anything is printed, so
    // a closed stdout loses none; a file that cannot be written (a full disk) keeps neither
    // the table nor the other files from coming.
    let json = summary_json(&summary);
    let saved = write_whole(&path, &json);
    let report = Report::of_run(summary, kept);
    let summary = &report.summary;
    let rendered = write_rendered(out, &report);
    let mut printed = summary_table(summary);
    if saved.is_ok() {
        printed.push_str(&format!("summary: {}\n", path.display()));
    }
    for path in rendered.as_deref().unwrap_or_default() {
        printed.push_str(&format!("report: {}\n", path.display()));
    }
    super::print_result(&printed, args.json.then_some(&json[..]));
    if let Some(live) = live {
        live.finish().await;
    }
    if let Some(error) = saved.err().or(rendered.err()) {
        anyhow::bail!(
            "{}; the run's result is the table above, and `dpsbench report render {}` rebuilds its report from \
             the files written each second",
            super::error_line(&error),
            out.display()
        );
    }
    // Invalid first: its numbers describe the generator, so neither gates nor failures count.
    // A failing control (`[devices] misbehave`) never passes: its devices break checks on purpose.
    Ok(if !summary.validity.valid {
        EXIT_INVALID
    } else if summary.all_assigned() && summary.gates_held() && summary.misbehave.is_empty() {
        0
    } else {
        1
    })
}

/// Runs the prepared plan, writing the files that grow as it goes into `folder`; returns the
/// summary and what the run kept each second for its report, or the error that kept it from
/// finishing.
async fn record_run(
    plan: &Plan,
    args: &RunArgs,
    folder: &mut OutFolder,
    live: Option<&LiveMetrics>,
    wait: Option<String>,
    ready: runner::Ready,
    interrupts: tokio::sync::watch::Receiver<u32>,
) -> Result<(crate::results::RunSummary, PerSecond)> {
    let progress = ProgressView::new(args.quiet, plan, folder.path());
    if let Some(wait) = wait {
        progress.warn(&wait);
    }
    let mut kept = PerSecond::default();
    let mut sinks = Sinks::new(progress.warnings());
    if let Some(live) = live {
        sinks.push(live);
    }
    sinks.push(progress);
    sinks.push(TimeseriesFile::create(folder.file("timeseries.csv"))?);
    sinks.push(LatencyLogFile::create(folder.file("latency.hlog"))?);
    if args.devices_csv {
        sinks.push(DevicesCsvFile::create(folder.file("devices.csv"))?);
    }
    sinks.push(&mut kept);
    let summary = ready.run(interrupts, |tick: &Tick| sinks.tick(tick)).await;
    sinks.finish();
    drop(sinks);
    Ok((summary?, kept))
}

fn default_out_dir(name: &str) -> PathBuf {
    let stamp = crate::timestamp::rfc3339(std::time::SystemTime::now());
    // 2026-11-26T07:10:01.1234567Z -> 20261126-071001
    let compact: String = stamp.chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let safe_name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    PathBuf::from("reports").join(format!("{safe_name}-{}", compact.replace('T', "-")))
}
