//! `dpsbench emulator --issuer-ca-out PEM`: writes the certificate of the CA that signs
//! operational certificates, so clients can verify the chains issued at registration.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::emulator::ServiceConfig;
use crate::emulator::config::EmulatorConfig;

/// Refuses what cannot work, before anything is bound or written: `--issuer-ca-out` with no
/// enrollment issuing, or several processes each generating their own CA.
pub(super) fn check(out: Option<&Path>, file: &EmulatorConfig, service: &ServiceConfig, processes: u16) -> Result<()> {
    let issuance = &service.issuance;
    if issuance.enabled() && processes > 1 && file.issuer_ca.is_none() {
        bail!(
            "--processes {processes} with enrollments that issue certificates needs [issuer_ca] in the config \
             (certificate and private_key): each process would otherwise sign with a CA of its own"
        );
    }
    if let Some(out) = out
        && !(issuance.enabled() && issuance.ca.is_some())
    {
        bail!("--issuer-ca-out {}: no enrollment issues certificates (issue_certificates)", out.display());
    }
    Ok(())
}

/// Writes the issuing CA's certificate to `out` (when given; [`check`] passed).
pub(super) fn write(out: Option<&Path>, service: &ServiceConfig) -> Result<()> {
    let (Some(out), Some(ca)) = (out, service.issuance.ca.as_ref()) else { return Ok(()) };
    ca.write_certificate(out).with_context(|| format!("cannot write --issuer-ca-out {}", out.display()))
}

/// The stopped emulator's line on what it issued, when any enrollment issues.
pub(super) fn totals(service: &crate::emulator::Service) -> Option<String> {
    let get = crate::emulator::ServiceStats::get;
    let stats = &service.stats;
    service.config().issuance.enabled().then(|| {
        format!(
            "dpsbench emulator issued {} certificates, refused {} certificate signing requests",
            get(&stats.certificates_issued),
            get(&stats.certificates_refused)
        )
    })
}
