//! `dpsbench report merge`: reads the shards' folders, writes the merged one.

use std::path::Path;

use anyhow::{Context, Result};

use super::reports::MergeArgs;
use crate::report;
use crate::report::folder::ReportFolder;

pub(super) fn merge(args: MergeArgs) -> Result<i32> {
    let folders = args.shards.iter().map(|dir| ReportFolder::load(dir)).collect::<Result<Vec<_>, _>>()?;
    let merged = report::merge::merge(&folders)?;
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create --out {}", out.display()))?;
    for (name, bytes) in [
        ("summary.json", report::summary_json(&merged.summary)),
        ("latency.hlog", merged.latency_hlog),
        ("timeseries.csv", merged.timeseries_csv),
    ] {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    join_devices_csv(&args.shards, out)?;
    let rendered = super::write_rendered(out)?;
    print!("{}", report::summary_table(&merged.summary));
    let info = merged.summary.merged.as_ref().expect("a merge records its shards");
    println!("merged {} shards into {}", info.shards.len(), out.display());
    for path in rendered {
        println!("report: {}", path.display());
    }
    if info.missing.is_empty() {
        return Ok(0);
    }
    let missing: Vec<String> = info.missing.iter().map(u64::to_string).collect();
    eprintln!(
        "dpsbench: partial: {} of {} shards missing (index {}); summary.json lists them under merged.missing",
        info.missing.len(),
        info.shards.len() + info.missing.len(),
        missing.join(", ")
    );
    Ok(1)
}

/// Joins the shards' `devices.csv` (one header) when every shard has one.
fn join_devices_csv(shards: &[std::path::PathBuf], out: &Path) -> Result<()> {
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
    let path = out.join("devices.csv");
    std::fs::write(&path, joined).with_context(|| format!("cannot write {}", path.display()))
}
