//! `dpsbench report merge`: reads the shards' folders, writes the merged one.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;

use super::out_folder::OutFolder;
use crate::report::analysis::merge::{self as merging, Merged};
use crate::report::format::folder::ReportFolder;
use crate::report::format::report::Report;
use crate::report::format::summary::json as summary_json;
use crate::report::render::terminal::summary_table;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' report folders.
    #[arg(value_name = "SHARD_DIR", required = true)]
    pub shards: Vec<PathBuf>,
    /// Folder for the merged report (created if needed): never one of the shards' folders, and
    /// refused when it already holds a report, unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite the report already in --out (never a shard's folder).
    #[arg(long)]
    pub force: bool,
}

pub(super) fn merge(args: MergeArgs) -> Result<i32> {
    refuse_an_input(&args.out, &args.shards)?;
    let mut folder = OutFolder::check(&args.out, "--out", args.force)?;
    let folders = args.shards.iter().map(|dir| ReportFolder::load(dir)).collect::<Result<Vec<_>, _>>()?;
    let merged = merging::merge(&folders)?;
    folder.create()?;
    let rendered = match write(&mut folder, &args.shards, &merged) {
        Ok(rendered) => rendered,
        Err(error) => {
            folder.discard();
            return Err(error);
        }
    };
    let out = folder.path();
    out!("{}", summary_table(&merged.summary));
    let info = merged.summary.merged.as_ref().expect("a merge records its shards");
    outln!("merged {} shards into {}", info.shards.len(), out.display());
    for path in rendered {
        outln!("report: {}", path.display());
    }
    if info.missing.is_empty() {
        return Ok(0);
    }
    let missing: Vec<String> = info.missing.iter().map(u64::to_string).collect();
    errln!(
        "dpsbench: partial: {} of {} shards missing (index {}); summary.json lists them under merged.missing",
        info.missing.len(),
        info.shards.len() + info.missing.len(),
        missing.join(", ")
    );
    Ok(1)
}

/// Refuses an `--out` that is one of the shards' folders: a merge never writes into an input.
fn refuse_an_input(out: &Path, shards: &[PathBuf]) -> Result<()> {
    let Ok(out_real) = out.canonicalize() else { return Ok(()) };
    for shard in shards {
        if shard.canonicalize().is_ok_and(|real| real == out_real) {
            bail!(
                "--out {} is the shard folder {} given to merge: a merge never writes into an input; choose another folder",
                out.display(),
                shard.display()
            );
        }
    }
    Ok(())
}

/// Writes the merged files and the rendered reports; returns the rendered reports' paths.
fn write(folder: &mut OutFolder, shards: &[PathBuf], merged: &Merged) -> Result<Vec<PathBuf>> {
    for (name, bytes) in [
        ("summary.json", summary_json(&merged.summary)),
        ("latency.hlog", merged.latency_hlog.clone()),
        ("timeseries.csv", merged.timeseries_csv.clone()),
    ] {
        super::files::write_whole(&folder.file(name), &bytes)?;
    }
    join_devices_csv(shards, folder)?;
    let report = Report::of_files(merged.summary.clone(), Some(&merged.timeseries_csv), Some(&merged.latency_hlog));
    super::files::write_rendered(folder.path(), &report)
}

/// Joins the shards' `devices.csv` (one header) when every shard has one.
fn join_devices_csv(shards: &[PathBuf], folder: &mut OutFolder) -> Result<()> {
    let mut joined = Vec::new();
    for dir in shards {
        let path = dir.join("devices.csv");
        let Ok(text) = std::fs::read(&path) else { return Ok(()) };
        let body = match joined.is_empty() {
            true => &text[..],
            false => text.iter().position(|b| *b == b'\n').map_or(&[][..], |end| &text[end + 1..]),
        };
        joined.extend_from_slice(body);
    }
    super::files::write_whole(&folder.file("devices.csv"), &joined)
}
