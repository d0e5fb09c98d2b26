//! `dpsbench certs --issuing`: beside the onboarding CA and certificates, an emulator
//! configuration whose X.509 group trusts that CA and issues operational certificates at
//! registration, and a scenario whose devices onboard with their certificates and ask for one,
//! so the whole flow runs locally in two commands. Files that exist are kept, never overwritten.

use std::path::Path;

use anyhow::{Context as _, Result};

/// The emulator's ID scope in the files written.
const ID_SCOPE: &str = "0ne00CERTS1";

/// Writes `emulator.toml` and `scenario.toml` into `out` (each unless it exists), for `count`
/// devices named by `pattern`; returns the lines that say how to run them.
pub(super) fn write(out: &Path, pattern: &str, count: u64) -> Result<Vec<String>> {
    let emulator = format!(
        "# The emulator for `dpsbench certs --issuing`: an X.509 enrollment group trusting root.pem\n\
         # that issues operational certificates (api-version 2025-07-01-preview) for 30 days.\n\
         id_scope = \"{ID_SCOPE}\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 1\nassign_delay_ms = 200\n\
         issue_delay_ms = [5, 50]\n\n[[enrollment_groups]]\nname = \"x509-issuing\"\nca_certificate = \"root.pem\"\n\
         issue_certificates = {{ validity_days = 30 }}\n"
    );
    let scenario = format!(
        "# Devices onboarding with their X.509 certificates (devices/) that ask for an operational\n\
         # certificate and check it against the emulator's --issuer-ca-out.\n\
         name = \"x509-issuing\"\n\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nport = 8883\nid_scope = \"{ID_SCOPE}\"\n\
         ca_certificate = \"ca.pem\"\nissuer_ca_certificate = \"issuer.pem\"\n\n[devices]\ncount = {count}\n\
         registration_id = \"{pattern}\"\nattestation = \"x509\"\nx509_ca_dir = \".\"\nrequest_certificate = true\n\n\
         [arrival]\nrate = 50\n"
    );
    let mut lines = Vec::new();
    for (name, text) in [("emulator.toml", emulator), ("scenario.toml", scenario)] {
        let path = out.join(name);
        if path.exists() {
            lines.push(format!("{} exists: kept as it is", path.display()));
            continue;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let dir = out.display();
    lines.push(format!(
        "try it: dpsbench emulator --config {dir}/emulator.toml --listen 127.0.0.1:8883 --ca-out {dir}/ca.pem \
         --issuer-ca-out {dir}/issuer.pem, then dpsbench run {dir}/scenario.toml"
    ));
    Ok(lines)
}
