//! Conformance: a catalogue of checks with stable IDs, each verifying one promise of the DPS
//! MQTT reference (`dps-mqtt.md`).
//!
//! `catalogue` lists the checks; `passive` evaluates the passive ones on every packet of every
//! device flow (sans IO, driven by `device::flow`); `probes` run the active ones against a target
//! (network, deadlines); `suite` runs the whole catalogue for `dpsbench conform`; `report` renders
//! JUnit, Markdown and JSON (pure).

pub mod catalogue;
pub mod passive;
pub mod probes;
pub mod report;
pub mod suite;

use serde::{Deserialize, Serialize};

pub use catalogue::{CATALOGUE, find};
pub use passive::{CheckLog, PassiveCheck};

/// How binding a check is: a **must** failure fails the suite (exit 1), a **should** failure is
/// reported but does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
}

/// How a check runs: passively on every flow, or as an active probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Passive,
    Probe,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, never reused: `DPS-<AREA>-<NNN>`.
    pub id: &'static str,
    pub level: Level,
    pub kind: Kind,
    pub title: &'static str,
    /// The statement of `dps-mqtt.md` it verifies.
    pub statement: &'static str,
}

/// A violation seen: the check and what was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub check: String,
    pub evidence: String,
}

/// Shortens a packet body for evidence: the first 160 characters, lossily decoded.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut short: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        short.push('…');
    }
    short
}
