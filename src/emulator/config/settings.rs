//! The DPS service's settings an emulator file and a scenario's embedded target share: one
//! serde section ([`SettingsSection`], flattened into each), resolved by one function into
//! [`Settings`], with the checks and defaults both files keep. No IO.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::emulator::faults::{FaultError, Faults, FaultsSection};
use crate::tls::{TlsPolicy, TlsVersion, TlsVersions};

/// `retry-after` on every 202 when a file sets none: the emulator file and a scenario's embedded
/// target share it (1 s: the quickstart's documented value, and what `conform` runs with).
pub const DEFAULT_RETRY_AFTER_SECONDS: u32 = 1;

/// Register-to-assigned time of the emulator file when it sets none.
pub const DEFAULT_ASSIGN_DELAY_MS: u64 = 500;

/// The IoT hubs of an emulator file or an embedded target that names none.
pub const DEFAULT_HUBS: [&str; 2] = ["hub-a.azure-devices.net", "hub-b.azure-devices.net"];

/// [`DEFAULT_HUBS`], as the files' serde default.
pub fn default_hubs() -> Vec<String> {
    DEFAULT_HUBS.iter().map(|hub| hub.to_string()).collect()
}

/// Largest `retry-after` accepted (the C SDK clamps larger values to 1).
pub const MAX_RETRY_AFTER_SECONDS: u32 = 300;

/// A quota high enough never to throttle, for the one of the two quotas a file leaves out.
pub(super) const UNLIMITED_PER_MINUTE: u32 = 1_000_000_000;

/// The DPS service's settings: the one section an emulator file and a scenario's embedded
/// `[target]` share, flattened into each under the same keys, and resolved by one function
/// ([`SettingsSection::resolve`]). (The quotas are the one difference in spelling: a `[quota]`
/// table in the emulator file, two fields of `[target]` in a scenario.)
///
/// Flattened, the section is read from buffered values, which carry no position: each field
/// names itself in its errors.
#[derive(Debug, Clone, Deserialize)]
pub struct SettingsSection {
    /// IoT hubs devices are assigned to; [`DEFAULT_HUBS`] when absent.
    #[serde(default = "default_hubs", deserialize_with = "hubs")]
    pub hubs: Vec<String>,
    /// `retry-after` on every 202 (seconds; 0 for throughput runs).
    #[serde(default = "default_retry_after", deserialize_with = "retry_after_seconds")]
    pub retry_after_seconds: u32,
    /// Time from register to assignment; the file's own default when absent.
    #[serde(default, deserialize_with = "assign_delay_ms")]
    pub assign_delay_ms: Option<u64>,
    /// Return each device's custom allocation payload as `registrationState.payload`, as a
    /// custom allocation policy that echoes would.
    #[serde(default, deserialize_with = "echo_payload")]
    pub echo_payload: bool,
    /// Faults injected on demand (`emulator::faults`).
    #[serde(default, deserialize_with = "faults")]
    pub faults: FaultsSection,
}

/// `field` deserialized, its errors naming it.
fn named<'de, T: Deserialize<'de>, D: Deserializer<'de>>(field: &str, deserializer: D) -> Result<T, D::Error> {
    T::deserialize(deserializer).map_err(|e| D::Error::custom(format!("field `{field}`: {e}")))
}

fn hubs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    named("hubs", deserializer)
}

fn retry_after_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    named("retry_after_seconds", deserializer)
}

fn assign_delay_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    named("assign_delay_ms", deserializer)
}

fn echo_payload<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    named("echo_payload", deserializer)
}

fn faults<'de, D: Deserializer<'de>>(deserializer: D) -> Result<FaultsSection, D::Error> {
    named("faults", deserializer)
}

impl SettingsSection {
    /// Checks every setting: `quota` as the file gives it, `default_assign_delay_ms` the file's
    /// own default ([`DEFAULT_ASSIGN_DELAY_MS`] for the emulator file, none for a scenario's
    /// embedded target, which answers at once).
    pub fn resolve(&self, quota: QuotaFile, default_assign_delay_ms: u64) -> Result<Settings, SettingError> {
        check_hubs(&self.hubs)?;
        Ok(Settings {
            hubs: self.hubs.clone(),
            retry_after_seconds: check_retry_after(self.retry_after_seconds)?,
            assign_delay: Duration::from_millis(self.assign_delay_ms.unwrap_or(default_assign_delay_ms)),
            quota: QuotaConfig::new(quota.registrations_per_minute, quota.operations_per_minute)?,
            echo_payload: self.echo_payload,
            faults: self.faults.resolve().map_err(SettingError::Fault)?,
        })
    }
}

