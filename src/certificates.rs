//! Operational certificates issued at registration (api-version `2025-07-01-preview`,
//! `docs/dps-mqtt.md` §8): a device's key pair and certificate signing request, and the check of
//! the chain DPS returns in `registrationState.issuedCertificateChain`.
//!
//! Sans IO: no files, no clock (the check takes the wall time as Unix seconds). Keys are made
//! with rcgen, chains read and their signatures checked with x509-parser. The device's private
//! key is dropped once the CSR is signed: dpsbench never connects to a hub with the issued
//! certificate, so it keeps nothing secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{CertificateParams, DnType, KeyPair, SignatureAlgorithm};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The api-version of certificate issuance at registration.
pub const ISSUANCE_API_VERSION: &str = "2025-07-01-preview";

/// The shortest and longest validity DPS's credential policies allow, in days.
pub const VALIDITY_DAYS: std::ops::RangeInclusive<u32> = 1..=90;

/// How far a leaf's `notBefore` may be ahead of the device's clock (clock skew).
const SKEW_SECONDS: i64 = 300;

/// The key type of a device's operational certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (default; what DPS's ECC policies issue for).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519 (cheap to make; the emulator refuses it, as an "unsupported key").
    Ed25519,
}

impl KeyType {
    pub const ALL: [KeyType; 3] = [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Ed25519];

    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Ed25519 => "ed25519",
        }
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// A device's certificate signing request: the DER PKCS#10 it sends (base64 in the register
/// body's `csr`) and what the issued leaf must match.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// The CSR, base64 of its DER, as the register body carries it.
    pub csr_base64: String,
    /// The requested subject CN: the registration ID.
    pub common_name: String,
    /// The DER SubjectPublicKeyInfo of the device's key.
    pub public_key: Vec<u8>,
}

impl std::fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertificateRequest(CN={}, {} base64 bytes)", self.common_name, self.csr_base64.len())
    }
}

impl CertificateRequest {
    /// A new key pair of `key_type` and a CSR for subject CN = `common_name`, signed with it.
    pub fn generate(key_type: KeyType, common_name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate_for(key_type.algorithm())?;
        Self::signed_with(&key, common_name)
    }

    /// A CSR for `common_name` signed with `key` (tests and failing controls sign odd ones).
    pub fn signed_with(key: &KeyPair, common_name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        let csr = params.serialize_request(key)?;
        // The key as the CSR carries it, byte for byte: what the issued leaf must hold.
        let (_, parsed) = x509_parser::certification_request::X509CertificationRequest::from_der(csr.der())
            .map_err(|_| rcgen::Error::CouldNotParseCertificationRequest)?;
        let public_key = parsed.certification_request_info.subject_pki.raw.to_vec();
        Ok(Self { csr_base64: BASE64.encode(csr.der()), common_name: common_name.to_string(), public_key })
    }
}

/// `body` (a JSON object, or empty) with `"csr"` added last, as the preview's register body
/// carries it beside `registrationId`.
pub fn register_body_with_csr(body: &[u8], csr_base64: &str) -> bytes::Bytes {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_end();
    // Base64 needs no JSON escaping.
    let body = match trimmed.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{open}\"csr\":\"{csr_base64}\"}}"),
        Some(open) => format!("{open},\"csr\":\"{csr_base64}\"}}"),
        None => format!("{{\"csr\":\"{csr_base64}\"}}"),
    };
    bytes::Bytes::from(body)
}

/// Why an issued chain is not the certificate the device asked for. Counted by
/// [`ChainFailure::as_str`] (`certificate_<reason>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainFailure {
    /// `assigned` without `issuedCertificateChain` (or an empty one).
    Missing,
    /// An entry that is not base64 of a DER certificate.
    Undecodable,
    /// The leaf's public key is not the CSR's.
    KeyMismatch,
    /// The leaf's subject CN is neither the registration ID nor the device ID.
    CommonName,
    /// The device's clock is outside the leaf's validity window.
    Validity,
    /// A certificate is not signed by the next one, or the last does not reach the issuing CA.
    Untrusted,
}

