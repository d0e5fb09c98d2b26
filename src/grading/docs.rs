//! Test support for both catalogues: the table a catalogue generates for its page under `docs/`
//! kept in step with it. Reads (and, asked to, rewrites) that page; compiled for tests only.

/// Requires the file at `relative` (to the crate) to hold `generated` between its `begin` and
/// `end` markers; with `UPDATE_DOCS` set, rewrites that part instead. `test` names the test
/// that rewrites it, for the message.
pub(crate) fn assert_docs_hold(relative: &str, begin: &str, end: &str, generated: &str, test: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (Some(from), Some(to)) = (text.find(begin), text.find(end)) else {
        panic!("{} has lost its markers {begin:?} and {end:?}", path.display());
    };
    let generated = format!("{begin}\n{generated}\n{end}");
    let committed = &text[from..to + end.len()];
    if committed == generated {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{generated}{}", &text[..from], &text[to + end.len()..]);
        std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    panic!(
        "{} is out of step with the catalogue; rewrite it with\n  UPDATE_DOCS=1 cargo test --lib {test}",
        path.display()
    );
}
