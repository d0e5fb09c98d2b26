//! `dpsbench run`'s overrides (`--count`, `--rate`, `--concurrency`, `--duration`, `--target`,
//! `--id-scope`, `--ca`, `--devices-from`, `--key-env`, `--key-file`) and the quick run without
//! a scenario file: the flags as typed, their paths made absolute against the working
//! directory, applied to the scenario before it is resolved (`scenario::Overrides`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::scenario::{Applied, Overrides, Plan, ScenarioError, ScenarioFile, TargetOverride};

/// What `summary.json` says the scenario file was when none was given.
pub const NO_FILE: &str = "(command line)";

/// The quick run: the embedded emulator, and the quickstart's 1,000 devices at 200/s unless the
/// flags say otherwise (a count, a duration or a device list replaces the 1,000; with
/// --concurrency and no --rate the plan is closed).
const QUICK: &str = "name = \"quick\"\n[target]\nkind = \"embedded\"\n";
const QUICK_RATE: f64 = 200.0;
const QUICK_COUNT: u64 = 1000;

/// The key variable of a quick run against a DPS target that names none (as `conform`'s).
const QUICK_KEY_ENV: &str = "DPS_GROUP_KEY";

#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Overrides (each replaces one field of the scenario; without SCENARIO, of a quick run \
                               against the embedded emulator: 1,000 devices at 200/s)")]
pub struct OverrideArgs {
    /// Devices to start (devices.count): a closed plan's total, a burst's size.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Devices started per second (arrival.rate); constant and poisson plans only.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Devices in flight at once (arrival.concurrency); closed plans only (a quick run given it
    /// without --rate is closed).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u64>,
    /// Stop starting devices after this long (run.duration_seconds), e.g. 30s, 2m, 500ms or
    /// seconds; whichever of the count and the duration comes first ends the arrivals.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Where devices connect: `embedded`, or a DPS endpoint mqtts://HOST[:PORT] (8883 by
    /// default; the scheme may be left out) or wss://HOST[:PORT] (443). From an embedded scenario it needs --id-scope; the
    /// group key then comes from --key-env or --key-file (a quick run: DPS_GROUP_KEY).
    #[arg(long, value_name = "TARGET", value_parser = TargetOverride::parse)]
    pub target: Option<TargetOverride>,
    /// The target's ID scope (target.id_scope).
    #[arg(long, value_name = "S")]
    pub id_scope: Option<String>,
    /// PEM file of the CA that signs a DPS target's certificate (target.ca_certificate), e.g.
    /// `dpsbench emulator --ca-out`'s.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// CSV file of registration IDs, one device a row (devices.registration_ids_file); its
    /// length is the count unless --count says otherwise.
    #[arg(long, value_name = "CSV")]
    pub devices_from: Option<PathBuf>,
    /// Environment variable holding the group key (devices.group_key_env).
    #[arg(long, value_name = "VAR", conflicts_with = "key_file")]
    pub key_env: Option<String>,
    /// File holding the group key (devices.group_key_file).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// The plan `dpsbench run` runs: the scenario file (or the quick run's) with the overrides
/// applied, resolved once; with the overrides as `summary.json` lists them.
pub fn load_plan(scenario: Option<&Path>, args: &OverrideArgs) -> Result<(Plan, Vec<Applied>)> {
    let overrides = args.overrides()?;
    let (mut file, path) = match scenario {
        Some(path) => (ScenarioFile::read(path)?, path.to_path_buf()),
        None => (quick(&overrides), PathBuf::from(NO_FILE)),
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
    let printed = crate::scenario::forecast::dry_run(plan, part.devices(), shard);
    if applied.is_empty() {
        return printed;
    }
    let listed: Vec<String> = applied.iter().map(|a| format!("{} {} ({})", a.flag, a.value, a.field)).collect();
    let (first, rest) = printed.split_once('\n').unwrap_or((&printed, ""));
    format!("{first}\noverrides   {}\n{rest}", listed.join(", "))
}

impl OverrideArgs {
    fn overrides(&self) -> Result<Overrides> {
        let cwd = || std::env::current_dir().context("cannot read the working directory");
        let absolute = |path: &Option<PathBuf>| -> Result<Option<PathBuf>> {
            path.as_ref().map(|p| Ok(if p.is_absolute() { p.clone() } else { cwd()?.join(p) })).transpose()
        };
        Ok(Overrides {
            count: self.count,
            rate: self.rate,
            concurrency: self.concurrency,
            duration_seconds: self.duration,
            target: self.target.clone(),
            id_scope: self.id_scope.clone(),
            ca: absolute(&self.ca)?,
            devices_from: absolute(&self.devices_from)?,
            key_env: self.key_env.clone(),
            key_file: absolute(&self.key_file)?,
        })
    }
}

/// The quick run's scenario, before the flags are applied to it.
fn quick(overrides: &Overrides) -> ScenarioFile {
    let mut file: ScenarioFile = crate::toml_file::parse(QUICK).expect("the quick scenario parses");
    match (overrides.concurrency, overrides.rate) {
        (Some(_), None) => file.arrival.model = crate::scenario::ArrivalModel::Closed,
        _ => file.arrival.rate = Some(QUICK_RATE),
    }
    let open_ended = overrides.duration_seconds.is_none() && overrides.devices_from.is_none();
    if open_ended {
        file.devices.count = Some(QUICK_COUNT);
    }
    if matches!(overrides.target, Some(TargetOverride::Dps { .. })) {
        file.devices.group_key_env = Some(QUICK_KEY_ENV.into());
    }
    file
}

/// `--duration`: `30s`, `2m`, `500ms`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds = match text.parse::<f64>() {
        Ok(seconds) => Some(seconds),
        Err(_) => crate::arrival::parse_duration(text).map(|d| d.as_secs_f64()),
    };
    seconds.ok_or_else(|| format!("{text:?} is not a duration: give e.g. 30s, 2m, 500ms or a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("30s"), Ok(30.0));
        assert_eq!(parse_duration("2m"), Ok(120.0));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert_eq!(parse_duration("12.5"), Ok(12.5));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn the_quick_run_is_the_quickstarts_plan_unless_told_otherwise() {
        let quick_plan = |overrides: Overrides| {
            let mut file = quick(&overrides);
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
