//! The command line: the top-level clap definitions, dispatch and shared helpers; one file per
//! command owns its arguments and handler (`run`, `emulator`, `keys` with `token`, `certs`,
//! `conform`, `reports`, `completions`). The only layer that uses `anyhow`, reads secrets from
//! the environment, writes report files and picks exit codes.

/// `print!` to stdout through [`say`]: a reader that went away ends nothing and panics nothing.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::say(&format!($($arg)*)) };
}

/// `println!` through [`say`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::say(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` through [`tell`]: a closed stderr (`2>&1 | head -3`) ends nothing and panics
/// nothing, where `eprintln!` would panic mid-run.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::tell(&format!("{}\n", format_args!($($arg)*))) };
}

// The commands, one file each: its arguments and its handler.
mod certs; // `certs`
mod completions; // `completions`
mod conform; // `conform`
mod emulator; // `emulator`
mod keys; // `keys derive`, `token`, and reading a group key
mod reports; // `report render`, `report compare`
mod run; // `run`

// What `run` leans on.
mod early_warning; // the early word when every first device failed alike
mod files; // the report files written as the run goes
mod live_metrics; // `--metrics-listen` and `--metrics-push`, fed each tick
mod overrides; // the plan: scenario or quick run, with the override flags applied
mod progress; // live progress on stderr
mod sharding; // `--shard K/N`, `--start-at`
mod sinks; // the outputs fed each tick

// What `emulator`, `certs` and `report` lean on.
mod certs_issuing; // `certs --issuing`
mod client_report; // `emulator --client-report`
mod emulator_log; // the standalone emulator's stderr log
mod emulator_processes; // `emulator --processes N`
mod issuer_out; // `emulator --issuer-ca-out`
mod merge; // `report merge`

// Shared by the commands.
mod interrupts; // SIGINT/SIGTERM
mod out_folder; // an output folder, refused when it holds a report, taken back on failure

#[cfg(test)]
mod readme_examples; // README's TOML examples parse

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::runner;
use interrupts::{interrupt_counter, interrupted};

pub use certs::CertsArgs;
pub use completions::CompletionsArgs;
pub use conform::ConformArgs;
pub use emulator::EmulatorArgs;
pub use files::write_rendered;
pub use keys::{DeriveArgs, KeysCommand, TokenArgs};
pub use reports::{CompareArgs, MergeArgs, RenderArgs, ReportCommand};
pub use run::RunArgs;

const TOKEN_USAGE: &str = "dpsbench token --id-scope <S> --registration-id <R> --expiry <WHEN> \
                           [--key-env <VAR> | --key-file <FILE>]";
const CONFORM_USAGE: &str = "dpsbench conform --out <DIR> [--target <TARGET> --id-scope <S> [--ca <PEM>]] \
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
    /// completed with failures, stopped early, failed a gate or was a failing control ([devices]
    /// misbehave), 2 for bad input, setup errors or a report file that could not be written
    /// (the table is printed all the same), 3 when the run is invalid (the generator
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
    /// or 1 when a client broke a must-check (with --client-report), 2 for bad input, 3 when no
    /// client was judged (with --client-report: no verdict; the report gives the TLS failures).
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
        Command::Run(args) => runtime()?.block_on(run::run(*args)),
        Command::Emulator(args) => runtime()?.block_on(emulator::serve_emulator(args)),
        Command::Keys(KeysCommand::Derive(args)) => keys::derive(args),
        Command::Token(args) => keys::token(args),
        Command::Conform(args) => runtime()?.block_on(conform::run(args)),
        Command::Certs(args) => certs::certs(args),
        Command::Report(command) => reports::execute(command),
        Command::Completions(args) => completions::completions(args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    runner::runtime().context("cannot start the async runtime")
}

/// Writes `text` to stdout. A reader that went away (`| head -1`) is no error: the command's
/// exit status stays its own, and nothing panics.
pub(crate) fn say(text: &str) {
    quietly(&mut std::io::stdout().lock(), text);
}

/// Writes `text` to stderr, as [`say`] does to stdout: a closed stderr loses the line, never the
/// run (Rust ignores SIGPIPE, so the write returns an error that is dropped here).
/// A command's result: `human` on stdout, or with `--json` the result's JSON on stdout and
/// `human` on stderr, so a script reads stdout alone and a person still sees the table.
pub(crate) fn print_result(human: &str, json: Option<&[u8]>) {
    match json {
        Some(json) => {
            tell(human);
            say(&String::from_utf8_lossy(json));
        }
        None => say(human),
    }
}

pub fn tell(text: &str) {
    quietly(&mut std::io::stderr().lock(), text);
}

fn quietly(out: &mut impl std::io::Write, text: &str) {
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
