//! `run --shard K/N --start-at RFC3339`: the run's options of a shard and a start instant.

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};

use crate::runner::RunOptions;
use crate::scenario::Plan;
use crate::shard::Shard;

/// How far in the past `--start-at` may be: a shard that is a little late starts at once (its
/// start offset says by how much); one later than this is refused.
const PAST_TOLERANCE: Duration = Duration::from_secs(1);

pub(super) fn parse_shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text).map_err(|e| e.to_string())
}

pub(super) fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    crate::timestamp::parse_rfc3339(text).map_err(|e| e.to_string())
}

/// Sets `options`' part of `plan` and start instant; refuses a shard with nothing to run and an
/// instant more than a second past. Returns what to tell the user about the shard and the wait,
/// if anything.
pub(super) fn apply(
    options: &mut RunOptions,
    plan: &Plan,
    shard: Option<Shard>,
    start_at: Option<SystemTime>,
    now: SystemTime,
) -> Result<Option<String>> {
    if let Some(shard) = shard {
        options.part = shard.part_of(plan).map_err(|e| anyhow::anyhow!("--shard {shard}: {e}"))?;
    }
    let shard = options.part.shard();
    let part = (!shard.is_whole()).then(|| {
        format!("dpsbench: shard {shard}: {} of the plan's {} devices", options.part.devices(), plan.stop.devices)
    });
    let Some(at) = start_at else { return Ok(part) };
    let text = crate::timestamp::rfc3339(at);
    let wait = match at.duration_since(now) {
        Ok(wait) => wait,
        Err(past) if past.duration() <= PAST_TOLERANCE => Duration::ZERO,
        Err(past) => bail!(
            "--start-at {text} is {:.1} s in the past (more than {} s): give an instant ahead, or check this \
             machine's clock",
            past.duration().as_secs_f64(),
            PAST_TOLERANCE.as_secs()
        ),
    };
    options.start_at = Some(at);
    let wait =
        format!("dpsbench: waits {:.1} s for --start-at {text} (devices are prepared first)", wait.as_secs_f64());
    Ok(Some(match part {
        Some(part) => format!("{part}; {}", wait.trim_start_matches("dpsbench: ")),
        None => wait,
    }))
}
