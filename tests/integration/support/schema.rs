//! Checking JSON against the committed schemas: full JSON Schema validation (`$ref`, `const`,
//! `enum`, `items`, bounds, type lists) by the `jsonschema` crate, under the draft each schema
//! declares. No checker of our own, no partial reading of a schema.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

/// The draft every committed schema declares, and the one it is validated under.
const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The committed schema of `summary.json`.
const SUMMARY_SCHEMA: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/reports/summary.schema.json"));

/// Checks `value` against `schema` fully; fails naming every place (under `at`) where the value
/// disagrees. The schema must declare draft 2020-12 and be valid under its meta-schema.
pub fn check_schema(schema: &Value, value: &Value, at: &str) {
    check_with(&validator(schema), value, at);
}

/// Reads `folder/summary.json` and checks it against the committed schema.
pub fn read_summary(folder: &Path) -> Value {
    let path = folder.join("summary.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let summary: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    static SUMMARY: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SUMMARY.get_or_init(|| validator(&serde_json::from_str(SUMMARY_SCHEMA).unwrap()));
    check_with(validator, &summary, &path.display().to_string());
    summary
}

/// A validator for `schema`, which must declare draft 2020-12 (checked against its meta-schema).
fn validator(schema: &Value) -> jsonschema::Validator {
    assert_eq!(schema["$schema"], DRAFT, "the schema declares the draft it is written in");
    jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("not a valid draft 2020-12 schema: {e}"))
}

fn check_with(validator: &jsonschema::Validator, value: &Value, at: &str) {
    let errors: Vec<String> =
        validator.iter_errors(value).map(|e| format!("  {at}{}: {e}", e.instance_path().as_str())).collect();
    assert!(errors.is_empty(), "{at} disagrees with its schema:\n{}", errors.join("\n"));
}

#[test]
fn every_committed_schema_declares_its_draft_and_is_a_valid_schema() {
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut checked = 0;
    for entry in std::fs::read_dir(&reports).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".schema.json") {
            let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            validator(&schema);
            checked += 1;
        }
    }
    assert!(checked >= 1, "no schema under {}", reports.display());
}
