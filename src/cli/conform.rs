//! `dpsbench conform`: resolve the target, run the suite, write the three reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

use super::keys::read_key;
use super::out_folder::OutFolder;
use crate::conformance::CATALOGUE;
use crate::conformance::probes::ProbeTarget;
use crate::conformance::report;
use crate::conformance::suite::{self, SuiteOptions};
use crate::credentials::{IdScope, RegistrationId, SymmetricKey};
use crate::emulator::{self, ServiceConfig, config::QuotaConfig};
use crate::endpoint::{Endpoint, Scheme};
use crate::runner;
use crate::scenario::{GROUP_KEY_ENV, TargetFlags, TargetOverride};

mod precheck;

/// The plain-MQTT port probed on an external target.
const DEFAULT_PLAIN_PORT: u16 = 1883;

/// Registrations a minute the embedded target allows, low enough for DPS-THR-001 to see a 429.
const EMBEDDED_QUOTA: u32 = 20;

#[derive(Debug, Args)]
// The target flags are `run`'s (`scenario::TargetFlags`); their help says what they mean here,
// without the scenario fields `run` sets: no wss:// --target (that is --ws-target), the embedded
// emulator by default, and the group key's variable named by default.
#[command(
    mut_arg("target", |arg| arg.help(
        "The target: `embedded`, or a DPS endpoint mqtts://HOST[:PORT] (port 8883 by default; the scheme may be \
         left out) [default: the embedded emulator]"
    )),
    mut_arg("id_scope", |arg| arg.help("The target's ID scope (required with a DPS --target)")),
    mut_arg("ca", |arg| arg.help(
        "PEM file of the CA that signs the target's certificate [default with --target: the public web roots, \
         as a real DPS instance needs; for the emulator, its --ca-out]"
    )),
    mut_arg("key_env", |arg| arg
        .help("Environment variable holding the enrollment group key the probe devices derive theirs from")
        .default_value(GROUP_KEY_ENV)),
    mut_arg("key_file", |arg| arg.help("File holding the enrollment group key (base64), instead of --key-env")),
)]
pub struct ConformArgs {
    /// `--target`, `--id-scope`, `--ca`, `--key-env`, `--key-file`, as `run` takes them.
    #[command(flatten)]
    pub target: TargetFlags,
    /// The target's MQTT-over-WebSocket endpoint, wss://HOST[:PORT] (port 443 by default), for
    /// the DPS-WS checks [default with --target: none, and those checks are skipped].
    #[arg(long, value_name = "URL")]
    pub ws_target: Option<String>,
    /// Folder for the three reports (conformance.json, .junit.xml, .md); refused when it already
    /// holds a report, unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite the report already in --out.
    #[arg(long)]
    pub force: bool,
    /// TOML file of waived checks: [[waiver]] check = "DPS-..." reason = "...".
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Skip the probes that create registrations (billable on a real DPS instance).
    #[arg(long)]
    pub exclude_billable: bool,
    /// Exit 1 when any must-check is skipped (not waived), not only when one fails.
    #[arg(long)]
    pub require_all: bool,
    /// The plain-MQTT port that must not be served [default with --target: 1883; without it, a
    /// port the embedded emulator holds unserved, so a local broker on 1883 cannot interfere].
    #[arg(long, value_name = "PORT")]
    pub plain_port: Option<u16>,
    /// Most registrations the throttling probe sends while looking for a 429.
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub throttle_requests: u32,
    /// Deadline of each step of a probe, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub deadline: u64,
    /// Registration IDs of the probe devices start with this: letters, digits and - . _ :,
    /// starting with a letter or digit, at most 64 characters.
    #[arg(long, value_name = "PREFIX", default_value = "dpsbench-conform", value_parser = parse_prefix)]
    pub prefix: String,
    /// A CA folder (`dpsbench certs`) whose root the target's X.509 enrollment group trusts,
    /// for DPS-AUTH-005 [default with --target: none, and that check is skipped].
    #[arg(long, value_name = "DIR")]
    pub x509_ca_dir: Option<PathBuf>,
    /// PEM file of the CA the target's enrollment group issues operational certificates with
    /// (api-version 2025-07-01-preview), for the DPS-CERT checks [default with --target: none,
    /// and those checks are skipped; for the emulator, its --issuer-ca-out].
    #[arg(long, value_name = "PEM")]
    pub issuer_ca: Option<PathBuf>,
    /// Print conformance.json's content on stdout, and the table and every other line on
    /// stderr: for scripts (`dpsbench conform --out DIR --json | jq .results`).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ConformArgs) -> Result<i32> {
    let options = SuiteOptions {
        waivers: match &args.waivers {
            Some(path) => load_waivers(path)?,
            None => Default::default(),
        },
        exclude_billable: args.exclude_billable,
    };
    let mut out = OutFolder::check(&args.out, "--out", args.force)?;
    let deadline = Duration::from_secs(args.deadline.max(1));
    let given = args.target.target_override().map_err(|reason| {
        anyhow::anyhow!("--target {:?}: {reason}", args.target.target.as_deref().unwrap_or_default())
    })?;
    let (target, embedded) = match given {
        Some(TargetOverride::Dps(endpoint)) => (external_target(&args, endpoint, deadline).await?, None),
        None | Some(TargetOverride::Embedded) => {
            let (target, emulator) = embedded_target(&args, deadline)?;
            (target, Some(emulator))
        }
    };
    // The positive control: a valid device must get in, or every check would blame the target
    // for a setup mistake.
    if let Err(mistake) = precheck::valid_device_connects(&target).await {
        let external = embedded.is_none();
        if let Some(embedded) = embedded {
            embedded.emulator.handle.stop().await;
        }
        let roots = match (external, &args.target.ca) {
            (true, None) if mistake.contains("--ca") => " (no --ca was given, so the public roots were trusted)",
            _ => "",
        };
        bail!("{mistake}{roots}");
    }
    if embedded.is_none() && !args.exclude_billable {
        let billable: Vec<&str> = CATALOGUE.iter().filter(|check| check.billable()).map(|check| check.id).collect();
        errln!(
            "dpsbench: note: {} create registrations, billable on a real DPS instance (up to {} here); \
             --exclude-billable skips them",
            billable.join(", "),
            args.throttle_requests + 3
        );
    }
    errln!("dpsbench: conformance suite against {} (ID scope {})", target.address, target.id_scope);
    let report = suite::run_suite(&target, &options).await;
    if let Some(embedded) = embedded {
        embedded.emulator.handle.stop().await;
    }
    // Created only now: a suite that could not run leaves no folder behind.
    out.create()?;
    let json = report::json(&report);
    let files = [
        ("conformance.json", json.clone()),
        ("conformance.junit.xml", report::junit(&report).into_bytes()),
        ("conformance.md", report::markdown(&report).into_bytes()),
    ];
    for (name, bytes) in files {
        let path = out.file(name);
        if let Err(error) = super::files::write_whole(&path, &bytes) {
            out.discard();
            return Err(error);
        }
    }
    let mut human = format!("{}reports: {}\n", report::table(&report), args.out.display());
    let skipped = precheck::skipped_must_checks(&report);
    if let Some(line) = precheck::skipped_line(&skipped, args.require_all) {
        errln!("{line}");
    }
    let why = report.why_not_passed();
    if let Some(why) = &why {
        human.push_str(&format!("{why}\n"));
    }
    super::print_result(&human, args.json.then_some(&json[..]));
    Ok(if why.is_some() || (args.require_all && !skipped.is_empty()) { 1 } else { 0 })
}

