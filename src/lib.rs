//! dpsbench: load generation and conformance benchmarks for Azure IoT Hub DPS over MQTT.
//!
//! # Floors
//!
//! The crate stands in floors. A module imports only modules on floors below its own, never up
//! and never sideways, and no files import each other in a circle, inside a folder or across.
//! A test (`map.rs`) reads the lines below and checks both against every `use` and every path
//! written in the code (tests left out):
//!
//! 10  cli  the command line: flags, env, files written, the terminal, exit codes
//! 9  runner, report, telemetry  run a plan; render, compare and merge reports; live metrics
//! 8  results, shard  what a run hands out (Tick, RunSummary); a plan split K of N
//! 7  scenario  TOML into an immutable Plan; override flags; the dry run's forecast
//! 6  conformance  the catalogue of DPS checks, its probes, its report
//! 5  emulator, slo  the embedded DPS in layers; `[slo]` gates on a metrics summary
//! 4  metrics  HDR histograms per phase, counts, the Summary (no IO, no clock)
//! 3  device, tls  one device's flow (sans-IO core, async driver); rustls configs
//! 2  x509, messages, mqtt  CAs and device certificates; DPS bodies; MQTT framing
//! 1  timestamp, arrival, toml_file, credentials, certificates, websocket, topics, endpoint, grading, host  leaves
//!
//! The leaves: `credentials` (keys, SAS tokens; `Debug` redacted), `topics` (topic names, the
//! MQTT username), `arrival` (when devices start), `certificates` (a device's CSR and the check
//! of the chain issued for it), `endpoint` (a target URL as typed, one parser), `grading` (what
//! both check catalogues grade in: levels, sources, the check report and its JUnit), `host`
//! (the machine's name and CPU steal), `timestamp`, `toml_file`, `websocket`.
//!
//! Within a folder, a file may use what its enclosing module defines (`super::…`) while that
//! module calls into it: that is Rust's module tree, and the test does not count it as a circle.
//! Every other loop between two files is one.
//!
//! # How a run flows
//!
//! `cli` resolves a `scenario::Plan` (immutable from then on) and, beside it, the invocation's
//! `runner::RunOptions` (shard part, start instant, overrides); `runner` adds the facts it finds
//! at run time (`runner::RunContext`: the prepared target, the host), starts devices by
//! `arrival` and folds each device's report into `metrics`; each second it hands a
//! `results::Tick` to the CLI's sinks (files, progress, `telemetry`), closing one interval of
//! the plan's clock (every figure in it counted at its event's instant, a 429 as it arrives),
//! and at the end one
//! `results::RunSummary`, assembled once. `report` renders report.md and report.html from that
//! in-memory report; `report render` loads the same type from a folder.
//!
//! # Rules
//!
//! - The sans-IO cores (`credentials`, `topics`, `messages`, `arrival`, `device::flow`,
//!   `emulator::service`, `emulator::client_checks`, `conformance::passive`, `metrics`, `slo`,
//!   `shard`, `results`, `report::render`, `report::analysis`) never touch sockets, files or the
//!   clock: they take `now` and bytes. Randomness is an input too (seeded in tests).
//! - The device core reports what it observed to a [`device::Observer`]; the emulator's service
//!   reports its sessions' events to `emulator::observe` observers (the client judge is one).
//! - Measured phases are named once, by [`metrics::Phase`]; flow steps by [`device::Step`].
//! - Only `cli` reads environment variables (and `host`, the host name), writes report files,
//!   binds `/metrics` and picks exit codes. Files are read by `cli`, `report::format`, and the
//!   loaders of what a user names: `scenario`, `emulator::config` and `emulator::start`, `tls`,
//!   `x509` (which also writes `dpsbench certs`' files), `runner` (an X.509 plan's root for the
//!   embedded target) and `host` (`/proc`).
//! - Failures of the service under test are data (`device::FailureKind`), never `Err`.
//! - Secrets (keys, tokens) live in `credentials` types whose `Debug` is redacted.

pub mod arrival;
pub mod certificates;
pub mod cli;
pub mod conformance;
pub mod credentials;
pub mod device;
pub mod emulator;
pub mod endpoint;
pub mod grading;
pub mod host;
#[cfg(test)]
mod map;
pub mod messages;
pub mod metrics;
pub mod mqtt;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod slo;
pub mod telemetry;
pub mod timestamp;
pub mod tls;
pub mod toml_file;
pub mod topics;
pub mod websocket;
pub mod x509;
