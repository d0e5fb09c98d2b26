//! `devices.csv` (`dpsbench run --devices-csv`): one row per finished device, written as devices
//! finish. Pure: records in, CSV lines out; the CLI appends them to the file.

use crate::metrics::{DeviceRecord, Phase};

/// The header line: identity, outcome, each phase's time in microseconds (in [`Phase::ALL`]
/// order, `<phase>_us`), then the counts and the hub.
pub fn header() -> Vec<u8> {
    let mut fields = vec!["registration_id".to_string(), "personality".into(), "outcome".into(), "failure_kind".into()];
    fields.extend(Phase::ALL.iter().map(|phase| format!("{}_us", phase.as_str())));
    fields.extend(["register_attempts".into(), "polls".into(), "hub".into()]);
    super::csv::line(fields)
}

/// The rows of `devices`, one line each. A phase the device did not reach is an empty cell;
/// `poll_us` is the sum of its poll round trips.
pub fn rows(devices: &[DeviceRecord]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for device in devices {
        let mut fields = vec![
            device.registration_id.clone(),
            device.personality.to_string(),
            device.outcome.to_string(),
            device.failure_kind.clone().unwrap_or_default(),
        ];
        fields.extend(device.phase_us.iter().map(|us| us.map(|us| us.to_string()).unwrap_or_default()));
        fields.extend([
            device.register_attempts.to_string(),
            device.polls.to_string(),
            device.hub.clone().unwrap_or_default(),
        ]);
        bytes.extend(super::csv::line(fields));
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_device_with_every_phase_in_order() {
        assert_eq!(
            header(),
            b"registration_id,personality,outcome,failure_kind,schedule_lag_us,tcp_connect_us,tls_handshake_us,\
              ws_upgrade_us,connack_us,suback_us,register_accepted_us,poll_us,assigned_us,assigned_raw_us,\
              end_to_end_us,register_attempts,polls,hub\n"
        );
        let mut phase_us = [None; Phase::ALL.len()];
        for (index, us) in [(0, 120), (1, 95), (2, 2_100), (4, 310), (5, 180), (6, 420), (7, 760)] {
            phase_us[index] = Some(us);
        }
        let assigned = DeviceRecord {
            registration_id: "dev-0001".into(),
            personality: "dpsbench",
            outcome: "assigned",
            failure_kind: None,
            phase_us: {
                let mut all = phase_us;
                all[8] = Some(1_004_000);
                all[9] = Some(1_003_880);
                all[10] = Some(1_004_100);
                all
            },
            register_attempts: 2,
            polls: 2,
            hub: Some("hub-a.example".into()),
        };
        let failed = DeviceRecord {
            registration_id: "dev-0002".into(),
            personality: "python",
            outcome: "failed",
            failure_kind: Some("timeout_connack".into()),
            phase_us: [Some(80), Some(90), Some(2_000), None, None, None, None, None, None, None, Some(10_000_000)],
            register_attempts: 0,
            polls: 0,
            hub: None,
        };
        assert_eq!(
            String::from_utf8(rows(&[assigned, failed])).expect("text"),
            "dev-0001,dpsbench,assigned,,120,95,2100,,310,180,420,760,1004000,1003880,1004100,2,2,hub-a.example\n\
             dev-0002,python,failed,timeout_connack,80,90,2000,,,,,,,,10000000,0,0,\n"
        );
    }
}