impl ChainFailure {
    pub const ALL: [ChainFailure; 6] = [
        ChainFailure::Missing,
        ChainFailure::Undecodable,
        ChainFailure::KeyMismatch,
        ChainFailure::CommonName,
        ChainFailure::Validity,
        ChainFailure::Untrusted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChainFailure::Missing => "missing",
            ChainFailure::Undecodable => "undecodable",
            ChainFailure::KeyMismatch => "key_mismatch",
            ChainFailure::CommonName => "common_name",
            ChainFailure::Validity => "validity",
            ChainFailure::Untrusted => "untrusted",
        }
    }

    /// One line saying what was wrong, for the failure's reason.
    pub fn reason(self) -> &'static str {
        match self {
            ChainFailure::Missing => "assigned without an issued certificate chain although a CSR was sent",
            ChainFailure::Undecodable => "an issued certificate is not base64 of a DER X.509 certificate",
            ChainFailure::KeyMismatch => "the issued leaf's public key is not the CSR's",
            ChainFailure::CommonName => "the issued leaf's subject CN is not the registration ID",
            ChainFailure::Validity => "the device's clock is outside the issued leaf's validity window",
            ChainFailure::Untrusted => "the issued chain does not verify up to the issuing CA",
        }
    }
}

/// What became of the certificate one device asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateOutcome {
    /// The CSR was sent; no assignment came to judge (the flow failed first).
    Requested,
    /// Assigned with a chain that verified.
    Verified,
    /// Assigned with a chain missing or wrong.
    Failed(ChainFailure),
}

impl CertificateOutcome {
    /// Whether a chain came back (verified or not).
    pub fn issued(self) -> bool {
        !matches!(self, CertificateOutcome::Requested | CertificateOutcome::Failed(ChainFailure::Missing))
    }
}

/// What a verified chain showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    pub certificates: usize,
    /// The leaf's validity, in whole days (`notAfter - notBefore`).
    pub validity_days: i64,
}

/// Whether an issued chain has the preview's shape: not empty, every entry base64 of a DER
/// X.509 certificate, the leaf first (the first is no CA, every later one is). Why not, if not.
pub fn chain_shape(chain: &[String]) -> Result<(), String> {
    if chain.is_empty() {
        return Err("empty".into());
    }
    for (at, entry) in chain.iter().enumerate() {
        let der = BASE64.decode(entry).map_err(|_| format!("entry {at} is not base64"))?;
        let (_, certificate) =
            X509Certificate::from_der(&der).map_err(|_| format!("entry {at} is not a DER X.509 certificate"))?;
        if certificate.is_ca() != (at > 0) {
            return Err(match at {
                0 => "the first certificate is a CA: the leaf is not first".into(),
                _ => format!("entry {at} is not a CA, after the leaf"),
            });
        }
    }
    Ok(())
}

/// What the issued end-entity certificate of a chain says: the first certificate that is no CA
/// (the first, whatever it is, when all are), wherever it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedLeaf {
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub common_name: Option<String>,
    /// `notAfter - notBefore`, in seconds.
    pub validity_seconds: i64,
}

impl IssuedLeaf {
    /// The leaf of `chain` (base64 DER); `None` when an entry does not decode.
    pub fn of(chain: &[String]) -> Option<Self> {
        let ders: Vec<Vec<u8>> = chain.iter().map(|b64| BASE64.decode(b64).ok()).collect::<Option<_>>()?;
        let parsed: Vec<X509Certificate<'_>> =
            ders.iter().map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c)).collect::<Option<_>>()?;
        let leaf = parsed.iter().find(|c| !c.is_ca()).or(parsed.first())?;
        let common_name = leaf.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(String::from);
        let validity = leaf.validity();
        Some(Self {
            public_key: leaf.public_key().raw.to_vec(),
            common_name,
            validity_seconds: validity.not_after.timestamp() - validity.not_before.timestamp(),
        })
    }
}

