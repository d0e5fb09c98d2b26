//! The scenario loader: TOML text to a resolved plan. Must never panic; errors are values.
#![no_main]

use std::path::Path;

use dpsbench::scenario::{Plan, ScenarioFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A scenario may name files to read; special files (an endless /dev/zero) are not what is
    // fuzzed here.
    if ["/dev", "/proc", "/sys"].iter().any(|special| text.contains(special)) {
        return;
    }
    let Ok(file) = dpsbench::toml_file::parse::<ScenarioFile>(text) else { return };
    let _ = Plan::resolve(file, Path::new("/nonexistent/fuzz/scenario.toml"), &|name| {
        (name == "DPS_GROUP_KEY").then(|| "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=".to_string())
    });
});
