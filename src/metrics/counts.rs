//! Counts keyed by name (failure kinds, hubs, faults, certificate failures), added key by key:
//! the one `add` that every merge of such a map uses. Plain data; no IO.

use std::collections::BTreeMap;

/// Adds `theirs` into `mine`, key by key.
pub fn add_counts(mine: &mut BTreeMap<String, u64>, theirs: &BTreeMap<String, u64>) {
    for (key, value) in theirs {
        *mine.entry(key.clone()).or_default() += value;
    }
}
