//! The devices of a scenario: where their registration IDs and keys come from, which SDK
//! personality each one has, and the custom allocation payload each one sends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;

use super::FieldError;
use crate::credentials::{RegistrationId, SymmetricKey};
use crate::device::{Misbehaviour, Misbehaviours, Personality};

#[derive(Debug, Clone, Default, Deserialize)]
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
    /// A fleet of this many devices: device n registers as device `n mod distinct_ids`, so a
    /// long run re-provisions the same fleet (a soak, repeated reboot storms) instead of
    /// creating ever more registrations. Patterns only.
    #[serde(default)]
    pub distinct_ids: Option<u64>,
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
    pub personalities: Option<BTreeMap<Personality, u32>>,
    /// `symmetric-key` (default: SAS tokens) or `x509` (client certificates).
    #[serde(default)]
    pub attestation: Attestation,
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
    /// Client checks every device breaks on purpose (failing controls for a judging
    /// emulator), e.g. `["poll_early"]`; none by default.
    #[serde(default)]
    pub misbehave: Vec<Misbehaviour>,
    /// Each device sends a certificate signing request with its registration
    /// (api-version 2025-07-01-preview) and checks the chain issued for it.
    #[serde(default)]
    pub request_certificate: bool,
    /// The key type of that request: `ecdsa-p256` (default), `ecdsa-p384` or `ed25519`.
    #[serde(default)]
    pub certificate_key: Option<crate::certificates::KeyType>,
}

/// Registration IDs when a scenario names none.
pub(crate) const DEFAULT_PATTERN: &str = "bench-{index:06}";

/// How devices prove who they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attestation {
    /// SAS tokens signed with a symmetric key (default).
    #[default]
    SymmetricKey,
    /// Client certificates.
    X509,
}

/// Where X.509 devices' certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Plan {
    /// The CA folder (root.pem, intermediate.pem, intermediate.key).
    pub ca_dir: PathBuf,
    /// Device certificates are loaded from here, or minted into it.
    pub cache: PathBuf,
}

/// `[devices]` resolved (all but the group key, which depends on the target).
pub(super) struct ResolvedDevices {
    pub identities: Identities,
    pub personalities: PersonalityMix,
    pub payload: Option<PayloadTemplate>,
    pub x509: Option<X509Plan>,
    pub misbehave: Misbehaviours,
}

pub(super) fn resolve(devices: &DevicesSection, base: &Path) -> Result<ResolvedDevices, FieldError> {
    let identities = identities(devices, base)?;
    let personalities = PersonalityMix::resolve(devices)?;
    let payload = match &devices.payload {
        Some(table) => {
            let value = serde_json::to_value(table).map_err(|e| FieldError::new("devices.payload", e.to_string()))?;
            Some(PayloadTemplate::new(value)?)
        }
        None => None,
    };
    let x509 = x509(devices, base)?;
    if devices.misbehave.contains(&Misbehaviour::CnMismatch) && x509.is_none() {
        return Err(FieldError::new("devices.misbehave", "cn_mismatch needs attestation = \"x509\""));
    }
    let misbehave = devices.misbehave.iter().copied().collect();
    Ok(ResolvedDevices { identities, personalities, payload, x509, misbehave })
}

fn x509(devices: &DevicesSection, base: &Path) -> Result<Option<X509Plan>, FieldError> {
    let field = "devices.x509_ca_dir";
    match devices.attestation {
        Attestation::SymmetricKey if devices.x509_ca_dir.is_none() && devices.x509_cache.is_none() => Ok(None),
        Attestation::SymmetricKey => Err(FieldError::new(field, "x509_* fields need attestation = \"x509\"")),
        Attestation::X509 => {
            let Some(dir) = &devices.x509_ca_dir else {
                return Err(FieldError::new(field, "attestation = \"x509\" needs the CA folder `dpsbench certs` made"));
            };
            let ca_dir = base.join(dir);
            if !ca_dir.join("intermediate.key").exists() {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{} has no intermediate.key (create it with `dpsbench certs --out {}`)",
                        ca_dir.display(),
                        ca_dir.display()
                    ),
                ));
            }
            // One spelling of the folder however the scenario was named (`s.toml`, `./s.toml`), so
            // shards of one plan hash alike.
            let ca_dir = std::fs::canonicalize(&ca_dir).unwrap_or(ca_dir);
            let cache = devices.x509_cache.as_ref().map(|c| base.join(c)).unwrap_or_else(|| ca_dir.join("devices"));
            Ok(Some(X509Plan { ca_dir, cache }))
        }
    }
}

/// A registration ID pattern with one `{index}` or `{index:0N}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPattern {
    prefix: String,
    suffix: String,
    width: usize,
}

/// A registration ID pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdPatternError {
    #[error("it must contain {{index}} or {{index:06}}")]
    NoPlaceholder,
    #[error("unclosed {{index")]
    Unclosed,
    #[error("{{index{0}}} is not a known format; use {{index}} or {{index:06}}")]
    UnknownFormat(String),
}

