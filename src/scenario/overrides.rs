//! Command-line overrides of a scenario's common fields (`dpsbench run --count 1000 --rate 200`):
//! applied to the parsed file *before* it is resolved, so the plan is validated once, as a
//! whole, and a value that does not hold is refused naming the flag that gave it. A flag sets
//! exactly the fields it names (listed in [`Applied`]) and leaves every other field as the file
//! says; a flag that has no meaning for the scenario's arrival model is refused, not ignored.
//! The flags are declared here, once ([`Overrides`] is the clap `Args` that `dpsbench run`
//! flattens; the target's flags are [`TargetFlags`], shared with `conform`). No IO: the caller
//! anchors relative paths ([`Overrides::paths_mut`]) before applying.

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::target_flags::{TargetFlags, TargetOverride};
use super::{ArrivalModel, ScenarioError, ScenarioFile, TargetSection, TransportKind, TransportSection};
use crate::endpoint::Scheme;

// What the user typed, every field optional: `dpsbench run`'s override flags, declared here once
// (no doc comment: clap would take it for the command's about).
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct Overrides {
    /// Devices to start (devices.count): a closed plan's total, a burst's size.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Devices started per second (arrival.rate); constant and poisson plans only.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Devices in flight at once (arrival.concurrency); closed plans only (a quick run given it
    /// without --rate is closed).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u64>,
    /// Stop starting devices after this long (run.duration_seconds), e.g. 30s, 2m, 500ms or
    /// seconds; whichever of the count and the duration comes first ends the arrivals.
    #[arg(long = "duration", value_name = "DURATION", value_parser = parse_duration)]
    pub duration_seconds: Option<f64>,
    /// CSV file of registration IDs, one device a row (devices.registration_ids_file); its
    /// length is the count unless --count says otherwise.
    #[arg(long, value_name = "CSV")]
    pub devices_from: Option<PathBuf>,
    /// `--target`, `--id-scope`, `--ca`, `--key-env`, `--key-file`.
    #[command(flatten)]
    pub target: TargetFlags,
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

    /// `--target` read (`embedded` or an endpoint), if given; refused naming the flag.
    pub fn target_override(&self) -> Result<Option<TargetOverride>, OverrideError> {
        self.target.target_override().map_err(|reason| OverrideError {
            flag: "--target",
            value: self.target.target.clone().unwrap_or_default(),
            reason,
        })
    }

    /// The paths the flags name (`--ca`, `--devices-from`, `--key-file`), for the caller to
    /// anchor against its working directory before [`Overrides::apply`].
    pub fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [&mut self.target.ca, &mut self.devices_from, &mut self.target.key_file].into_iter().flatten()
    }

    /// Sets the fields the flags name in `file`; returns what was set, in flag order.
    pub fn apply(&self, file: &mut ScenarioFile) -> Result<Vec<Applied>, OverrideError> {
        let target = self.target_override()?;
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
        self.apply_target_flags(target.as_ref(), file, &mut note)?;
        Ok(applied)
    }

    /// `--target`, `--id-scope`, `--ca`, `--key-env` and `--key-file`, in that order.
    fn apply_target_flags(
        &self,
        target: Option<&TargetOverride>,
        file: &mut ScenarioFile,
        note: &mut impl FnMut(&str, String, &str),
    ) -> Result<(), OverrideError> {
        let flags = &self.target;
        if let Some(target) = target {
            let from_embedded = matches!(file.target, TargetSection::Embedded { .. });
            if from_embedded && flags.id_scope.is_none() && matches!(target, TargetOverride::Dps(_)) {
                return Err(OverrideError {
                    flag: "--target",
                    value: target.to_string(),
                    reason: "the scenario's target is the embedded emulator: give the DPS instance's --id-scope too"
                        .into(),
                });
            }
            file.target = retarget(&file.target, target);
            note("--target", target.to_string(), "target");
        }
        if let Some(scope) = &flags.id_scope {
            match &mut file.target {
                TargetSection::Embedded { id_scope, .. } => *id_scope = Some(scope.clone()),
                TargetSection::Dps { id_scope, .. } => *id_scope = scope.clone(),
            }
            note("--id-scope", scope.clone(), "target.id_scope");
        }
        if let Some(path) = &flags.ca {
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
        if let Some(var) = &flags.key_env {
            (file.devices.group_key_env, file.devices.group_key_file) = (Some(var.clone()), None);
            note("--key-env", var.clone(), "devices.group_key_env");
        }
        if let Some(path) = &flags.key_file {
            (file.devices.group_key_env, file.devices.group_key_file) = (None, Some(path.clone()));
            note("--key-file", path.display().to_string(), "devices.group_key_file");
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
        TargetOverride::Dps(endpoint) => match current {
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
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                    id_scope: id_scope.clone(),
                    ca_certificate: ca_certificate.clone(),
                    max_devices_per_second: *max_devices_per_second,
                    dps_units: *dps_units,
                    // The emulator a file names served the old address, not this one.
                    emulator_config: None,
                    // The issuer belongs to the enrollment, not the address.
                    issuer_ca_certificate: issuer_ca_certificate.clone(),
                    // A name checked against the certificate belongs to the old host.
                    server_name: None,
                    transport: TransportSection { transport: transport(endpoint.scheme), ..kept },
                }
            }
            TargetSection::Embedded { .. } => TargetSection::Dps {
                host: endpoint.host.clone(),
                port: endpoint.port,
                // Set by --id-scope, which `apply` requires here: the emulator's scope means
                // nothing to another service.
                id_scope: String::new(),
                ca_certificate: None,
                max_devices_per_second: None,
                dps_units: None,
                emulator_config: None,
                issuer_ca_certificate: None,
                server_name: None,
                transport: TransportSection { transport: transport(endpoint.scheme), ..kept },
            },
        },
    }
}

/// The transport a scheme names.
fn transport(scheme: Scheme) -> TransportKind {
    match scheme {
        Scheme::Mqtts => TransportKind::Mqtt,
        Scheme::Wss => TransportKind::Websocket,
    }
}

/// `--duration`: `30s`, `2m`, `500ms`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds = match text.parse::<f64>() {
        Ok(seconds) => Some(seconds),
        Err(_) => crate::arrival::parse_duration(text).map(|d| d.as_secs_f64()),
    };
    seconds.ok_or_else(|| format!("{text:?} is not a duration: give e.g. 30s, 2m, 500ms or a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("30s"), Ok(30.0));
        assert_eq!(parse_duration("2m"), Ok(120.0));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert_eq!(parse_duration("12.5"), Ok(12.5));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
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
        let target = TargetFlags { target: Some("wss://b.example:9".into()), ..TargetFlags::default() };
        let overrides = Overrides { target, ..Overrides::default() };
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
