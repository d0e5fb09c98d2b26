//! Grading: the words both check catalogues grade in (the conformance checks a target is held to,
//! the client checks a device is held to): how binding a check is ([`Level`]), how firm its
//! ground is ([`Source`]), what a check came to ([`Grade`]), evidence shortened for a report
//! ([`excerpt`]), and the one check report both render (`report`, JUnit by quick-junit).
//!
//! A leaf: it names no other module of the crate; no IO, no clock.

#[cfg(test)]
pub(crate) mod docs;
pub mod report;

use std::fmt;

use serde::{Deserialize, Serialize};

/// How binding a check is: a **must** failure fails the suite (exit 1), a **should** failure is
/// reported but does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
}

impl Level {
    /// The level as reports spell it: `must`, `should`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
        }
    }
}

/// What a check rests on, firmest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Documented by Microsoft: the section of `docs/dps-mqtt.md` that says so.
    Documented(&'static str),
    /// What an Azure SDK does (and so what DPS must put up with), not documented as such.
    SdkBehaviour(&'static str),
    /// Inferred from what is documented or observed; the reasoning.
    Inference(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Documented(section) => write!(f, "documented: docs/dps-mqtt.md {section}"),
            Source::SdkBehaviour(what) => write!(f, "SDK behaviour: {what}"),
            Source::Inference(why) => write!(f, "inference: {why}"),
        }
    }
}

/// What a check came to, in the terms every report of checks shares (a JUnit test case's
/// result): each catalogue's own verdicts map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    Pass,
    Fail,
    /// Could not be exercised: something in the way, which is not a failure of the check.
    Inconclusive,
    /// Not judged: waived, excluded, or never given a chance.
    Skipped,
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
