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
