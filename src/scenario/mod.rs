//! Scenario files: the TOML a user writes, resolved into a validated [`Plan`].
//!
//! Reads the scenario file and the secrets it names (environment variables, key files); does no
//! network IO. Every error names the file, the field and why. `scenarios/README.md` documents
//! each field; keep the two in step.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::arrival::{ArrivalPlan, Stage};
use crate::credentials::{IdScope, RegistrationId, SymmetricKey};
use crate::device::{FlowSettings, Personality, RetryPolicy, RetryProfile, Timeouts, Transport};
use crate::emulator::config::{QuotaConfig, one_line};
use crate::tls::TlsPolicy;

mod devices;
mod load;

pub use devices::{IdPattern, Identities, PayloadTemplate, PersonalityMix};
pub use load::{Load, Stop};
use load::{guard_production, load, stop_count};

/// A quota high enough never to throttle, for the one of the two quotas a scenario leaves out.
const UNLIMITED_PER_MINUTE: u32 = 1_000_000_000;

/// Default ID scope of the embedded emulator.
pub const EMBEDDED_ID_SCOPE: &str = "0ne00DPSB01";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub target: TargetSection,
    pub devices: DevicesSection,
    #[serde(default)]
    pub arrival: ArrivalSection,
    #[serde(default)]
    pub flow: FlowSection,
    #[serde(default)]
    pub run: RunSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum TargetSection {
    /// The emulator, started in-process on 127.0.0.1 with a random port.
    Embedded {
        #[serde(default)]
        id_scope: Option<String>,
        #[serde(default = "default_hubs")]
        hubs: Vec<String>,
        #[serde(default = "default_retry_after")]
        retry_after_seconds: u32,
        #[serde(default)]
        assign_delay_ms: u64,
        /// DPS quota on register requests (per minute); none when absent.
        #[serde(default)]
        registrations_per_minute: Option<u32>,
        /// DPS quota on poll requests (per minute); none when absent.
        #[serde(default)]
        operations_per_minute: Option<u32>,
        /// Return each device's payload as `registrationState.payload`.
        #[serde(default)]
        echo_payload: bool,
        #[serde(default, flatten)]
        transport: TransportSection,
    },
    /// A DPS endpoint (or an emulator in another process) over MQTT/TLS.
    Dps {
        #[serde(default = "default_dps_host")]
        host: String,
        /// 8883, or 443 for WebSocket.
        #[serde(default)]
        port: Option<u16>,
        id_scope: String,
        /// PEM file of the CA that signs the server certificate; the public web roots
        /// (Mozilla's, as DPS's certificates chain to) when absent.
        #[serde(default)]
        ca_certificate: Option<PathBuf>,
        /// Required for a target that is not on this machine: the highest rate of new devices
        /// per second the plan may offer (a guard against thousands per second in production).
        #[serde(default)]
        max_devices_per_second: Option<f64>,
        /// DPS units of the instance, for the throttling `--dry-run` expects (1,000
        /// registrations per minute each).
        #[serde(default)]
        dps_units: Option<u32>,
        /// Name checked against the server certificate; defaults to `host`.
        #[serde(default)]
        server_name: Option<String>,
        #[serde(default, flatten)]
        transport: TransportSection,
    },
}

fn default_hubs() -> Vec<String> {
    vec!["hub-a.azure-devices.net".into(), "hub-b.azure-devices.net".into()]
}

fn default_retry_after() -> u32 {
    1
}

/// How devices carry MQTT: `transport = "mqtt"` (default) or `"websocket"`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TransportSection {
    #[serde(default)]
    pub transport: Option<String>,
    /// WebSocket path (default `/$iothub/websocket`; C# uses `/`).
    #[serde(default)]
    pub websocket_path: Option<String>,
    /// WebSocket subprotocol offered (default `mqtt`; the C SDK sends `MQTT`).
    #[serde(default)]
    pub websocket_subprotocol: Option<String>,
    /// TLS versions devices offer: `["1.2"]` (default, as DPS requires) or with `"1.3"`.
    #[serde(default)]
    pub tls_versions: Option<Vec<String>>,
    /// Cipher suites devices offer, by name (default: all that ring supports).
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
}

