//! `dpsbench keys derive` and `dpsbench token`, and the one way the CLI reads a key: from
//! `--key-file`, else the environment variable `--key-env` names (through [`KeySource`]).

use std::io::Write as _;
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
    /// Expiry, in Unix seconds, e.g. $(($(date +%s) + 3600)) for an hour from now (a past expiry
    /// is printed too, for test vectors, with a warning on stderr).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub expiry: u64,
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
    let mut out = std::io::stdout().lock();
    for id in ids {
        writeln!(out, "{}", group_key.derive_device_key(&id).to_base64())?;
    }
    Ok(0)
}

pub(super) fn token(args: TokenArgs) -> Result<i32> {
    let key = read_key(&args.key_env, args.key_file.as_deref())?;
    let scope = IdScope::new(args.id_scope)?;
    let id = RegistrationId::new(args.registration_id)?;
    if let Some(warning) = expiry_warning(args.expiry, std::time::SystemTime::now()) {
        eprintln!("dpsbench: warning: {warning}");
    }
    println!("{}", SasToken::build(&scope, &id, &key, args.expiry, args.style.sas_style()).expose());
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
    fn a_past_expiry_is_warned_about_and_a_future_one_is_not() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let warning = expiry_warning(999_940, now).expect("a warning");
        assert!(warning.contains("--expiry 999940") && warning.contains("60 s in the past"), "{warning}");
        assert_eq!(expiry_warning(1_000_001, now), None);
    }
}