impl IdPattern {
    pub fn parse(text: &str) -> Result<Self, IdPatternError> {
        let start = text.find("{index").ok_or(IdPatternError::NoPlaceholder)?;
        let end = start + text[start..].find('}').ok_or(IdPatternError::Unclosed)?;
        let width = match &text[start + "{index".len()..end] {
            "" => 0,
            spec => spec
                .strip_prefix(":0")
                .and_then(|w| w.parse::<usize>().ok())
                .filter(|w| *w <= 20)
                .ok_or_else(|| IdPatternError::UnknownFormat(spec.to_string()))?,
        };
        Ok(Self { prefix: text[..start].into(), suffix: text[end + 1..].into(), width })
    }

    pub fn render(&self, index: u64) -> String {
        format!("{}{:0width$}{}", self.prefix, index, self.suffix, width = self.width)
    }
}

/// Where registration IDs (and, for individual enrollments, keys) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identities {
    Pattern {
        pattern: IdPattern,
        start_index: u64,
        /// Device n uses index `n mod distinct` (a fleet re-provisioning), when set.
        distinct: Option<u64>,
    },
    /// Read from a CSV file, one per row; `key` set when the file has a `key` column
    /// (individual enrollments: the device signs with its own key).
    List(Vec<(RegistrationId, Option<SymmetricKey>)>),
}

impl Identities {
    /// How many devices the file lists (`None` for a pattern, which has no end).
    pub fn listed(&self) -> Option<u64> {
        match self {
            Identities::List(ids) => Some(ids.len() as u64),
            Identities::Pattern { .. } => None,
        }
    }

    /// Whether every device has its own key, so no group key is needed.
    pub fn all_keyed(&self) -> bool {
        matches!(self, Identities::List(ids) if ids.iter().all(|(_, key)| key.is_some()))
    }

    /// Checks that `count` devices have valid IDs: a pattern's first and last, a file's length.
    pub(super) fn check_count(&self, count: u64) -> Result<(), FieldError> {
        match self {
            Identities::Pattern { pattern, start_index, distinct } => {
                let used = distinct.map_or(count, |distinct| count.min(distinct));
                for index in [*start_index, start_index.saturating_add(used - 1)] {
                    RegistrationId::new(pattern.render(index))
                        .map_err(|e| FieldError::new("devices.registration_id", e.to_string()))?;
                }
                Ok(())
            }
            Identities::List(ids) if (ids.len() as u64) < count => Err(FieldError::new(
                "devices.count",
                format!("the plan needs {count} devices but registration_ids_file lists {}", ids.len()),
            )),
            Identities::List(_) => Ok(()),
        }
    }
}

fn identities(devices: &DevicesSection, base: &Path) -> Result<Identities, FieldError> {
    let Some(file) = &devices.registration_ids_file else {
        let text = devices.registration_id.as_deref().unwrap_or(DEFAULT_PATTERN);
        let pattern = IdPattern::parse(text).map_err(|e| FieldError::new("devices.registration_id", e.to_string()))?;
        if devices.distinct_ids == Some(0) {
            return Err(FieldError::new("devices.distinct_ids", "must be at least 1"));
        }
        let (start_index, distinct) = (devices.start_index.unwrap_or(0), devices.distinct_ids);
        return Ok(Identities::Pattern { pattern, start_index, distinct });
    };
    if devices.distinct_ids.is_some() {
        return Err(FieldError::new("devices.distinct_ids", "applies to a registration_id pattern, not to a file"));
    }
    if devices.registration_id.is_some() || devices.start_index.is_some() {
        return Err(FieldError::new(
            "devices.registration_ids_file",
            "give a registration_id pattern or a file, not both",
        ));
    }
    let path = base.join(file);
    let field = "devices.registration_ids_file";
    let at = |line: usize, why: String| FieldError::new(field, format!("{} line {line}: {why}", path.display()));
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| FieldError::new(field, format!("cannot read {}: {e}", path.display())))?;
    let headers = reader.headers().map_err(|e| FieldError::new(field, format!("{}: {e}", path.display())))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let id_column = column("registration_id").ok_or_else(|| {
        FieldError::new(field, format!("{} has no registration_id column in its header row", path.display()))
    })?;
    let key_column = column("key");
    let mut ids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| at(line, e.to_string()))?;
        let text = record.get(id_column).unwrap_or_default().trim();
        let id = RegistrationId::new(text).map_err(|e| at(line, e.to_string()))?;
        if !seen.insert(id.canonical()) {
            return Err(at(line, format!("registration ID {text:?} appears twice")));
        }
        // The key never appears in an error: only that it is malformed.
        let key = match key_column.and_then(|k| record.get(k)).map(str::trim).filter(|k| !k.is_empty()) {
            Some(key) => Some(SymmetricKey::from_base64(key).map_err(|e| at(line, format!("key: {e}")))?),
            None => None,
        };
        ids.push((id, key));
    }
    if ids.is_empty() {
        return Err(FieldError::new(field, format!("{} lists no devices", path.display())));
    }
    Ok(Identities::List(ids))
}

