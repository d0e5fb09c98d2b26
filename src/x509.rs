//! X.509 attestation material: a test CA hierarchy and per-device certificates (ECDSA P-256,
//! subject CN = registration ID), made with rcgen; and what the emulator reads from a client
//! certificate, parsed with x509-parser.
//!
//! Files only through the explicit `write`/`load` functions; private keys are written 0600 and
//! never printed (`Debug` is redacted).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::credentials::RegistrationId;

/// Errors making, reading or writing certificates. Variants name the file.
#[derive(Debug, thiserror::Error)]
pub enum X509Error {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Bad { path: PathBuf, reason: String },
}

/// A test CA hierarchy: a root and an intermediate that signs device certificates.
pub struct CertificateAuthority {
    root_pem: String,
    root_key_pem: Option<String>,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
    intermediate_der: CertificateDer<'static>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertificateAuthority(<keys redacted>)")
    }
}

fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    Ok(params)
}

impl CertificateAuthority {
    /// A new root and an intermediate it signs.
    pub fn generate() -> Result<Self, X509Error> {
        let root_key = KeyPair::generate()?;
        let root_params = ca_params("dpsbench test root CA")?;
        let root_cert = root_params.self_signed(&root_key)?;
        let root = Issuer::new(root_params, root_key);
        let intermediate_key = KeyPair::generate()?;
        let intermediate_params = ca_params("dpsbench test intermediate CA")?;
        let intermediate_cert = intermediate_params.signed_by(&intermediate_key, &root)?;
        let root_key_pem = Some(root_key_pem(&root));
        Ok(Self {
            root_pem: root_cert.pem(),
            root_key_pem,
            intermediate_pem: intermediate_cert.pem(),
            intermediate_der: intermediate_cert.der().clone(),
            intermediate: Issuer::new(intermediate_params, intermediate_key),
        })
    }

    /// Writes `root.pem`, `root.key`, `intermediate.pem` and `intermediate.key` (keys 0600).
    pub fn write(&self, dir: &Path) -> Result<(), X509Error> {
        create_dir(dir)?;
        write_file(&dir.join("root.pem"), &self.root_pem, false)?;
        if let Some(key) = &self.root_key_pem {
            write_file(&dir.join("root.key"), key, true)?;
        }
        write_file(&dir.join("intermediate.pem"), &self.intermediate_pem, false)?;
        write_file(&dir.join("intermediate.key"), &self.intermediate.key().serialize_pem(), true)
    }

    /// Loads a hierarchy `write` made: the intermediate (with its key) and the root.
    pub fn load(dir: &Path) -> Result<Self, X509Error> {
        let intermediate_pem = read_file(&dir.join("intermediate.pem"))?;
        let key_path = dir.join("intermediate.key");
        let key = KeyPair::from_pem(&read_file(&key_path)?)
            .map_err(|e| X509Error::Bad { path: key_path.clone(), reason: e.to_string() })?;
        let intermediate = Issuer::from_ca_cert_pem(&intermediate_pem, key)
            .map_err(|e| X509Error::Bad { path: dir.join("intermediate.pem"), reason: e.to_string() })?;
        let intermediate_der = first_certificate(&intermediate_pem, &dir.join("intermediate.pem"))?;
        Ok(Self {
            root_pem: read_file(&dir.join("root.pem"))?,
            root_key_pem: None,
            intermediate_pem,
            intermediate,
            intermediate_der,
        })
    }

    /// The root certificate, PEM: what an X.509 enrollment group trusts.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// A device certificate: ECDSA P-256, subject CN = the registration ID, client auth, signed
    /// by the intermediate; its chain is the leaf then the intermediate.
    pub fn mint(&self, registration_id: &RegistrationId) -> Result<DeviceCertificate, X509Error> {
        let now = time::OffsetDateTime::now_utc();
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, registration_id.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        let leaf = params.signed_by(&key, &self.intermediate)?;
        Ok(DeviceCertificate {
            chain: vec![leaf.der().clone(), self.intermediate_der.clone()],
            key: key.serialize_der(),
        })
    }
}

