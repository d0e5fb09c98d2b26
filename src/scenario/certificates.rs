//! Certificate issuance at registration in a scenario: `[devices] request_certificate` and
//! `certificate_key`, `[target] issue_certificates` (embedded) and `issuer_ca_certificate`
//! (a DPS endpoint), resolved into a [`CertificatePlan`].

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

use super::FieldError;
use crate::certificates::KeyType;
use crate::device::Personality;

/// What a run does about operational certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificatePlan {
    /// Devices send a CSR for a key of this type (`request_certificate = true`).
    pub request: Option<KeyType>,
    /// The embedded emulator issues for its enrollment group (`[target] issue_certificates`).
    pub embedded_issues: bool,
    /// The issuing CA chains must reach (`[target] issuer_ca_certificate`), DER.
    pub issuer: Option<CertificateDer<'static>>,
}

/// The fields as the scenario gives them.
pub(super) struct CertificateFields<'a> {
    pub request_certificate: bool,
    pub certificate_key: Option<KeyType>,
    pub issue_certificates: bool,
    pub issuer_ca_certificate: Option<&'a PathBuf>,
    pub personalities: &'a super::PersonalityMix,
}

pub(super) fn resolve(fields: CertificateFields<'_>, base: &Path) -> Result<CertificatePlan, FieldError> {
    if fields.certificate_key.is_some() && !fields.request_certificate {
        return Err(FieldError::new("devices.certificate_key", "certificate_key needs request_certificate = true"));
    }
    if fields.request_certificate
        && let Some(other) = fields.personalities.personalities().find(|p| *p != Personality::Dpsbench)
    {
        return Err(FieldError::new(
            "devices.request_certificate",
            format!(
                "the {} personality cannot send a CSR: no released SDK of python, node, c, embedded-c or \
                 csharp supports api-version 2025-07-01-preview; use the dpsbench personality",
                other.name()
            ),
        ));
    }
    let issuer = match fields.issuer_ca_certificate {
        None => None,
        Some(file) => {
            let path = base.join(file);
            let field = "target.issuer_ca_certificate";
            let pem = std::fs::read(&path)
                .map_err(|e| FieldError::new(field, format!("cannot read {}: {e}", path.display())))?;
            use rustls_pki_types::pem::PemObject as _;
            let der = CertificateDer::from_pem_slice(&pem)
                .map_err(|e| FieldError::new(field, format!("{}: not a PEM certificate: {e}", path.display())))?;
            Some(der)
        }
    };
    Ok(CertificatePlan {
        request: fields.request_certificate.then(|| fields.certificate_key.unwrap_or_default()),
        embedded_issues: fields.issue_certificates,
        issuer,
    })
}
