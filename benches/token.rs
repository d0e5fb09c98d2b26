//! Token path micro-benchmarks: deriving a device key from a group key, building a SAS token,
//! and the emulator's side (parse and verify a token against a group).
//!
//! `two_raw_hmac_sha256` is the floor of `derive_and_build`: the two HMAC-SHA256 computations
//! the token path cannot avoid (the device key from the group key and registration ID, then
//! the signature over the string to sign), with no encoding or formatting around them.
//! `raw_hmacs_group_keyed` is the same with the group key's HMAC state keyed once outside the
//! loop, as `SymmetricKey` keeps it: the floor of the path as it now runs (six SHA-256 blocks,
//! not eight).

use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use dpsbench::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const GROUP_KEY: &str = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

fn token_path(c: &mut Criterion) {
    let group_key = SymmetricKey::from_base64(GROUP_KEY).unwrap();
    let scope = IdScope::new("0ne00DPS001").unwrap();
    let id = RegistrationId::new("bench-000042").unwrap();
    let device_key = group_key.derive_device_key(&id);

    let group_bytes = base64::engine::general_purpose::STANDARD.decode(GROUP_KEY).unwrap();
    let to_sign = b"0ne00DPS001%2Fregistrations%2Fbench-000042\n1900000000";
    c.bench_function("two_raw_hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&group_bytes)).unwrap();
            mac.update(black_box(id.as_str()).as_bytes());
            let device_key = mac.finalize().into_bytes();
            let mut mac = Hmac::<Sha256>::new_from_slice(&device_key).unwrap();
            mac.update(black_box(&to_sign[..]));
            mac.finalize().into_bytes()
        })
    });
    let group_keyed = Hmac::<Sha256>::new_from_slice(&group_bytes).unwrap();
    c.bench_function("raw_hmacs_group_keyed", |b| {
        b.iter(|| {
            let mut mac = black_box(&group_keyed).clone();
            mac.update(black_box(id.as_str()).as_bytes());
            let device_key = mac.finalize().into_bytes();
            let mut mac = Hmac::<Sha256>::new_from_slice(&device_key).unwrap();
            mac.update(black_box(&to_sign[..]));
            mac.finalize().into_bytes()
        })
    });
    c.bench_function("derive_device_key", |b| b.iter(|| black_box(&group_key).derive_device_key(black_box(&id))));
    c.bench_function("build_sas_token", |b| {
        b.iter(|| {
            SasToken::build(
                black_box(&scope),
                black_box(&id),
                black_box(&device_key),
                1_900_000_000,
                SasStyle::default(),
            )
        })
    });
    c.bench_function("derive_and_build", |b| {
        b.iter(|| {
            let key = black_box(&group_key).derive_device_key(black_box(&id));
            SasToken::build(&scope, &id, &key, 1_900_000_000, SasStyle::default())
        })
    });
    let token = SasToken::build(&scope, &id, &device_key, 1_900_000_000, SasStyle::default());
    c.bench_function("verify_sas_token_group", |b| {
        b.iter(|| {
            let parsed = black_box(&token).parse().unwrap();
            let derived = group_key.derive_device_key(&id);
            parsed.verify(&scope, &id, 1_800_000_000, [&derived]).unwrap()
        })
    });
}

criterion_group!(benches, token_path);
criterion_main!(benches);