/// The embedded emulator's group key: the one `--key-env` names when it is set (an invalid one
/// is refused, naming the variable, never its value), else a random one; said either way.
fn embedded_group_key(env_var: &str) -> Result<SymmetricKey> {
    if std::env::var_os(env_var).is_none() {
        errln!("dpsbench: embedded emulator: a random group key for this run ({env_var} is not set)");
        return Ok(SymmetricKey::random());
    }
    let key = read_key(env_var, None)?;
    errln!("dpsbench: embedded emulator: the group key from {env_var}");
    Ok(key)
}

/// The embedded emulator and the plain port it holds unserved for DPS-TLS-002.
struct Embedded {
    emulator: emulator::LoopbackEmulator,
    /// Bound and never listening, so nothing else on the machine (mosquitto on 1883) can answer
    /// the plain-port probe in the emulator's place.
    _plain_port: Option<tokio::net::TcpSocket>,
}

fn embedded_target(args: &ConformArgs, deadline: Duration) -> Result<(ProbeTarget, Embedded)> {
    let group_key = embedded_group_key(key_env(args))?;
    let scope = IdScope::new(crate::scenario::EMBEDDED_ID_SCOPE).expect("the embedded scope is valid");
    let mut config =
        ServiceConfig::single_group(scope.clone(), vec!["hub-a.azure-devices.net".into()], group_key.clone());
    config.assign_delay = Duration::from_millis(1500);
    config.quota = Some(QuotaConfig { registrations_per_minute: EMBEDDED_QUOTA, operations_per_minute: 6000 });
    // An X.509 group trusting a CA made for this run, so DPS-AUTH-005 can mint its certificates.
    let ca = crate::x509::CertificateAuthority::generate()?;
    config.trust_x509_ca("conformance-x509", ca.root_pem(), Path::new("<conformance CA>"))?;
    // Its enrollments issue operational certificates, so the DPS-CERT checks run.
    let issuer_ca = config.issue_for_every_enrollment()?;
    let mut emulator = emulator::start_on_loopback(config)?;
    let ws_address = emulator.handle.serve_websocket(emulator::bind(([127, 0, 0, 1], 0).into())?)?;
    let (plain_port, reservation) = match args.plain_port {
        Some(port) => (port, None),
        None => {
            let socket = tokio::net::TcpSocket::new_v4().context("cannot reserve a plain port")?;
            socket.bind(([127, 0, 0, 1], 0).into()).context("cannot reserve a plain port")?;
            (socket.local_addr().context("cannot reserve a plain port")?.port(), Some(socket))
        }
    };
    let target = ProbeTarget {
        address: emulator.handle.address,
        ws_address: Some(ws_address),
        server_name: "localhost".try_into().expect("localhost is a valid DNS name"),
        roots: Arc::new(emulator.roots.clone()),
        id_scope: scope,
        group_key,
        plain_port,
        prefix: args.prefix.clone(),
        deadline,
        throttle_requests: args.throttle_requests,
        x509: Some(Arc::new(ca)),
        issuer_ca: Some(issuer_ca),
    };
    Ok((target, Embedded { emulator, _plain_port: reservation }))
}

