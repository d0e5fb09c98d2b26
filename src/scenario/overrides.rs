//! Command-line overrides of a scenario's common fields (`dpsbench run --count 1000 --rate 200`):
//! applied to the parsed file *before* it is resolved, so the plan is validated once, as a
//! whole, and a value that does not hold is refused naming the flag that gave it. A flag sets
//! exactly the fields it names (listed in [`Applied`]) and leaves every other field as the file
//! says; a flag that has no meaning for the scenario's arrival model is refused, not ignored.
//! No IO: paths arrive already resolved against the working directory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ArrivalModel, ScenarioError, ScenarioFile, TargetSection, TransportKind, TransportSection};

/// What the user typed; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--count`: `devices.count`.
    pub count: Option<u64>,
    /// `--rate`: `arrival.rate` (constant and Poisson plans).
    pub rate: Option<f64>,
    /// `--concurrency`: `arrival.concurrency` (closed plans).
    pub concurrency: Option<u64>,
    /// `--duration`, in seconds: `run.duration_seconds`.
    pub duration_seconds: Option<f64>,
    /// `--target`: the embedded emulator or a DPS endpoint.
    pub target: Option<TargetOverride>,
    /// `--id-scope`: `target.id_scope`.
    pub id_scope: Option<String>,
    /// `--ca`: `target.ca_certificate` (a DPS target).
    pub ca: Option<PathBuf>,
    /// `--devices-from`: `devices.registration_ids_file`.
    pub devices_from: Option<PathBuf>,
    /// `--key-env`: `devices.group_key_env`.
    pub key_env: Option<String>,
    /// `--key-file`: `devices.group_key_file`.
    pub key_file: Option<PathBuf>,
}

/// `--target`: `embedded`, or a DPS endpoint `mqtts://HOST[:PORT]` / `wss://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOverride {
    Embedded,
    Dps { host: String, port: Option<u16>, transport: TransportKind },
}

impl TargetOverride {
    /// Parses `embedded`, `mqtts://HOST[:PORT]`, `wss://HOST[:PORT]` or a bare `HOST[:PORT]`
    /// (MQTT over TLS); IPv6 in brackets.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "embedded" {
            return Ok(TargetOverride::Embedded);
        }
        let (transport, rest) = match (text.strip_prefix("mqtts://"), text.strip_prefix("wss://")) {
            (Some(rest), _) => (TransportKind::Mqtt, rest),
            (None, Some(rest)) => (TransportKind::Websocket, rest),
            (None, None) if text.contains("://") => {
                return Err("expected embedded, mqtts://HOST[:PORT], wss://HOST[:PORT] or HOST[:PORT]".into());
            }
            (None, None) => (TransportKind::Mqtt, text),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                (host, Some(port.parse::<u16>().map_err(|_| format!("{port:?} is not a port"))?))
            }
            _ => (rest, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err(format!("{host:?} is not a host name or address"));
        }
        Ok(TargetOverride::Dps { host: host.to_string(), port, transport })
    }
}

/// One override as `summary.json` lists it: the flag, the value typed, and the scenario field
/// it set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub flag: String,
    pub value: String,
    pub field: String,
}

/// A flag that does not apply to the scenario, or whose value the plan refused.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {value}: {reason}")]
pub struct OverrideError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

impl Overrides {
    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// Sets the fields the flags name in `file`; returns what was set, in flag order.
    pub fn apply(&self, file: &mut ScenarioFile) -> Result<Vec<Applied>, OverrideError> {
        let mut applied = Vec::new();
        let mut note = |flag: &str, value: String, field: &str| {
            applied.push(Applied { flag: flag.into(), value, field: field.into() })
        };
        let model = file.arrival.model;
        if let Some(count) = self.count {
            file.devices.count = Some(count);
            note("--count", count.to_string(), "devices.count");
        }
        if let Some(rate) = self.rate {
            refuse_unless(model, &[ArrivalModel::Constant, ArrivalModel::Poisson], "--rate", &rate.to_string())?;
            file.arrival.rate = Some(rate);
            note("--rate", rate.to_string(), "arrival.rate");
        }
        if let Some(concurrency) = self.concurrency {
            refuse_unless(model, &[ArrivalModel::Closed], "--concurrency", &concurrency.to_string())?;
            file.arrival.concurrency = Some(concurrency);
            note("--concurrency", concurrency.to_string(), "arrival.concurrency");
        }
        if let Some(seconds) = self.duration_seconds {
            file.run.duration_seconds = Some(seconds);
            note("--duration", format!("{seconds}s"), "run.duration_seconds");
        }
        if let Some(path) = &self.devices_from {
            let devices = &mut file.devices;
            devices.registration_ids_file = Some(path.clone());
            // The list says who the devices are and, unless --count says otherwise, how many.
            (devices.registration_id, devices.start_index, devices.distinct_ids) = (None, None, None);
            if self.count.is_none() {
                devices.count = None;
            }
            note("--devices-from", path.display().to_string(), "devices.registration_ids_file");
        }
        if let Some(target) = &self.target {
            let from_embedded = matches!(file.target, TargetSection::Embedded { .. });
            if from_embedded && self.id_scope.is_none() && matches!(target, TargetOverride::Dps { .. }) {
                return Err(OverrideError {
                    flag: "--target",
                    value: describe(target),
                    reason: "the scenario's target is the embedded emulator: give the DPS instance's --id-scope too"
                        .into(),
                });
            }
            file.target = retarget(&file.target, target);
            note("--target", describe(target), "target");
        }
        self.apply_target_fields(file, &mut note)?;
        if let Some(var) = &self.key_env {
            (file.devices.group_key_env, file.devices.group_key_file) = (Some(var.clone()), None);
            note("--key-env", var.clone(), "devices.group_key_env");
        }
        if let Some(path) = &self.key_file {
            (file.devices.group_key_env, file.devices.group_key_file) = (None, Some(path.clone()));
            note("--key-file", path.display().to_string(), "devices.group_key_file");
        }
        Ok(applied)
    }

