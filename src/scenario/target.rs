//! `[target]`: where the devices go (the embedded emulator or a DPS endpoint), how they carry
//! MQTT and which TLS they offer.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::FieldError;
use crate::credentials::IdScope;
use crate::device::Transport;
use crate::emulator::config::{
    EmulatorConfig, PollLimit, QuotaConfig, QuotaFile, SettingError, Settings, SettingsSection, tls_policy,
};
use crate::tls::{TlsPolicy, TlsVersion};

/// Default ID scope of the embedded emulator.
pub const EMBEDDED_ID_SCOPE: &str = "0ne00DPSB01";

/// DPS's global device endpoint.
pub const GLOBAL_ENDPOINT: &str = crate::tls::DPS_GLOBAL_ENDPOINT;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum TargetSection {
    /// The emulator, started in-process on 127.0.0.1 with a random port.
    Embedded {
        #[serde(default)]
        id_scope: Option<String>,
        /// The emulator's settings, spelled as its own file spells them (`emulator::config`).
        #[serde(default, flatten)]
        settings: SettingsSection,
        /// DPS quota on register requests (per minute); none when absent.
        #[serde(default)]
        registrations_per_minute: Option<u32>,
        /// DPS quota on poll requests (per minute); none when absent.
        #[serde(default)]
        operations_per_minute: Option<u32>,
        /// The emulator's enrollment group issues operational certificates for CSRs.
        #[serde(default)]
        issue_certificates: bool,
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
        /// The file of the `dpsbench emulator` serving this target (relative to the scenario),
        /// so that `--dry-run` forecasts with that emulator's own model: its quota, bucket,
        /// retry-after and assignment delay. Leave it out for a real DPS.
        #[serde(default)]
        emulator_config: Option<PathBuf>,
        /// Name checked against the server certificate; defaults to `host`.
        #[serde(default)]
        server_name: Option<String>,
        /// PEM file of the CA that issues operational certificates: issued chains must reach it.
        #[serde(default)]
        issuer_ca_certificate: Option<PathBuf>,
        #[serde(default, flatten)]
        transport: TransportSection,
    },
}

fn default_dps_host() -> String {
    GLOBAL_ENDPOINT.into()
}

/// How devices carry MQTT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// MQTT on TLS (default).
    #[default]
    Mqtt,
    /// MQTT over WebSocket (`wss`).
    Websocket,
}

/// How devices carry MQTT: `transport = "mqtt"` (default) or `"websocket"`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TransportSection {
    #[serde(default, deserialize_with = "transport_kind")]
    pub transport: TransportKind,
    /// WebSocket path (default `/$iothub/websocket`; C# uses `/`).
    #[serde(default)]
    pub websocket_path: Option<String>,
    /// WebSocket subprotocol offered (default `mqtt`; the C SDK sends `MQTT`).
    #[serde(default)]
    pub websocket_subprotocol: Option<String>,
    /// TLS versions devices offer: `["1.2"]` (default, as DPS requires) or with `"1.3"`.
    #[serde(default, deserialize_with = "tls_versions")]
    pub tls_versions: Option<Vec<TlsVersion>>,
    /// Cipher suites devices offer, by name (default: all that aws-lc-rs supports).
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
}

// `[target]` is tagged by `kind` and flattens these fields, so serde buffers it and the parser's
// error points at the section, not the key: these two name their field themselves.
fn transport_kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TransportKind, D::Error> {
    TransportKind::deserialize(deserializer).map_err(|e| D::Error::custom(format!("field `target.transport`: {e}")))
}

fn tls_versions<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<TlsVersion>>, D::Error> {
    Option::deserialize(deserializer).map_err(|e| D::Error::custom(format!("field `target.tls_versions`: {e}")))
}

impl TransportSection {
    fn tls(&self) -> Result<TlsPolicy, FieldError> {
        tls_policy(self.tls_versions.as_deref(), self.cipher_suites.as_deref()).map_err(setting)
    }

