//! `dpsbench report render` and `dpsbench report compare`: report folders read back, rendered
//! again, or compared run against run.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

pub use super::merge::MergeArgs;
use crate::report::analysis::compare;
use crate::report::analysis::compare_charts::ChartedRun;
use crate::report::analysis::compare_html;
use crate::report::analysis::comparison::Comparison;
use crate::report::analysis::expression::{Expression, Verdict};
use crate::report::format::folder::{Renderable, ReportFolder};
use crate::report::format::partial;
use crate::report::format::report::Report;
use crate::report::render::files;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Rebuild report.md and report.html from a run folder's files.
    ///
    /// Reads summary.json, timeseries.csv and latency.hlog (report.html needs them). A folder
    /// without summary.json (a run killed before its end) gets a report marked partial, rebuilt
    /// from its per-second files; it says what is missing.
    /// Exit status: 0 when every file was written, 1 when one could not be rendered (stderr says
    /// why), 2 for a folder that is missing or not a report.
    Render(RenderArgs),
    /// Compare two runs side by side and fail on regressions.
    ///
    /// Prints per phase p50/p90/p99/p99.9/max, flows/s, failures by kind, retries and
    /// violations with the change of each; --out also writes compare.md and compare.html. A
    /// --fail-if on a latency the current run has no sample of trips. Exit status: 0 when no --fail-if trips, 1 when one does, 2 for bad input
    /// (a missing folder, a folder that is not a report, a baseline given twice, an expression
    /// that does not parse).
    Compare(CompareArgs),
    /// Merge the report folders of a plan's shards (`run --shard K/N`) into one, as if one
    /// process had run the whole plan.
    ///
    /// Outcomes and counters are added; every phase's histogram is the sum of the shards'
    /// latency.hlog (percentiles come from it, never averaged); latency.hlog and timeseries.csv
    /// are aligned by wall-clock second; devices.csv is joined when every shard has one. Writes
    /// summary.json, latency.hlog, timeseries.csv, report.md and report.html into --out.
    /// Exit status: 0 when every shard was merged, 1 when shards are missing (the result is
    /// `partial`, summary.json lists them), 2 for folders that are not reports, shards of
    /// different plans, or a shard given twice.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The run's report folder (holding summary.json).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run's report folder (e.g. last night's), or several (the figures' mean and
    /// spread are the baseline), then last the report folder of the run under judgement.
    #[arg(value_name = "BASELINE_DIR... CURRENT_DIR", num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Exit 1 when this holds: FIGURE OP CHANGE, the change from the baseline as a percentage
    /// or an amount, e.g. `assigned.p99 > +10%`, `tls_handshake.p50 > 5ms` (5 ms slower),
    /// `failed > 0` (more failures), `flows_per_second < -5%`. Repeatable.
    #[arg(long = "fail-if", value_name = "EXPR", value_parser = parse_expression)]
    pub fail_if: Vec<Expression>,
    /// Write compare.md and compare.html (the runs' percentile curves overlaid, the deltas and,
    /// over three runs or more, their trend) into this folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the comparison as JSON (the runs, every figure, every verdict) instead of the table.
    #[arg(long, conflicts_with = "summary")]
    pub json: bool,
    /// Print only the verdicts and the five figures that changed most.
    #[arg(long)]
    pub summary: bool,
}

fn parse_expression(text: &str) -> Result<Expression, String> {
    Expression::parse(text).map_err(|e| e.to_string())
}

pub fn execute(command: ReportCommand) -> Result<i32> {
    match command {
        ReportCommand::Render(args) => render(args),
        ReportCommand::Compare(args) => compare(args),
        ReportCommand::Merge(args) => super::merge::merge(args),
    }
}

/// Refuses a baseline run given twice (`report compare A A B`): it would count twice in the
/// baselines' mean and spread. The same folder by another path counts as the same.
fn refuse_repeated(baseline_dirs: &[PathBuf]) -> Result<()> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for dir in baseline_dirs {
        let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if let Some((_, first)) = seen.iter().find(|(seen, _)| *seen == canonical) {
            let also = if *first == dir { String::new() } else { format!(" (as {})", first.display()) };
            anyhow::bail!(
                "report compare: the baseline run {} is given twice{also}; each baseline run counts once in the \
                 baselines' mean and spread",
                dir.display()
            );
        }
        seen.push((canonical, dir));
    }
    Ok(())
}

