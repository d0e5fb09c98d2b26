//! Checking JSON against the committed schemas.

use serde_json::Value;

/// Checks `value` against the subset of JSON Schema the committed schema uses.
pub fn check_schema(schema: &Value, value: &Value, at: &str) {
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            other => panic!("schema type {other} not handled"),
        };
        assert!(ok, "{at}: expected {kind}, got {value}");
    }
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let name = name.as_str().unwrap();
        assert!(value.get(name).is_some(), "{at}: missing required `{name}`");
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            if let Some(child) = value.get(name) {
                check_schema(sub, child, &format!("{at}.{name}"));
            }
        }
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|s| s.is_object()) {
        let known = schema.get("properties").and_then(Value::as_object);
        for (name, child) in value.as_object().into_iter().flatten() {
            if known.is_none_or(|k| !k.contains_key(name)) {
                check_schema(extra, child, &format!("{at}.{name}"));
            }
        }
    }
}
