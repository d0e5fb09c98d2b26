//! Grading: the words both check catalogues grade in (the conformance checks a target is held to,
//! the client checks a device is held to): how binding a check is ([`Level`]), how firm its
//! ground is ([`Source`]), evidence shortened for a report ([`excerpt`]) and text escaped for
//! XML ([`xml_escape`]).
//!
//! A leaf: it names no other module of the crate; no IO, no clock.

#[cfg(test)]
pub(crate) mod docs;

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

/// Shortens a packet body for evidence: the first 160 characters, lossily decoded.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut short: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        short.push('…');
    }
    short
}

/// Escapes text for an XML attribute or text node; control characters XML cannot hold become
/// spaces.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
