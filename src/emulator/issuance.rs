//! Certificate issuance at registration, as the emulator's DPS offers it (`docs/dps-mqtt.md` §8):
//! the issuing CA, which enrollments issue and for how long, and the signing of a device's CSR.
//!
//! Sans IO apart from [`IssuingCa::load`] and [`IssuingCa::write_certificate`], which name their
//! files. DPS documents no error codes for a refused CSR over MQTT: the codes and messages of
//! [`CsrRefusal`] are the emulator's choice (as its 413 is), in DPS's error-code form (HTTP status
//! then three digits).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;

use super::Deviations;
use crate::credentials::RegistrationId;
use crate::x509::X509Error;

/// How long a generated issuing CA is valid.
const CA_VALIDITY_DAYS: i64 = 3650;
/// How far back an issued leaf's `notBefore` is set, for devices whose clocks run behind.
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// The CA that signs operational certificates. `Debug` shows no key.
pub struct IssuingCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuingCa(<key redacted>)")
    }
}

impl IssuingCa {
    /// A new self-signed ECDSA P-256 CA, valid for ten years.
    pub fn generate() -> Result<Self, X509Error> {
        let now = time::OffsetDateTime::now_utc();
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "dpsbench emulator issuing CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
        let certificate = params.self_signed(&key)?;
        Ok(Self { pem: certificate.pem(), der: certificate.der().clone(), issuer: Issuer::new(params, key) })
    }

    /// A CA from its certificate and private key (PEM files).
    pub fn load(certificate: &Path, private_key: &Path) -> Result<Self, X509Error> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| X509Error::Read { path: path.to_path_buf(), source })
        };
        let bad = |path: &Path, reason: String| X509Error::Bad { path: path.to_path_buf(), reason };
        let pem = read(certificate)?;
        let key = KeyPair::from_pem(&read(private_key)?).map_err(|e| bad(private_key, e.to_string()))?;
        use rustls_pki_types::pem::PemObject as _;
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| bad(certificate, e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&pem, key).map_err(|e| bad(certificate, e.to_string()))?;
        Ok(Self { issuer, der, pem })
    }

    /// The CA's certificate, PEM: what a device verifies its chain against.
    pub fn certificate_pem(&self) -> &str {
        &self.pem
    }

    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Writes the CA's certificate (never its key) to `path`.
    pub fn write_certificate(&self, path: &Path) -> Result<(), X509Error> {
        std::fs::write(path, &self.pem).map_err(|source| X509Error::Write { path: path.to_path_buf(), source })
    }

    /// Signs the CSR `csr_base64` of `registration_id` for `validity_days`: the chain (base64
    /// DER, leaf first, then this CA) or why the CSR is refused. The CSR's own signature is
    /// checked; its subject CN must be the registration ID (case-insensitive, as IDs are); only
    /// ECDSA P-256 and P-384 keys are accepted (DPS issues for ECC keys). Requested extensions
    /// are not copied: the leaf is a client-authentication certificate, whatever was asked.
    pub fn sign(
        &self,
        csr_base64: &str,
        registration_id: &RegistrationId,
        validity_days: u32,
        wall: SystemTime,
    ) -> Result<Vec<String>, CsrRefusal> {
        self.sign_deviating(csr_base64, registration_id, validity_days, wall, &Deviations::default())
    }

    /// [`IssuingCa::sign`] as a DPS with `deviations` would (the `issue_*`, `accept_bad_csr` and
    /// `issued_chain_reversed` switches).
    pub fn sign_deviating(
        &self,
        csr_base64: &str,
        registration_id: &RegistrationId,
        validity_days: u32,
        wall: SystemTime,
        deviations: &Deviations,
    ) -> Result<Vec<String>, CsrRefusal> {
        let der = BASE64.decode(csr_base64.trim()).map_err(|_| CsrRefusal::Malformed)?;
        let public_key = match CertificateSigningRequestParams::from_der(&der.as_slice().into()) {
            Ok(request) => SigningRequestKey::Checked(request.public_key),
            Err(rcgen::Error::InvalidCertificationRequestSignature) if deviations.accept_bad_csr => {
                SigningRequestKey::Unchecked(unchecked_key(&der).ok_or(CsrRefusal::Malformed)?)
            }
            Err(rcgen::Error::InvalidCertificationRequestSignature) => return Err(CsrRefusal::BadSignature),
            Err(rcgen::Error::UnsupportedSignatureAlgorithm) => return Err(CsrRefusal::UnsupportedKey),
            Err(_) => return Err(CsrRefusal::Malformed),
        };
        let algorithm = rcgen::PublicKeyData::algorithm(&public_key);
        if algorithm != &rcgen::PKCS_ECDSA_P256_SHA256 && algorithm != &rcgen::PKCS_ECDSA_P384_SHA384 {
            return Err(CsrRefusal::UnsupportedKey);
        }
        if !common_name_of(&der).is_some_and(|cn| cn.eq_ignore_ascii_case(registration_id.as_str())) {
            return Err(CsrRefusal::CommonName);
        }
        let common_name = match deviations.issue_wrong_cn {
            true => format!("issued-{registration_id}"),
            false => registration_id.to_string(),
        };
        let validity_days = if deviations.issue_long_validity { 365 } else { validity_days };
        let params = leaf_params(&common_name, validity_days, wall).map_err(|_| CsrRefusal::Malformed)?;
        let stranger = match deviations.issue_from_other_ca {
            true => Some(IssuingCa::generate().map_err(|_| CsrRefusal::Malformed)?),
            false => None,
        };
        let ca = stranger.as_ref().unwrap_or(self);
        let leaf = match deviations.issue_for_other_key {
            true => KeyPair::generate().and_then(|other| params.signed_by(&other, &ca.issuer)),
            false => params.signed_by(&public_key, &ca.issuer),
        };
        let leaf = leaf.map_err(|_| CsrRefusal::Malformed)?;
        let mut chain = vec![BASE64.encode(leaf.der()), BASE64.encode(&ca.der)];
        if deviations.issued_chain_reversed {
            chain.reverse();
        }
        Ok(chain)
    }

    /// A chain for a key of the emulator's own making (the `chain_without_csr` deviation).
    fn sign_unrequested(
        &self,
        registration_id: &RegistrationId,
        validity_days: u32,
        wall: SystemTime,
    ) -> Option<Vec<String>> {
        let request =
            crate::certificates::CertificateRequest::generate(Default::default(), registration_id.as_str()).ok()?;
        self.sign(&request.csr_base64, registration_id, validity_days, wall).ok()
    }
}