/// The variable `--key-env` names, `DPS_GROUP_KEY` unless given.
fn key_env(args: &ConformArgs) -> &str {
    args.target.key_env.as_deref().unwrap_or(GROUP_KEY_ENV)
}

async fn external_target(args: &ConformArgs, endpoint: Endpoint, deadline: Duration) -> Result<ProbeTarget> {
    let typed = endpoint.to_string();
    let endpoint = endpoint
        .require(Scheme::Mqtts)
        .map_err(|error| anyhow::anyhow!("--target {typed:?}: {error} (a WebSocket endpoint goes to --ws-target)"))?;
    let (host, port) = (endpoint.host.as_str(), endpoint.port_or_default());
    let Some(scope) = &args.target.id_scope else { bail!("--target needs --id-scope") };
    let id_scope = IdScope::new(scope.clone()).context("--id-scope")?;
    let group_key = read_key(key_env(args), args.target.key_file.as_deref())?;
    // Without --ca, the public roots, as `run` trusts them for a real DPS instance.
    let roots = match &args.target.ca {
        Some(ca) => {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read --ca {}", ca.display()))?;
            crate::tls::roots_from_pem(&pem, ca)?
        }
        None => crate::tls::public_roots(),
    };
    let address = runner::reach(host, port, deadline).await?;
    let ws_address = match &args.ws_target {
        Some(url) => {
            let ws = Endpoint::parse(url)
                .and_then(|endpoint| endpoint.require(Scheme::Wss))
                .with_context(|| format!("--ws-target {url:?}"))?;
            Some(runner::resolve(&ws.host, ws.port_or_default(), deadline).await?)
        }
        None => None,
    };
    Ok(ProbeTarget {
        address,
        ws_address,
        server_name: rustls_pki_types::ServerName::try_from(host.to_string())
            .with_context(|| format!("{host:?} is not a TLS server name"))?,
        roots: Arc::new(roots),
        id_scope,
        group_key,
        plain_port: args.plain_port.unwrap_or(DEFAULT_PLAIN_PORT),
        prefix: args.prefix.clone(),
        deadline,
        throttle_requests: args.throttle_requests,
        x509: match &args.x509_ca_dir {
            Some(dir) => Some(Arc::new(crate::x509::CertificateAuthority::load(dir)?)),
            None => None,
        },
        issuer_ca: match &args.issuer_ca {
            Some(pem) => Some(issuer_certificate(pem)?),
            None => None,
        },
    })
}

/// `--issuer-ca PEM`: the CA the target's enrollment issues operational certificates with.
fn issuer_certificate(pem: &Path) -> Result<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject as _;
    let text = std::fs::read(pem).with_context(|| format!("cannot read --issuer-ca {}", pem.display()))?;
    rustls_pki_types::CertificateDer::from_pem_slice(&text)
        .with_context(|| format!("--issuer-ca {}: not a PEM certificate", pem.display()))
}

/// Longest `--prefix`: room is left for the probe names after it (registration IDs are at most
/// 128 characters).
const MAX_PREFIX_LEN: usize = 64;

/// Checks `--prefix` at the edge: every probe's registration ID is `{prefix}-{probe name}`.
pub fn parse_prefix(prefix: &str) -> Result<String, String> {
    let allowed = "letters, digits and - . _ :, starting with a letter or digit, at most 64 characters";
    if prefix.len() > MAX_PREFIX_LEN || RegistrationId::new(format!("{prefix}-probe")).is_err() {
        return Err(format!("{prefix:?} cannot start a registration ID: use {allowed}"));
    }
    Ok(prefix.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    #[serde(default)]
    waiver: Vec<Waiver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Waiver {
    check: String,
    reason: String,
}

/// Reads a waiver file; unknown check IDs and empty reasons are errors.
pub fn load_waivers(path: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read waivers {}", path.display()))?;
    let file: WaiverFile =
        crate::toml_file::parse(&text).map_err(|message| anyhow::anyhow!("{}: {message}", path.display()))?;
    let mut waivers = std::collections::BTreeMap::new();
    for (i, waiver) in file.waiver.into_iter().enumerate() {
        if crate::conformance::find(&waiver.check).is_none() {
            bail!("{}: waiver[{i}].check: {:?} is not a check of the catalogue", path.display(), waiver.check);
        }
        if waiver.reason.trim().is_empty() {
            bail!("{}: waiver[{i}].reason: say why {} is waived", path.display(), waiver.check);
        }
        waivers.insert(waiver.check, waiver.reason);
    }
    Ok(waivers)
}
