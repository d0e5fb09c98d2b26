//! What a run hands out: a [`Tick`] each second, for live output and the files that grow as it
//! goes, and at its end a [`RunSummary`] (`summary.json`). Plain data: `runner` fills it in,
//! `report` writes and reads it back, neither through the other.

mod generator;
mod summary;
mod tick;

pub use generator::{CpuTime, GeneratorCost};
pub use summary::{
    EmulatorCounts, HostInfo, MergeInfo, MergedShard, RunSummary, SUMMARY_SCHEMA, ScenarioInfo, ShardInfo, TargetInfo,
    TargetStalls, Validity,
};
pub use tick::{Progress, Tick};