/// The key of a CSR: checked against the request's signature, or (a deviation) not.
enum SigningRequestKey {
    Checked(rcgen::PublicKey),
    Unchecked(rcgen::SubjectPublicKeyInfo),
}

impl rcgen::PublicKeyData for SigningRequestKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            SigningRequestKey::Checked(key) => key.der_bytes(),
            SigningRequestKey::Unchecked(key) => key.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            SigningRequestKey::Checked(key) => rcgen::PublicKeyData::algorithm(key),
            SigningRequestKey::Unchecked(key) => key.algorithm(),
        }
    }
}

/// The key of a CSR whose signature was not checked.
fn unchecked_key(der: &[u8]) -> Option<rcgen::SubjectPublicKeyInfo> {
    use x509_parser::prelude::FromDer as _;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der).ok()?;
    rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw).ok()
}

/// An operational leaf's parameters: client authentication, subject CN `common_name`, valid
/// from a few minutes before `wall` for `validity_days`, a random serial.
fn leaf_params(common_name: &str, validity_days: u32, wall: SystemTime) -> Result<CertificateParams, rcgen::Error> {
    let now = time::OffsetDateTime::from(wall);
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(validity_days.into());
    params.serial_number = Some(rand::random::<[u8; 16]>().map(|b| b & 0x7f).to_vec().into());
    Ok(params)
}

/// The subject CN of a DER CSR (one that already parsed).
fn common_name_of(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer as _;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der).ok()?;
    let cn = csr.certification_request_info.subject.iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

/// Why the emulator refuses a CSR: the registration ends `failed` with this error code and
/// message (the emulator's choice; DPS documents none over MQTT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrRefusal {
    /// Not base64, or not a DER PKCS#10 request (or one with extensions it cannot read).
    Malformed,
    /// The request's signature does not verify with its own key.
    BadSignature,
    /// The subject CN is not the registration ID.
    CommonName,
    /// A key other than ECDSA P-256 or P-384.
    UnsupportedKey,
}

impl CsrRefusal {
    pub const ALL: [CsrRefusal; 4] =
        [CsrRefusal::Malformed, CsrRefusal::BadSignature, CsrRefusal::CommonName, CsrRefusal::UnsupportedKey];

    /// `registrationState.errorCode`.
    pub fn error_code(self) -> i64 {
        match self {
            CsrRefusal::Malformed => 400_301,
            CsrRefusal::BadSignature => 400_302,
            CsrRefusal::CommonName => 400_303,
            CsrRefusal::UnsupportedKey => 400_304,
        }
    }

    /// `registrationState.errorMessage`.
    pub fn message(self) -> &'static str {
        match self {
            CsrRefusal::Malformed => "The certificate signing request is not a base64 DER PKCS#10 request.",
            CsrRefusal::BadSignature => "The certificate signing request's signature does not verify.",
            CsrRefusal::CommonName => "The certificate signing request's subject CN is not the registration ID.",
            CsrRefusal::UnsupportedKey => "The certificate signing request's key is not ECDSA P-256 or P-384.",
        }
    }
}

/// An enrollment's issuance policy: `issue_certificates = { validity_days = 30 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuePolicy {
    /// The leaf's validity, 1 to 90 days (DPS's policy range).
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
}