impl TransportSection {
    fn tls(&self) -> Result<TlsPolicy, (&'static str, String)> {
        let versions = self.tls_versions.clone().unwrap_or_else(|| vec!["1.2".into()]);
        let field = if self.cipher_suites.is_some() { "target.cipher_suites" } else { "target.tls_versions" };
        TlsPolicy::parse(&versions, self.cipher_suites.as_deref().unwrap_or_default()).map_err(|e| (field, e))
    }

    fn resolve(&self) -> Result<Transport, (&'static str, String)> {
        match self.transport.as_deref().unwrap_or("mqtt") {
            "mqtt" if self.websocket_path.is_none() && self.websocket_subprotocol.is_none() => Ok(Transport::Mqtt),
            "mqtt" => Err(("target.websocket_path", "websocket_* fields need transport = \"websocket\"".into())),
            "websocket" => {
                let path = self.websocket_path.clone().unwrap_or_else(|| crate::websocket::DEFAULT_PATH.into());
                if !path.starts_with('/') {
                    return Err(("target.websocket_path", format!("{path:?} must start with /")));
                }
                let subprotocol =
                    self.websocket_subprotocol.clone().unwrap_or_else(|| crate::websocket::SUBPROTOCOL.into());
                Ok(Transport::WebSocket { path, subprotocol })
            }
            other => Err(("target.transport", format!("{other:?} is not mqtt or websocket"))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesSection {
    /// Most devices the run starts; defaults to what the arrival plan and duration imply.
    #[serde(default)]
    pub count: Option<u64>,
    /// Registration ID pattern: `{index}` or `{index:06}` (zero-padded) is replaced.
    #[serde(default)]
    pub registration_id: Option<String>,
    #[serde(default)]
    pub start_index: Option<u64>,
    /// CSV file with a `registration_id` column: one device per row, in order.
    #[serde(default)]
    pub registration_ids_file: Option<PathBuf>,
    /// Environment variable holding the enrollment group key.
    #[serde(default)]
    pub group_key_env: Option<String>,
    /// File holding the enrollment group key.
    #[serde(default)]
    pub group_key_file: Option<PathBuf>,
    /// Every device's SDK personality: dpsbench (default), python, node, c, embedded-c, csharp.
    #[serde(default)]
    pub personality: Option<Personality>,
    /// A mix of personalities by weight, e.g. `{ python = 3, c = 1 }`.
    #[serde(default)]
    pub personalities: Option<std::collections::BTreeMap<Personality, u32>>,
    /// `symmetric-key` (default: SAS tokens) or `x509` (client certificates).
    #[serde(default)]
    pub attestation: Option<String>,
    /// X.509: the folder `dpsbench certs` made (root.pem, intermediate.pem, intermediate.key).
    #[serde(default)]
    pub x509_ca_dir: Option<PathBuf>,
    /// X.509: where device certificates are cached (default `{x509_ca_dir}/devices`).
    #[serde(default)]
    pub x509_cache: Option<PathBuf>,
    /// Custom allocation data each device sends (a table; strings may hold `{registration_id}`
    /// and `{index}`; `{ one_of = [...] }` picks one per device).
    #[serde(default)]
    pub payload: Option<toml::Table>,
}

/// Registration IDs when a scenario names none.
pub(crate) const DEFAULT_PATTERN: &str = "bench-{index:06}";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSection {
    /// `constant` (default), `stages`, `poisson`, `burst` or `closed`.
    #[serde(default)]
    pub model: Option<String>,
    /// Devices started per second (constant, poisson).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Stages such as `"30s:0->500/s"`, `"2m:500/s"` (stages).
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    /// Window in which every device starts (burst).
    #[serde(default)]
    pub within_seconds: Option<f64>,
    /// Devices in flight at all times (closed).
    #[serde(default)]
    pub concurrency: Option<u64>,
    /// Seed of the random plans (poisson, burst).
    #[serde(default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSection {
    pub api_version: Option<String>,
    pub keep_alive_seconds: Option<u16>,
    /// Whose retry behaviour devices mirror: dpsbench, python, node, c, csharp, embedded-c.
    pub retry_profile: Option<RetryProfile>,
    pub max_retries: Option<u32>,
    pub default_wait_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub reply_timeout_ms: Option<u64>,
    pub flow_timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Stop starting devices after this long (whichever of this and the device count comes first).
    pub duration_seconds: Option<f64>,
    /// Hard limit on the whole run; devices still in flight then are aborted.
    pub max_duration_seconds: Option<u64>,
    /// Most devices in flight at once; a start that must wait for a free slot is late.
    pub max_in_flight: Option<u64>,
    /// After an interrupt, how long in-flight devices may finish (default 30).
    pub drain_seconds: Option<f64>,
    /// A run whose schedule lag p99 exceeds this is invalid (default 10).
    pub max_schedule_lag_p99_ms: Option<f64>,
    /// Local addresses devices connect from, in turn: `"127.0.0.2"` or `"127.0.0.10-127.0.0.40"`.
    #[serde(default)]
    pub source_addresses: Vec<String>,
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

/// Where the devices go.
#[derive(Debug, Clone)]
pub enum TargetPlan {
    Embedded {
        hubs: Vec<String>,
        retry_after_seconds: u32,
        assign_delay: Duration,
        quota: Option<QuotaConfig>,
        transport: Transport,
        echo_payload: bool,
    },
    Dps {
        host: String,
        port: u16,
        /// The CA to trust and where it came from; `None` trusts the public web roots.
        ca: Option<(Vec<u8>, PathBuf)>,
        server_name: String,
        transport: Transport,
        /// Whether the host is this machine (loopback).
        loopback: bool,
        dps_units: u32,
    },
}

/// DPS's global device endpoint.
pub const GLOBAL_ENDPOINT: &str = "global.azure-devices-provisioning.net";

fn default_dps_host() -> String {
    GLOBAL_ENDPOINT.into()
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A validated scenario.
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
}

/// Where X.509 devices' certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Plan {
    /// The CA folder (root.pem, intermediate.pem, intermediate.key).
    pub ca_dir: PathBuf,
    /// Device certificates are loaded from here, or minted into it.
    pub cache: PathBuf,
}

impl Plan {
    /// Reads and validates `path`. `env` looks up environment variables (injectable for tests).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
        let file: ScenarioFile = toml::from_str(&text)
            .map_err(|e| ScenarioError::Parse { path: path.to_path_buf(), message: one_line(&e.to_string()) })?;
        Self::resolve(file, path, env)
    }

    pub fn resolve(
        file: ScenarioFile,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScenarioError> {
        let field =
            |field: &'static str, reason: String| ScenarioError::Field { path: path.to_path_buf(), field, reason };
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match &file.target {
            TargetSection::Embedded { transport, .. } | TargetSection::Dps { transport, .. } => transport.tls(),
        }
        .map_err(|(name, reason)| field(name, reason))?;
        if let TargetSection::Dps { host, max_devices_per_second, .. } = &file.target
            && !is_loopback(host)
        {
            guard_production(&file, *max_devices_per_second).map_err(|(name, reason)| field(name, reason))?;
        }
        let (target, id_scope) = match file.target {
            TargetSection::Embedded {
                id_scope,
                hubs,
                retry_after_seconds,
                assign_delay_ms,
                registrations_per_minute,
                operations_per_minute,
                transport,
                echo_payload,
            } => {
                let scope = IdScope::new(id_scope.unwrap_or_else(|| EMBEDDED_ID_SCOPE.into()))
                    .map_err(|e| field("target.id_scope", e.to_string()))?;
                if hubs.is_empty() {
                    return Err(field("target.hubs", "list at least one hub".into()));
                }
                if retry_after_seconds > 300 {
                    return Err(field("target.retry_after_seconds", "must be 0 to 300".into()));
                }
                let assign_delay = Duration::from_millis(assign_delay_ms);
                if registrations_per_minute == Some(0) || operations_per_minute == Some(0) {
                    return Err(field(
                        "target.registrations_per_minute",
                        "quotas must be at least 1 per minute".into(),
                    ));
                }
                let quota =
                    (registrations_per_minute.is_some() || operations_per_minute.is_some()).then(|| QuotaConfig {
                        registrations_per_minute: registrations_per_minute.unwrap_or(UNLIMITED_PER_MINUTE),
                        operations_per_minute: operations_per_minute.unwrap_or(UNLIMITED_PER_MINUTE),
                    });
                let transport = transport.resolve().map_err(|(name, reason)| field(name, reason))?;
                (
                    TargetPlan::Embedded { hubs, retry_after_seconds, assign_delay, quota, transport, echo_payload },
                    scope,
                )
            }
            TargetSection::Dps {
                host,
                port,
                id_scope,
                ca_certificate,
                // Checked above, before the target was taken apart.
                max_devices_per_second: _,
                dps_units,
                server_name,
                transport,
            } => {
                let transport = transport.resolve().map_err(|(name, reason)| field(name, reason))?;
                let port = port.unwrap_or(if transport == Transport::Mqtt { 8883 } else { 443 });
                let scope = IdScope::new(id_scope).map_err(|e| field("target.id_scope", e.to_string()))?;
                let ca = match ca_certificate {
                    Some(file) => {
                        let path = base.join(file);
                        let pem = std::fs::read(&path).map_err(|e| {
                            field("target.ca_certificate", format!("cannot read {}: {e}", path.display()))
                        })?;
                        Some((pem, path))
                    }
                    None => None,
                };
                let server_name = server_name.unwrap_or_else(|| host.clone());
                let loopback = is_loopback(&host);
                let dps_units = dps_units.unwrap_or(1).max(1);
                (TargetPlan::Dps { host, port, ca, server_name, transport, loopback, dps_units }, scope)
            }
        };
        let devices = &file.devices;
        let identities = devices::identities(devices, base).map_err(|(name, reason)| field(name, reason))?;
        let personalities = PersonalityMix::resolve(devices).map_err(|(name, reason)| field(name, reason))?;
        let payload = match &devices.payload {
            Some(table) => {
                let value = serde_json::to_value(table).map_err(|e| field("devices.payload", e.to_string()))?;
                Some(PayloadTemplate::new(value).map_err(|(name, reason)| field(name, reason))?)
            }
            None => None,
        };
        let x509 = match devices.attestation.as_deref().unwrap_or("symmetric-key") {
            "symmetric-key" if devices.x509_ca_dir.is_none() && devices.x509_cache.is_none() => None,
            "symmetric-key" => {
                return Err(field("devices.x509_ca_dir", "x509_* fields need attestation = \"x509\"".into()));
            }
            "x509" => {
                let Some(dir) = &devices.x509_ca_dir else {
                    return Err(field(
                        "devices.x509_ca_dir",
                        "attestation = \"x509\" needs the CA folder `dpsbench certs` made".into(),
                    ));
                };
                let ca_dir = base.join(dir);
                if !ca_dir.join("intermediate.key").exists() {
                    return Err(field(
                        "devices.x509_ca_dir",
                        format!(
                            "{} has no intermediate.key (create it with `dpsbench certs --out {}`)",
                            ca_dir.display(),
                            ca_dir.display()
                        ),
                    ));
                }
                let cache = devices.x509_cache.as_ref().map(|c| base.join(c)).unwrap_or_else(|| ca_dir.join("devices"));
                Some(X509Plan { ca_dir, cache })
            }
            other => return Err(field("devices.attestation", format!("{other:?} is not symmetric-key or x509"))),
        };
        // X.509 devices need no key at all.
        let all_keyed = identities.all_keyed() || x509.is_some();
        let group_key =
            Self::group_key(devices, &target, base, env, all_keyed).map_err(|(name, reason)| field(name, reason))?;
        let listed = identities.listed();
        let load = load(&file.arrival, devices.count.or(listed)).map_err(|(name, reason)| field(name, reason))?;
        let duration = match file.run.duration_seconds {
            Some(s) if !(s.is_finite() && s > 0.0) => {
                return Err(field("run.duration_seconds", format!("{s} is not a positive number of seconds")));
            }
            Some(s) => Some(Duration::from_secs_f64(s)),
            None => None,
        };
        let count =
            stop_count(&load, devices.count.or(listed), duration).map_err(|(name, reason)| field(name, reason))?;
        match &identities {
            Identities::Pattern { pattern, start_index } => {
                for index in [*start_index, start_index.saturating_add(count - 1)] {
                    RegistrationId::new(pattern.render(index))
                        .map_err(|e| field("devices.registration_id", e.to_string()))?;
                }
            }
            Identities::List(ids) if (ids.len() as u64) < count => {
                return Err(field(
                    "devices.count",
                    format!("the plan needs {count} devices but registration_ids_file lists {}", ids.len()),
                ));
            }
            Identities::List(_) => {}
        }
        let seconds = |name: &'static str, value: Option<f64>, default: f64| match value {
            Some(v) if !(v.is_finite() && v >= 0.0) => Err(field(name, format!("{v} is not a number of seconds"))),
            v => Ok(Duration::from_secs_f64(v.unwrap_or(default))),
        };
        let drain = seconds("run.drain_seconds", file.run.drain_seconds, 30.0)?;
        let max_schedule_lag_p99 =
            seconds("run.max_schedule_lag_p99_ms", file.run.max_schedule_lag_p99_ms.map(|ms| ms / 1000.0), 0.010)?;
        let source_addresses =
            address_pool(&file.run.source_addresses).map_err(|e| field("run.source_addresses", e))?;
        if file.run.max_in_flight == Some(0) {
            return Err(field("run.max_in_flight", "must be at least 1".into()));
        }
        let flow = flow_settings(&file.flow).map_err(|(name, reason)| field(name, reason))?;
        let max_duration = Duration::from_secs(file.run.max_duration_seconds.unwrap_or(3600));
        if max_duration.is_zero() {
            return Err(field("run.max_duration_seconds", "must be at least 1".into()));
        }
        Ok(Plan {
            name: file.name,
            file: path.to_path_buf(),
            target,
            id_scope,
            identities,
            personalities,
            payload,
            group_key,
            load,
            stop: Stop { devices: count, duration },
            max_in_flight: file.run.max_in_flight,
            drain,
            max_schedule_lag_p99,
            source_addresses,
            tls,
            x509,
            flow,
            max_duration,
        })
    }

    fn group_key(
        devices: &DevicesSection,
        target: &TargetPlan,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        all_keyed: bool,
    ) -> Result<SymmetricKey, (&'static str, String)> {
        match (&devices.group_key_env, &devices.group_key_file) {
            (Some(_), Some(_)) => {
                Err(("devices.group_key_env", "give group_key_env or group_key_file, not both".into()))
            }
            (Some(var), None) => {
                let text =
                    env(var).ok_or(("devices.group_key_env", format!("environment variable {var} is not set")))?;
                SymmetricKey::from_base64(&text).map_err(|e| ("devices.group_key_env", format!("{var}: {e}")))
            }
            (None, Some(file)) => {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ("devices.group_key_file", format!("cannot read {}: {e}", path.display())))?;
                SymmetricKey::from_base64(&text)
                    .map_err(|e| ("devices.group_key_file", format!("{}: {e}", path.display())))
            }
            (None, None) => match target {
                // Nobody derives from it: every device has its own key, or the emulator is ours.
                _ if all_keyed => Ok(SymmetricKey::random()),
                TargetPlan::Embedded { .. } => Ok(SymmetricKey::random()),
                TargetPlan::Dps { .. } => {
                    Err(("devices.group_key_env", "a dps target needs group_key_env or group_key_file".into()))
                }
            },
        }
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
            Identities::Pattern { pattern, start_index } => RegistrationId::new(pattern.render(start_index + n))
                .expect("resolve checked the first and last IDs, and the pattern only varies digits"),
            Identities::List(ids) => ids[n as usize].0.clone(),
        }
    }
}

pub(crate) type FieldError = (&'static str, String);

/// Most addresses a pool may expand to.
const MAX_POOL: u128 = 65_536;

/// Expands `"127.0.0.2"` and `"127.0.0.10-127.0.0.40"` entries into addresses.
pub fn address_pool(entries: &[String]) -> Result<Vec<IpAddr>, String> {
    let mut pool = Vec::new();
    for entry in entries {
        let parse = |text: &str| text.trim().parse::<IpAddr>().map_err(|_| format!("{text:?} is not an IP address"));
        let (first, last) = match entry.split_once('-') {
            Some((first, last)) => (parse(first)?, parse(last)?),
            None => (parse(entry)?, parse(entry)?),
        };
        let (start, end) = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(format!("{entry:?} mixes IPv4 and IPv6")),
        };
        if start > end {
            return Err(format!("{entry:?} runs backwards"));
        }
        if (end - start + 1) + pool.len() as u128 > MAX_POOL {
            return Err(format!("the pool has more than {MAX_POOL} addresses"));
        }
        for n in start..=end {
            pool.push(match first {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
            });
        }
    }
    Ok(pool)
}

fn flow_settings(flow: &FlowSection) -> Result<FlowSettings, (&'static str, String)> {
    let defaults = FlowSettings::default();
    let ms = |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
    let timeouts = Timeouts {
        tcp_connect: ms(flow.connect_timeout_ms, defaults.timeouts.tcp_connect),
        tls_handshake: ms(flow.connect_timeout_ms, defaults.timeouts.tls_handshake),
        connack: ms(flow.connect_timeout_ms, defaults.timeouts.connack),
        suback: ms(flow.connect_timeout_ms, defaults.timeouts.suback),
        reply: ms(flow.reply_timeout_ms, defaults.timeouts.reply),
        flow: flow.flow_timeout_seconds.map(Duration::from_secs).unwrap_or(defaults.timeouts.flow),
    };
    for (name, value) in [
        ("flow.connect_timeout_ms", timeouts.connack),
        ("flow.reply_timeout_ms", timeouts.reply),
        ("flow.flow_timeout_seconds", timeouts.flow),
    ] {
        if value.is_zero() {
            return Err((name, "must be greater than 0".into()));
        }
    }
    let api_version = flow.api_version.clone().unwrap_or(defaults.api_version);
    if api_version.is_empty() || api_version.contains(['&', '/', ' ']) {
        return Err(("flow.api_version", format!("{api_version:?} is not an api-version")));
    }
    Ok(FlowSettings {
        api_version,
        keep_alive: flow.keep_alive_seconds.unwrap_or(defaults.keep_alive),
        timeouts,
        retry: {
            let profile = RetryPolicy::profile(flow.retry_profile.unwrap_or_default());
            RetryPolicy {
                max_retries: flow.max_retries.or(profile.max_retries),
                default_wait: ms(flow.default_wait_ms, profile.default_wait),
                ..profile
            }
        },
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text)
            .map_err(|e| ScenarioError::Parse { path: "s.toml".into(), message: one_line(&e.to_string()) })?;
        Plan::resolve(file, Path::new("s.toml"), env)
    }

    const MINIMAL: &str = "name = \"t\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 3\n[arrival]\nrate = 10\n";

    #[test]
    fn minimal_embedded_scenario_has_defaults() {
        let plan = load(MINIMAL, &|_| None).unwrap();
        assert_eq!(plan.registration_id(0).as_str(), "bench-000000");
        assert_eq!(plan.id_scope.as_str(), EMBEDDED_ID_SCOPE);
        assert!(matches!(plan.target, TargetPlan::Embedded { retry_after_seconds: 1, .. }));
        assert_eq!(plan.flow.retry.max_retries, Some(5));
    }

    #[test]
    fn every_arrival_model_resolves() {
        let with = |arrival: &str, extra: &str| {
            let text = MINIMAL.replace("rate = 10\n", arrival).replace("count = 3\n", extra);
            load(&text, &|_| None).unwrap()
        };
        let stages = with("model = \"stages\"\nstages = [\"2s:0->10/s\", \"1s:10/s\"]\n", "");
        assert_eq!(stages.stop, Stop { devices: 20, duration: None });
        let poisson = with("model = \"poisson\"\nrate = 100\nseed = 3\n", "count = 3\n");
        assert!(matches!(poisson.load, Load::Open(ArrivalPlan::Poisson { seed: 3, .. })));
        assert_eq!(poisson.stop.devices, 3);
        let burst = with("model = \"burst\"\nwithin_seconds = 2\n", "count = 50\n");
        assert!(matches!(burst.load, Load::Open(ArrivalPlan::Burst { devices: 50, .. })));
        let closed = with("model = \"closed\"\nconcurrency = 4\n", "count = 9\n");
        assert_eq!(closed.load, Load::Closed { concurrency: 4 });
        let timed = load(
            &MINIMAL.replace("count = 3\n", "").replace("[arrival]", "[run]\nduration_seconds = 2\n[arrival]"),
            &|_| None,
        )
        .unwrap();
        assert_eq!(timed.stop, Stop { devices: 21, duration: Some(Duration::from_secs(2)) });
    }

    #[test]
    fn address_pools_expand_ranges() {
        let pool = address_pool(&["127.0.0.2".into(), "127.0.0.10-127.0.0.12".into(), "::1".into()]).unwrap();
        let text: Vec<String> = pool.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["127.0.0.2", "127.0.0.10", "127.0.0.11", "127.0.0.12", "::1"]);
        assert!(address_pool(&["127.0.0.5-127.0.0.1".into()]).unwrap_err().contains("backwards"));
        assert!(address_pool(&["127.0.0.1-::1".into()]).unwrap_err().contains("mixes"));
        assert!(address_pool(&["localhost".into()]).unwrap_err().contains("not an IP address"));
        assert!(address_pool(&["10.0.0.0-10.1.0.0".into()]).unwrap_err().contains("more than"));
    }

