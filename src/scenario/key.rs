//! The enrollment group key, from an environment variable or a file: the one place that reads
//! it, for a scenario's `devices.group_key_env` / `group_key_file` and the CLI's `--key-env` /
//! `--key-file` alike. The key never appears in an error.

use std::path::{Path, PathBuf};

use super::{DevicesSection, FieldError, TargetPlan};
use crate::credentials::{CredentialError, SymmetricKey};

/// Where a key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable holding the key (base64).
    Env(String),
    /// A file holding the key (base64).
    File(PathBuf),
}

/// A key that could not be read; names the variable or file, never the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("environment variable {var}: {source}")]
    BadEnv { var: String, source: CredentialError },
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("key file {path}: {source}")]
    BadFile { path: PathBuf, source: CredentialError },
}

impl KeySource {
    /// Reads the key; `env` looks up environment variables (injectable for tests).
    pub fn read(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<SymmetricKey, KeyError> {
        match self {
            KeySource::Env(var) => {
                let text = env(var).ok_or_else(|| KeyError::Unset(var.clone()))?;
                SymmetricKey::from_base64(&text).map_err(|source| KeyError::BadEnv { var: var.clone(), source })
            }
            KeySource::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.clone(), source })?;
                SymmetricKey::from_base64(&text).map_err(|source| KeyError::BadFile { path: path.clone(), source })
            }
        }
    }
}

/// The plan's group key: the one `[devices]` names, else a random one when nobody derives from
/// it (every device has its own key, or the emulator is ours); with where it came from, for
/// errors that must name it (never the key itself).
pub(super) fn group_key(
    devices: &DevicesSection,
    target: &TargetPlan,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    all_keyed: bool,
) -> Result<(SymmetricKey, String), FieldError> {
    let (field, source) = match (&devices.group_key_env, &devices.group_key_file) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new("devices.group_key_env", "give group_key_env or group_key_file, not both"));
        }
        (Some(var), None) => ("devices.group_key_env", KeySource::Env(var.clone())),
        (None, Some(file)) => ("devices.group_key_file", KeySource::File(base.join(file))),
        (None, None) => {
            return match target {
                _ if all_keyed => {
                    Ok((SymmetricKey::random(), "each device's own key, in devices.registration_ids_file".into()))
                }
                TargetPlan::Embedded { .. } => {
                    Ok((SymmetricKey::random(), "the embedded emulator's random group key".into()))
                }
                TargetPlan::Dps { .. } => {
                    Err(FieldError::new("devices.group_key_env", "a dps target needs group_key_env or group_key_file"))
                }
            };
        }
    };
    let origin = match &source {
        KeySource::Env(var) => format!("{field} (variable {var})"),
        KeySource::File(path) => format!("{field} ({})", path.display()),
    };
    Ok((source.read(env).map_err(|e| FieldError::new(field, e.to_string()))?, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_a_variable_or_a_file_and_never_show_in_errors() {
        let key = SymmetricKey::random();
        let env = |name: &str| (name == "KEY").then(|| key.to_base64());
        assert_eq!(KeySource::Env("KEY".into()).read(&env).unwrap().to_base64(), key.to_base64());
        let err = KeySource::Env("OTHER".into()).read(&env).unwrap_err().to_string();
        assert_eq!(err, "environment variable OTHER is not set");

        let dir = std::env::temp_dir().join(format!("dpsbench-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key.b64");
        std::fs::write(&file, format!("{}\n", key.to_base64())).unwrap();
        assert_eq!(KeySource::File(file.clone()).read(&env).unwrap().to_base64(), key.to_base64());
        std::fs::write(&file, "not-a-key!").unwrap();
        let err = KeySource::File(file.clone()).read(&env).unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()) && !err.contains("not-a-key"), "{err}");
        let err = KeySource::File(dir.join("missing")).read(&env).unwrap_err().to_string();
        assert!(err.starts_with("cannot read key file") && err.contains("missing"), "{err}");
    }
}
