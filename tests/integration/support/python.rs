//! The Python readers the tests check outputs with (tests/tools).

use std::path::Path;
use std::process::Command;

use super::binary::text;

/// The Python of target/report-venv, installed by tests/tools/venv.sh on first use.
pub fn tools_python() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/venv.sh");
    let output = Command::new(script).output().unwrap();
    assert!(output.status.success(), "tests/tools/venv.sh failed: {}", text(&output.stderr));
    text(&output.stdout).trim().to_string()
}

/// Reads a JUnit XML file with tests/tools/read_junit.py (junitparser, an independent reader, as
/// CI systems parse these files): each suite's declared counts and every test case's result.
pub fn read_junit(file: &Path) -> serde_json::Value {
    let output = Command::new(tools_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/read_junit.py"))
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "junitparser could not read {}: {}", file.display(), text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}
