//! The parts of the test command a user may leave out, by name: `./scripts/test --skip PART`
//! sets `DPSBENCH_SKIP` (comma-separated). A test that needs a tool which is not there fails,
//! naming the package to install, unless the user skipped that part by name: then it says so
//! loudly and returns. A missing tool never passes silently.

/// The parts a `DPSBENCH_SKIP` value names.
fn names(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).filter(|name| !name.is_empty()).collect()
}

/// Where `command` is found on the PATH.
pub fn on_path(command: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(command)).find(|candidate| candidate.is_file())
}

/// `what` (a tool `part` needs) is missing: a failure that says how to install it or how to
/// leave the part out, unless the user asked to skip `part`; then a loud line.
pub fn missing(part: &str, what: &str) {
    let list = std::env::var("DPSBENCH_SKIP").unwrap_or_default();
    assert!(
        names(&list).contains(&part),
        "{what}; ./scripts/test installs it, or leave this part out on purpose: ./scripts/test --skip {part}"
    );
    eprintln!("\n*** SKIPPED, as DPSBENCH_SKIP asks: {part} ({what}) ***\n");
}

#[test]
fn skipped_parts_are_named_whole() {
    assert_eq!(names("chromium"), ["chromium"]);
    assert_eq!(names("node-sdk, chromium,"), ["node-sdk", "chromium"]);
    assert!(!names("chromium-extra").contains(&"chromium"));
    assert!(names("").is_empty());
}
