//! The command line: clap definitions and one handler per command. The only layer that uses
//! `anyhow`, reads secrets from the environment, writes report files and picks exit codes.

/// `print!` to stdout through [`say`]: a reader that went away ends nothing and panics nothing.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::say(&format!($($arg)*)) };
}

/// `println!` through [`say`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::say(&format!("{}\n", format_args!($($arg)*))) };
}

mod certs_issuing;
mod client_report;
mod conform;
mod early_warning;
mod emulator_log;
mod emulator_processes;
mod files;
mod issuer_out;
mod keys;
mod live_metrics;
mod merge;
mod metrics_endpoint;
mod metrics_push;
mod out_folder;
mod overrides;
#[cfg(test)]
mod readme_examples;
mod reports;
mod sharding;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::credentials::RegistrationId;
use crate::emulator::{self, EmulatorConfig, Service, ServiceStats};
use crate::report;
use crate::runner::{self, Tick};
use crate::scenario::Plan;

use crate::tls::ServerIdentity;
pub use files::write_rendered;
use files::{DevicesCsvFile, LatencyLogFile};
pub use keys::{DeriveArgs, KeysCommand, TokenArgs};
use out_folder::OutFolder;
pub use reports::{CompareArgs, MergeArgs, RenderArgs, ReportCommand};

const TOKEN_USAGE: &str = "dpsbench token --id-scope <S> --registration-id <R> --expiry <WHEN> \
                           [--key-env <VAR> | --key-file <FILE>]";
const CONFORM_USAGE: &str = "dpsbench conform --out <DIR> [--target <URL> --id-scope <S> [--ca <PEM>]] \
                             [--key-env <VAR> | --key-file <FILE>] [OPTIONS]";

/// Exit code for bad input and setup errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a run the generator could not keep (see `validity` in summary.json).
pub const EXIT_INVALID: i32 = 3;

/// `--version`: the package's version and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DPSBENCH_COMMIT"), ")");

/// Load generation and conformance benchmarks for Azure IoT Hub DPS over MQTT.
#[derive(Debug, Parser)]
#[command(name = "dpsbench", version = VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: simulated devices provision against the target it names.
    ///
    /// Writes summary.json, report.md, timeseries.csv and latency.hlog (one row, or one interval,
    /// a second, flushed as the run goes), report.html at the end, and devices.csv with
    /// --devices-csv.
    /// SIGINT/SIGTERM stops arrivals and drains in-flight devices; a second one stops at once.
    ///
    /// Exit status: 0 when every device was assigned and every [slo] gate held, 1 when the run
    /// completed with failures, stopped early or failed a gate, 2 for bad input or setup errors, 3 when the run is invalid (the generator
    /// could not keep its plan; summary.json says why).
    Run(Box<RunArgs>),
    /// Serve the DPS emulator (MQTT over TLS) until SIGINT or SIGTERM.
    ///
    /// The configuration file's format (ID scope, hubs, enrollment groups and individual
    /// enrollments, quotas, [faults], [deviations]) is in README.md, "The emulator's
    /// configuration"; examples/emulator.toml is a complete one to start from.
    ///
    /// With --client-report it also judges every client it serves against the client checks
    /// and writes clients.json, clients.md and clients.junit.xml when it stops. Exit status: 0,
    /// or 1 when a client broke a must-check (with --client-report), 2 for bad input.
    Emulator(EmulatorArgs),
    /// Derive per-device keys from an enrollment group key.
    ///
    /// Exit status: 0, or 2 for bad input (a missing or invalid key, a bad registration ID).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print a SAS token (MQTT password) for one device.
    // The usage is spelled out: clap's own shows a flag given on the command line as required.
    // The exit status goes after the options, so the help stays in its short, one-line form.
    #[command(override_usage = TOKEN_USAGE, after_help = "Exit status: 0 (a past expiry too, with a warning), or 2 for bad input.")]
    Token(TokenArgs),
    /// Create a test CA hierarchy and device certificates for X.509 attestation.
    ///
    /// Writes root.pem and intermediate.pem with their keys (0600) into --out, unless they exist
    /// already, then mints (or keeps) one ECDSA P-256 certificate per device, subject CN = its
    /// registration ID, into --out/devices. Trust root.pem in an X.509 enrollment group.
    ///
    /// Exit status: 0, or 2 for bad input or a folder that cannot be written.
    Certs(CertsArgs),
    /// Probe a target against what the DPS MQTT documentation promises.
    ///
    /// Runs every check of the catalogue (transport, TLS, sessions, subscriptions, topics, the
    /// registration lifecycle with every passive check, authentication, throttling), each within
    /// its own deadline, and writes conformance.junit.xml, conformance.md and conformance.json.
    /// Without --target it starts the embedded emulator. First a valid device connects: when it
    /// cannot (wrong CA, key or scope), the suite stops there. Skipped must-checks are listed at the
    /// end with the flag that would run them. Exit status: 0 when every must-check that ran passes
    /// (with --require-all: and none was skipped), 1 when any fails, 2 when the suite could not run.
    #[command(override_usage = CONFORM_USAGE)]
    Conform(ConformArgs),
    /// Re-render a run's reports, compare runs and gate on regressions, or merge shards' reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Print a shell completion script, e.g. `dpsbench completions bash > ~/.local/share/bash-completion/completions/dpsbench`.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

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

