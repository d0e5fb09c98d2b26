//! Certificate issuance micro-benchmarks: the device's side (a key pair and its CSR, what the
//! lookahead prepares for every device that asks for a certificate; the check of the issued
//! chain on `assigned`) and the emulator's (the issuing CA checking and signing one CSR).

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use dpsbench::certificates::{CertificateRequest, KeyType, verify_chain};
use dpsbench::credentials::RegistrationId;
use dpsbench::emulator::issuance::IssuingCa;

fn issuance(c: &mut Criterion) {
    let id = RegistrationId::new("bench-000042").unwrap();
    for key in [KeyType::EcdsaP256, KeyType::EcdsaP384] {
        c.bench_function(&format!("csr_create_{}", key.name()), |b| {
            b.iter(|| CertificateRequest::generate(black_box(key), black_box(id.as_str())).unwrap())
        });
    }
    let ca = IssuingCa::generate().unwrap();
    let request = CertificateRequest::generate(KeyType::EcdsaP256, id.as_str()).unwrap();
    let now = SystemTime::now();
    c.bench_function("emulator_sign_csr_ecdsa-p256", |b| {
        b.iter(|| ca.sign(black_box(&request.csr_base64), black_box(&id), 30, now).unwrap())
    });
    let chain = ca.sign(&request.csr_base64, &id, 30, now).unwrap();
    let now_unix = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    c.bench_function("device_verify_chain", |b| {
        b.iter(|| verify_chain(black_box(&chain), &request, None, Some(ca.certificate_der()), now_unix).unwrap())
    });
}

criterion_group!(benches, issuance);
criterion_main!(benches);
