//! TLS configuration for both sides: the emulator's server identity (a CA generated at start, or
//! PEM files) and the devices' client configuration.
//!
//! No sockets here: it builds `rustls` configs that the drivers hand to `tokio-rustls`. TLS 1.2 is
//! the only version offered unless a caller opts into 1.3, as DPS requires (`docs/dps-mqtt.md` §1).
//! Client session resumption is off: every simulated device is a distinct device and pays for a
//! full handshake, as a real fleet does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::x509::to_pem;

/// Loopback names the generated server certificate is valid for.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// DPS's global device endpoint. The generated server certificate names it too: SDK samples
/// that hard-code it (the embedded C SDK's) reach an emulator on this machine through an
/// `/etc/hosts` line, and their host-name check must then pass unchanged.
pub const DPS_GLOBAL_ENDPOINT: &str = "global.azure-devices-provisioning.net";

/// Errors building TLS configuration. Variants name the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS version as scenario and emulator files name it: `"1.2"` or `"1.3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    /// `"1.2"` or `"1.3"`; any other version is not offered.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            other => Err(format!("TLS version {other:?} is not offered (DPS uses 1.2; 1.3 is opt-in)")),
        }
    }
}

/// TLS versions to offer or accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.2 only, as DPS documents.
    #[default]
    Tls12Only,
    /// TLS 1.2 and 1.3.
    Tls12And13,
    /// TLS 1.3 only (conformance probes: DPS must refuse it).
    Tls13Only,
}

impl TlsVersions {
    /// The set a file's list names; none named is TLS 1.2 alone, as DPS.
    pub fn of(versions: &[TlsVersion]) -> Self {
        let has = |v: TlsVersion| versions.contains(&v);
        match (has(TlsVersion::Tls12), has(TlsVersion::Tls13)) {
            (true, true) => TlsVersions::Tls12And13,
            (false, true) => TlsVersions::Tls13Only,
            _ => TlsVersions::Tls12Only,
        }
    }

    fn list(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS12_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS12_AND_13: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS12, &rustls::version::TLS13];
        static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersions::Tls12Only => &TLS12_ONLY,
            TlsVersions::Tls12And13 => &TLS12_AND_13,
            TlsVersions::Tls13Only => &TLS13_ONLY,
        }
    }
}

/// The crypto provider every config uses (aws-lc-rs, the fastest rustls has here), with all its
/// cipher suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// TLS versions and cipher suites one side offers or accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsPolicy {
    pub versions: TlsVersions,
    /// Cipher suite names (`TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`, ...); empty means all.
    pub cipher_suites: Vec<String>,
}

impl From<TlsVersions> for TlsPolicy {
    fn from(versions: TlsVersions) -> Self {
        Self { versions, cipher_suites: Vec::new() }
    }
}

impl TlsPolicy {
    /// Parses version names (`"1.2"`, `"1.3"`) and suite names, as scenario and config files give them.
    pub fn parse(versions: &[String], cipher_suites: &[String]) -> Result<Self, String> {
        let versions = versions.iter().map(|v| TlsVersion::parse(v)).collect::<Result<Vec<_>, _>>()?;
        let versions = TlsVersions::of(&versions);
        let known: Vec<String> = provider().cipher_suites.iter().map(suite_name).collect();
        if let Some(bad) = cipher_suites.iter().find(|s| !known.contains(s)) {
            return Err(format!("cipher suite {bad:?} is not one of {}", known.join(", ")));
        }
        Ok(Self { versions, cipher_suites: cipher_suites.to_vec() })
    }

    /// The provider restricted to this policy's suites.
    fn provider(&self) -> Arc<CryptoProvider> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if !self.cipher_suites.is_empty() {
            provider.cipher_suites.retain(|s| self.cipher_suites.contains(&suite_name(s)));
        }
        Arc::new(provider)
    }
}

fn suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    format!("{:?}", suite.suite())
}

