//! `dpsbench certs`: a test CA hierarchy and device certificates for X.509 attestation.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::credentials::RegistrationId;

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// The CA folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Device certificates to mint.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub count: u64,
    /// Registration ID pattern of the devices ({index} or {index:06}).
    #[arg(long, value_name = "PATTERN", default_value = "bench-{index:06}")]
    pub registration_id: String,
    /// Index of the first device.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub start_index: u64,
    /// Also write emulator.toml (an X.509 group trusting root.pem that issues operational
    /// certificates at registration) and scenario.toml (devices that onboard with these
    /// certificates and ask for one), unless they exist.
    #[arg(long)]
    pub issuing: bool,
}

pub(super) fn certs(args: CertsArgs) -> Result<i32> {
    use crate::x509::{CertificateAuthority, DeviceCertificate};
    let pattern = crate::scenario::IdPattern::parse(&args.registration_id)
        .map_err(|e| anyhow::anyhow!("--registration-id {:?}: {e}", args.registration_id))?;
    // Checked before the CA is made, so bad input leaves nothing behind: the pattern varies only
    // in digits, so the first and the last ID stand for all of them.
    let last = args.start_index.saturating_add(args.count.saturating_sub(1));
    for index in [args.start_index, last] {
        RegistrationId::new(pattern.render(index))
            .map_err(|e| anyhow::anyhow!("--registration-id {:?}: {e}", args.registration_id))?;
    }
    let ca = if args.out.join("intermediate.key").exists() {
        CertificateAuthority::load(&args.out)?
    } else {
        let ca = CertificateAuthority::generate()?;
        ca.write(&args.out)?;
        ca
    };
    let devices = args.out.join("devices");
    for index in args.start_index..args.start_index.saturating_add(args.count) {
        let id = RegistrationId::new(pattern.render(index))?;
        DeviceCertificate::load_or_mint(&ca, &devices, &id)?;
    }
    outln!("CA: {} (trust it in an X.509 enrollment group)", args.out.join("root.pem").display());
    if args.count > 0 {
        outln!("{} device certificates in {}", args.count, devices.display());
    }
    if args.issuing {
        super::certs_issuing::write(&args.out, &args.registration_id, args.count)?
            .iter()
            .for_each(|line| outln!("{line}"));
    }
    Ok(0)
}
