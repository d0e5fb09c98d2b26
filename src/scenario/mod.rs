//! Scenario files: the TOML a user writes, resolved into a validated [`Plan`].
//!
//! Reads the scenario file and the secrets it names (environment variables, key files); does no
//! network IO. Every error names the file, the field and why. `scenarios/README.md` documents
//! each field; keep the two in step. One resolver per section: `target`, `devices`, `load`
//! (`[arrival]` and the stop condition), `run` (`[run]` and `[flow]`); `key` reads group keys
//! for the scenario and the CLI alike.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::credentials::{IdScope, RegistrationId, SymmetricKey};
use crate::device::FlowSettings;
use crate::slo::{Gates, SloSection};
use crate::tls::TlsPolicy;

mod certificates;
mod devices;
pub mod forecast;
mod key;
mod load;
mod offered;
mod overrides;
mod run;
mod target;
mod target_flags;

pub use certificates::CertificatePlan;
pub use devices::{
    Attestation, DevicesSection, IdPattern, IdPatternError, Identities, PayloadTemplate, PersonalityMix, X509Plan,
};
pub use key::{KeyError, KeySource};
pub use load::{ArrivalModel, ArrivalSection, Load, Stop};
pub use overrides::{Applied, OverrideError, Overrides};
pub use run::{AddressPoolError, FlowSection, RunSection, address_pool};
pub use target::{
    EMBEDDED_ID_SCOPE, EmulatorModel, GLOBAL_ENDPOINT, TargetPlan, TargetSection, TransportKind, TransportSection,
    is_loopback,
};
pub use target_flags::{GROUP_KEY_ENV, TargetFlags, TargetOverride};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub target: TargetSection,
    /// Optional: every field has a default.
    #[serde(default)]
    pub devices: DevicesSection,
    #[serde(default)]
    pub arrival: ArrivalSection,
    #[serde(default)]
    pub flow: FlowSection,
    #[serde(default)]
    pub run: RunSection,
    /// Gates checked at the end of the run.
    #[serde(default)]
    pub slo: SloSection,
}

impl ScenarioFile {
    /// Reads and parses `path`, not yet validated ([`Plan::resolve`] does that).
    pub fn read(path: &Path) -> Result<Self, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
        crate::toml_file::parse(&text).map_err(|message| ScenarioError::Parse { path: path.to_path_buf(), message })
    }
}

/// Errors loading a scenario. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {reason}")]
    Field { path: PathBuf, field: &'static str, reason: String },
}

/// A field of a scenario that does not hold: which one (`section.field`) and why. The section
/// resolvers return it; [`Plan::resolve`] adds the file.
#[derive(Debug, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

/// A plan's `file` when no scenario file was given: the quick run, built from the command line.
pub const NO_FILE: &str = "(command line)";

/// A scenario's name and where it came from, for a line of text: `quickstart
/// (scenarios/quickstart.toml)`, or `quick (command line)` for a plan built from flags alone
/// (whose file, [`NO_FILE`], is already in parentheses).
pub fn named_with_source(name: &str, file: &str) -> String {
    match file {
        NO_FILE => format!("{name} {NO_FILE}"),
        file => format!("{name} ({file})"),
    }
}

/// A validated scenario. What the user typed for one run of it (shard, start instant, extra
/// outputs) is not scenario data: it travels beside the plan, in `runner::RunOptions`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub file: PathBuf,
    pub target: TargetPlan,
    pub id_scope: IdScope,
    pub identities: Identities,
    pub personalities: PersonalityMix,
    pub payload: Option<PayloadTemplate>,
    /// The group key; for the embedded target a random one when none is named.
    pub group_key: SymmetricKey,
    /// Where the devices' keys come from, for messages (`devices.group_key_env (variable K)`).
    pub key_origin: String,
    pub load: Load,
    pub stop: Stop,
    pub max_in_flight: Option<u64>,
    pub flow: FlowSettings,
    pub max_duration: Duration,
    pub drain: Duration,
    pub max_schedule_lag_p99: Duration,
    /// Source addresses, used round-robin; empty lets the kernel choose.
    pub source_addresses: Vec<IpAddr>,
    /// TLS versions and suites devices offer.
    pub tls: TlsPolicy,
    /// X.509 devices: where their certificates come from; `None` for symmetric keys.
    pub x509: Option<X509Plan>,
    /// Connect the first device before the plan starts (`run.preflight`, default on).
    pub preflight: bool,
    /// `[slo]` gates, judged at the end of the run (empty: none).
    pub slo: Gates,
    /// Operational certificates asked for and issued at registration.
    pub certificates: CertificatePlan,
}