#[derive(Debug, Args)]
pub struct ConformArgs {
    /// The target, mqtts://HOST[:PORT] (port 8883 by default) [default: the embedded emulator].
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The target's MQTT-over-WebSocket endpoint, wss://HOST[:PORT] (port 443 by default), for
    /// the DPS-WS checks [default with --target: none, and those checks are skipped].
    #[arg(long, value_name = "URL")]
    pub ws_target: Option<String>,
    /// PEM file of the CA that signs the target's certificate [default with --target: the public
    /// web roots, as a real DPS instance needs; for the emulator, its --ca-out].
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// The target's ID scope (required with --target).
    #[arg(long, value_name = "S")]
    pub id_scope: Option<String>,
    /// Environment variable holding the enrollment group key the probe devices derive theirs from.
    #[arg(long, value_name = "VAR", default_value = "DPS_GROUP_KEY", conflicts_with = "key_file")]
    pub key_env: String,
    /// File holding the enrollment group key (base64), instead of --key-env.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
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
    #[arg(long, value_name = "PREFIX", default_value = "dpsbench-conform", value_parser = conform::parse_prefix)]
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
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML), e.g. scenarios/quickstart.toml [default: a quick run against the
    /// embedded emulator, shaped by the overrides below].
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: overrides::OverrideArgs,
    /// Folder for the run's reports: summary.json, report.md, report.html, timeseries.csv,
    /// latency.hlog (and devices.csv) [default: a new folder under reports/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite the report already in --out.
    #[arg(long)]
    pub force: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the resolved plan (target, devices, rate, expected duration, billable
    /// registrations, expected throttling) and exit without connecting anywhere.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub metrics: live_metrics::MetricsArgs,
    /// Also write devices.csv: one row per device (registration ID, personality, outcome and
    /// failure kind, every phase's time, register attempts, polls, hub), as devices finish.
    #[arg(long)]
    pub devices_csv: bool,
    /// Run only shard K of N (K from 0 to N-1): the devices whose index i has i mod N = K, each
    /// at the instant the whole plan gives it; a closed model's concurrency is split. Merge the
    /// shards' folders with `dpsbench report merge`.
    #[arg(long, value_name = "K/N", env = "DPSBENCH_SHARD", value_parser = sharding::parse_shard)]
    pub shard: Option<crate::shard::Shard>,
    /// The wall-clock instant (RFC 3339) of the plan's zero, the same for every shard; refused
    /// when more than a second past.
    #[arg(long, value_name = "RFC3339", env = "DPSBENCH_START_AT", value_parser = sharding::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

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

/// An error and its causes on one line, each cause once: errors that already quote their source
/// (`cannot read x: No such file…`) are not followed by it again.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs a parsed command; returns the process exit code. Errors mean exit 2.
pub fn execute(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => runtime()?.block_on(run(*args)),
        Command::Emulator(args) => runtime()?.block_on(serve_emulator(args)),
        Command::Keys(KeysCommand::Derive(args)) => keys::derive(args),
        Command::Token(args) => keys::token(args),
        Command::Conform(args) => runtime()?.block_on(conform::run(args)),
        Command::Certs(args) => certs(args),
        Command::Report(command) => reports::execute(command),
        Command::Completions(args) => {
            use clap::CommandFactory as _;
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "dpsbench", &mut script);
            std::io::stdout().write_all(&script).context("cannot write the completion script")?;
            Ok(0)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    runner::runtime().context("cannot start the async runtime")
}

fn certs(args: CertsArgs) -> Result<i32> {
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
        certs_issuing::write(&args.out, &args.registration_id, args.count)?.iter().for_each(|line| outln!("{line}"));
    }
    Ok(0)
}

/// Writes `text` to stdout. A reader that went away (`| head -1`) is no error: the command's
/// exit status stays its own, and nothing panics.
pub(crate) fn say(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

async fn run(args: RunArgs) -> Result<i32> {
    let (mut plan, applied) = overrides::load_plan(args.scenario.as_deref(), &args.overrides)?;
    let wait = sharding::apply(&mut plan, args.shard, args.start_at, std::time::SystemTime::now())?;
    plan.device_records = args.devices_csv;
    if args.dry_run {
        say(&overrides::dry_run(&plan, &applied));
        return Ok(0);
    }
    let out = args.out.clone().unwrap_or_else(|| default_out_dir(&plan.name));
    let mut folder = OutFolder::check(&out, "--out", args.force)?;
    // Said before anything is set up: most of a plan this large will never start.
    if let Some(estimate) = plan.starts_within_limits() {
        eprintln!("dpsbench: {estimate}");
    }
    // Set up and preflighted before the folder is touched: a run that cannot start leaves
    // nothing behind, and an old report under --force stays whole.
    let mut interrupts = interrupt_counter();
    let ready = runner::prepare(&plan, &mut interrupts).await?;
    let live = live_metrics::LiveMetrics::start(&args.metrics, args.shard).await?;
    // Created now, and taken back if the run cannot start: a run that never ran leaves nothing.
    folder.create()?;
    let mut summary = match record_run(&plan, &args, &mut folder, live.as_ref(), wait, ready, interrupts).await {
        Ok(summary) => summary,
        Err(error) => {
            folder.discard();
            if let Some(live) = live {
                live.stop().await;
            }
            return Err(error);
        }
    };
    summary.scenario.overrides = applied;
    let path = out.join("summary.json");
    std::fs::write(&path, report::summary_json(&summary))
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Every file is written before anything is printed, so a closed stdout loses none.
    let rendered = write_rendered(&out)?;
    let mut printed = report::summary_table(&summary);
    printed.push_str(&format!("summary: {}\n", path.display()));
    for path in rendered {
        printed.push_str(&format!("report: {}\n", path.display()));
    }
    say(&printed);
    if let Some(live) = live {
        live.finish().await;
    }
    // Invalid first: its numbers describe the generator, so neither gates nor failures count.
    Ok(if !summary.validity.valid {
        EXIT_INVALID
    } else if summary.all_assigned() && summary.gates_held() {
        0
    } else {
        1
    })
}

/// Runs the prepared plan, writing the files that grow as it goes into `folder`; returns the
/// summary, or the error that kept it from finishing.
async fn record_run(
    plan: &Plan,
    args: &RunArgs,
    folder: &mut OutFolder,
    live: Option<&live_metrics::LiveMetrics>,
    wait: Option<String>,
    ready: runner::Ready,
    interrupts: tokio::sync::watch::Receiver<u32>,
) -> Result<runner::RunSummary> {
    let series_path = folder.file("timeseries.csv");
    let mut series =
        std::fs::File::create(&series_path).with_context(|| format!("cannot create {}", series_path.display()))?;
    series
        .write_all(&report::timeseries::header())
        .with_context(|| format!("cannot write {}", series_path.display()))?;
    let mut latency = LatencyLogFile::create(folder.file("latency.hlog"))?;
    let mut devices = match args.devices_csv {
        true => Some(DevicesCsvFile::create(folder.file("devices.csv"))?),
        false => None,
    };
    let mut progress = ProgressView::new(args.quiet, plan, folder.path());
    if let Some(wait) = wait {
        progress.warn(&wait);
    }
    let summary = ready
        .run(interrupts, |tick: &Tick| {
            // Published before the progress line, so a line on stderr means its page is served.
            for line in live.map(|live| live.publish(tick)).unwrap_or_default() {
                progress.warn(&line);
            }
            progress.show(tick);
            // Written (unbuffered) every second, so a crash keeps everything up to then.
            if let Err(error) = series.write_all(&report::timeseries::Row::of(tick).line()) {
                progress.warn(&format!("cannot write {}: {error}", series_path.display()));
            }
            if let Err(error) = latency.write(tick) {
                progress.warn(&format!("cannot write {}: {error}", latency.path.display()));
            }
            if let Some(devices) = &mut devices
                && let Err(error) = devices.write(tick)
            {
                progress.warn(&format!("cannot write {}: {error}", devices.path.display()));
            }
        })
        .await;
    progress.finish();
    Ok(summary?)
}

/// Live progress: a bar on a terminal, a plain line per second otherwise, nothing with --quiet.
struct ProgressView {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    announced: bool,
    banner: String,
    drain_announced: bool,
    /// Whether the early word on every device failing alike was said (once a run).
    early_warned: bool,
}

impl ProgressView {
    fn new(quiet: bool, plan: &Plan, out: &Path) -> Self {
        use std::io::IsTerminal as _;
        let banner = format!(
            "dpsbench: up to {} devices, {}, from {} (results in {})",
            plan.stop.devices,
            plan.load.describe(),
            plan.file.display(),
            out.display()
        );
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(plan.stop.devices);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} finished  {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar
        });
        Self { quiet, bar, announced: false, banner, drain_announced: false, early_warned: false }
    }

    fn show(&mut self, tick: &Tick) {
        if self.quiet {
            return;
        }
        if !self.announced {
            // Printed once the target is set up, so a setup error stays the only line.
            self.announced = true;
            self.warn(&self.banner.clone());
        }
        if !self.early_warned
            && let Some(line) = early_warning::every_device_failed_alike(tick)
        {
            self.early_warned = true;
            self.warn(&line);
        }
        let p = &tick.progress;
        if tick.draining && !self.drain_announced {
            self.drain_announced = true;
            self.warn(&format!(
                "dpsbench: interrupted: no more arrivals; draining {} devices in flight (interrupt again to stop now)",
                p.in_flight
            ));
        }
        let line = format!(
            "started {}  assigned {}  failed {}  in flight {}  late {}  {} assigned/s  throttled {} ({}/s)  p99 assigned {}",
            p.started,
            p.assigned,
            p.failed,
            p.in_flight,
            p.late_starts,
            p.interval.assigned,
            p.throttled,
            p.interval.throttled,
            report::micros(p.assigned_p99_us)
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.assigned + p.failed);
                bar.set_message(line);
            }
            None => eprintln!("[{:>4}s] {line}", p.elapsed.as_secs()),
        }
    }

    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Counts SIGINT/SIGTERM: the runner drains on the first and stops on the second.
