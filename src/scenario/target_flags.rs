//! The flags that say where devices connect and with which key (`--target`, `--id-scope`, `--ca`,
//! `--key-env`, `--key-file`), declared once: `dpsbench run` takes them as overrides of the
//! scenario's `[target]` and group key, `dpsbench conform` as its target. `--target` is kept as
//! typed and read into a [`TargetOverride`] by the command, so its refusal is one line naming the
//! flag (an endpoint's rules are `endpoint`'s). No IO: paths are as typed.

use std::fmt;
use std::path::PathBuf;

use clap::Args;

use crate::endpoint::{Endpoint, EndpointError};

/// The variable that holds the group key when neither the scenario nor a flag names one: a
/// quick run's against a DPS target, and `conform`'s.
pub const GROUP_KEY_ENV: &str = "DPS_GROUP_KEY";

// Shared by `run` (flattened into `Overrides`) and `conform`; no doc comment here, as clap would
// take it for the command's about.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct TargetFlags {
    /// Where devices connect: `embedded`, or a DPS endpoint mqtts://HOST[:PORT] (8883 by
    /// default; the scheme may be left out) or wss://HOST[:PORT] (443). From an embedded scenario
    /// it needs --id-scope; the group key then comes from --key-env or --key-file (a quick run:
    /// DPS_GROUP_KEY).
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// The target's ID scope (target.id_scope).
    #[arg(long, value_name = "S")]
    pub id_scope: Option<String>,
    /// PEM file of the CA that signs a DPS target's certificate (target.ca_certificate), e.g.
    /// `dpsbench emulator --ca-out`'s [default: the public web roots, as a real DPS instance
    /// needs].
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Environment variable holding the enrollment group key the devices derive theirs from
    /// (devices.group_key_env).
    #[arg(long, value_name = "VAR", conflicts_with = "key_file")]
    pub key_env: Option<String>,
    /// File holding the enrollment group key, base64 (devices.group_key_file).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// `--target`: `embedded`, or a DPS endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOverride {
    Embedded,
    Dps(Endpoint),
}

impl TargetFlags {
    /// `--target` read, if given: `Err` says why it is neither `embedded` nor an endpoint.
    pub fn target_override(&self) -> Result<Option<TargetOverride>, String> {
        self.target.as_deref().map(TargetOverride::parse).transpose()
    }
}

impl TargetOverride {
    /// Parses `embedded`, or an endpoint as [`Endpoint::parse`] reads it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "embedded" {
            return Ok(TargetOverride::Embedded);
        }
        Endpoint::parse(text).map(TargetOverride::Dps).map_err(|error| match error {
            EndpointError::Scheme(_) => {
                "expected embedded, mqtts://HOST[:PORT], wss://HOST[:PORT] or HOST[:PORT]".into()
            }
            other => other.to_string(),
        })
    }
}

/// `embedded`, or the endpoint with its scheme: what [`TargetOverride::parse`] reads back.
impl fmt::Display for TargetOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetOverride::Embedded => f.write_str("embedded"),
            TargetOverride::Dps(endpoint) => endpoint.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Scheme;

    fn dps(host: &str, port: Option<u16>, scheme: Scheme) -> TargetOverride {
        TargetOverride::Dps(Endpoint { scheme, host: host.into(), port })
    }

    #[test]
    fn targets_parse_as_typed_and_print_back() {
        for (text, parsed) in [
            ("embedded", TargetOverride::Embedded),
            ("mqtts://127.0.0.1:8883", dps("127.0.0.1", Some(8883), Scheme::Mqtts)),
            ("mqtts://dps.example.com", dps("dps.example.com", None, Scheme::Mqtts)),
            ("wss://[::1]:4443", dps("::1", Some(4443), Scheme::Wss)),
            ("127.0.0.1:8883", dps("127.0.0.1", Some(8883), Scheme::Mqtts)),
        ] {
            assert_eq!(TargetOverride::parse(text), Ok(parsed.clone()), "{text}");
            let printed = parsed.to_string();
            assert_eq!(TargetOverride::parse(&printed), Ok(parsed), "{printed} reads back");
        }
        for bad in ["http://x", "mqtts://", "mqtts://h:port", "mqtts://a b"] {
            assert!(TargetOverride::parse(bad).is_err(), "{bad}");
        }
        assert!(TargetOverride::parse("http://x").unwrap_err().starts_with("expected embedded, mqtts://"));
    }
}