/// Checks an issued chain (base64 DER, leaf first) against the request that asked for it: every
/// entry decodes, the leaf's key is the CSR's, its CN is the registration ID (or `device_id`),
/// `now_unix` is inside its validity window, each certificate is signed by the next, and, with
/// `issuer`, the last one is the issuing CA or signed by it.
pub fn verify_chain(
    chain: &[String],
    request: &CertificateRequest,
    device_id: Option<&str>,
    issuer: Option<&CertificateDer<'_>>,
    now_unix: i64,
) -> Result<VerifiedChain, ChainFailure> {
    if chain.is_empty() {
        return Err(ChainFailure::Missing);
    }
    let ders = decoded(chain)?;
    let parsed = parsed(&ders)?;
    let leaf = &parsed[0];
    if leaf.public_key().raw != request.public_key.as_slice() {
        return Err(ChainFailure::KeyMismatch);
    }
    let cn = leaf.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default();
    let names = [Some(request.common_name.as_str()), device_id];
    if !names.into_iter().flatten().any(|name| name.eq_ignore_ascii_case(cn)) {
        return Err(ChainFailure::CommonName);
    }
    let (not_before, not_after) = (leaf.validity().not_before.timestamp(), leaf.validity().not_after.timestamp());
    if now_unix + SKEW_SECONDS < not_before || now_unix > not_after {
        return Err(ChainFailure::Validity);
    }
    links_reach(&parsed, &ders, issuer)?;
    Ok(VerifiedChain { certificates: parsed.len(), validity_days: (not_after - not_before) / 86_400 })
}

/// Whether `chain` (base64 DER, leaf first) reaches `issuer`: each certificate signed by the
/// next, and the last one the issuer itself or signed by it. `Undecodable` or `Untrusted`.
pub fn chain_reaches(chain: &[String], issuer: &CertificateDer<'_>) -> Result<(), ChainFailure> {
    let ders = decoded(chain)?;
    let parsed = parsed(&ders)?;
    if parsed.is_empty() {
        return Err(ChainFailure::Missing);
    }
    links_reach(&parsed, &ders, Some(issuer))
}

/// The chain's certificates, DER, or `Undecodable`.
fn decoded(chain: &[String]) -> Result<Vec<Vec<u8>>, ChainFailure> {
    chain.iter().map(|b64| BASE64.decode(b64)).collect::<Result<_, _>>().map_err(|_| ChainFailure::Undecodable)
}

fn parsed(ders: &[Vec<u8>]) -> Result<Vec<X509Certificate<'_>>, ChainFailure> {
    ders.iter()
        .map(|der| X509Certificate::from_der(der).map(|(_, c)| c))
        .collect::<Result<_, _>>()
        .map_err(|_| ChainFailure::Undecodable)
}

/// Each certificate of a decoded, non-empty chain signed by the next; with `issuer`, the last
/// one the issuer or signed by it.
fn links_reach(
    parsed: &[X509Certificate<'_>],
    ders: &[Vec<u8>],
    issuer: Option<&CertificateDer<'_>>,
) -> Result<(), ChainFailure> {
    for pair in parsed.windows(2) {
        pair[0].verify_signature(Some(pair[1].public_key())).map_err(|_| ChainFailure::Untrusted)?;
    }
    if let Some(issuer) = issuer {
        let last = parsed.last().expect("the chain is not empty");
        let is_issuer = ders.last().is_some_and(|der| der.as_slice() == issuer.as_ref());
        let (_, anchor) = X509Certificate::from_der(issuer.as_ref()).map_err(|_| ChainFailure::Untrusted)?;
        if !is_issuer && last.verify_signature(Some(anchor.public_key())).is_err() {
            return Err(ChainFailure::Untrusted);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