impl Default for IssuePolicy {
    fn default() -> Self {
        Self { validity_days: default_validity_days() }
    }
}

fn default_validity_days() -> u32 {
    30
}

impl IssuePolicy {
    /// The policy, if its validity is within DPS's 1-90 days.
    pub fn checked(self) -> Result<Self, String> {
        match crate::certificates::VALIDITY_DAYS.contains(&self.validity_days) {
            true => Ok(self),
            false => Err(format!("validity_days = {} is not 1 to 90 (DPS's policy range)", self.validity_days)),
        }
    }
}

/// Which enrollment a device authenticated through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrollment {
    /// A group (symmetric-key or X.509), by name.
    Group(String),
    /// An individual enrollment, by canonical registration ID.
    Individual(String),
}

/// What the emulator issues: the CA, the enrollments that issue, and the CA's modelled latency.
#[derive(Debug, Clone, Default)]
pub struct Issuance {
    pub ca: Option<std::sync::Arc<IssuingCa>>,
    /// Enrollments that issue, with their policy.
    pub policies: Vec<(Enrollment, IssuePolicy)>,
    /// The CA's latency, drawn uniformly from `[min, max]`, added to the assignment delay.
    pub delay: Option<(Duration, Duration)>,
}

impl Issuance {
    /// The policy of `enrollment`, when it issues and a CA is there to sign.
    pub fn policy(&self, enrollment: &Enrollment) -> Option<IssuePolicy> {
        self.ca.as_ref()?;
        self.policies.iter().find(|(e, _)| e == enrollment).map(|(_, policy)| *policy)
    }

    /// Whether any enrollment issues.
    pub fn enabled(&self) -> bool {
        self.ca.is_some() && !self.policies.is_empty()
    }
}

/// `[issuer_ca]` of the emulator file: the issuing CA's certificate and key (PEM), relative to
/// the file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

/// What became of a CSR sent to an issuing enrollment, kept with its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// The chain, base64 DER, leaf first.
    Chain(Vec<String>),
    Refused(CsrRefusal),
}

/// The final status of an issuing registration: the chain in `registrationState`, or, for a
/// refused CSR, `failed` with the refusal's code and message.
/// `omit_chain` (the `omit_issued_chain` deviation) leaves the chain out.
pub(super) fn final_status(
    status: &mut crate::messages::RegistrationOperationStatus,
    issued: &Issued,
    omit_chain: bool,
) {
    use crate::messages::OperationStatus;
    let Some(state) = status.registration_state.as_mut() else { return };
    match issued {
        Issued::Chain(_) if omit_chain => {}
        Issued::Chain(chain) => state.issued_certificate_chain = Some(chain.clone()),
        Issued::Refused(refusal) => {
            status.status = OperationStatus::Failed;
            state.status = Some(OperationStatus::Failed);
            (state.assigned_hub, state.device_id, state.substatus) = (None, None, None);
            state.error_code = Some(refusal.error_code());
            state.error_message = Some(refusal.message().to_string());
        }
    }
}

/// What the CA (of `issuance`, deviating as `deviations` say) makes of the CSR in a register `body` from a device that authenticated through
/// `enrollment`: `None` when the enrollment does not issue or the body carries no CSR (a CSR to
/// a non-issuing enrollment is ignored, *(inferred)*: DPS documents issuance only for
/// enrollments with a credential policy); otherwise the chain or the refusal, and the CA's
/// latency drawn from `[min, max]` with `draw` (a uniform fraction in [0, 1)).
pub(super) fn issue(
    (issuance, deviations): (&Issuance, &Deviations),
    enrollment: Option<&Enrollment>,
    registration_id: &RegistrationId,
    body: &[u8],
    wall: SystemTime,
    draw: f64,
) -> Option<(Issued, Duration)> {
    let policy = issuance.policy(enrollment?)?;
    let ca = issuance.ca.as_ref()?;
    let issued = match crate::messages::DeviceRegistration::parse(body).ok()?.csr {
        Some(csr) => match ca.sign_deviating(&csr, registration_id, policy.validity_days, wall, deviations) {
            Ok(chain) => Issued::Chain(chain),
            Err(refusal) => Issued::Refused(refusal),
        },
        None if deviations.chain_without_csr => {
            Issued::Chain(ca.sign_unrequested(registration_id, policy.validity_days, wall)?)
        }
        None => return None,
    };
    let delay = issuance.delay.map_or(Duration::ZERO, |(min, max)| min + (max - min).mul_f64(draw));
    Some((issued, delay))
}

/// The enrollment an X.509 device authenticated through, from its `registrationState.x509`.
pub(super) fn x509_enrollment(x509: &serde_json::Value, registration_id: &RegistrationId) -> Enrollment {
    match x509.get("enrollmentGroupId").and_then(|g| g.as_str()) {
        Some(group) => Enrollment::Group(group.to_string()),
        None => Enrollment::Individual(registration_id.canonical()),
    }
}

#[cfg(test)]
mod tests;
