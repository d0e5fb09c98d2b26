//! Around the suite: the positive control run before it (a valid device must get in, or the
//! user's setup is at fault, not the target), and the line after it naming the must-checks that
//! were skipped with the flag that would run them. No files.

use rumqttc::mqttbytes::v4::ConnectReturnCode;

use crate::conformance::probes::{ClientError, ProbeTarget};
use crate::conformance::suite::ConformanceReport;

/// Connects one valid device of the group (no registration, so nothing billable). Err names the
/// likely setup mistake in one line.
pub(super) async fn valid_device_connects(target: &ProbeTarget) -> Result<(), String> {
    let id = target.registration_id("control");
    let token = target.token(&target.id_scope, &id, &target.device_key(&id), 3600);
    let connect = target.connect_packet(id.as_str(), &target.id_scope, id.as_str(), &token, true);
    let control = "the positive control (a valid device connecting) failed, so the suite did not run";
    let mut client = target.open().await.map_err(|error| match &error {
        error if error.in_tls_handshake() => format!(
            "{control}: {error}: is --ca the CA that signs {}'s certificate (for the emulator, its --ca-out)?",
            target.address
        ),
        error => format!("{control}: {error}"),
    })?;
    let answer = client.connect(connect).await;
    client.disconnect().await;
    match answer {
        Ok(connack) if connack.code == ConnectReturnCode::Success => Ok(()),
        Ok(connack) => Err(format!(
            "{control}: CONNACK {} ({}): wrong group key (--key-env, --key-file) or wrong --id-scope {}?",
            connack.code as u8,
            refusal(connack.code),
            target.id_scope
        )),
        Err(error @ (ClientError::Closed(_) | ClientError::Silent { .. })) => {
            Err(format!("{control}: {error}: is {} a DPS endpoint?", target.address))
        }
        Err(error) => Err(format!("{control}: {error}")),
    }
}

fn refusal(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::NotAuthorized => "not authorized",
        ConnectReturnCode::BadUserNamePassword => "bad user name or password",
        ConnectReturnCode::BadClientId => "client ID rejected",
        ConnectReturnCode::ServiceUnavailable => "service unavailable",
        ConnectReturnCode::RefusedProtocolVersion => "protocol version refused",
        ConnectReturnCode::Success => "accepted",
    }
}

/// A must-check the suite skipped, with the flag its evidence names as the way to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Skipped {
    pub id: String,
    pub flag: Option<String>,
}

/// Must-checks skipped (waived ones are deliberate and not listed).
pub(super) fn skipped_must_checks(report: &ConformanceReport) -> Vec<Skipped> {
    report
        .must_skipped()
        .map(|result| Skipped {
            id: result.check.id.clone(),
            flag: result
                .evidence
                .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
                .find(|word| word.starts_with("--") && word.len() > 2)
                .map(str::to_string),
        })
        .collect()
}

/// One line listing the skipped must-checks grouped by the flag that would run them, or none
/// when there are none.
pub(super) fn skipped_line(skipped: &[Skipped], require_all: bool) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let mut groups: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
    for check in skipped {
        let flag = check.flag.as_deref();
        match groups.iter_mut().find(|(f, _)| *f == flag) {
            Some((_, ids)) => ids.push(&check.id),
            None => groups.push((flag, vec![&check.id])),
        }
    }
    let list: Vec<String> = groups
        .iter()
        .map(|(flag, ids)| match flag {
            Some(flag) => format!("{} ({flag})", ids.join(", ")),
            None => ids.join(", "),
        })
        .collect();
    let consequence = if require_all { "exit 1 under --require-all" } else { "--require-all makes this exit 1" };
    Some(format!("dpsbench: {} must-checks skipped: {}; {consequence}", skipped.len(), list.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::Kind;
    use crate::conformance::suite::CheckResult;
    use crate::conformance::suite::Status;
    use crate::grading::Level;

    fn result(id: &str, level: Level, status: Status, evidence: &str) -> CheckResult {
        use crate::grading::report::StatedCheck;
        CheckResult {
            check: StatedCheck { id: id.into(), title: String::new(), statement: String::new(), level },
            kind: Kind::Probe,
            status,
            evidence: evidence.into(),
            blocked_by: None,
            probes: Vec::new(),
            seconds: 0.0,
        }
    }

    #[test]
    fn skipped_must_checks_are_listed_with_the_flag_that_runs_them() {
        let report = ConformanceReport {
            schema: String::new(),
            target: String::new(),
            id_scope: String::new(),
            started_at: String::new(),
            duration_seconds: 0.0,
            results: vec![
                result("DPS-WS-001", Level::Must, Status::Skipped, "no WebSocket endpoint (give --ws-target)"),
                result("DPS-AUTH-005", Level::Must, Status::Skipped, "no CA (give --x509-ca-dir)"),
                result("DPS-WS-002", Level::Must, Status::Skipped, "no WebSocket endpoint (give --ws-target)"),
                result("DPS-X-001", Level::Should, Status::Skipped, "(give --ws-target)"),
                result("DPS-X-002", Level::Must, Status::Waived, "waived: known"),
                result("DPS-X-003", Level::Must, Status::Skipped, "no probe produced a result"),
                result("DPS-X-004", Level::Must, Status::Pass, "ok"),
            ],
        };
        let skipped = skipped_must_checks(&report);
        let ids: Vec<_> = skipped.iter().map(|s| (s.id.as_str(), s.flag.as_deref())).collect();
        assert_eq!(
            ids,
            [
                ("DPS-WS-001", Some("--ws-target")),
                ("DPS-AUTH-005", Some("--x509-ca-dir")),
                ("DPS-WS-002", Some("--ws-target")),
                ("DPS-X-003", None)
            ]
        );
        let line = skipped_line(&skipped, false).expect("a line");
        assert_eq!(
            line,
            "dpsbench: 4 must-checks skipped: DPS-WS-001, DPS-WS-002 (--ws-target); DPS-AUTH-005 (--x509-ca-dir); \
             DPS-X-003; --require-all makes this exit 1"
        );
        assert_eq!(skipped_line(&[], true), None);
    }
}
