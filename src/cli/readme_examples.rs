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

/// The commands of README.md's walkthrough "A remote target, step by step": the fenced `sh`
/// block after each `<!-- walkthrough: NAME -->` marker, unindented, one command a line.
/// `tests/readme/walkthrough.sh` runs the same blocks, found the same way.
fn walkthrough_block(markdown: &str, name: &str) -> Option<Vec<String>> {
    let marker = format!("<!-- walkthrough: {name} -->");
    let mut lines = markdown.lines().skip_while(|l| !l.contains(&marker)).skip(1);
    let fence = lines.find(|l| !l.trim().is_empty())?;
    if fence.trim() != "```sh" {
        return None;
    }
    let indent = fence.len() - fence.trim_start().len();
    let commands = lines.take_while(|l| l.trim() != "```").map(|l| l.get(indent..).unwrap_or(l.trim()).to_string());
    Some(commands.collect())
}

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// Issue 24: the walkthrough's commands are all `dpsbench` commands its parser accepts, the
/// files they name are in the repository, and the example files agree with each other (one
/// group key). Running them is `tests/readme/walkthrough.sh`'s job (it binds 127.0.0.1:8883).
#[test]
fn the_remote_target_walkthrough_names_real_commands_and_files() {
    use clap::Parser as _;
    let readme = DOCUMENTS[0].1;
    let mut commands = Vec::new();
    for name in ["emulator", "run"] {
        let block = walkthrough_block(readme, name).unwrap_or_else(|| panic!("no walkthrough block {name:?}"));
        assert!(!block.is_empty(), "walkthrough block {name:?} is empty");
        commands.extend(block);
    }
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"dpsbench"), "{command}");
        if let Err(error) = super::Cli::try_parse_from(&words) {
            panic!("README walkthrough: {command}: {error}");
        }
        for path in words.iter().filter(|w| w.starts_with("examples/")) {
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            assert!(file.is_file(), "README walkthrough: {command}: no {}", file.display());
        }
    }
    let examples = Path::new(EXAMPLES);
    let (_, emulator) = EmulatorConfig::load(&examples.join("emulator.toml")).unwrap();
    assert_eq!(emulator.groups.len(), 1, "the walkthrough's emulator has one group");
    // The scenario resolves, its key read from group-key.txt (its CA comes from --ca).
    let plan = Plan::load(&examples.join("remote-target.toml"), &|_| None).unwrap();
    assert_eq!(plan.id_scope, emulator.id_scope, "the scenario's ID scope is the emulator's");
    let registration_id = plan.registration_id(0);
    assert_eq!(
        plan.device_key(0, &registration_id).to_base64(),
        emulator.groups[0].primary.derive_device_key(&registration_id).to_base64(),
        "group-key.txt holds the example emulator's group key"
    );
    assert_eq!(
        walkthrough_block("<!-- walkthrough: x -->\n  ```sh\n  a b\n  c\n  ```\n", "x"),
        Some(vec!["a b".to_string(), "c".to_string()])
    );
}
