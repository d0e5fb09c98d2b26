//! `dpsbench emulator`: its arguments, and serving the emulator standalone until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::{client_report, emulator_log, emulator_processes, interrupted, issuer_out};
use crate::emulator::standalone::{self, Listeners};
use crate::emulator::{self, EmulatorConfig, Service};
use crate::runner;

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Emulator configuration (TOML): id_scope (required), hubs, enrollments, delays.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:8883 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Write the CA certificate clients must trust to this file (PEM).
    #[arg(long, value_name = "PEM")]
    pub ca_out: Option<PathBuf>,
    /// Write the certificate of the CA that signs the operational certificates issued at
    /// registration (enrollments with issue_certificates) to this file (PEM).
    #[arg(long, value_name = "PEM")]
    pub issuer_ca_out: Option<PathBuf>,
    /// Also serve MQTT over WebSocket (wss, paths /$iothub/websocket and /, subprotocol mqtt)
    /// on this address, e.g. 127.0.0.1:443.
    #[arg(long, value_name = "ADDR")]
    pub ws_listen: Option<SocketAddr>,
    /// Serve from this many processes sharing the address (SO_REUSEPORT), so one process's
    /// open-files limit and cores do not cap the devices served. Registrations, quotas and
    /// operation IDs are per process; WebSocket is served by the first process only.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub processes: u16,
    /// (Internal) run as a copy of a multi-process emulator, with the TLS identity in DIR.
    #[arg(long, value_name = "DIR", hide = true)]
    pub worker_identity: Option<PathBuf>,
    #[command(flatten)]
    pub clients: client_report::ClientReportArgs,
}

pub(super) async fn serve_emulator(args: EmulatorArgs) -> Result<i32> {
    // Every device connection is a descriptor: serve as many as the hard limit allows.
    runner::raise_open_files_limit();
    let (config, service_config) = EmulatorConfig::load(&args.config)?;
    issuer_out::check(args.issuer_ca_out.as_deref(), &config, &service_config, args.processes)?;
    let identity = emulator::server_identity(&config, &args.config)?;
    let identity = emulator_processes::identity(&args, identity)?;
    let clients = client_report::ClientReport::prepare(&args.clients, args.processes)?;
    let tls = emulator_processes::bind(&args)?;
    let (clients, service) = match clients {
        Some((report, judge)) => {
            let judge = Arc::new(judge);
            (Some((report, judge.clone())), Service::new(service_config).observed_by(judge))
        }
        None => (None, Service::new(service_config)),
    };
    let policy = config.tls_policy(&args.config)?;
    let websocket = match args.ws_listen {
        Some(address) => {
            Some(emulator::bind(address).with_context(|| format!("cannot listen on --ws-listen {address}"))?)
        }
        None => None,
    };
    let running = standalone::start(Arc::new(service), &identity, policy, Listeners { tls, websocket })?;
    let websocket = match running.websocket_address() {
        Some(address) => format!(", MQTT over WebSocket on {address}"),
        None => String::new(),
    };
    // Written once every address is bound: an emulator that cannot listen leaves no CA behind.
    match &args.ca_out {
        Some(path) => std::fs::write(path, identity.ca_pem())
            .with_context(|| format!("cannot write --ca-out {}", path.display()))?,
        None if config.tls.is_none() && args.worker_identity.is_none() => emulator_log::log(
            "dpsbench emulator: warning: no --ca-out, so no client can trust the certificate made for this run: \
             pass --ca-out ca.pem and give that file to clients ([target].ca_certificate, conform --ca)",
        ),
        None => {}
    }
    let service_config = running.service().config();
    issuer_out::write(args.issuer_ca_out.as_deref(), service_config)?;
    emulator_log::warnings(service_config).iter().for_each(|warning| emulator_log::log(warning));
    let copies = emulator_processes::Copies::start(&args, running.address(), &identity)?;
    // Listened for before the ready line: a script may signal as soon as it reads it.
    let stop = interrupted();
    outln!("{}", emulator_log::ready_line(running.address(), &websocket, service_config, copies.count()));
    let until = async {
        match &clients {
            Some((report, judge)) => tokio::select! {
                () = stop => {}
                () = report.enough(judge) => {}
            },
            None => stop.await,
        }
        copies.stop();
    };
    let service = running.run(until, emulator_log::log).await;
    emulator_log::log(&standalone::stopped_line(&service));
    if let Some(line) = issuer_out::totals(&service) {
        emulator_log::log(&line);
    }
    if let Some(line) = standalone::faults_line(&service) {
        emulator_log::log(&line);
    }
    match clients {
        // The run returned once every connection had ended, its checks folded in.
        Some((report, judge)) => report.write(&judge, &service.stats.tls_failures.snapshot()),
        None => Ok(0),
    }
}