fn render(args: RenderArgs) -> Result<i32> {
    let report = match Renderable::load(&args.dir)? {
        Renderable::Whole(folder) => Report::from_folder(&folder),
        Renderable::Leftovers(leftovers) => {
            let (report, note) = partial::report(&leftovers)
                .with_context(|| format!("{}: no summary.json, and its files do not read", args.dir.display()))?;
            errln!("dpsbench: {}: {note}", args.dir.display());
            report
        }
    };
    let written = super::files::write_rendered(&args.dir, &report)?;
    for path in &written {
        outln!("{}", path.display());
    }
    Ok(if written.len() == files::NAMES.len() { 0 } else { 1 })
}

fn compare(args: CompareArgs) -> Result<i32> {
    let (current_dir, baseline_dirs) = args.runs.split_last().expect("clap requires two runs or more");
    if let Some(expression) = args.fail_if.iter().find(|e| e.needs_spread()).filter(|_| baseline_dirs.len() < 2) {
        anyhow::bail!(
            "--fail-if {:?}: a threshold in standard deviations needs two or more baseline runs \
             (report compare BASELINE_DIR BASELINE_DIR... CURRENT_DIR)",
            expression.text
        );
    }
    refuse_repeated(baseline_dirs)?;
    let baselines = baseline_dirs.iter().map(|dir| ReportFolder::load(dir)).collect::<Result<Vec<_>, _>>()?;
    let current = ReportFolder::load(current_dir)?;
    let summaries: Vec<&crate::results::RunSummary> = baselines.iter().map(|b| &b.summary).collect();
    let comparison = Comparison::of_many(&summaries, &current.summary);
    let verdicts: Vec<Verdict> = args.fail_if.iter().map(|e| e.evaluate(&comparison)).collect();
    let labels: Vec<String> = baseline_dirs.iter().map(|d| d.display().to_string()).collect();
    let (base_label, current_label) = (labels.join(", "), current_dir.display().to_string());
    let printed = match (args.json, args.summary) {
        (true, _) => {
            String::from_utf8(compare::json(&comparison, &labels, &current_label, &verdicts)).expect("JSON is UTF-8")
        }
        (false, true) => compare::summary(&comparison, &base_label, &current_label, &verdicts),
        (false, false) => compare::table(&comparison, &base_label, &current_label, &verdicts),
    };
    super::say(&printed);
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create --out {}", out.display()))?;
        let path = out.join("compare.md");
        super::files::write_whole(&path, &compare::markdown(&comparison, &base_label, &current_label, &verdicts))?;
        let folders: Vec<&ReportFolder> = baselines.iter().chain([&current]).collect();
        let html = out.join("compare.html");
        super::files::write_whole(&html, &compare_page(&folders, &comparison, &verdicts))?;
        if !args.json {
            super::say(&format!("compare: {}\ncompare: {}\n", path.display(), html.display()));
        }
    }
    Ok(if verdicts.iter().any(|v| v.tripped) { 1 } else { 0 })
}

/// `compare.html` of the runs' folders (the baselines, then the current run): each run's curves
/// come from its latency.hlog; a run without one (or with one that does not read) says why.
fn compare_page(folders: &[&ReportFolder], comparison: &Comparison, verdicts: &[Verdict]) -> Vec<u8> {
    let reports: Vec<Report> = folders.iter().map(|folder| Report::from_folder(folder)).collect();
    let runs: Vec<ChartedRun<'_>> = folders
        .iter()
        .zip(&reports)
        .map(|(folder, report)| ChartedRun {
            label: folder.dir.display().to_string(),
            summary: &report.summary,
            latency: report.latency.as_ref().map_err(|error| error.to_string()),
        })
        .collect();
    compare_html::page(&runs, comparison, verdicts)
}
