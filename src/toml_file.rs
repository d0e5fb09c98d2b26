//! TOML files dpsbench reads (scenarios, emulator configurations, waivers): text into a typed
//! serde value, with the parser's error on one line. Reads no files itself; callers name the file.

use serde::de::DeserializeOwned;

/// Parses `text`; the error is the parser's message on one line (it names the line, shows the
/// offending key and, for an unknown value, lists the accepted ones).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| one_line(&e.to_string()))
}

/// TOML errors span several lines (a source excerpt); the CLI prints one line.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fit_on_one_line() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only the error is looked at")]
        struct File {
            count: u32,
        }
        let err = parse::<File>("count = \"many\"\n").unwrap_err();
        assert!(!err.contains('\n') && err.contains("count"), "{err}");
    }
}
