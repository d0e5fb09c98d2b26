//! Why a run could not start (setup errors). Failures of the target during a run are data, not
//! these.

use crate::{emulator, tls};

/// Setup errors: the run could not start. Failures of the target during a run are data.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Emulator(#[from] emulator::StartError),
    #[error(transparent)]
    X509(#[from] crate::x509::X509Error),
    #[error("cannot resolve target host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("target {address} is unreachable: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("invalid server name {0:?} for TLS")]
    ServerName(String),
    #[error(
        "the plan keeps up to {in_flight} devices in flight, needing {needed} open files, but the open-files limit is \
         {limit}: lower arrival.concurrency or run.max_in_flight, or raise the hard limit (ulimit -Hn)"
    )]
    Descriptors { in_flight: u64, needed: u64, limit: u64 },
    #[error("interrupted before the run started: no device was started")]
    Interrupted,
    #[error("preflight: device {registration_id} could not connect, so no device was started: {reason}")]
    Preflight { registration_id: String, reason: String },
    #[error("cannot make a certificate signing request for device {0}")]
    Certificate(String),
}