/// Which personality each device has: one, or a mix by weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalityMix(Vec<(Personality, u32)>);

impl PersonalityMix {
    pub fn single(personality: Personality) -> Self {
        Self(vec![(personality, 1)])
    }

    pub(super) fn resolve(devices: &DevicesSection) -> Result<Self, FieldError> {
        match (&devices.personality, &devices.personalities) {
            (Some(_), Some(_)) => {
                Err(FieldError::new("devices.personalities", "give personality or personalities, not both"))
            }
            (Some(one), None) => Ok(Self::single(*one)),
            (None, None) => Ok(Self::single(Personality::default())),
            (None, Some(weights)) => {
                let mut mix: Vec<(Personality, u32)> =
                    weights.iter().map(|(p, w)| (*p, *w)).filter(|(_, w)| *w > 0).collect();
                mix.sort();
                if mix.is_empty() {
                    return Err(FieldError::new(
                        "devices.personalities",
                        "give at least one personality a weight above 0",
                    ));
                }
                Ok(Self(mix))
            }
        }
    }

    /// The personality of the `n`-th device: weights are kept exactly in every run of
    /// `total weight` consecutive devices.
    pub fn of(&self, n: u64) -> Personality {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut slot = n % total;
        for (personality, weight) in &self.0 {
            if slot < u64::from(*weight) {
                return *personality;
            }
            slot -= u64::from(*weight);
        }
        unreachable!("slot < total weight always lands in a bucket")
    }

    pub fn personalities(&self) -> impl Iterator<Item = Personality> + '_ {
        self.0.iter().map(|(p, _)| *p)
    }
}

/// A custom allocation payload template: a JSON object whose strings may hold
/// `{registration_id}` and `{index}`, and where `{"one_of": [...]}` picks one value per device
/// (reproducibly: the pick depends on the device index only).
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadTemplate(Value);

impl PayloadTemplate {
    pub(super) fn new(value: Value) -> Result<Self, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new(
                "devices.payload",
                "the payload must be a table (a JSON object), as DPS requires",
            ));
        }
        Ok(Self(value))
    }

    pub fn render(&self, registration_id: &RegistrationId, index: u64) -> Value {
        let mut rng = rand::rngs::StdRng::seed_from_u64(index);
        render(&self.0, registration_id.as_str(), index, &mut rng)
    }
}

fn render(value: &Value, id: &str, index: u64, rng: &mut rand::rngs::StdRng) -> Value {
    match value {
        Value::String(text) => {
            Value::String(text.replace("{registration_id}", id).replace("{index}", &index.to_string()))
        }
        Value::Object(map) if map.len() == 1 && map.get("one_of").is_some_and(Value::is_array) => {
            let choices = map["one_of"].as_array().expect("checked to be an array");
            match choices.len() {
                0 => Value::Null,
                n => render(&choices[rng.random_range(0..n)], id, index, rng),
            }
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), render(v, id, index, rng))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, id, index, rng)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_keeps_its_weights_exactly() {
        let mix = PersonalityMix(vec![(Personality::Python, 3), (Personality::C, 1)]);
        let first_eight: Vec<Personality> = (0..8).map(|n| mix.of(n)).collect();
        assert_eq!(first_eight.iter().filter(|p| **p == Personality::Python).count(), 6);
        assert_eq!(first_eight.iter().filter(|p| **p == Personality::C).count(), 2);
    }

    #[test]
    fn payload_templates_fill_placeholders_and_pick_reproducibly() {
        let template = PayloadTemplate::new(serde_json::json!({
            "modelId": "dtmi:com:example:Thermostat;1",
            "site": "site-{index}",
            "device": "{registration_id}",
            "tier": { "one_of": ["gold", "silver", "bronze"] },
            "limits": [1, 2]
        }))
        .unwrap();
        let id = RegistrationId::new("dev-7").unwrap();
        let rendered = template.render(&id, 7);
        assert_eq!(rendered["site"], "site-7");
        assert_eq!(rendered["device"], "dev-7");
        assert!(["gold", "silver", "bronze"].contains(&rendered["tier"].as_str().unwrap()));
        assert_eq!(rendered, template.render(&id, 7), "the same device gets the same payload");
        let tiers: std::collections::HashSet<String> =
            (0..60).map(|i| template.render(&id, i)["tier"].as_str().unwrap().to_string()).collect();
        assert_eq!(tiers.len(), 3, "every choice is picked across devices");
        assert!(PayloadTemplate::new(serde_json::json!("text")).is_err());
    }
}