fn root_key_pem(root: &Issuer<'static, KeyPair>) -> String {
    root.key().serialize_pem()
}

/// A device's certificate chain and private key. `Debug` shows neither.
#[derive(Clone)]
pub struct DeviceCertificate {
    /// Leaf first, then the intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl std::fmt::Debug for DeviceCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceCertificate({} certificates, <key redacted>)", self.chain.len())
    }
}

impl DeviceCertificate {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// Writes `{id}.pem` (the chain) and `{id}.key` (0600) into `dir`.
    pub fn write(&self, dir: &Path, registration_id: &RegistrationId) -> Result<(), X509Error> {
        create_dir(dir)?;
        let chain: String = self.chain.iter().map(|c| to_pem("CERTIFICATE", c.as_ref())).collect();
        write_file(&dir.join(format!("{registration_id}.pem")), &chain, false)?;
        write_file(&dir.join(format!("{registration_id}.key")), &to_pem("PRIVATE KEY", &self.key), true)
    }

    /// Loads what `write` wrote, if both files exist.
    pub fn load(dir: &Path, registration_id: &RegistrationId) -> Result<Option<Self>, X509Error> {
        let (cert_path, key_path) =
            (dir.join(format!("{registration_id}.pem")), dir.join(format!("{registration_id}.key")));
        if !cert_path.exists() || !key_path.exists() {
            return Ok(None);
        }
        use rustls_pki_types::pem::PemObject as _;
        let chain = CertificateDer::pem_file_iter(&cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| X509Error::Bad { path: cert_path.clone(), reason: e.to_string() })?;
        let key = PrivatePkcs8KeyDer::from_pem_file(&key_path)
            .map_err(|e| X509Error::Bad { path: key_path.clone(), reason: e.to_string() })?;
        Ok(Some(Self { chain, key: key.secret_pkcs8_der().to_vec() }))
    }

    /// Loads the cached certificate of `registration_id` from `cache`, or mints and caches one.
    pub fn load_or_mint(
        ca: &CertificateAuthority,
        cache: &Path,
        registration_id: &RegistrationId,
    ) -> Result<Self, X509Error> {
        if let Some(cached) = Self::load(cache, registration_id)? {
            return Ok(cached);
        }
        let minted = ca.mint(registration_id)?;
        minted.write(cache, registration_id)?;
        Ok(minted)
    }
}

/// What the emulator learns from a client certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The leaf's subject CN.
    pub common_name: Option<String>,
    pub sha256: [u8; 32],
    /// Subject and issuer names of every presented certificate, leaf first.
    pub subjects: Vec<String>,
    pub issuers: Vec<String>,
    /// `registrationState.x509.certificateInfo`, as DPS reports it.
    pub info: serde_json::Value,
}

impl PeerCertificate {
    /// Reads a presented chain (leaf first); `None` when the leaf does not parse.
    pub fn inspect(chain: &[CertificateDer<'_>]) -> Option<Self> {
        let leaf_der = chain.first()?;
        let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der.as_ref()).ok()?;
        let common_name = leaf.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(String::from);
        let mut subjects = Vec::new();
        let mut issuers = Vec::new();
        for der in chain {
            if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) {
                subjects.push(cert.subject().to_string());
                issuers.push(cert.issuer().to_string());
            }
        }
        let sha256: [u8; 32] = Sha256::digest(leaf_der.as_ref()).into();
        let timestamp =
            |t: i64| crate::timestamp::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64));
        let info = serde_json::json!({
            "subjectName": leaf.subject().to_string(),
            "sha256Thumbprint": hex(&sha256),
            "issuerName": leaf.issuer().to_string(),
            "notBeforeUtc": timestamp(leaf.validity().not_before.timestamp()),
            "notAfterUtc": timestamp(leaf.validity().not_after.timestamp()),
            "serialNumber": leaf.raw_serial_as_string().replace(':', "").to_uppercase(),
            "version": leaf.version().0 + 1,
        });
        Some(Self { common_name, sha256, subjects, issuers, info })
    }
}

