use std::time::SystemTime;

use super::*;
use crate::credentials::RegistrationId;
use crate::emulator::issuance::{CsrRefusal, IssuingCa};

fn now_unix() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn issued(ca: &IssuingCa, request: &CertificateRequest, days: u32) -> Vec<String> {
    let id = RegistrationId::new(request.common_name.clone()).expect("a valid ID");
    ca.sign(&request.csr_base64, &id, days, SystemTime::now()).expect("the CA signs a good CSR")
}

#[test]
fn an_issued_chain_verifies_against_its_request_and_ca() {
    let ca = IssuingCa::generate().expect("a CA");
    for key in [KeyType::EcdsaP256, KeyType::EcdsaP384] {
        let request = CertificateRequest::generate(key, "dev-1").expect("a CSR");
        let chain = issued(&ca, &request, 30);
        let verified = verify_chain(&chain, &request, None, Some(ca.certificate_der()), now_unix())
            .unwrap_or_else(|e| panic!("{key:?}: {e:?}"));
        assert_eq!(verified, VerifiedChain { certificates: 2, validity_days: 30 });
        assert!(!format!("{request:?}").contains(&request.csr_base64), "Debug shows no CSR");
    }
}

#[test]
fn each_wrong_chain_fails_for_its_own_reason() {
    let ca = IssuingCa::generate().expect("a CA");
    let request = CertificateRequest::generate(KeyType::EcdsaP256, "dev-1").expect("a CSR");
    let chain = issued(&ca, &request, 30);
    let anchor = Some(ca.certificate_der());
    let check =
        |chain: &[String], request: &CertificateRequest, at: i64| verify_chain(chain, request, None, anchor, at);
    assert_eq!(check(&[], &request, now_unix()), Err(ChainFailure::Missing));
    assert_eq!(check(&["not base64!".into()], &request, now_unix()), Err(ChainFailure::Undecodable));
    assert_eq!(check(&[BASE64.encode(b"not DER")], &request, now_unix()), Err(ChainFailure::Undecodable));
    // Another device's key, under the same name.
    let other = CertificateRequest::generate(KeyType::EcdsaP256, "dev-1").expect("a CSR");
    assert_eq!(check(&chain, &other, now_unix()), Err(ChainFailure::KeyMismatch));
    // The right key, named for another device.
    let renamed = CertificateRequest { common_name: "dev-2".into(), ..request.clone() };
    assert_eq!(check(&chain, &renamed, now_unix()), Err(ChainFailure::CommonName));
    assert!(verify_chain(&chain, &renamed, Some("dev-1"), anchor, now_unix()).is_ok(), "the device ID also names it");
    assert_eq!(check(&chain, &request, now_unix() + 31 * 86_400), Err(ChainFailure::Validity));
    assert_eq!(check(&chain, &request, now_unix() - 86_400), Err(ChainFailure::Validity));
    // A chain from another CA, checked against this one.
    let stranger = IssuingCa::generate().expect("a CA");
    let foreign = issued(&stranger, &request, 30);
    assert_eq!(check(&foreign, &request, now_unix()), Err(ChainFailure::Untrusted));
    assert!(verify_chain(&foreign, &request, None, None, now_unix()).is_ok(), "without an anchor: links only");
    // A leaf followed by a certificate that did not sign it.
    let broken = vec![chain[0].clone(), foreign[1].clone()];
    assert_eq!(verify_chain(&broken, &request, None, None, now_unix()), Err(ChainFailure::Untrusted));
    // The leaf alone, checked against the CA that signed it.
    assert!(check(&chain[..1], &request, now_unix()).is_ok());
    let labels: std::collections::BTreeSet<_> = ChainFailure::ALL.map(ChainFailure::as_str).into();
    assert_eq!(labels.len(), ChainFailure::ALL.len(), "labels are distinct");
}

#[test]
fn the_ca_refuses_each_bad_csr_with_its_code() {
    let ca = IssuingCa::generate().expect("a CA");
    let id = RegistrationId::new("dev-1").expect("a valid ID");
    let sign = |csr: &str| ca.sign(csr, &id, 30, SystemTime::now());
    assert_eq!(sign("***"), Err(CsrRefusal::Malformed));
    assert_eq!(sign(&BASE64.encode(b"0\x03\x02\x01\x00")), Err(CsrRefusal::Malformed));
    let wrong_cn = CertificateRequest::generate(KeyType::EcdsaP256, "dev-2").expect("a CSR");
    assert_eq!(sign(&wrong_cn.csr_base64), Err(CsrRefusal::CommonName));
    let ed25519 = CertificateRequest::generate(KeyType::Ed25519, "dev-1").expect("a CSR");
    assert_eq!(sign(&ed25519.csr_base64), Err(CsrRefusal::UnsupportedKey));
    // A flipped bit in the signature (the CSR's last byte).
    let good = CertificateRequest::generate(KeyType::EcdsaP256, "dev-1").expect("a CSR");
    let mut der = BASE64.decode(&good.csr_base64).expect("base64");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(sign(&BASE64.encode(&der)), Err(CsrRefusal::BadSignature));
    assert!(sign(&good.csr_base64).is_ok());
    assert!(sign(&good.csr_base64.to_uppercase()).is_err(), "a corrupted CSR never signs");
    let codes: std::collections::BTreeSet<_> = CsrRefusal::ALL.map(CsrRefusal::error_code).into();
    assert_eq!(codes.len(), CsrRefusal::ALL.len());
}
