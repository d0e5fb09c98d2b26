//! TOML files dpsbench reads (scenarios, emulator configurations, waivers): text into a typed
//! serde value, with the parser's error on one line a person reads: where (line and column,
//! with the line itself) and what, in words rather than Rust type names. Reads no files
//! itself; callers name the file.

use serde::de::DeserializeOwned;

/// Parses `text`; the error says where (`line 3, column 9: count = "ten"`) and what (`expected
/// a whole number, found the string "ten"`), on one line.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| describe(text, e.message(), e.span()))
}

/// The error at `span` of `text`, on one line.
fn describe(text: &str, message: &str, span: Option<std::ops::Range<usize>>) -> String {
    let what = plain(message);
    // An error of the whole document (a missing field, or a flattened field that names itself)
    // has no line of its own.
    let whole = |what: &str| what.starts_with("missing field") || what.starts_with("field `");
    // A struct with a flattened part refuses an unknown key only at the end of the document:
    // the key's own line is then found by its name.
    let span = match span {
        Some(s) if s.start == 0 => unknown_key(&what).and_then(|key| top_level_key(text, key)).or(Some(s)),
        other => other,
    };
    let Some(span) = span.filter(|s| s.start < text.len() && !(s.start == 0 && whole(&what))) else {
        return what;
    };
    let before = &text[..span.start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = text[line_start..span.start].chars().count() + 1;
    let source = text[line_start..].lines().next().unwrap_or("").trim();
    format!("line {line}, column {column}: {source}: {what}")
}

/// The key an `unknown field` error names, when the error lists no accepted keys (a flattened
/// struct's error, which has no position of its own).
fn unknown_key(what: &str) -> Option<&str> {
    what.strip_prefix("unknown field `")?.strip_suffix('`')
}

/// Where the top-level `key` stands in `text`: its `key = …` line before the first table, or
/// its own table's header (`[key]`, `[key.part]`, `[[key]]`).
fn top_level_key(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let mut at = 0;
    let mut in_table = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let header = trimmed.trim_start_matches('[').trim_start();
        if trimmed.starts_with('[') {
            in_table = true;
            let named = header.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with([']', '.']));
            if named {
                return Some(at + indent..at + line.trim_end().len());
            }
        } else if !in_table && trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=')) {
            return Some(at + indent..at + line.trim_end().len());
        }
        at += line.len();
    }
    None
}

/// serde's words for types, in a user's: `u64` is a whole number, `f64` a number.
fn plain(message: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected an integer"),
        ("expected i32", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("invalid type: string ", "found the string "),
        ("invalid type: integer ", "found the number "),
        ("invalid type: floating point ", "found the number "),
        ("invalid type: boolean ", "found "),
    ];
    let mut text = message.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in WORDS {
        text = text.replace(from, to);
    }
    // `found the string "ten", expected a whole number` reads better the other way round.
    match text.split_once(", expected ") {
        Some((found, expected)) if found.starts_with("found ") => format!("expected {expected}, {found}"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only the error is looked at")]
    struct File {
        name: String,
        count: Option<u32>,
        rate: Option<f64>,
    }

    #[test]
    fn errors_say_where_and_what_on_one_line_in_words() {
        let err = parse::<File>("name = \"x\"\n\ncount = \"ten\"\n").unwrap_err();
        assert_eq!(err, "line 3, column 9: count = \"ten\": expected a whole number, found the string \"ten\"");
        let err = parse::<File>("name = \"x\"\nrate = true\n").unwrap_err();
        assert_eq!(err, "line 2, column 8: rate = true: expected a number, found `true`");
        let err = parse::<File>("count = 3\n").unwrap_err();
        assert_eq!(err, "missing field `name`");
        let err = parse::<File>("name = \"x\"\ncont = 3\n").unwrap_err();
        assert!(err.starts_with("line 2, column 1: cont = 3: unknown field `cont`, expected one of"), "{err}");
        let err = parse::<File>("name = \"x\n").unwrap_err();
        assert!(err.starts_with("line 1, column") && !err.contains('\n'), "{err}");
        for err in [err, parse::<File>("name = [\n").unwrap_err()] {
            assert!(!err.contains(" | ") && !err.contains("u32") && !err.contains('\n'), "{err}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only the error is looked at")]
    struct Flattened {
        name: String,
        #[serde(flatten)]
        part: Part,
        table: Option<toml::Table>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only the error is looked at")]
    struct Part {
        count: Option<u32>,
    }

    #[test]
    fn an_unknown_key_beside_a_flattened_part_is_found_on_its_line() {
        let err = parse::<Flattened>("name = \"x\"\ncont = 3\n[table]\ncont = 4\n").unwrap_err();
        assert_eq!(err, "line 2, column 1: cont = 3: unknown field `cont`");
        let err = parse::<Flattened>("name = \"x\"\n[table]\n[[tables]]\nk = 1\n").unwrap_err();
        assert_eq!(err, "line 3, column 1: [[tables]]: unknown field `tables`");
    }
}
