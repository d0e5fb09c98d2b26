//! The options of one invocation of a run, beside its [`Plan`]: what the user typed for this
//! run (which shard, when the plan's zero falls, which extra records to keep, which flags
//! replaced scenario fields), not what the scenario says. They are no part of the plan hash:
//! every shard of one plan has the same.

use std::time::SystemTime;

use crate::scenario::{Applied, Plan};
use crate::shard::Part;

/// How this invocation runs its plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The part of the plan this process runs (`--shard`), split once; the whole plan unless set.
    pub part: Part,
    /// The wall-clock instant of the plan's zero (`--start-at`); as soon as set up unless set.
    pub start_at: Option<SystemTime>,
    /// Keep a record of every finished device for `devices.csv` (`run --devices-csv`); off, the
    /// runner builds none.
    pub device_records: bool,
    /// The fields `dpsbench run`'s flags replaced (`--count 1000`: `devices.count`), in the order
    /// given: the summary names them beside the effective figures.
    pub overrides: Vec<Applied>,
}

impl RunOptions {
    /// The whole plan, started as soon as it is set up, with no extra records.
    pub fn whole(plan: &Plan) -> Self {
        Self { part: Part::whole(plan), start_at: None, device_records: false, overrides: Vec::new() }
    }
}