    fn apply_target_fields(
        &self,
        file: &mut ScenarioFile,
        note: &mut impl FnMut(&str, String, &str),
    ) -> Result<(), OverrideError> {
        if let Some(scope) = &self.id_scope {
            match &mut file.target {
                TargetSection::Embedded { id_scope, .. } => *id_scope = Some(scope.clone()),
                TargetSection::Dps { id_scope, .. } => *id_scope = scope.clone(),
            }
            note("--id-scope", scope.clone(), "target.id_scope");
        }
        if let Some(path) = &self.ca {
            match &mut file.target {
                TargetSection::Dps { ca_certificate, .. } => *ca_certificate = Some(path.clone()),
                TargetSection::Embedded { .. } => {
                    return Err(OverrideError {
                        flag: "--ca",
                        value: path.display().to_string(),
                        reason: "the target is the embedded emulator, which trusts its own CA; --ca is for a \
                                 DPS target (--target mqtts://HOST[:PORT])"
                            .into(),
                    });
                }
            }
            note("--ca", path.display().to_string(), "target.ca_certificate");
        }
        Ok(())
    }

    /// The override behind a field the resolved plan refused, so the error can say what to
    /// change on the command line (`--rate 0: … field `arrival.rate`: …`); `None` for a field
    /// no flag set.
    pub fn culprit<'a>(applied: &'a [Applied], error: &ScenarioError) -> Option<&'a Applied> {
        let ScenarioError::Field { field, .. } = error else { return None };
        // The most specific field a flag set that the refused one is, or lies under.
        applied
            .iter()
            .filter(|a| *field == a.field || field.starts_with(&format!("{}.", a.field)) || follows_from(field, a))
            .max_by_key(|a| a.field.len())
    }
}

/// Fields whose errors follow from a flag that set another one: the plan's peak
/// (`arrival`) from `--rate`, the device count from `--devices-from`, the group key and the
/// production ceiling from `--target`.
fn follows_from(field: &str, applied: &Applied) -> bool {
    matches!(
        (field, applied.field.as_str()),
        ("arrival", "arrival.rate")
            | ("devices.count", "devices.registration_ids_file")
            | ("devices.group_key_env", "target")
            | ("target.max_devices_per_second", "target")
    )
}

fn refuse_unless(
    model: ArrivalModel,
    takes: &[ArrivalModel],
    flag: &'static str,
    value: &str,
) -> Result<(), OverrideError> {
    if takes.contains(&model) {
        return Ok(());
    }
    let instead = match model {
        ArrivalModel::Stages => "its rates are its stages (arrival.stages); edit them in the file",
        ArrivalModel::Burst => "it starts devices.count devices within arrival.within_seconds; use --count",
        ArrivalModel::Closed => "a closed model has no rate: use --concurrency",
        ArrivalModel::Constant | ArrivalModel::Poisson => "an open model has no concurrency: use --rate",
    };
    Err(OverrideError {
        flag,
        value: value.to_string(),
        reason: format!("does not apply to the scenario's arrival model {:?} ({instead})", model.name()),
    })
}

/// The target section `--target` gives: its own kind and address, the scenario's transport
/// details (path, subprotocol, TLS) kept; the other kind's settings are dropped.
fn retarget(current: &TargetSection, target: &TargetOverride) -> TargetSection {
    let kept = match current {
        TargetSection::Embedded { transport, .. } | TargetSection::Dps { transport, .. } => transport.clone(),
    };
    match target {
        TargetOverride::Embedded if matches!(current, TargetSection::Embedded { .. }) => current.clone(),
        TargetOverride::Embedded => {
            let text = "kind = \"embedded\"";
            let mut section: TargetSection = toml::from_str(text).expect("an embedded target takes defaults");
            if let TargetSection::Embedded { transport, .. } = &mut section {
                *transport = kept;
            }
            section
        }
        TargetOverride::Dps { host, port, transport } => match current {
            // Another address of the same kind: everything else stays.
            TargetSection::Dps {
                id_scope,
                ca_certificate,
                max_devices_per_second,
                dps_units,
                issuer_ca_certificate,
                ..
            } => {
                TargetSection::Dps {
                    host: host.clone(),
                    port: *port,
                    id_scope: id_scope.clone(),
                    ca_certificate: ca_certificate.clone(),
                    max_devices_per_second: *max_devices_per_second,
                    dps_units: *dps_units,
                    // The issuer belongs to the enrollment, not the address.
                    issuer_ca_certificate: issuer_ca_certificate.clone(),
                    // A name checked against the certificate belongs to the old host.
                    server_name: None,
                    transport: TransportSection { transport: *transport, ..kept },
                }
            }
            TargetSection::Embedded { .. } => TargetSection::Dps {
                host: host.clone(),
                port: *port,
                // Set by --id-scope, which `apply` requires here: the emulator's scope means
                // nothing to another service.
                id_scope: String::new(),
                ca_certificate: None,
                max_devices_per_second: None,
                dps_units: None,
                issuer_ca_certificate: None,
                server_name: None,
                transport: TransportSection { transport: *transport, ..kept },
            },
        },
    }
}

