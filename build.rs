//! Names the commit the binary is built from, for `dpsbench --version`: `git rev-parse` when the
//! sources are a git checkout, else `DPSBENCH_COMMIT` from the environment (a container build
//! passes it in), else "unknown commit".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DPSBENCH_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let from_git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|hash| format!("commit {}", hash.trim()));
    let commit = std::env::var("DPSBENCH_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| format!("commit {c}"))
        .or(from_git)
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=DPSBENCH_COMMIT={commit}");
}
