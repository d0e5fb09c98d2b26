//! The module map's import rules, checked: each top-level module names only the modules its
//! row allows (`crate::…` in its code, tests left out). A new import up the map fails here
//! until the map in `lib.rs` and this table say it is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which top-level modules each may name. `cli` is the top and may name any.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "runner",
        &[
            "arrival",
            "certificates",
            "conformance",
            "credentials",
            "device",
            "emulator",
            "host",
            "metrics",
            "results",
            "scenario",
            "shard",
            "slo",
            "timestamp",
            "tls",
            "x509",
        ],
    ),
    (
        "conformance",
        &[
            "certificates",
            "credentials",
            "device",
            "emulator",
            "messages",
            "mqtt",
            "timestamp",
            "tls",
            "topics",
            "websocket",
            "x509",
        ],
    ),
    (
        "emulator",
        &[
            "certificates",
            "conformance",
            "credentials",
            "device",
            "messages",
            "mqtt",
            "timestamp",
            "tls",
            "toml_file",
            "topics",
            "websocket",
            "x509",
        ],
    ),
    ("report", &["conformance", "device", "metrics", "results", "scenario", "shard", "slo", "timestamp"]),
    ("results", &["conformance", "device", "metrics", "scenario", "slo"]),
    (
        "scenario",
        &["arrival", "certificates", "credentials", "device", "emulator", "slo", "tls", "toml_file", "websocket"],
    ),
    ("shard", &["arrival", "scenario"]),
    ("slo", &["metrics"]),
    ("metrics", &["certificates", "device"]),
    ("arrival", &[]),
    ("device", &["certificates", "credentials", "messages", "mqtt", "topics", "websocket"]),
    // The leaves.
    ("certificates", &[]),
    ("credentials", &[]),
    ("topics", &[]),
    ("messages", &["timestamp"]),
    ("timestamp", &[]),
    ("mqtt", &["websocket"]),
    ("tls", &["x509"]),
    ("x509", &["credentials", "timestamp"]),
    ("websocket", &[]),
    ("toml_file", &[]),
    ("host", &[]),
];

/// The modules each top-level module's code names, from every `.rs` file under `src`: lines
/// that are not comments, up to the file's test module; `tests.rs` files are tests.
fn named_modules(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let top = relative.iter().next().and_then(|c| c.to_str()).expect("a file name");
            let top = top.trim_end_matches(".rs").to_string();
            if matches!(top.as_str(), "lib" | "main" | "map") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file is UTF-8");
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let name: String =
                        line[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != top {
                        named.entry(top.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    named
}

#[test]
fn every_import_between_top_level_modules_is_one_the_map_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let named = named_modules(&src);
    assert!(named.get("runner").is_some_and(|n| n.contains("device")), "the scan finds imports: {named:?}");
    let mut wrong = Vec::new();
    for (module, names) in &named {
        if module == "cli" {
            continue;
        }
        let Some(row) = allowed.get(module.as_str()) else {
            wrong.push(format!("{module} has no row in the map's table"));
            continue;
        };
        wrong.extend(names.iter().filter(|n| !row.contains(&n.as_str())).map(|n| format!("{module} -> {n}")));
    }
    assert!(wrong.is_empty(), "imports the map does not allow: {wrong:?}");
}

#[test]
fn the_table_keeps_the_rules_the_map_states() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let leaves = [
        "certificates",
        "credentials",
        "topics",
        "messages",
        "timestamp",
        "mqtt",
        "tls",
        "x509",
        "websocket",
        "toml_file",
    ];
    for leaf in leaves {
        assert!(allowed[leaf].iter().all(|n| leaves.contains(n)), "{leaf} depends only on leaves");
    }
    assert!(allowed["device"].iter().all(|n| leaves.contains(n)), "the device core depends only on the leaves");
    assert!(!allowed["report"].contains(&"runner"), "report imports no runner");
    assert!(!allowed["metrics"].contains(&"conformance") && !allowed["arrival"].contains(&"conformance"));
    assert!(!allowed["scenario"].contains(&"shard"), "nothing runs back up from scenario to shard");
    for (module, row) in ALLOWED {
        assert!(!row.contains(&"cli") && !row.contains(&"runner") || *module == "cli", "{module} calls up the map");
    }
}