fn describe(target: &TargetOverride) -> String {
    match target {
        TargetOverride::Embedded => "embedded".into(),
        TargetOverride::Dps { host, port, transport } => {
            let scheme = match transport {
                TransportKind::Mqtt => "mqtts",
                TransportKind::Websocket => "wss",
            };
            let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
            match port {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dps(host: &str, port: Option<u16>, transport: TransportKind) -> TargetOverride {
        TargetOverride::Dps { host: host.into(), port, transport }
    }

    #[test]
    fn targets_parse_as_typed_and_print_back() {
        for (text, parsed) in [
            ("embedded", TargetOverride::Embedded),
            ("mqtts://127.0.0.1:8883", dps("127.0.0.1", Some(8883), TransportKind::Mqtt)),
            ("mqtts://dps.example.com", dps("dps.example.com", None, TransportKind::Mqtt)),
            ("wss://[::1]:4443", dps("::1", Some(4443), TransportKind::Websocket)),
            ("127.0.0.1:8883", dps("127.0.0.1", Some(8883), TransportKind::Mqtt)),
        ] {
            assert_eq!(TargetOverride::parse(text), Ok(parsed.clone()), "{text}");
            let printed = describe(&parsed);
            assert_eq!(TargetOverride::parse(&printed), Ok(parsed), "{printed} reads back");
        }
        for bad in ["http://x", "mqtts://", "mqtts://h:port", "mqtts://a b"] {
            assert!(TargetOverride::parse(bad).is_err(), "{bad}");
        }
    }

    fn file(text: &str) -> ScenarioFile {
        crate::toml_file::parse(text).unwrap()
    }

    #[test]
    fn a_new_address_keeps_the_rest_of_a_dps_target_and_the_transport_details() {
        let mut scenario = file(
            "name = \"n\"\n[target]\nkind = \"dps\"\nhost = \"a.example\"\nid_scope = \"S1\"\nca_certificate = \"ca.pem\"\n\
             server_name = \"a.example\"\nmax_devices_per_second = 5.0\nwebsocket_path = \"/\"\ntransport = \"websocket\"\n",
        );
        let overrides =
            Overrides { target: Some(dps("b.example", Some(9), TransportKind::Websocket)), ..Overrides::default() };
        let applied = overrides.apply(&mut scenario).unwrap();
        let TargetSection::Dps {
            host,
            port,
            id_scope,
            ca_certificate,
            server_name,
            max_devices_per_second,
            transport,
            ..
        } = scenario.target
        else {
            panic!("still a dps target")
        };
        assert_eq!((host.as_str(), port, id_scope.as_str()), ("b.example", Some(9), "S1"));
        assert_eq!((ca_certificate, max_devices_per_second), (Some(PathBuf::from("ca.pem")), Some(5.0)));
        assert_eq!(server_name, None, "the old host's name is not checked against the new one");
        assert_eq!((transport.transport, transport.websocket_path.as_deref()), (TransportKind::Websocket, Some("/")));
        assert_eq!(
            applied,
            [Applied { flag: "--target".into(), value: "wss://b.example:9".into(), field: "target".into() }]
        );
    }

    #[test]
    fn a_refused_field_is_blamed_on_the_flag_behind_it() {
        let applied = |flag: &str, field: &str| Applied { flag: flag.into(), value: "v".into(), field: field.into() };
        let refused = |field: &'static str| ScenarioError::Field { path: "s.toml".into(), field, reason: "no".into() };
        let given =
            [applied("--rate", "arrival.rate"), applied("--target", "target"), applied("--count", "devices.count")];
        let culprit = |field| Overrides::culprit(&given, &refused(field)).map(|a| a.flag.as_str());
        assert_eq!(culprit("arrival.rate"), Some("--rate"));
        assert_eq!(culprit("arrival"), Some("--rate"), "the plan's peak comes from the rate");
        assert_eq!(culprit("target.id_scope"), Some("--target"));
        assert_eq!(culprit("devices.count"), Some("--count"));
        assert_eq!(culprit("flow.api_version"), None, "no flag set it");
    }
}
