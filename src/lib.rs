//! dpsbench: load generation and conformance benchmarks for Azure IoT Hub DPS over MQTT.
//!
//! # Architecture map
//!
//! ```text
//!  cli ──► runner ─────────────────► device::driver ──► device::flow ──► device::Observer
//!   │      (prepare: target, the      (socket, TLS,       (sans IO)            ▲ implemented by
//!   │       devices' lookahead, the   WebSocket,                               │
//!   │       preflight; then arrival   deadlines, clock)             conformance::passive
//!   │       × flow × stop, folding                                   (CheckLog, PassiveTally;
//!   │       reports into metrics)                                     sans IO)
//!   │        │  takes a Plan and, beside it, runner::RunOptions (shard part, start instant,
//!   │        │  extra records: what the user typed for this run, not scenario data)
//!   │        │
//!   │        ├─► scenario (TOML → Plan) ──► arrival (when devices start; sans IO)
//!   │        ├─► shard (K of N: shard::Part, its devices and load, split once; the plan hash;
//!   │        │          sans IO) ──► scenario
//!   │        ├─► metrics (HDR histograms per metrics::Phase, Summary; sans IO)
//!   │        ├─► slo ([slo] gates → a verdict on a metrics::Summary; sans IO)
//!   │        ├─► results (Tick each second, RunSummary at the end: plain data, filled here)
//!   │        └─► emulator::start ──► emulator::server ──► emulator::service (sans IO)
//!   │             (serve: TLS policy,   (accept, TLS,        │    ──► emulator::config, deviations,
//!   │              listeners)            framing)            │        issuance (the issuing CA)
//!   │                                                        └─► emulator::client_checks (judges
//!   │                                                            each client; sans IO)
//!   ├─► conformance::suite ──► catalogue, probes (network, deadlines) ──► device, passive
//!   │                          report (JUnit, Markdown, JSON; pure)
//!   ├─► report (pure writers: results → bytes: summary, timeseries, hlog, report.md,
//!   │           report.html, devices.csv, compare + --fail-if; folder, hlog and html also read a
//!   │           report folder back, for render, compare and merge)
//!   ├─► telemetry (live metrics: Prometheus exposition, remote write, the pusher, /metrics on
//!   │              hyper's server)
//!   └─► emulator (standalone `dpsbench emulator`: the CLI binds, emulator::standalone serves)
//!
//!  leaves, shared by every layer above:
//!    credentials (keys, SAS tokens)     topics (topic names, the MQTT username)
//!    messages (DPS bodies)              timestamp (RFC 3339 text of wall-clock instants)
//!    mqtt (framing over rumqttc's mqttbytes v4, packet IDs)
//!    tls (rustls configs)               x509 (CAs, device certificates)
//!    websocket (MQTT over WebSocket)    toml_file (reading scenario, emulator and waiver files)
//!    certificates (a device's CSR and the check of the chain issued for it, 2025-07-01-preview)
//!    endpoint (a target's mqtts:// or wss:// address as typed: one parser for every flag)
//!    grading (what both check catalogues grade in: levels, sources, the check report, JUnit)
//!    host (facts about the machine this runs on: host name, cores, CPU steal; reads /proc and the environment)
//! ```
//!
//! # Floors
//!
//! Each module imports only modules on floors below its own, never up and never sideways; no
//! files import each other in a circle. Both are checked by a test (`map.rs`) that reads these
//! lines:
//!
//! 10  cli
//! 9  runner, report, telemetry
//! 8  results, shard
//! 7  scenario
//! 6  conformance
//! 5  emulator, slo
//! 4  metrics
//! 3  device, tls
//! 2  x509, messages, mqtt
//! 1  timestamp, arrival, toml_file, credentials, certificates, websocket, topics, endpoint, grading, host
//!
//! # Rules
//!
//! Rules (the imports between top-level modules are checked by a test against the table in the `map` module):
//! - Calls go down the map, never up. The device core depends only on the leaves: it reports
//!   what it observed to an [`device::Observer`] and never imports `conformance`, `metrics` or
//!   `runner`; `metrics` and `arrival` import no `conformance`; `report` imports no `runner`
//!   (both see `results`). Among the leaves these depend on another: `mqtt` on `websocket` (it
//!   frames over a WebSocket stream too), `tls` on `x509` (PEM), `x509` on `credentials` and
//!   `timestamp`, `messages` on `timestamp`.
//! - Sideways, by value only: `scenario` names the emulator settings of an embedded target
//!   (`emulator::config`, `emulator::faults`) and the device's flow settings; `results` holds
//!   `metrics`, `slo` and `conformance` data and the scenario's overrides (`scenario::Applied`).
//!   Between `emulator` and `conformance` one way only: `conformance::catalogue` names each
//!   check's failing `emulator::Deviation`. Both catalogues grade in the words of the `grading`
//!   leaf (`Level`, `Source`, the check report and its JUnit, `excerpt`), so
//!   `emulator::client_checks` imports nothing of `conformance`; it names
//!   `device::Misbehaviour`, the failing control of each check.
//! - The sans-IO modules (`credentials`, `topics`, `messages`, `arrival`, `device::flow`,
//!   `emulator::service`, `emulator::client_checks`, `conformance::passive`, `metrics`, `slo`,
//!   `shard`, `results`, `report`) never touch sockets, files
//!   or the clock: they take `now` and bytes. Randomness is an input too: `device::flow`,
//!   `emulator::service` and `messages` draw from an RNG they are given (seeded in tests).
//! - Measured phases are named once, by [`metrics::Phase`]; flow steps by [`device::Step`].
//! - Only `cli` (and `host`, for the host name) reads environment variables, writes report files, binds `/metrics` and picks
//!   exit codes (`telemetry` serves the page and pushes remote write). Files are read by `cli`, by `report::format::folder` (a report
//!   folder), and by the loaders of what a user names: `scenario` (the scenario and the key and
//!   CA files it names),
//!   `emulator::config` and `emulator::start` (the emulator's TOML and TLS files), `tls` (PEM
//!   files), `x509` (CA folders and device certificates, which it also writes: `dpsbench certs`,
//!   and the certificates a run mints ahead), `runner` (an X.509 plan's root for the
//!   embedded target) and `host` (`/proc`: the host name, CPU steal).
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
