//! Every TOML example in README.md and scenarios/README.md parses as what it shows: an emulator
//! configuration, a scenario (or a part of one, completed with a minimal header) or a waiver
//! file. Tests only.

use std::path::Path;

use crate::emulator::EmulatorConfig;
use crate::scenario::{Plan, ScenarioFile};

const DOCUMENTS: [(&str, &str); 2] = [
    ("README.md", include_str!("../../README.md")),
    ("scenarios/README.md", include_str!("../../scenarios/README.md")),
];

/// What an example is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    EmulatorConfig,
    Scenario,
    Waivers,
}

/// The fenced ```toml blocks of `markdown`, with the line each starts on.
fn toml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with("```toml") => current = Some((number + 1, String::new())),
            (Some(_), fence) if fence.starts_with("```") => blocks.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn kind(block: &str) -> Kind {
    let top_level = |key: &str| block.lines().take_while(|l| !l.starts_with('[')).any(|l| l.starts_with(key));
    if block.contains("[[waiver]]") {
        Kind::Waivers
    } else if top_level("id_scope") {
        // A scenario's ID scope is in its [target]; only the emulator's file has one on top.
        Kind::EmulatorConfig
    } else {
        Kind::Scenario
    }
}

fn check(block: &str) -> Result<Kind, String> {
    let kind = kind(block);
    match kind {
        Kind::EmulatorConfig => crate::toml_file::parse::<EmulatorConfig>(block).map(drop),
        Kind::Waivers => {
            let path = std::env::temp_dir().join(format!("dpsbench-readme-waivers-{}.toml", std::process::id()));
            std::fs::write(&path, block).map_err(|e| e.to_string())?;
            let loaded = super::conform::load_waivers(&path).map(drop).map_err(|e| format!("{e:#}"));
            let _ = std::fs::remove_file(&path);
            loaded
        }
        Kind::Scenario => {
            let has_name = block.lines().any(|l| l.starts_with("name"));
            // A part of a scenario is completed with a header and an arrival plan; `[devices]` is
            // left out, as it may be.
            let text = match (has_name, block.contains("[arrival]")) {
                (true, _) => block.to_string(),
                (false, true) => format!("name = \"readme\"\n[target]\nkind = \"embedded\"\n{block}"),
                (false, false) => {
                    format!("name = \"readme\"\n[target]\nkind = \"embedded\"\n{block}\n[arrival]\nrate = 1\n")
                }
            };
            let text = match text.contains("[run]") {
                true => text,
                false => format!("{text}\n[run]\nduration_seconds = 1\n"),
            };
            let file: ScenarioFile = crate::toml_file::parse(&text)?;
            let key = crate::credentials::SymmetricKey::random().to_base64();
            Plan::resolve(file, Path::new("scenarios/readme.toml"), &|_| Some(key.clone()))
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
    .map(|()| kind)
}

#[test]
fn every_toml_example_in_the_readmes_parses_as_what_it_shows() {
    let mut kinds = Vec::new();
    for (name, text) in DOCUMENTS {
        for (line, block) in toml_blocks(text) {
            match check(&block) {
                Ok(kind) => kinds.push(kind),
                Err(error) => panic!("{name}:{line}: the example does not parse: {error}\n{block}"),
            }
        }
    }
    for expected in [Kind::EmulatorConfig, Kind::Scenario, Kind::Waivers] {
        assert!(kinds.contains(&expected), "no {expected:?} example found: {kinds:?}");
    }
}

#[test]
fn a_misplaced_field_is_caught() {
    // The README's old mistake: top-level fields after an array of tables belong to its last entry.
    let misplaced = "id_scope = \"0ne00DPS001\"\nhubs = [\"h\"]\n[[individual_enrollments]]\n\
                     registration_id = \"dev-1\"\nprimary_key = \"k\"\necho_payload = false\n";
    assert_eq!(kind(misplaced), Kind::EmulatorConfig);
    let error = check(misplaced).unwrap_err();
    assert!(error.contains("echo_payload"), "{error}");
    assert_eq!(toml_blocks("a\n```toml\nx = 1\n```\n```sh\nls\n```\n"), [(2, "x = 1\n".to_string())]);
}
