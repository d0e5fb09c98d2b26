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
//!   │           report.html, devices.csv, compare + --fail-if, Prometheus exposition and
//!   │           remote write; folder, hlog and html also read a report folder back, for render,
//!   │           compare and merge)
//!   └─► emulator (standalone `dpsbench emulator`: the CLI binds, emulator::standalone serves)
//!
//!  leaves, shared by every layer above:
//!    credentials (keys, SAS tokens)     topics (topic names, the MQTT username)
//!    messages (DPS bodies)              timestamp (RFC 3339 text of wall-clock instants)
//!    mqtt (framing over rumqttc's mqttbytes v4, packet IDs)
//!    tls (rustls configs)               x509 (CAs, device certificates)
//!    websocket (MQTT over WebSocket)    toml_file (reading scenario, emulator and waiver files)
//!    certificates (a device's CSR and the check of the chain issued for it, 2025-07-01-preview)
//! ```
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
//!   Between `emulator` and `conformance` only data types and pure text helpers cross, in no
//!   circle of files: `emulator::client_checks`
//!   borrows `Level` and `Source` (so both catalogues grade alike), `excerpt` and
//!   `xml_escape`, and names `device::Misbehaviour`, the failing control of each check;
//!   `conformance::catalogue` names each check's failing `emulator::Deviation`.
//! - The sans-IO modules (`credentials`, `topics`, `messages`, `arrival`, `device::flow`,
//!   `emulator::service`, `emulator::client_checks`, `conformance::passive`, `metrics`, `slo`,
//!   `shard`, `results`, `report`) never touch sockets, files
//!   or the clock: they take `now` and bytes. Randomness is an input too: `device::flow`,
//!   `emulator::service` and `messages` draw from an RNG they are given (seeded in tests).
//! - Measured phases are named once, by [`metrics::Phase`]; flow steps by [`device::Step`].
//! - Only `cli` reads environment variables, writes report files, serves `/metrics`, pushes
//!   remote write and picks exit codes. Files are read by `cli`, by `report::folder` (a report
//!   folder), and by the loaders of what a user names: `scenario` (the scenario and the key and
//!   CA files it names),
//!   `emulator::config` and `emulator::start` (the emulator's TOML and TLS files), `tls` (PEM
//!   files), `x509` (CA folders and device certificates, which it also writes: `dpsbench certs`,
//!   and the certificates a run mints ahead) and `runner` (an X.509 plan's root for the
//!   embedded target, the host name).
//! - Failures of the service under test are data (`device::FailureKind`), never `Err`.
//! - Secrets (keys, tokens) live in `credentials` types whose `Debug` is redacted.

pub mod arrival;
pub mod certificates;
pub mod cli;
pub mod conformance;
pub mod credentials;
pub mod device;
pub mod emulator;
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
pub mod timestamp;
pub mod tls;
pub mod toml_file;
pub mod topics;
pub mod websocket;
pub mod x509;
