//! `dpsbench run`'s plan: the scenario file, or the quick run's without one, with the override
//! flags (declared once, by `scenario::Overrides`) applied before it is resolved, their paths
//! made absolute against the working directory; a refusal led by the flag behind it, and the
//! dry run's line of overrides.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::scenario::{
    Applied, GROUP_KEY_ENV, NO_FILE, OverrideError, Overrides, Plan, ScenarioError, ScenarioFile, TargetOverride,
};

/// The quick run: the embedded emulator, and the quickstart's 1,000 devices at 200/s unless the
/// flags say otherwise (a count, a duration or a device list replaces the 1,000; with
/// --concurrency and no --rate the plan is closed).
const QUICK: &str = "name = \"quick\"\n[target]\nkind = \"embedded\"\n";
const QUICK_RATE: f64 = 200.0;
const QUICK_COUNT: u64 = 1000;

/// The plan `dpsbench run` runs: the scenario file (or the quick run's) with the overrides
/// applied, resolved once; with the overrides as `summary.json` lists them.
pub fn load_plan(scenario: Option<&Path>, overrides: &Overrides) -> Result<(Plan, Vec<Applied>)> {
    let overrides = anchored(overrides)?;
    let (mut file, path) = match scenario {
        Some(path) => (ScenarioFile::read(path)?, path.to_path_buf()),
        None => (quick(&overrides)?, PathBuf::from(NO_FILE)),
    };
    let applied = overrides.apply(&mut file)?;
    let env = |name: &str| std::env::var(name).ok();
    let plan = Plan::resolve(file, &path, &env).map_err(|error| blame(&applied, error, scenario.is_some()))?;
    Ok((plan, applied))
}

/// A plan's refusal, led by the flag that set the refused field; without a scenario file the
/// error names no file, and a field only a file can set says so.
fn blame(applied: &[Applied], error: ScenarioError, from_file: bool) -> anyhow::Error {
    let culprit = Overrides::culprit(applied, &error).map(|a| format!("{} {}: ", a.flag, a.value));
    match (&error, from_file) {
        (ScenarioError::Field { field, reason, .. }, false) => {
            let only_a_file = match *field {
                "target.max_devices_per_second" => {
                    " (a target off this machine needs a scenario file that states target.max_devices_per_second)"
                }
                _ => "",
            };
            anyhow::anyhow!("{}field `{field}`: {reason}{only_a_file}", culprit.unwrap_or_default())
        }
        _ => match culprit {
            Some(culprit) => anyhow::anyhow!("{culprit}{error}"),
            None => error.into(),
        },
    }
}

/// `--dry-run`'s plan, with a line after the scenario's naming the overrides and the fields
/// they replaced (`overrides   --rate 50 (arrival.rate)`).
pub fn dry_run(plan: &Plan, part: &crate::shard::Part, applied: &[Applied]) -> String {
    let shard = (!part.shard().is_whole()).then(|| part.shard().to_string());
    // The same announcement the run makes before it starts.
    let starts = part.starts_within_limits(plan).map(|estimate| estimate.to_string());
    let printed = crate::scenario::forecast::dry_run(plan, part.devices(), shard, starts);
    if applied.is_empty() {
        return printed;
    }
    let listed: Vec<String> = applied.iter().map(|a| format!("{} {} ({})", a.flag, a.value, a.field)).collect();
    let (first, rest) = printed.split_once('\n').unwrap_or((&printed, ""));
    format!("{first}\noverrides   {}\n{rest}", listed.join(", "))
}

/// The overrides with their relative paths joined to the working directory, read only when
/// a flag names a relative path.
fn anchored(overrides: &Overrides) -> Result<Overrides> {
    let mut overrides = overrides.clone();
    for path in overrides.paths_mut().filter(|path| path.is_relative()) {
        *path = std::env::current_dir().context("cannot read the working directory")?.join(&*path);
    }
    Ok(overrides)
}

/// The quick run's scenario, before the flags are applied to it.
fn quick(overrides: &Overrides) -> Result<ScenarioFile, OverrideError> {
    let mut file: ScenarioFile = crate::toml_file::parse(QUICK).expect("the quick scenario parses");
    match (overrides.concurrency, overrides.rate) {
        (Some(_), None) => file.arrival.model = crate::scenario::ArrivalModel::Closed,
        _ => file.arrival.rate = Some(QUICK_RATE),
    }
    let open_ended = overrides.duration_seconds.is_none() && overrides.devices_from.is_none();
    if open_ended {
        file.devices.count = Some(QUICK_COUNT);
    }
    if matches!(overrides.target_override()?, Some(TargetOverride::Dps(_))) {
        file.devices.group_key_env = Some(GROUP_KEY_ENV.into());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_run_is_the_quickstarts_plan_unless_told_otherwise() {
        let quick_plan = |overrides: Overrides| {
            let mut file = quick(&overrides).unwrap();
            let applied = overrides.apply(&mut file).unwrap();
            (Plan::resolve(file, Path::new(NO_FILE), &|_| None).unwrap(), applied)
        };
        let (plan, applied) = quick_plan(Overrides::default());
        assert_eq!((plan.stop.devices, plan.load.describe()), (1000, "constant 200/s".to_string()));
        assert!(applied.is_empty());
        let (plan, _) = quick_plan(Overrides { duration_seconds: Some(2.0), ..Overrides::default() });
        assert_eq!(plan.stop.duration, Some(std::time::Duration::from_secs(2)));
        assert_eq!(plan.stop.devices, 401, "a duration replaces the default count: 200/s for 2 s, and one");
        let (plan, applied) = quick_plan(Overrides { concurrency: Some(5), count: Some(50), ..Overrides::default() });
        assert_eq!((plan.stop.devices, plan.load.describe()), (50, "closed, 5 in flight".to_string()));
        assert_eq!(applied.iter().map(|a| a.flag.as_str()).collect::<Vec<_>>(), ["--count", "--concurrency"]);
    }
}
