//! MQTT decoding as the emulator does it: frames decoded from the bytes a client sent, each fed
//! to a DPS session, whatever it is. Must never panic, and never loop.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use dpsbench::credentials::{IdScope, SymmetricKey};
use dpsbench::emulator::{Service, ServiceConfig, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scope = IdScope::new("0ne00FUZZ01").expect("a valid scope");
    let key = SymmetricKey::from_base64("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=").expect("a valid key");
    let mut config = ServiceConfig::single_group(scope, vec!["hub.example".into()], key);
    config.deviations.accept_any_password = true;
    let service = Service::new(config);
    let mut session = Session::new();
    let mut buffer = BytesMut::from(data);
    let (start, wall) = (Instant::now(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    // Each decoded packet consumes at least its two header bytes: bounded by the input.
    for step in 0..data.len() {
        match dpsbench::mqtt::decode(&mut buffer) {
            Ok(Some(packet)) => {
                let response = session.handle(&service, packet, start + Duration::from_secs(step as u64), wall);
                if response.close {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
});