/// The emulator's server identity: its certificate chain, key and the CA that clients trust.
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity").field("chain_len", &self.chain.len()).finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// Generates a CA (ECDSA P-256) and a server certificate it signs for `localhost`,
    /// `127.0.0.1`, `::1` and [`DPS_GLOBAL_ENDPOINT`], plus any `extra_names`.
    pub fn generate(extra_names: &[String]) -> Result<Self, TlsError> {
        let now = time::OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name.push(DnType::CommonName, "dpsbench emulator CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        names.push(DPS_GLOBAL_ENDPOINT.into());
        names.extend(extra_names.iter().cloned());
        let mut leaf_params = CertificateParams::new(names)?;
        leaf_params.distinguished_name.push(DnType::CommonName, "localhost");
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.not_before = now - time::Duration::days(1);
        leaf_params.not_after = now + time::Duration::days(365);
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

        Ok(Self {
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            ca_pem: ca.pem(),
        })
    }

    /// Loads a chain (leaf first) and its key from PEM files. The CA clients trust is
    /// `ca_file` when given, else the last certificate of the chain.
    pub fn load(chain_file: &Path, key_file: &Path, ca_file: Option<&Path>) -> Result<Self, TlsError> {
        let chain = read_certificates(chain_file)?;
        let key_pem = read(key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::BadPem { path: key_file.to_path_buf(), reason: e.to_string() })?;
        let ca_der = match ca_file {
            Some(path) => read_certificates(path)?.remove(0),
            None => chain.last().cloned().expect("read_certificates returns at least one"),
        };
        Ok(Self { chain, key, ca_pem: to_pem("CERTIFICATE", &ca_der) })
    }

    /// The chain (leaf first) and the key as PEM, for handing this identity to the other
    /// processes of one emulator (`dpsbench emulator --processes`).
    pub fn chain_and_key_pem(&self) -> (String, String) {
        let chain = self.chain.iter().map(|c| to_pem("CERTIFICATE", c)).collect();
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        (chain, to_pem(label, self.key.secret_der()))
    }

    /// The CA certificate clients must trust, as PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server config accepting `policy` (TLS 1.2 only, as DPS, unless configured otherwise).
    pub fn server_config(&self, policy: impl Into<TlsPolicy>) -> Result<Arc<ServerConfig>, TlsError> {
        self.server_config_with_clients(policy, &ClientTrust::default())
    }

    /// A server config that also asks for client certificates (X.509 attestation): optional, so
    /// symmetric-key devices connect without one; a presented one must chain to a trusted CA or
    /// be a pinned leaf.
    pub fn server_config_with_clients(
        &self,
        policy: impl Into<TlsPolicy>,
        clients: &ClientTrust,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let policy = policy.into();
        let provider = policy.provider();
        let builder =
            ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(policy.versions.list())?;
        let config = if clients.is_empty() {
            builder.with_no_client_auth().with_single_cert(self.chain.clone(), self.key.clone_key())?
        } else {
            let verifier = Arc::new(ClientVerifier::new(clients, &provider)?);
            builder.with_client_cert_verifier(verifier).with_single_cert(self.chain.clone(), self.key.clone_key())?
        };
        Ok(Arc::new(config))
    }
}

/// Which client certificates the emulator accepts.
#[derive(Debug, Clone, Default)]
pub struct ClientTrust {
    /// CAs of X.509 enrollment groups: a chain to any of them is accepted.
    pub cas: Vec<CertificateDer<'static>>,
    /// SHA-256 of pinned leaves (X.509 individual enrollments, possibly self-signed).
    pub pinned: Vec<[u8; 32]>,
}

impl ClientTrust {
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty() && self.pinned.is_empty()
    }
}