    fn resolve(&self) -> Result<Transport, FieldError> {
        match self.transport {
            TransportKind::Mqtt if self.websocket_path.is_none() && self.websocket_subprotocol.is_none() => {
                Ok(Transport::Mqtt)
            }
            TransportKind::Mqtt => {
                Err(FieldError::new("target.websocket_path", "websocket_* fields need transport = \"websocket\""))
            }
            TransportKind::Websocket => {
                let path = self.websocket_path.clone().unwrap_or_else(|| crate::websocket::DEFAULT_PATH.into());
                if !path.starts_with('/') {
                    return Err(FieldError::new("target.websocket_path", format!("{path:?} must start with /")));
                }
                let subprotocol =
                    self.websocket_subprotocol.clone().unwrap_or_else(|| crate::websocket::SUBPROTOCOL.into());
                Ok(Transport::WebSocket { path, subprotocol })
            }
        }
    }
}

/// A setting shared with the emulator's file, named as the scenario spells it.
fn setting(error: SettingError) -> FieldError {
    let field = match &error {
        SettingError::NoHubs | SettingError::Hub(_) => "target.hubs",
        SettingError::RetryAfter(_) => "target.retry_after_seconds",
        SettingError::ZeroQuota => "target.registrations_per_minute",
        SettingError::CipherSuite(_) => "target.cipher_suites",
        SettingError::Fault(fault) => return FieldError::new(target_faults_field(fault.field), fault.reason.clone()),
    };
    FieldError::new(field, error.to_string())
}

/// `target.faults.<field>`, as a scenario spells a `[faults]` field.
fn target_faults_field(field: &str) -> &'static str {
    match field {
        "seed" => "target.faults.seed",
        "reset_after_connect" => "target.faults.reset_after_connect",
        "reset_after_subscribe" => "target.faults.reset_after_subscribe",
        "reset_after_register" => "target.faults.reset_after_register",
        "connack_unavailable" => "target.faults.connack_unavailable",
        "reply_delay_ms" => "target.faults.reply_delay_ms",
        "drop_reply" => "target.faults.drop_reply",
        "server_error" => "target.faults.server_error",
        "throttle" => "target.faults.throttle",
        "malformed_reply" => "target.faults.malformed_reply",
        "tls_stall" => "target.faults.tls_stall",
        "outage" => "target.faults.outage",
        _ => "target.faults",
    }
}

/// Where the devices go.
#[derive(Debug, Clone)]
pub enum TargetPlan {
    Embedded {
        /// The emulator's settings, checked as its own file's are.
        settings: Settings,
        transport: Transport,
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
        /// The DPS units the scenario states (their quota is forecast; absent, one unit off this
        /// machine and none known on it).
        dps_units: Option<u32>,
        /// The emulator serving the target, as its file (`[target].emulator_config`) sets it.
        emulator: Option<EmulatorModel>,
    },
}

/// How an emulator answers, as far as the dry run's forecast needs it: the embedded target's
/// settings, or those of the file a `dps` target names in `emulator_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorModel {
    /// Where the figures come from, for the dry run's line.
    pub source: String,
    pub retry_after_seconds: u32,
    pub assign_delay: Duration,
    pub quota: Option<QuotaConfig>,
    pub poll_limit: PollLimit,
}

impl EmulatorModel {
    /// The embedded emulator's: the scenario's settings and the default poll limit.
    pub fn embedded(settings: &Settings) -> Self {
        Self {
            source: "[target]".into(),
            retry_after_seconds: settings.retry_after_seconds,
            assign_delay: settings.assign_delay,
            quota: settings.quota,
            poll_limit: PollLimit::default(),
        }
    }

