//! The emulator's TOML configuration, parsed into a validated [`ServiceConfig`].
//!
//! Reads no files itself except through [`EmulatorConfig::load`]; errors name the file and the
//! field. Keys are held as [`SymmetricKey`], so they never print. [`ServiceConfig::new`] is the
//! one builder (the emulator file, a scenario's embedded target and `conform` all start from
//! it); the settings an embedded target shares with this file are `settings`'.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::deviations::Deviations;
use super::faults::Faults;
use crate::credentials::{IdScope, RegistrationId, SymmetricKey};
use crate::tls::{ClientTrust, TlsPolicy, TlsVersion};

mod issuing;
mod settings;

#[cfg(test)]
use settings::UNLIMITED_PER_MINUTE;
pub use settings::{
    DEFAULT_ASSIGN_DELAY_MS, DEFAULT_HUBS, DEFAULT_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS, QuotaConfig,
    QuotaFile, SettingError, Settings, SettingsSection, check_hubs, check_retry_after, default_hubs, tls_policy,
};

/// The file format of `dpsbench emulator --config FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    pub id_scope: String,
    /// The service's settings, as a scenario's embedded target spells them too.
    #[serde(flatten)]
    pub settings: SettingsSection,
    /// How bad credentials are refused: `"connack"` (CONNACK 5) or `"reply"` (`res/401`).
    #[serde(default)]
    pub auth_failure: AuthFailure,
    #[serde(default)]
    pub enrollment_groups: Vec<GroupConfig>,
    #[serde(default)]
    pub individual_enrollments: Vec<IndividualConfig>,
    #[serde(default)]
    pub quota: Option<QuotaFile>,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Deliberate deviations from DPS, for proving conformance checks can fail.
    #[serde(default)]
    pub deviations: Deviations,
    /// TLS versions accepted: `["1.2"]` (default, as DPS) or with `"1.3"`.
    #[serde(default)]
    pub tls_versions: Option<Vec<TlsVersion>>,
    /// Cipher suites accepted, by name (default: all that aws-lc-rs supports).
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
    /// Connections served at once; beyond it new ones are closed at once and counted.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// DPS's per-device limit on status polls (`[poll_limit]`; on by default, `polls = 0` off).
    #[serde(default)]
    pub poll_limit: PollLimit,
    /// The CA that signs operational certificates (`[issuer_ca]`); generated at start when an
    /// enrollment issues and this is absent.
    #[serde(default)]
    pub issuer_ca: Option<super::issuance::IssuerFiles>,
    /// The issuing CA's latency, `[min, max]` milliseconds, added to an issuing registration's
    /// assignment delay.
    #[serde(default)]
    pub issue_delay_ms: Option<[u64; 2]>,
}

/// DPS's limit on operation-status polls per device: at most `polls` in any `window_seconds`
/// (5 per 10 s, `docs/dps-mqtt.md` §5). Polls beyond it get 429 with `retry-after`.
///
/// Enforced only when the configured `retry-after` keeps a device that honours it within the
/// limit (`retry_after_seconds × polls ≥ window_seconds`): an emulator told to answer
/// `retry-after` 0 or 1 for throughput runs would otherwise throttle the very polls it asked
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollLimit {
    /// Polls allowed in a window; 0 turns the limit off.
    pub polls: u32,
    pub window_seconds: u32,
}

impl Default for PollLimit {
    fn default() -> Self {
        Self { polls: 5, window_seconds: 10 }
    }
}

impl PollLimit {
    /// Whether the limit applies to an emulator answering `retry_after_seconds`.
    pub fn enforced(&self, retry_after_seconds: u32) -> bool {
        self.polls > 0 && u64::from(retry_after_seconds) * u64::from(self.polls) >= u64::from(self.window_seconds)
    }
}

