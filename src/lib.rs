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
//!   │        │
//!   │        ├─► scenario (TOML → Plan) ──► arrival (when devices start; sans IO)
//!   │        ├─► shard (K of N: its devices, starts, concurrency; the plan hash; sans IO)
//!   │        ├─► metrics (HDR histograms per metrics::Phase, Summary; sans IO)
//!   │        ├─► slo ([slo] gates → a verdict on a metrics::Summary; sans IO)
//!   │        └─► emulator::server ──► emulator::service (sans IO) ──► emulator::config, deviations,
//!   │             (accept, TLS,              │                          issuance (the issuing CA)
//!   │              framing)                  └─► emulator::client_checks (judges each client
//!   │                                            against its catalogue; sans IO)
//!   ├─► conformance::suite ──► catalogue, probes (network, deadlines) ──► device, passive
//!   │                          report (JUnit, Markdown, JSON; pure)
//!   ├─► report (pure writers: RunSummary, ticks → bytes: summary, timeseries, hlog, report.md,
//!   │           report.html, devices.csv, compare + --fail-if, Prometheus exposition and
//!   │           remote write; folder, hlog and html also read a report folder back, for render,
//!   │           compare and merge)
//!   └─► emulator (standalone `dpsbench emulator`)
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
//! Rules:
//! - Calls go down the map, never up. The device core depends only on the leaves: it reports
//!   what it observed to an [`device::Observer`] and never imports `conformance`, `metrics` or
//!   `runner`; `metrics` and `arrival` import no `conformance`; among the leaves only `x509`
//!   (on `credentials`, `messages`) and `websocket` (on `mqtt`) depend on another.
//!   `emulator::client_checks` borrows two plain data types from `conformance` (`Level`,
//!   `Source`, so both catalogues grade alike) and names `device::Misbehaviour`, the failing
//!   control of each check; it calls into neither.
//! - The sans-IO modules (`credentials`, `topics`, `messages`, `arrival`, `device::flow`,
//!   `emulator::service`, `emulator::client_checks`, `conformance::passive`, `metrics`, `slo`,
//!   `report`) never touch sockets, files
//!   or the clock: they take `now` and bytes. Randomness is an input too: `device::flow`,
//!   `emulator::service` and `messages` draw from an RNG they are given (seeded in tests).
//! - Measured phases are named once, by [`metrics::Phase`]; flow steps by [`device::Step`].
//! - Only `cli` reads environment variables, writes report files, serves `/metrics`, pushes
//!   remote write and picks exit codes. `report::folder` is the one place outside `cli` that reads files (a report folder).
//! - Failures of the service under test are data (`device::FailureKind`), never `Err`.
//! - Secrets (keys, tokens) live in `credentials` types whose `Debug` is redacted.

pub mod arrival;
pub mod certificates;
pub mod cli;
pub mod conformance;
pub mod credentials;
pub mod device;
pub mod emulator;
pub mod messages;
pub mod metrics;
pub mod mqtt;
pub mod report;
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
