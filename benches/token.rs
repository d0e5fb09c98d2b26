//! Token path micro-benchmarks: deriving a device key from a group key, building a SAS token,
//! and the emulator's side (parse and verify a token against a group).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dpsbench::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};

const GROUP_KEY: &str = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

fn token_path(c: &mut Criterion) {
    let group_key = SymmetricKey::from_base64(GROUP_KEY).unwrap();
    let scope = IdScope::new("0ne00DPS001").unwrap();
    let id = RegistrationId::new("bench-000042").unwrap();
    let device_key = group_key.derive_device_key(&id);

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