    /// A standalone emulator's, read from its file at `path` (the scenario's `emulator_config`).
    fn read(path: &Path) -> Result<Self, FieldError> {
        let (_, service) = EmulatorConfig::load(path)
            .map_err(|e| FieldError::new("target.emulator_config", format!("{}: {e}", path.display())))?;
        Ok(Self {
            source: path.display().to_string(),
            retry_after_seconds: service.retry_after_seconds,
            assign_delay: service.assign_delay,
            quota: service.quota,
            poll_limit: service.poll_limit,
        })
    }
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `[target]` resolved.
pub(super) struct ResolvedTarget {
    pub plan: TargetPlan,
    pub id_scope: IdScope,
    pub tls: TlsPolicy,
    /// For a target off this machine: the ceiling on new devices per second the plan must keep.
    pub production_ceiling: Option<f64>,
}

pub(super) fn resolve(section: TargetSection, base: &Path) -> Result<ResolvedTarget, FieldError> {
    let tls = match &section {
        TargetSection::Embedded { transport, .. } | TargetSection::Dps { transport, .. } => transport.tls()?,
    };
    let (plan, id_scope, production_ceiling) = match section {
        TargetSection::Embedded {
            id_scope,
            settings,
            registrations_per_minute,
            operations_per_minute,
            transport,
            issue_certificates: _,
        } => {
            let scope = IdScope::new(id_scope.unwrap_or_else(|| EMBEDDED_ID_SCOPE.into()))
                .map_err(|e| FieldError::new("target.id_scope", e.to_string()))?;
            // An embedded target answers at once unless it says otherwise.
            let quota = QuotaFile { registrations_per_minute, operations_per_minute };
            let settings = settings.resolve(quota, 0).map_err(setting)?;
            let transport = transport.resolve()?;
            (TargetPlan::Embedded { settings, transport }, scope, None)
        }
        TargetSection::Dps {
            host,
            port,
            id_scope,
            ca_certificate,
            max_devices_per_second,
            dps_units,
            emulator_config,
            server_name,
            transport,
            issuer_ca_certificate: _,
        } => {
            let host = crate::endpoint::host_name(&host).map_err(|e| FieldError::new("target.host", e.to_string()))?;
            let host = host.to_string();
            let loopback = is_loopback(&host);
            // A ceiling is required off this machine, and holds on it too when stated.
            let ceiling = match (loopback, max_devices_per_second) {
                (true, None) => None,
                (_, given) => Some(production_ceiling(given)?),
            };
            let transport = transport.resolve()?;
            let port = port.unwrap_or(if transport == Transport::Mqtt { 8883 } else { 443 });
            let scope = IdScope::new(id_scope).map_err(|e| FieldError::new("target.id_scope", e.to_string()))?;
            let ca = match ca_certificate {
                Some(file) => {
                    let path = base.join(file);
                    let pem = std::fs::read(&path).map_err(|e| {
                        FieldError::new("target.ca_certificate", format!("cannot read {}: {e}", path.display()))
                    })?;
                    // Checked now, so the error names the scenario's field, not only the file.
                    crate::tls::roots_from_pem(&pem, &path)
                        .map_err(|e| FieldError::new("target.ca_certificate", e.to_string()))?;
                    Some((pem, path))
                }
                None => None,
            };
            let server_name = server_name.unwrap_or_else(|| host.clone());
            let dps_units = dps_units.map(|units| units.max(1));
            let emulator = emulator_config.map(|file| EmulatorModel::read(&base.join(file))).transpose()?;
            let plan = TargetPlan::Dps { host, port, ca, server_name, transport, loopback, dps_units, emulator };
            (plan, scope, ceiling)
        }
    };
    Ok(ResolvedTarget { plan, id_scope, tls, production_ceiling })
}

impl TargetSection {
    /// `issue_certificates` of an embedded target (false for a DPS endpoint).
    pub(super) fn issues_certificates(&self) -> bool {
        matches!(self, TargetSection::Embedded { issue_certificates: true, .. })
    }

    /// `issuer_ca_certificate` of a DPS endpoint.
    pub(super) fn issuer_ca_certificate(&self) -> Option<&PathBuf> {
        match self {
            TargetSection::Dps { issuer_ca_certificate, .. } => issuer_ca_certificate.as_ref(),
            TargetSection::Embedded { .. } => None,
        }
    }
}

/// A target off this machine must state a ceiling on new devices per second; a stated one must
/// be a positive number.
fn production_ceiling(ceiling: Option<f64>) -> Result<f64, FieldError> {
    ceiling.filter(|c| c.is_finite() && *c > 0.0).ok_or_else(|| {
        FieldError::new(
            "target.max_devices_per_second",
            "the target is not on this machine: set a ceiling on new devices per second",
        )
    })
}