impl Plan {
    /// Reads and validates `path`. `env` looks up environment variables (injectable for tests).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScenarioError> {
        Self::resolve(ScenarioFile::read(path)?, path, env)
    }

    /// Validates a parsed scenario, section by section; `path` is for errors and relative paths.
    pub fn resolve(
        file: ScenarioFile,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScenarioError> {
        Self::resolve_sections(file, path, env).map_err(|FieldError { field, reason }| ScenarioError::Field {
            path: path.to_path_buf(),
            field,
            reason,
        })
    }

    fn resolve_sections(
        file: ScenarioFile,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, FieldError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let issuer_ca_certificate = file.target.issuer_ca_certificate().cloned();
        let issue_certificates = file.target.issues_certificates();
        let resolved_target = target::resolve(file.target, base)?;
        let devices = devices::resolve(&file.devices, base)?;
        let certificates = certificates::resolve(
            certificates::CertificateFields {
                request_certificate: file.devices.request_certificate,
                certificate_key: file.devices.certificate_key,
                issue_certificates,
                issuer_ca_certificate: issuer_ca_certificate.as_ref(),
                personalities: &devices.personalities,
            },
            base,
        )?;
        let given_count = file.devices.count.or(devices.identities.listed());
        let load = load::load(&file.arrival, given_count)?;
        if let Some(ceiling) = resolved_target.production_ceiling {
            load::guard_production(&load, file.devices.count, ceiling)?;
        }
        let target = resolved_target.plan;
        let duration = run::duration(&file.run)?;
        let count = load::stop_count(&load, given_count, duration)?;
        devices.identities.check_count(count)?;
        // X.509 devices need no key at all.
        let all_keyed = devices.identities.all_keyed() || devices.x509.is_some();
        let (group_key, key_origin) = key::group_key(&file.devices, &target, base, env, all_keyed)?;
        let mut run = run::resolve(&file.run, &file.flow)?;
        run.flow.misbehave = devices.misbehave;
        // A device asking for a certificate speaks the preview, unless the scenario says otherwise.
        if certificates.request.is_some() && file.flow.api_version.is_none() {
            run.flow.api_version = crate::certificates::ISSUANCE_API_VERSION.into();
        }
        run.flow.certificate_issuer = certificates.issuer.clone();
        let mut tls = resolved_target.tls;
        if devices.misbehave.has(crate::device::Misbehaviour::Tls13Only) {
            tls.versions = crate::tls::TlsVersions::Tls13Only;
        }
        let slo = file.slo.resolve().map_err(|e| FieldError { field: e.field, reason: e.reason })?;
        Ok(Plan {
            name: file.name,
            file: path.to_path_buf(),
            target,
            id_scope: resolved_target.id_scope,
            identities: devices.identities,
            personalities: devices.personalities,
            payload: devices.payload,
            group_key,
            key_origin,
            load,
            stop: Stop { devices: count, duration },
            max_in_flight: run.max_in_flight,
            drain: run.drain,
            max_schedule_lag_p99: run.max_schedule_lag_p99,
            source_addresses: run.source_addresses,
            tls,
            x509: devices.x509,
            flow: run.flow,
            max_duration: run.max_duration,
            preflight: run.preflight,
            slo,
            certificates,
        })
    }

    /// The key the `n`-th device signs with: its own (individual enrollment), or derived from
    /// the group key.
    pub fn device_key(&self, n: u64, registration_id: &RegistrationId) -> SymmetricKey {
        match &self.identities {
            Identities::List(ids) => match &ids[n as usize].1 {
                Some(key) => key.clone(),
                None => self.group_key.derive_device_key(registration_id),
            },
            Identities::Pattern { .. } => self.group_key.derive_device_key(registration_id),
        }
    }

    /// Individual enrollments the embedded emulator must know: devices with their own key.
    pub fn individual_enrollments(&self) -> Vec<(RegistrationId, SymmetricKey)> {
        match &self.identities {
            Identities::List(ids) => ids.iter().filter_map(|(id, key)| Some((id.clone(), key.clone()?))).collect(),
            Identities::Pattern { .. } => Vec::new(),
        }
    }

    /// The registration ID of the `n`-th device (0-based) of this plan.
    pub fn registration_id(&self, n: u64) -> RegistrationId {
        debug_assert!(n < self.stop.devices, "device {n} is beyond the plan's {}", self.stop.devices);
        match &self.identities {
            Identities::Pattern { pattern, start_index, distinct } => {
                let index = start_index + distinct.map_or(n, |distinct| n % distinct);
                RegistrationId::new(pattern.render(index))
                    .expect("resolve checked the first and last IDs, and the pattern only varies digits")
            }
            Identities::List(ids) => ids[n as usize].0.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
