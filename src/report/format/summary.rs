//! `summary.json`: a run's summary as the file holds it. Pure: a [`RunSummary`] in, bytes out
//! (`folder` reads it back).

use crate::results::RunSummary;

/// `summary.json`, pretty-printed.
pub fn json(summary: &RunSummary) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(summary).expect("a summary always serialises");
    bytes.push(b'\n');
    bytes
}
