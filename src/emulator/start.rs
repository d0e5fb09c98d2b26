//! Starting the emulator in-process on loopback, with a CA generated for it: what tests,
//! `dpsbench run` and `dpsbench conform` serve their embedded target with.

use std::net::SocketAddr;
use std::sync::Arc;

use super::server::{EmulatorHandle, bind, spawn};
use super::service::Service;

/// An emulator started in-process on `127.0.0.1` (a free port) with a CA generated for it, and
/// the roots a client needs to trust it.
pub struct LoopbackEmulator {
    pub handle: EmulatorHandle,
    pub roots: rustls::RootCertStore,
    pub ca_pem: String,
}

/// Starts `config` on `127.0.0.1:0` with a freshly generated CA, TLS 1.2 only.
pub fn start_on_loopback(config: super::ServiceConfig) -> Result<LoopbackEmulator, StartError> {
    start_on_loopback_with(config, crate::tls::TlsPolicy::default())
}

/// Starts `config` on `127.0.0.1:0` with a freshly generated CA, accepting `policy`.
pub fn start_on_loopback_with(
    config: super::ServiceConfig,
    policy: crate::tls::TlsPolicy,
) -> Result<LoopbackEmulator, StartError> {
    start_service_on_loopback(Service::new(config), policy)
}

/// Starts `service` (a judging one, say) on `127.0.0.1:0` with a freshly generated CA,
/// accepting `policy`.
pub fn start_service_on_loopback(
    service: Service,
    policy: crate::tls::TlsPolicy,
) -> Result<LoopbackEmulator, StartError> {
    let identity = crate::tls::ServerIdentity::generate(&[])?;
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let config = service.config();
    let policy = config.deviations.tls_policy(policy);
    let server_config = identity.server_config_with_clients(policy, &config.client_trust)?;
    let handle = spawn(listener, Arc::new(service), server_config)?;
    let roots = crate::tls::roots_from_pem(identity.ca_pem().as_bytes(), std::path::Path::new("<embedded CA>"))?;
    Ok(LoopbackEmulator { handle, roots, ca_pem: identity.ca_pem().to_string() })
}

/// Why an in-process emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the embedded emulator: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}
