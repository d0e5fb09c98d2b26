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
    #[arg(long, value_name = "S")]
    pub id_scope: String,
    #[arg(long, value_name = "R")]
    pub registration_id: String,
    /// Expiry, in Unix seconds.
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
    println!("{}", SasToken::build(&scope, &id, &key, args.expiry, args.style.sas_style()).expose());
    Ok(0)
}
