//! Round-trip properties (build, then parse, gives back what was built) and never-panics
//! properties for the text formats topics and tokens (in their modules) do not cover: DPS bodies,
//! registration ID patterns and arrival stages.

use std::time::Duration;

use dpsbench::arrival::Stage;
use dpsbench::credentials::RegistrationId;
use dpsbench::messages::{
    DeviceRegistration, ErrorBody, OperationStatus, RegistrationOperationStatus, RegistrationState, ReplyBody,
};
use dpsbench::scenario::IdPattern;
use proptest::prelude::*;
use serde_json::{Value, json};

fn status() -> impl Strategy<Value = OperationStatus> {
    prop_oneof![
        Just(OperationStatus::Assigning),
        Just(OperationStatus::Assigned),
        Just(OperationStatus::Failed),
        Just(OperationStatus::Disabled),
        Just(OperationStatus::Unassigned),
    ]
}

fn payload() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(("[a-zA-Z]{1,12}", any::<i64>(), ".{0,40}").prop_map(|(k, n, s)| json!({ k: n, "s": s })))
}

proptest! {
    #[test]
    fn register_bodies_round_trip(
        registration_id in proptest::option::of("[A-Za-z0-9._:-]{1,128}"),
        payload in payload(),
        csr in proptest::option::of("[A-Za-z0-9+/=]{0,200}"),
    ) {
        let body = DeviceRegistration { registration_id, payload, csr, tpm: None };
        let bytes = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(DeviceRegistration::parse(&bytes).unwrap(), body);
    }

    #[test]
    fn operation_status_bodies_round_trip(
        operation_id in "[0-9a-f.-]{0,60}",
        status in status(),
        hub in proptest::option::of("[a-z0-9.-]{1,60}"),
        device_id in proptest::option::of("[A-Za-z0-9._:-]{1,128}"),
        error_code in proptest::option::of(any::<i64>()),
        etag in proptest::option::of("[A-Za-z0-9=]{0,20}"),
        payload in payload(),
        with_state in any::<bool>(),
        reply_status in 200u16..300,
    ) {
        let state = RegistrationState {
            assigned_hub: hub,
            device_id,
            status: Some(status),
            error_code,
            etag,
            payload,
            ..Default::default()
        };
        let body = RegistrationOperationStatus { operation_id, status, registration_state: with_state.then_some(state) };
        let bytes = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(ReplyBody::parse(reply_status, &bytes).unwrap(), ReplyBody::Operation(Box::new(body)));
    }

    #[test]
    fn error_bodies_round_trip(
        error_code in any::<i64>(),
        tracking_id in "[0-9a-f-]{0,36}",
        message in ".{0,100}",
        timestamp in "[0-9TZ:.-]{0,30}",
        reply_status in 300u16..1000,
    ) {
        let body = ErrorBody { error_code, tracking_id, message, info: None, timestamp_utc: timestamp };
        let bytes = serde_json::to_vec(&body).unwrap();
        prop_assert_eq!(ReplyBody::parse(reply_status, &bytes).unwrap(), ReplyBody::Error(body));
    }

    #[test]
    fn body_parsers_never_panic(status in any::<u16>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = ReplyBody::parse(status, &bytes);
        let _ = DeviceRegistration::parse(&bytes);
    }

    #[test]
    fn id_patterns_round_trip(
        // What a registration ID may start and end with (DPS: alphanumeric first, alphanumeric or
        // `-` last).
        prefix in "([A-Za-z0-9][A-Za-z0-9._:-]{0,39})?",
        suffix in "([A-Za-z0-9._:-]{0,39}[A-Za-z0-9-])?",
        width in proptest::option::of(1usize..=20),
        index in any::<u64>(),
    ) {
        let text = match width {
            Some(width) => format!("{prefix}{{index:0{width}}}{suffix}"),
            None => format!("{prefix}{{index}}{suffix}"),
        };
        let pattern = IdPattern::parse(&text).unwrap();
        let id = pattern.render(index);
        let digits = &id[prefix.len()..id.len() - suffix.len()];
        prop_assert_eq!(digits.parse::<u64>().unwrap(), index);
        prop_assert!(digits.len() >= width.unwrap_or(1));
        prop_assert_eq!(&id, &format!("{prefix}{index:0w$}{suffix}", w = width.unwrap_or(0)));
        // Every rendered ID of a sane length is a valid registration ID.
        prop_assert!(RegistrationId::new(id.clone()).is_ok(), "{id}");
    }

    #[test]
    fn id_pattern_parser_never_panics(text in ".{0,80}", index in any::<u64>()) {
        if let Ok(pattern) = IdPattern::parse(&text) {
            let _ = pattern.render(index);
        }
    }

    #[test]
    fn stages_round_trip(
        millis in 1u64..10_000_000,
        from in 0u32..1_000_000,
        to in 0u32..1_000_000,
        fraction in 0u32..100,
        ramp in any::<bool>(),
    ) {
        let from = f64::from(from) + f64::from(fraction) / 100.0;
        let to = f64::from(to);
        let text = if ramp { format!("{millis}ms:{from}->{to}/s") } else { format!("{millis}ms:{from}/s") };
        let stage = Stage::parse(&text).unwrap();
        prop_assert_eq!(stage.duration, Duration::from_millis(millis));
        prop_assert_eq!((stage.from, stage.to), (from, if ramp { to } else { from }));
        // The same stage in seconds.
        if millis % 1000 == 0 {
            let seconds = Stage::parse(&format!("{}s:{from}->{to}/s", millis / 1000)).unwrap();
            prop_assert_eq!(seconds.duration, stage.duration);
        }
    }

    #[test]
    fn stage_parser_never_panics(text in ".{0,60}") {
        let _ = Stage::parse(&text);
    }
}

/// Found by the `bodies` fuzz target: a payload number re-serialised one unit in the last place
/// off (`1.1e69` came back as `1.0999999999999999e69`), so an echoed payload was not the one
/// sent. serde_json's `float_roundtrip` parses floats exactly.
#[test]
fn fuzz_bodies_a_large_float_payload_round_trips_exactly() {
    let crash = b"[[\t\"\",1100000000000000000000000000000000000000000000000000000000000000000000]";
    let body = DeviceRegistration::parse(&crash[1..]).unwrap();
    let again = DeviceRegistration::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(again, body);
    let payload = DeviceRegistration::parse(br#"{"payload":{"t":1.1e69,"u":0.30000000000000004}}"#).unwrap();
    assert_eq!(serde_json::to_string(&payload.payload).unwrap(), r#"{"t":1.1e+69,"u":0.30000000000000004}"#);
}
