//! Conformance: a catalogue of checks with stable IDs, each verifying one promise of the DPS
//! MQTT reference (`docs/dps-mqtt.md`).
//!
//! `catalogue` lists the checks, each carrying everything about it (level, source, the probes
//! that judge it, the deviations expected to fail it); `passive` evaluates the passive ones on
//! every packet of every device flow (sans IO, driven by `device::flow`); `probes` run the active
//! ones against a target (network, deadlines), listed in `probes::table`; `suite` runs the probes
//! the catalogue names for `dpsbench conform`; `report` renders JUnit, Markdown and JSON (pure).

pub mod catalogue;
pub mod passive;
pub mod probes;
pub mod report;
pub mod suite;

use serde::{Deserialize, Serialize};

pub use catalogue::{CATALOGUE, Check, Kind, Level, Source, find};
pub use passive::{CheckLog, PassiveCheck};

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
