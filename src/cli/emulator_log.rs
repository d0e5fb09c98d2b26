//! The standalone emulator's log: the lines `emulator::standalone` tells it (one a second while
//! it has traffic, one for each reason TLS handshakes failed, the lines it says when it stops),
//! and those it says when it starts; every stderr line opens with its instant in RFC 3339 UTC.
//! The IO here is those lines; what they say is built by pure functions beside them.

use std::net::SocketAddr;

use crate::emulator::ServiceConfig;

/// Writes one log line on stderr, after the instant it was written.
pub(super) fn log(line: &str) {
    errln!("{}", stamped(std::time::SystemTime::now(), line));
}

/// `line` after `at` in RFC 3339 UTC.
fn stamped(at: std::time::SystemTime, line: &str) -> String {
    format!("{} {line}", crate::timestamp::rfc3339(at))
}

/// The line on stdout that says the emulator is ready, with what it serves.
pub(super) fn ready_line(address: SocketAddr, websocket: &str, config: &ServiceConfig, processes: usize) -> String {
    let groups = config.groups.len() + config.x509_groups.len();
    let individuals = config.individuals.len() + config.x509_individuals.len();
    format!(
        "dpsbench emulator listening on {address}{websocket} (id scope {}, {}, {}{})",
        config.id_scope,
        counted(groups, "enrollment group", "enrollment groups"),
        counted(individuals, "individual enrollment", "individual enrollments"),
        match processes {
            1 => String::new(),
            n => format!(", {n} processes sharing the address"),
        }
    )
}

/// What may be a mistake in a configuration the emulator starts with anyway.
pub(super) fn warnings(config: &ServiceConfig) -> Vec<String> {
    let groups = config.groups.len() + config.x509_groups.len();
    let individuals = config.individuals.len() + config.x509_individuals.len();
    let mut warnings = Vec::new();
    if groups + individuals == 0 {
        warnings.push(
            "dpsbench emulator: warning: 0 enrollment groups and 0 individual enrollments: every device will be \
             refused (add [[enrollment_groups]] with a primary_key to the configuration)"
                .to_string(),
        );
    }
    warnings
}

fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{IdScope, SymmetricKey};

    #[test]
    fn counts_are_pluralised_and_an_empty_configuration_warned_of() {
        let scope = IdScope::new("0ne00LOG001").unwrap();
        let hubs = vec!["hub.example".to_string()];
        let address: SocketAddr = "127.0.0.1:8883".parse().unwrap();
        let one = ServiceConfig::single_group(scope.clone(), hubs.clone(), SymmetricKey::random());
        assert_eq!(
            ready_line(address, "", &one, 1),
            "dpsbench emulator listening on 127.0.0.1:8883 (id scope 0ne00LOG001, 1 enrollment group, \
             0 individual enrollments)"
        );
        assert!(warnings(&one).is_empty());
        let none = ServiceConfig::new(scope, hubs);
        assert!(
            ready_line(address, "", &none, 2).contains("0 enrollment groups, 0 individual enrollments, 2 processes")
        );
        let warned = warnings(&none);
        assert!(warned.len() == 1 && warned[0].contains("0 enrollment groups") && warned[0].contains("refused"));
    }

    #[test]
    fn log_lines_open_with_an_rfc3339_utc_instant() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        let line = stamped(at, "dpsbench emulator: connections +1 (1)");
        let (instant, rest) = line.split_once(' ').unwrap();
        assert_eq!(crate::timestamp::parse_rfc3339(instant), Ok(at));
        assert!(instant.ends_with('Z') && rest == "dpsbench emulator: connections +1 (1)", "{line}");
    }
}