    #[test]
    fn registration_ids_from_a_csv_file() {
        let dir = std::env::temp_dir().join(format!("dpsbench-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ids.csv"), "site,registration_id\nnorth,pump-7\nsouth,Valve-2\n").unwrap();
        let resolve = |devices: &str| {
            let text =
                format!("name = \"t\"\n[target]\nkind = \"embedded\"\n[devices]\n{devices}[arrival]\nrate = 10\n");
            let file: ScenarioFile = toml::from_str(&text).unwrap();
            Plan::resolve(file, &dir.join("s.toml"), &|_| None)
        };
        let plan = resolve("registration_ids_file = \"ids.csv\"\n").unwrap();
        assert_eq!(plan.stop.devices, 2, "the file's length is the default count");
        assert_eq!(plan.registration_id(1).as_str(), "Valve-2");
        let err = resolve("registration_ids_file = \"ids.csv\"\ncount = 3\n").unwrap_err().to_string();
        assert!(err.contains("lists 2"), "{err}");
        std::fs::write(dir.join("dup.csv"), "registration_id\na-1\nA-1\n").unwrap();
        let err = resolve("registration_ids_file = \"dup.csv\"\n").unwrap_err().to_string();
        assert!(err.contains("dup.csv line 3") && err.contains("twice"), "{err}");
        std::fs::write(dir.join("bad.csv"), "registration_id\nok-1\nnot ok\n").unwrap();
        let err = resolve("registration_ids_file = \"bad.csv\"\n").unwrap_err().to_string();
        assert!(err.contains("bad.csv line 3"), "{err}");
        std::fs::write(dir.join("nohead.csv"), "id\nx\n").unwrap();
        let err = resolve("registration_ids_file = \"nohead.csv\"\n").unwrap_err().to_string();
        assert!(err.contains("no registration_id column"), "{err}");
    }