/// The service's settings, checked ([`SettingsSection::resolve`]): what a scenario's embedded
/// target holds and what `ServiceConfig::apply` sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub hubs: Vec<String>,
    pub retry_after_seconds: u32,
    pub assign_delay: Duration,
    pub quota: Option<QuotaConfig>,
    pub echo_payload: bool,
    pub faults: Faults,
}

fn default_retry_after() -> u32 {
    DEFAULT_RETRY_AFTER_SECONDS
}

/// A setting the emulator file and a scenario's embedded target share that does not hold.
/// [`SettingError::field`] names the field as the emulator file spells it.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("list at least one IoT hub host name")]
    NoHubs,
    #[error("{0:?} is not a host name")]
    Hub(String),
    #[error("{0} is not 0 to {MAX_RETRY_AFTER_SECONDS} (the C SDK clamps larger values to 1)")]
    RetryAfter(u32),
    #[error("quotas must be at least 1 per minute (omit them for no limit)")]
    ZeroQuota,
    #[error("{0}")]
    CipherSuite(String),
    /// A `[faults]` field; [`FaultError::field`] names it within the table.
    #[error("{}", .0.reason)]
    Fault(FaultError),
}

impl SettingError {
    /// The field, as the emulator file names it.
    pub fn field(&self) -> &'static str {
        match self {
            SettingError::NoHubs | SettingError::Hub(_) => "hubs",
            SettingError::RetryAfter(_) => "retry_after_seconds",
            SettingError::ZeroQuota => "quota",
            SettingError::CipherSuite(_) => "cipher_suites",
            SettingError::Fault(_) => "faults",
        }
    }
}

/// IoT hubs devices are assigned to: at least one, each a host name.
pub fn check_hubs(hubs: &[String]) -> Result<(), SettingError> {
    if hubs.is_empty() {
        return Err(SettingError::NoHubs);
    }
    match hubs.iter().find(|h| h.is_empty() || h.contains(char::is_whitespace)) {
        Some(bad) => Err(SettingError::Hub(bad.clone())),
        None => Ok(()),
    }
}

/// `retry-after` seconds: 0 to [`MAX_RETRY_AFTER_SECONDS`].
pub fn check_retry_after(seconds: u32) -> Result<u32, SettingError> {
    if seconds > MAX_RETRY_AFTER_SECONDS { Err(SettingError::RetryAfter(seconds)) } else { Ok(seconds) }
}

/// TLS versions (default `["1.2"]`, as DPS) and cipher suites (default all) as files give them.
pub fn tls_policy(versions: Option<&[TlsVersion]>, suites: Option<&[String]>) -> Result<TlsPolicy, SettingError> {
    let mut policy = TlsPolicy::parse(&[], suites.unwrap_or_default()).map_err(SettingError::CipherSuite)?;
    policy.versions = TlsVersions::of(versions.unwrap_or_default());
    Ok(policy)
}

/// The `[quota]` table as a file gives it: each rate optional on its own, as the scenario
/// fields are; the one left out never throttles.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaFile {
    /// Register requests per minute (DPS: 1,000 per unit).
    pub registrations_per_minute: Option<u32>,
    /// Poll requests per minute (DPS: 1,000 per unit).
    pub operations_per_minute: Option<u32>,
}

/// DPS quotas, per minute, as DPS counts them per unit (`docs/dps-mqtt.md` §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaConfig {
    /// Register requests per minute (DPS: 1,000 per unit).
    pub registrations_per_minute: u32,
    /// Poll requests per minute (DPS: 1,000 per unit).
    pub operations_per_minute: u32,
}

impl QuotaConfig {
    /// Quotas from the two rates a file gives: none when both are absent, and the one left out
    /// never throttles. Each must be at least 1 per minute.
    pub fn new(registrations: Option<u32>, operations: Option<u32>) -> Result<Option<Self>, SettingError> {
        if registrations == Some(0) || operations == Some(0) {
            return Err(SettingError::ZeroQuota);
        }
        Ok((registrations.is_some() || operations.is_some()).then(|| QuotaConfig {
            registrations_per_minute: registrations.unwrap_or(UNLIMITED_PER_MINUTE),
            operations_per_minute: operations.unwrap_or(UNLIMITED_PER_MINUTE),
        }))
    }
}
