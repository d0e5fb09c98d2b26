//! Starting the emulator: a [`Service`] served on already bound listeners with the TLS its
//! configuration asks for ([`serve`]), the one assembly `dpsbench emulator` and the in-process
//! loopback emulator (tests, `dpsbench run` and `dpsbench conform`'s embedded target) share.
//! It reads the TLS files a configuration names and binds only loopback's free port; it must
//! not answer a packet (the service does) or keep a task of its own (the server does).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::config::EmulatorConfig;
use super::server::{EmulatorHandle, bind, spawn};
use super::service::Service;
use crate::tls::{ServerIdentity, TlsError, TlsPolicy};

/// Starts serving `service` on the already bound `listener` (and MQTT over WebSocket on
/// `websocket`) with `identity`: accepting `policy` as the service's `[deviations]` change it,
/// and the client certificates its trust allows. It serves until [`EmulatorHandle::stop`].
pub fn serve(
    service: Arc<Service>,
    identity: &ServerIdentity,
    policy: TlsPolicy,
    listener: TcpListener,
    websocket: Option<TcpListener>,
) -> Result<EmulatorHandle, StartError> {
    let config = service.config();
    let policy = config.deviations.tls_policy(policy);
    let server_config = identity.server_config_with_clients(policy, &config.client_trust)?;
    let mut handle = spawn(listener, service, server_config)?;
    if let Some(listener) = websocket {
        handle.serve_websocket(listener)?;
    }
    Ok(handle)
}

/// The TLS identity the configuration at `path` names (its `[tls]` files, relative to its
/// folder), or a CA and certificate generated for this run when it names none.
pub fn server_identity(config: &EmulatorConfig, path: &Path) -> Result<ServerIdentity, TlsError> {
    match &config.tls {
        Some(files) => {
            let base = path.parent().unwrap_or(Path::new("."));
            ServerIdentity::load(
                &base.join(&files.certificate_chain),
                &base.join(&files.private_key),
                files.ca_certificate.as_ref().map(|p| base.join(p)).as_deref(),
            )
        }
        None => ServerIdentity::generate(&[]),
    }
}

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
    let handle = serve(Arc::new(service), &identity, policy, listener, None)?;
    let roots = crate::tls::roots_from_pem(identity.ca_pem().as_bytes(), std::path::Path::new("<embedded CA>"))?;
    Ok(LoopbackEmulator { handle, roots, ca_pem: identity.ca_pem().to_string() })
}

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the emulator: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}
