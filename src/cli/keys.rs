//! `dpsbench keys derive` and `dpsbench token`, and the one way the CLI reads a key: from
//! `--key-file`, else the environment variable `--key-env` names (through [`KeySource`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::credentials::{IdScope, RegistrationId, SasToken, SymmetricKey};
use crate::device::Personality;
use crate::scenario::{KeyError, KeySource};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print one derived device key per registration ID, one per line.
    // The usage is spelled out: clap's own shows a flag given on the command line as required.
    #[command(override_usage = "dpsbench keys derive [--key-env <VAR> | --key-file <FILE>] <REGISTRATION_ID>...")]
    Derive(DeriveArgs),
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// Registration IDs to derive keys for.
    #[arg(required = true, value_name = "REGISTRATION_ID")]
    pub registration_ids: Vec<String>,
    /// Environment variable holding the group key.
    #[arg(long, value_name = "VAR", default_value = "DPS_GROUP_KEY", conflicts_with = "key_file")]
    pub key_env: String,
    /// File holding the group key (base64).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The DPS instance's ID scope, e.g. 0ne00000A0A.
    #[arg(long, value_name = "S")]
    pub id_scope: String,
    /// The device's registration ID.
    #[arg(long, value_name = "R")]
    pub registration_id: String,
    /// Expiry: a duration from now (`90s`, `30m`, `1h`, `7d`) or an instant in Unix seconds
    /// (`1767225600`; a past expiry is printed too, for test vectors, with a warning on stderr).
    #[arg(long, value_name = "WHEN", value_parser = parse_expiry)]
    pub expiry: Expiry,
    /// Environment variable holding the device key.
    #[arg(long, value_name = "VAR", default_value = "DPS_DEVICE_KEY", conflicts_with = "key_file")]
    pub key_env: String,
    /// File holding the device key (base64).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Whose token form to print, byte for byte: dpsbench (the documented form), python, node,
    /// c, embedded-c or csharp (`sr` encoding, escapes' hex case, `skn` and field order).
    #[arg(long, value_name = "SDK", default_value = "dpsbench", value_parser = parse_style)]
    pub style: Personality,
}

/// `--expiry`: an instant, or a duration from when the token is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    UnixSeconds(u64),
    After(std::time::Duration),
}

impl Expiry {
    /// The instant in Unix seconds, a duration counted from `now`.
    fn at(self, now: std::time::SystemTime) -> u64 {
        match self {
            Expiry::UnixSeconds(seconds) => seconds,
            Expiry::After(duration) => {
                (now + duration).duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
            }
        }
    }
}

fn parse_expiry(text: &str) -> Result<Expiry, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Expiry::UnixSeconds(seconds));
    }
    let unit = |u: char| match u {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        _ => None,
    };
    let bad = || format!("{text:?} is neither a duration (90s, 30m, 1h, 7d) nor Unix seconds (1767225600)");
    let last = text.chars().last().ok_or_else(bad)?;
    let count: u64 = text[..text.len() - last.len_utf8()].parse().map_err(|_| bad())?;
    let seconds = count.checked_mul(unit(last).ok_or_else(bad)?).ok_or_else(bad)?;
    Ok(Expiry::After(std::time::Duration::from_secs(seconds)))
}

fn parse_style(name: &str) -> Result<Personality, String> {
    Personality::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Personality::ALL.iter().map(|p| p.name()).collect();
        format!("unknown style {name:?}: expected one of {}", names.join(", "))
    })
}

/// A key from `--key-file`, else the environment variable `--key-env` names.
pub(super) fn read_key(env_var: &str, file: Option<&Path>) -> Result<SymmetricKey> {
    let source = match file {
        Some(path) => KeySource::File(path.to_path_buf()),
        None => KeySource::Env(env_var.to_string()),
    };
    source.read(&|name| std::env::var(name).ok()).map_err(|error| match error {
        KeyError::Unset(_) => anyhow::anyhow!("{error} (or use --key-file)"),
        error => error.into(),
    })
}

pub(super) fn derive(args: DeriveArgs) -> Result<i32> {
    let group_key = read_key(&args.key_env, args.key_file.as_deref())?;
    let ids = args.registration_ids.into_iter().map(RegistrationId::new).collect::<Result<Vec<_>, _>>()?;
    for id in ids {
        outln!("{}", group_key.derive_device_key(&id).to_base64());
    }
    Ok(0)
}

pub(super) fn token(args: TokenArgs) -> Result<i32> {
    let key = read_key(&args.key_env, args.key_file.as_deref())?;
    let scope = IdScope::new(args.id_scope)?;
    let id = RegistrationId::new(args.registration_id)?;
    let now = std::time::SystemTime::now();
    let expiry = args.expiry.at(now);
    if let Some(warning) = expiry_warning(expiry, now) {
        errln!("dpsbench: warning: {warning}");
    }
    outln!("{}", SasToken::build(&scope, &id, &key, expiry, args.style.sas_style()).expose());
    Ok(0)
}

/// A warning when `expiry` (Unix seconds) is not after `now`: DPS refuses such a token.
fn expiry_warning(expiry: u64, now: std::time::SystemTime) -> Option<String> {
    let now = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    (expiry <= now)
        .then(|| format!("--expiry {expiry} is {} s in the past: DPS refuses this token (CONNACK 5)", now - expiry))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn expiry_is_a_duration_from_now_or_unix_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_expiry("1767225600").unwrap().at(now), 1_767_225_600);
        assert_eq!(parse_expiry("1h").unwrap().at(now), 1_003_600);
        assert_eq!(parse_expiry("90s").unwrap().at(now), 1_000_090);
        assert_eq!(parse_expiry("30m").unwrap().at(now), 1_001_800);
        assert_eq!(parse_expiry("7d").unwrap().at(now), 1_604_800);
        for bad in ["1 hour", "h", "-5m", "1.5h", ""] {
            let error = parse_expiry(bad).unwrap_err();
            assert!(error.contains("neither a duration") && error.contains("1h"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_past_expiry_is_warned_about_and_a_future_one_is_not() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let warning = expiry_warning(999_940, now).expect("a warning");
        assert!(warning.contains("--expiry 999940") && warning.contains("60 s in the past"), "{warning}");
        assert_eq!(expiry_warning(1_000_001, now), None);
    }
}
