//! Setting up a run's target: the embedded emulator started from the plan, or a remote one
//! resolved and checked with one TCP connect. Every network step has a deadline.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::error::RunError;
use crate::device::{Target, TargetWatch, Transport};
use crate::emulator::config::IndividualEnrollment;
use crate::emulator::{self, ServiceConfig};
use crate::scenario::{Plan, TargetPlan};
use crate::tls::{self, TlsVersions};

/// How long resolving and the first connect to a remote target may take before a run starts.
const SETUP_DEADLINE: Duration = Duration::from_secs(5);

/// Resolves `host` (the first address wins) within `deadline`.
pub async fn resolve(host: &str, port: u16, deadline: Duration) -> Result<SocketAddr, RunError> {
    let resolve_error = |reason: String| RunError::Resolve { host: host.to_string(), reason };
    let mut addresses = match tokio::time::timeout(deadline, tokio::net::lookup_host((host, port))).await {
        Ok(found) => found.map_err(|e| resolve_error(e.to_string()))?,
        Err(_) => return Err(resolve_error(format!("no answer within {} s", deadline.as_secs_f64()))),
    };
    addresses.next().ok_or_else(|| resolve_error("no address".into()))
}

/// One TCP connect within `deadline`, so an unreachable target is a setup error, not N failures.
pub async fn preflight(address: SocketAddr, deadline: Duration) -> Result<(), RunError> {
    let unreachable = |reason: String| RunError::Unreachable { address: address.to_string(), reason };
    match tokio::time::timeout(deadline, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no answer within {} s", deadline.as_secs_f64()))),
    }
}

/// Resolves `host` and connects once, each within `deadline`: the address of a reachable target.
pub async fn reach(host: &str, port: u16, deadline: Duration) -> Result<SocketAddr, RunError> {
    let address = resolve(host, port, deadline).await?;
    preflight(address, deadline).await?;
    Ok(address)
}

/// A prepared target: where devices connect, and the emulator when it is embedded.
pub(super) struct PreparedTarget {
    pub target: Target,
    /// What devices trust, for X.509 devices' own configs.
    pub roots: Arc<rustls::RootCertStore>,
    pub kind: &'static str,
    pub emulator: Option<emulator::EmulatorHandle>,
    /// The embedded emulator's issuing CA, when it issues: what issued chains must reach.
    pub certificate_issuer: Option<rustls_pki_types::CertificateDer<'static>>,
}

pub(super) async fn prepare_target(plan: &Plan) -> Result<PreparedTarget, RunError> {
    match &plan.target {
        TargetPlan::Embedded { settings, transport } => {
            let hubs = settings.hubs.clone();
            let mut config = ServiceConfig::single_group(plan.id_scope.clone(), hubs, plan.group_key.clone());
            config.individuals = plan
                .individual_enrollments()
                .into_iter()
                .map(|(registration_id, primary)| IndividualEnrollment { registration_id, primary, secondary: None })
                .collect();
            config.apply(settings.clone());
            // Held from the start (the server must not see them armed even for a moment): the
            // runner arms them once the preflight passed.
            config.faults.held = true;
            if let Some(x509) = &plan.x509 {
                trust_ca_dir(&mut config, &x509.ca_dir)?;
            }
            let certificate_issuer = match plan.certificates.embedded_issues {
                true => Some(config.issue_for_every_enrollment()?),
                false => None,
            };
            // The emulator enforces TLS 1.2, as DPS does, unless the scenario opted into 1.3.
            let accepts = match plan.tls.versions {
                TlsVersions::Tls12Only => TlsVersions::Tls12Only,
                _ => TlsVersions::Tls12And13,
            };
            let mut emulator = emulator::start_on_loopback_with(config, accepts.into())?;
            let address = match transport {
                Transport::Mqtt => emulator.handle.address,
                Transport::WebSocket { .. } => {
                    let listener =
                        emulator::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(emulator::StartError::Io)?;
                    emulator.handle.serve_websocket(listener).map_err(emulator::StartError::Io)?
                }
            };
            let roots = Arc::new(emulator.roots);
            let target = Target {
                address,
                server_name: "localhost".try_into().expect("localhost is a valid DNS name"),
                tls: tls::client_config(roots.clone(), plan.tls.clone())?,
                transport: transport.clone(),
                watch: Some(Arc::new(TargetWatch::new())),
            };
            Ok(PreparedTarget { target, roots, kind: "embedded", emulator: Some(emulator.handle), certificate_issuer })
        }
        TargetPlan::Dps { host, port, ca, server_name, transport, .. } => {
            let address = reach(host, *port, SETUP_DEADLINE).await?;
            let roots = match ca {
                Some((pem, path)) => tls::roots_from_pem(pem, path)?,
                None => tls::public_roots(),
            };
            let server_name = rustls_pki_types::ServerName::try_from(server_name.clone())
                .map_err(|_| RunError::ServerName(server_name.clone()))?;
            let roots = Arc::new(roots);
            let tls = tls::client_config(roots.clone(), plan.tls.clone())?;
            let target = Target {
                address,
                server_name,
                tls,
                transport: transport.clone(),
                watch: Some(Arc::new(TargetWatch::new())),
            };
            Ok(PreparedTarget { target, roots, kind: "dps", emulator: None, certificate_issuer: None })
        }
    }
}

/// Trusts the root of a `dpsbench certs` folder in an X.509 enrollment group.
fn trust_ca_dir(config: &mut ServiceConfig, ca_dir: &Path) -> Result<(), crate::x509::X509Error> {
    let root = ca_dir.join("root.pem");
    let pem =
        std::fs::read_to_string(&root).map_err(|source| crate::x509::X509Error::Read { path: root.clone(), source })?;
    config.trust_x509_ca("x509", &pem, &root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reach_finds_a_listening_target_and_refuses_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = reach("127.0.0.1", port, Duration::from_secs(2)).await.unwrap();
        assert_eq!(address, listener.local_addr().unwrap());
        drop(listener);
        let err = reach("127.0.0.1", port, Duration::from_secs(2)).await.unwrap_err();
        assert!(
            matches!(&err, RunError::Unreachable { address, .. } if address.ends_with(&format!(":{port}"))),
            "{err}"
        );
        let err = resolve("no-such-host.invalid", 8883, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(&err, RunError::Resolve { host, .. } if host == "no-such-host.invalid"), "{err}");
    }
}