    #[test]
    fn a_target_off_this_machine_needs_explicit_limits() {
        let with = |target: &str, rest: &str| {
            let text = format!("name = \"t\"\n[target]\nkind = \"dps\"\nid_scope = \"0ne1\"\n{target}\n{rest}");
            load(&text, &|_| Some(SymmetricKey::random().to_base64()))
        };
        let keyed = "[devices]\ncount = 10\ngroup_key_env = \"K\"\n";
        let err =
            with("host = \"dps.example.invalid\"", &format!("{keyed}[arrival]\nrate = 5\n")).unwrap_err().to_string();
        assert!(err.contains("`target.max_devices_per_second`"), "{err}");
        let ceiling = "host = \"dps.example.invalid\"\nmax_devices_per_second = 10";
        let err = with(ceiling, &format!("{keyed}[arrival]\nrate = 50\n")).unwrap_err().to_string();
        assert!(err.contains("peaks at 50"), "{err}");
        let err =
            with(ceiling, "[devices]\ngroup_key_env = \"K\"\n[arrival]\nrate = 5\n[run]\nduration_seconds = 10\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("`devices.count`"), "{err}");
        let err =
            with(ceiling, &format!("{keyed}[arrival]\nmodel = \"closed\"\nconcurrency = 2\n")).unwrap_err().to_string();
        assert!(err.contains("open plan"), "{err}");
        let plan = with(ceiling, &format!("{keyed}[arrival]\nrate = 5\n")).unwrap();
        assert!(matches!(plan.target, TargetPlan::Dps { loopback: false, ca: None, port: 8883, .. }));
        // This machine needs no guard, and the public roots are the default trust.
        let local =
            with("host = \"127.0.0.1\"\ntransport = \"websocket\"", &format!("{keyed}[arrival]\nrate = 5000\n"))
                .unwrap();
        assert!(matches!(local.target, TargetPlan::Dps { loopback: true, port: 443, .. }));
        assert!(is_loopback("localhost") && is_loopback("::1") && is_loopback("127.0.0.9") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn patterns() {
        assert_eq!(IdPattern::parse("dev-{index}").unwrap().render(7), "dev-7");
        assert_eq!(IdPattern::parse("{index:04}.x").unwrap().render(7), "0007.x");
        assert!(IdPattern::parse("dev").is_err());
        assert!(IdPattern::parse("dev-{index:x}").is_err());
    }

    #[test]
    fn errors_name_file_and_field() {
        let unknown = MINIMAL.replace("count = 3", "count = 3\ncolour = \"red\"");
        let err = load(&unknown, &|_| None).unwrap_err().to_string();
        assert!(err.starts_with("s.toml:") && err.contains("colour"), "{err}");

        let bad_rate = MINIMAL.replace("rate = 10", "rate = -1");
        let err = load(&bad_rate, &|_| None).unwrap_err().to_string();
        assert!(err.contains("`arrival.rate`"), "{err}");

        let wrong_field = MINIMAL.replace("rate = 10", "model = \"closed\"\nconcurrency = 2\nrate = 10");
        let err = load(&wrong_field, &|_| None).unwrap_err().to_string();
        assert!(err.contains("`rate` does not apply to model \"closed\""), "{err}");

        let unbounded = MINIMAL.replace("count = 3\n", "");
        let err = load(&unbounded, &|_| None).unwrap_err().to_string();
        assert!(err.contains("`devices.count`") && err.contains("duration_seconds"), "{err}");

        let bad_id = MINIMAL.replace("count = 3", "count = 3\nregistration_id = \"bad id {index}\"");
        let err = load(&bad_id, &|_| None).unwrap_err().to_string();
        assert!(err.contains("`devices.registration_id`"), "{err}");

        let missing_env = MINIMAL.replace("count = 3", "count = 3\ngroup_key_env = \"NOPE\"");
        let err = load(&missing_env, &|_| None).unwrap_err().to_string();
        assert!(err.contains("NOPE is not set"), "{err}");

        let bad_key = load(&missing_env, &|_| Some("secret-not-base64!".into())).unwrap_err().to_string();
        assert!(bad_key.contains("`devices.group_key_env`") && bad_key.contains("base64"), "{bad_key}");
        assert!(!bad_key.contains("secret-not-base64"), "the key never appears in errors");
    }

    #[test]
    fn dps_target_needs_a_key_and_a_readable_ca() {
        let text = "name = \"t\"\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nid_scope = \"0ne1\"\nca_certificate = \"/nonexistent/ca.pem\"\n[devices]\ncount = 1\n[arrival]\nrate = 1\n";
        let err = load(text, &|_| None).unwrap_err().to_string();
        assert!(err.contains("`target.ca_certificate`") && err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