/// The subject name of the first certificate in `pem`, as `PeerCertificate` writes names.
pub fn subject_of(pem: &str, path: &Path) -> Result<(String, CertificateDer<'static>), X509Error> {
    let der = first_certificate(pem, path)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| X509Error::Bad { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok((cert.subject().to_string(), der.clone()))
}

/// SHA-256 of the first certificate in `pem` (an individual enrollment's pinned leaf).
pub fn sha256_of(pem: &str, path: &Path) -> Result<[u8; 32], X509Error> {
    Ok(Sha256::digest(first_certificate(pem, path)?.as_ref()).into())
}

/// `der` as a PEM block labelled `label` (`CERTIFICATE`, `PRIVATE KEY`), 64 base64 characters
/// a line.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn first_certificate(pem: &str, path: &Path) -> Result<CertificateDer<'static>, X509Error> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| X509Error::Bad { path: path.to_path_buf(), reason: "no PEM certificate".into() })?
        .map_err(|e| X509Error::Bad { path: path.to_path_buf(), reason: e.to_string() })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn create_dir(dir: &Path) -> Result<(), X509Error> {
    std::fs::create_dir_all(dir).map_err(|source| X509Error::Write { path: dir.to_path_buf(), source })
}

fn read_file(path: &Path) -> Result<String, X509Error> {
    std::fs::read_to_string(path).map_err(|source| X509Error::Read { path: path.to_path_buf(), source })
}

/// Writes `contents`; a private key is 0600 before any byte is written, also when the file
/// already existed with a looser mode (creating with a mode does not change an existing file's).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), X509Error> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| X509Error::Write { path: path.to_path_buf(), source })?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| X509Error::Write { path: path.to_path_buf(), source })?;
    }
    file.write_all(contents.as_bytes()).map_err(|source| X509Error::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_wrap_at_64_characters() {
        let pem = to_pem("CERTIFICATE", &[0xff; 49]);
        let body = format!("{}\n{}\n", "/".repeat(64), "/w==");
        assert_eq!(pem, format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"));
    }

    #[test]
    fn minted_certificates_name_the_device_and_cache_with_private_keys() {
        let dir = std::env::temp_dir().join(format!("dpsbench-x509-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ca = CertificateAuthority::generate().unwrap();
        ca.write(&dir).unwrap();
        let loaded = CertificateAuthority::load(&dir).unwrap();
        let id = RegistrationId::new("cert-dev-1").unwrap();
        let device = DeviceCertificate::load_or_mint(&loaded, &dir.join("devices"), &id).unwrap();
        assert_eq!(device.chain.len(), 2);
        let peer = PeerCertificate::inspect(&device.chain).unwrap();
        assert_eq!(peer.common_name.as_deref(), Some("cert-dev-1"));
        assert_eq!(peer.issuers[0], peer.subjects[1], "the leaf is issued by the intermediate");
        assert_eq!(peer.issuers[1], subject_of(ca.root_pem(), Path::new("root.pem")).unwrap().0);
        let again = DeviceCertificate::load_or_mint(&loaded, &dir.join("devices"), &id).unwrap();
        assert_eq!(again.chain, device.chain, "the second run loads the cached certificate");
        #[cfg(unix)]
        for key in ["root.key", "intermediate.key", "devices/cert-dev-1.key"] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(key)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
        assert!(!format!("{device:?}{ca:?}").contains("BEGIN"), "no key material in Debug");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn private_keys_become_0600_even_when_the_file_was_looser() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("dpsbench-x509-loose-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("devices")).unwrap();
        let loose = [dir.join("root.key"), dir.join("intermediate.key"), dir.join("devices/loose-1.key")];
        for path in &loose {
            std::fs::write(path, "old").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let ca = CertificateAuthority::generate().unwrap();
        ca.write(&dir).unwrap();
        // The device's certificate is missing, so its key is minted again over the loose file.
        DeviceCertificate::load_or_mint(&ca, &dir.join("devices"), &RegistrationId::new("loose-1").unwrap()).unwrap();
        for path in &loose {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            assert_ne!(std::fs::read_to_string(path).unwrap(), "old");
        }
        // The public parts stay readable.
        let mode = std::fs::metadata(dir.join("root.pem")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044, "root.pem is {mode:o}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