impl EmulatorConfig {
    /// The TLS versions and suites this emulator accepts.
    pub fn tls_policy(&self, path: &Path) -> Result<TlsPolicy, ConfigError> {
        tls_policy(self.tls_versions.as_deref(), self.cipher_suites.as_deref()).map_err(|e| ConfigError::Field {
            path: path.to_path_buf(),
            field: e.field().into(),
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    /// Symmetric-key group: the group key devices derive theirs from.
    #[serde(default)]
    pub primary_key: Option<String>,
    #[serde(default)]
    pub secondary_key: Option<String>,
    /// X.509 group, in place of keys: the (root or intermediate) CA device chains must reach.
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
    /// Issue operational certificates for CSRs: `{ validity_days = 30 }`.
    #[serde(default)]
    pub issue_certificates: Option<super::issuance::IssuePolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndividualConfig {
    pub registration_id: String,
    #[serde(default)]
    pub primary_key: Option<String>,
    #[serde(default)]
    pub secondary_key: Option<String>,
    /// X.509 individual enrollment, in place of keys: the device's own (pinned) certificate.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Issue operational certificates for CSRs: `{ validity_days = 30 }`.
    #[serde(default)]
    pub issue_certificates: Option<super::issuance::IssuePolicy>,
}

/// Server certificate files; without them the emulator generates a CA at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub certificate_chain: PathBuf,
    pub private_key: PathBuf,
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AuthFailure {
    /// CONNACK return code 5.
    #[default]
    Connack,
    /// CONNACK 0, then `res/401` with an error body on register.
    Reply,
}

/// Errors in an emulator configuration. Each names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {reason}")]
    Field { path: PathBuf, field: String, reason: String },
}

/// A symmetric-key enrollment group.
#[derive(Debug, Clone)]
pub struct GroupEnrollment {
    pub name: String,
    pub primary: SymmetricKey,
    pub secondary: Option<SymmetricKey>,
}

/// An individual symmetric-key enrollment.
#[derive(Debug, Clone)]
pub struct IndividualEnrollment {
    pub registration_id: RegistrationId,
    pub primary: SymmetricKey,
    pub secondary: Option<SymmetricKey>,
}

/// An X.509 enrollment group: devices whose chain reaches this CA.
#[derive(Debug, Clone)]
pub struct X509Group {
    pub name: String,
    /// The CA's subject name, matched against the issuers of a presented chain.
    pub subject: String,
}

/// An X.509 individual enrollment: one pinned device certificate.
#[derive(Debug, Clone)]
pub struct X509Individual {
    pub registration_id: RegistrationId,
    pub sha256: [u8; 32],
}

/// The validated configuration the DPS service logic runs on.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub id_scope: IdScope,
    pub hubs: Vec<String>,
    pub retry_after_seconds: u32,
    pub assign_delay: Duration,
    pub auth_failure: AuthFailure,
    pub groups: Vec<GroupEnrollment>,
    pub individuals: Vec<IndividualEnrollment>,
    pub x509_groups: Vec<X509Group>,
    pub x509_individuals: Vec<X509Individual>,
    /// What the TLS server accepts as client certificates (from the X.509 enrollments).
    pub client_trust: ClientTrust,
    pub quota: Option<QuotaConfig>,
    pub deviations: Deviations,
    pub echo_payload: bool,
    /// Faults injected on demand; the default injects none.
    pub faults: Faults,
    /// Connections served at once (none: no cap).
    pub max_connections: Option<usize>,
    pub poll_limit: PollLimit,
    /// Operational certificates issued at registration (none by default).
    pub issuance: super::issuance::Issuance,
}

impl ServiceConfig {
    /// Makes every enrollment issue for 30 days, signed by a CA generated now: the embedded
    /// target's `issue_certificates = true`. Returns the CA's certificate.
    pub fn issue_for_every_enrollment(
        &mut self,
    ) -> Result<rustls_pki_types::CertificateDer<'static>, crate::x509::X509Error> {
        use super::issuance::{Enrollment, IssuePolicy, IssuingCa};
        let ca = IssuingCa::generate()?;
        let der = ca.certificate_der().clone();
        let groups = self.groups.iter().map(|g| g.name.clone()).chain(self.x509_groups.iter().map(|g| g.name.clone()));
        let individuals = self.individuals.iter().map(|i| i.registration_id.canonical());
        let individuals = individuals.chain(self.x509_individuals.iter().map(|i| i.registration_id.canonical()));
        let enrollments: Vec<Enrollment> =
            groups.map(Enrollment::Group).chain(individuals.map(Enrollment::Individual)).collect();
        self.issuance.policies = enrollments.into_iter().map(|e| (e, IssuePolicy::default())).collect();
        self.issuance.ca = Some(std::sync::Arc::new(ca));
        Ok(der)
    }

    /// The one builder: a configuration with no enrollments and every default.
    pub fn new(id_scope: IdScope, hubs: Vec<String>) -> Self {
        Self {
            id_scope,
            hubs,
            retry_after_seconds: DEFAULT_RETRY_AFTER_SECONDS,
            assign_delay: Duration::from_millis(DEFAULT_ASSIGN_DELAY_MS),
            auth_failure: AuthFailure::Connack,
            groups: Vec::new(),
            individuals: Vec::new(),
            x509_groups: Vec::new(),
            x509_individuals: Vec::new(),
            client_trust: ClientTrust::default(),
            quota: None,
            deviations: Deviations::default(),
            echo_payload: false,
            faults: Faults::default(),
            max_connections: None,
            poll_limit: PollLimit::default(),
            issuance: Default::default(),
        }
    }

    /// Sets the service's settings (a scenario's embedded target's, or the emulator file's).
    pub fn apply(&mut self, settings: Settings) {
        let Settings { hubs, retry_after_seconds, assign_delay, quota, echo_payload, faults } = settings;
        self.hubs = hubs;
        self.retry_after_seconds = retry_after_seconds;
        self.assign_delay = assign_delay;
        self.quota = quota;
        self.echo_payload = echo_payload;
        self.faults = faults;
    }

    /// A configuration with one enrollment group, for in-process runs and tests.
    pub fn single_group(id_scope: IdScope, hubs: Vec<String>, group_key: SymmetricKey) -> Self {
        let mut config = Self::new(id_scope, hubs);
        config.groups.push(GroupEnrollment { name: "default".into(), primary: group_key, secondary: None });
        config
    }

    /// Adds an X.509 enrollment group named `name` whose devices' chains must reach the CA in
    /// `pem` (read from `path`, named in errors), and trusts that CA for client certificates.
    pub fn trust_x509_ca(&mut self, name: &str, pem: &str, path: &Path) -> Result<(), crate::x509::X509Error> {
        let (subject, der) = crate::x509::subject_of(pem, path)?;
        self.x509_groups.push(X509Group { name: name.into(), subject });
        self.client_trust.cas.push(der);
        Ok(())
    }
}

impl EmulatorConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<(Self, ServiceConfig), ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let config: EmulatorConfig = crate::toml_file::parse(&text)
            .map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })?;
        let service = config.resolve(path)?;
        Ok((config, service))
    }

    /// Validates every field into a [`ServiceConfig`]; `path` is for error messages.
    pub fn resolve(&self, path: &Path) -> Result<ServiceConfig, ConfigError> {
        let field = |field: &str, reason: String| ConfigError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let key = |name: String, text: &str| SymmetricKey::from_base64(text).map_err(|e| field(&name, e.to_string()));
        let setting = |e: SettingError| match e {
            SettingError::Fault(e) => field(&format!("faults.{}", e.field), e.reason),
            e => field(e.field(), e.to_string()),
        };
        let id_scope = IdScope::new(self.id_scope.clone()).map_err(|e| field("id_scope", e.to_string()))?;
        let settings =
            self.settings.resolve(self.quota.unwrap_or_default(), DEFAULT_ASSIGN_DELAY_MS).map_err(setting)?;
        let mut config = ServiceConfig::new(id_scope, settings.hubs.clone());
        config.apply(settings);
        config.auth_failure = self.auth_failure;
        config.deviations = self.deviations.clone();
        config.max_connections = match self.max_connections {
            Some(0) => return Err(field("max_connections", "must be at least 1 (omit it for no cap)".into())),
            cap => cap,
        };
        config.poll_limit = self.poll_limit;
        let base = path.parent().unwrap_or(Path::new("."));
        let read_pem = |name: String, file: &Path| {
            let full = base.join(file);
            std::fs::read_to_string(&full).map_err(|e| field(&name, format!("cannot read {}: {e}", full.display())))
        };
        for (i, group) in self.enrollment_groups.iter().enumerate() {
            let at = |name: &str| format!("enrollment_groups[{i}].{name}");
            match (&group.primary_key, &group.ca_certificate) {
                (Some(primary), None) => config.groups.push(GroupEnrollment {
                    name: group.name.clone(),
                    primary: key(at("primary_key"), primary)?,
                    secondary: group.secondary_key.as_deref().map(|k| key(at("secondary_key"), k)).transpose()?,
                }),
                (None, Some(file)) => {
                    let pem = read_pem(at("ca_certificate"), file)?;
                    config
                        .trust_x509_ca(&group.name, &pem, file)
                        .map_err(|e| field(&at("ca_certificate"), e.to_string()))?;
                }
                _ => {
                    return Err(field(
                        &at("primary_key"),
                        "give primary_key (symmetric key) or ca_certificate (X.509), one of the two".into(),
                    ));
                }
            }
        }
        for (i, individual) in self.individual_enrollments.iter().enumerate() {
            let at = |name: &str| format!("individual_enrollments[{i}].{name}");
            let registration_id = RegistrationId::new(individual.registration_id.clone())
                .map_err(|e| field(&at("registration_id"), e.to_string()))?;
            match (&individual.primary_key, &individual.certificate) {
                (Some(primary), None) => config.individuals.push(IndividualEnrollment {
                    registration_id,
                    primary: key(at("primary_key"), primary)?,
                    secondary: individual.secondary_key.as_deref().map(|k| key(at("secondary_key"), k)).transpose()?,
                }),
                (None, Some(file)) => {
                    let pem = read_pem(at("certificate"), file)?;
                    let sha256 =
                        crate::x509::sha256_of(&pem, file).map_err(|e| field(&at("certificate"), e.to_string()))?;
                    config.client_trust.pinned.push(sha256);
                    config.x509_individuals.push(X509Individual { registration_id, sha256 });
                }
                _ => {
                    return Err(field(
                        &at("primary_key"),
                        "give primary_key (symmetric key) or certificate (X.509), one of the two".into(),
                    ));
                }
            }
        }
        config.issuance = issuing::resolve(self, base).map_err(|(name, reason)| field(&name, reason))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
