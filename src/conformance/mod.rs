//! Conformance: a catalogue of checks with stable IDs, each verifying one promise of the DPS
//! MQTT reference (`docs/dps-mqtt.md`).
//!
//! `catalogue` lists the checks, each carrying everything about it (level, source, the probes
//! that judge it, the deviations expected to fail it); `passive` evaluates the passive ones on
//! every packet of every device flow (sans IO, driven by `device::flow`); `probes` run the active
//! ones against a target (network, deadlines), listed in `probes::table`; `suite` runs the probes
//! the catalogue names for `dpsbench conform`; `report` renders JUnit, Markdown and JSON (pure).
//! Levels, sources and the check report its JUnit is written from are the `grading` leaf's,
//! shared with the emulator's client checks.

pub mod catalogue;
pub mod passive;
pub mod probes;
pub mod report;
pub mod suite;

pub use catalogue::{CATALOGUE, Check, Kind, find};
pub use passive::{CheckLog, PassiveCheck};