/// Accepts a client certificate pinned by hash, else one that chains to a group CA; asks for
/// one without requiring it.
#[derive(Debug)]
struct ClientVerifier {
    chains: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    pinned: Vec<[u8; 32]>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    fn new(trust: &ClientTrust, provider: &Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let chains = if trust.cas.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            for ca in &trust.cas {
                roots.add(ca.clone())?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
            Some(verifier)
        };
        Ok(Self { chains, pinned: trust.pinned.clone(), algorithms: provider.signature_verification_algorithms })
    }
}

impl rustls::server::danger::ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        use sha2::Digest as _;
        let hash: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if self.pinned.contains(&hash) {
            return Ok(rustls::server::danger::ClientCertVerified::assertion());
        }
        match &self.chains {
            Some(chains) => chains.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerIdentity {}

/// Trust roots parsed from PEM text (the emulator's CA, or a target's).
pub fn roots_from_pem(pem: &[u8], origin: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsError::BadPem { path: origin.to_path_buf(), reason: e.to_string() })?;
        roots.add(cert).map_err(|e| TlsError::BadPem { path: origin.to_path_buf(), reason: e.to_string() })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate { path: origin.to_path_buf() });
    }
    Ok(roots)
}

/// The public web's roots (Mozilla's list, compiled in): what a real DPS endpoint chains to.
pub fn public_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

/// A device-side config trusting `roots`, offering `versions`, without session resumption.
pub fn client_config(
    roots: impl Into<Arc<RootCertStore>>,
    policy: impl Into<TlsPolicy>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let policy = policy.into();
    let mut config = ClientConfig::builder_with_provider(policy.provider())
        .with_protocol_versions(policy.versions.list())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A device-side config that also presents a client certificate (X.509 attestation).
pub fn client_config_with_certificate(
    roots: impl Into<Arc<RootCertStore>>,
    policy: impl Into<TlsPolicy>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let policy = policy.into();
    let mut config = ClientConfig::builder_with_provider(policy.provider())
        .with_protocol_versions(policy.versions.list())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { path: path.to_path_buf(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_round_trips_through_pem_files() {
        let identity = ServerIdentity::generate(&[]).unwrap();
        let roots = roots_from_pem(identity.ca_pem().as_bytes(), Path::new("ca.pem")).unwrap();
        assert_eq!(roots.len(), 1);
        identity.server_config(TlsVersions::Tls12Only).unwrap();
        client_config(roots, TlsVersions::Tls12Only).unwrap();

        let dir = std::env::temp_dir().join(format!("dpsbench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let chain: String = identity.chain.iter().map(|c| to_pem("CERTIFICATE", c)).collect();
        std::fs::write(dir.join("chain.pem"), chain).unwrap();
        std::fs::write(dir.join("key.pem"), to_pem("PRIVATE KEY", identity.key.secret_der())).unwrap();
        let loaded = ServerIdentity::load(&dir.join("chain.pem"), &dir.join("key.pem"), None).unwrap();
        assert_eq!(loaded.ca_pem(), identity.ca_pem());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn policies_parse_and_restrict_the_handshake() {
        let strict = TlsPolicy::parse(&["1.2".into()], &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
        assert_eq!(strict.versions, TlsVersions::Tls12Only);
        assert_eq!(strict.provider().cipher_suites.len(), 1);
        assert_eq!(TlsPolicy::parse(&["1.2".into(), "1.3".into()], &[]).unwrap().versions, TlsVersions::Tls12And13);
        assert!(TlsPolicy::parse(&["1.1".into()], &[]).unwrap_err().contains("1.1"));
        assert!(TlsPolicy::parse(&[], &["TLS_NOPE".into()]).unwrap_err().contains("TLS_NOPE"));
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let err = ServerIdentity::load(Path::new("/nonexistent/chain.pem"), Path::new("k"), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/chain.pem"), "{err}");
        let err = roots_from_pem(b"not pem", Path::new("trust.pem")).unwrap_err();
        assert!(err.to_string().contains("trust.pem"), "{err}");
    }
}