fn interrupt_counter() -> tokio::sync::watch::Receiver<u32> {
    let (sender, receiver) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            interrupted().await;
            sender.send_modify(|count| *count += 1);
            if sender.is_closed() {
                return;
            }
        }
    });
    receiver
}

fn default_out_dir(name: &str) -> PathBuf {
    let stamp = crate::timestamp::rfc3339(std::time::SystemTime::now());
    // 2026-11-26T07:10:01.1234567Z -> 20261126-071001
    let compact: String = stamp.chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let safe_name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    PathBuf::from("reports").join(format!("{safe_name}-{}", compact.replace('T', "-")))
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// first polled, so a signal that comes before the await is not lost (nor fatal).
fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve_emulator(args: EmulatorArgs) -> Result<i32> {
    // Every device connection is a descriptor: serve as many as the hard limit allows.
    runner::raise_open_files_limit();
    let (config, service_config) = EmulatorConfig::load(&args.config)?;
    issuer_out::write(args.issuer_ca_out.as_deref(), &config, &service_config, args.processes)?;
    let identity = match &config.tls {
        Some(files) => {
            let base = args.config.parent().unwrap_or(Path::new("."));
            ServerIdentity::load(
                &base.join(&files.certificate_chain),
                &base.join(&files.private_key),
                files.ca_certificate.as_ref().map(|p| base.join(p)).as_deref(),
            )?
        }
        None => ServerIdentity::generate(&[])?,
    };
    let identity = emulator_processes::identity(&args, identity)?;
    let clients = client_report::ClientReport::prepare(&args.clients, args.processes)?;
    let listener = emulator_processes::bind(&args)?;
    let (clients, service) = match clients {
        Some((report, judge)) => (Some(report), Service::new(service_config).judging(judge)),
        None => (None, Service::new(service_config)),
    };
    let service = Arc::new(service);
    let policy = config.tls_policy(&args.config)?;
    let policy = service.config().deviations.tls_policy(policy);
    let server_config = identity.server_config_with_clients(policy, &service.config().client_trust)?;
    let mut handle = emulator::spawn(listener, service.clone(), server_config)?;
    let websocket = match args.ws_listen {
        Some(address) => {
            let listener =
                emulator::bind(address).with_context(|| format!("cannot listen on --ws-listen {address}"))?;
            format!(", MQTT over WebSocket on {}", handle.serve_websocket(listener)?)
        }
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
    emulator_log::warnings(service.config()).iter().for_each(|warning| emulator_log::log(warning));
    let copies = emulator_processes::Copies::start(&args, handle.address, &identity)?;
    // Listened for before the ready line: a script may signal as soon as it reads it.
    let stop = interrupted();
    outln!("{}", emulator_log::ready_line(handle.address, &websocket, service.config(), copies.count()));
    std::io::stdout().flush()?;
    let (stop_log, log_stopped) = tokio::sync::watch::channel(false);
    let log = tokio::spawn(emulator_log::log_activity(service.clone(), log_stopped));
    match &clients {
        Some(report) => {
            let judge = service.judge.as_ref().expect("a client report comes with its judge");
            tokio::select! {
                () = stop => {}
                () = report.enough(judge) => {}
            }
        }
        None => stop.await,
    }
    copies.stop();
    handle.stop().await;
    let _ = stop_log.send(true);
    let _ = log.await;
    let stats = &service.stats;
    emulator_log::log(&format!(
        "dpsbench emulator stopped: {} connections, {} refused, {} registrations, {} polls, {} throttled",
        ServiceStats::get(&stats.connections),
        ServiceStats::get(&stats.connects_refused),
        ServiceStats::get(&stats.registrations),
        ServiceStats::get(&stats.polls),
        ServiceStats::get(&stats.throttled)
    ));
    if let Some(line) = issuer_out::totals(&service) {
        emulator_log::log(&line);
    }
    let faults = service.faults.counts.snapshot();
    if !faults.is_empty() {
        let listed: Vec<String> = faults.iter().map(|(fault, count)| format!("{fault} {count}")).collect();
        emulator_log::log(&format!("dpsbench emulator injected faults: {}", listed.join(", ")));
    }
    match (clients, &service.judge) {
        (Some(report), Some(judge)) => {
            report.settle(&service).await;
            report.write(judge)
        }
        _ => Ok(0),
    }
}
