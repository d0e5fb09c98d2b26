//! Register and status bodies: never panic, and what parses serialises and parses back the same.
#![no_main]

use dpsbench::messages::{DeviceRegistration, ReplyBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if let Ok(registration) = DeviceRegistration::parse(body) {
        let bytes = serde_json::to_vec(&registration).expect("a parsed registration serialises");
        assert_eq!(DeviceRegistration::parse(&bytes).expect("a serialised registration parses"), registration);
    }
    // The status picks which body is expected: 2xx an operation status, anything else an error.
    let status = [200u16, 202, 400, 401, 404, 429, 500, 503][usize::from(selector) % 8];
    let _ = ReplyBody::parse(status, body);
});
