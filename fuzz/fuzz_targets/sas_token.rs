//! SAS token parsing, as the emulator reads a CONNECT password: never panics, and verifying a
//! parsed token against a key never panics either.
#![no_main]

use dpsbench::credentials::{IdScope, RegistrationId, SasToken, SymmetricKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let token = SasToken::from_password(text);
    let Ok(parsed) = token.parse() else { return };
    let scope = IdScope::new("0ne00FUZZ01").expect("a valid scope");
    let id = RegistrationId::new("fuzz-1").expect("a valid registration ID");
    let key = SymmetricKey::from_base64("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=").expect("a valid key");
    let _ = parsed.verify(&scope, &id, 1_700_000_000, std::slice::from_ref(&key));
});
