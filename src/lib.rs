//! dpsbench: load generation and conformance benchmarks for Azure IoT Hub DPS over MQTT.
//!
//! # Architecture map
//!
//! ```text
//!  cli ──────────► runner ──────────► device::driver ──► device::flow (sans IO)
//!   │  (anyhow,     │ (arrival plan,     (socket, TLS,        │
//!   │   files,      │  metrics fold)      deadlines)          ├─► topics, messages
//!   │   exit codes) │                                          └─► credentials
//!   │               ├─► scenario (TOML → Plan)
//!   │               ├─► metrics (HDR histograms, Summary; sans IO)
//!   ├─► report      └─► emulator::server ──► emulator::service (sans IO)
//!   │   (pure writers)    (accept, TLS,        │
//!   │                      framing)            ├─► topics, messages, credentials
//!   └─► emulator::config                       └─► emulator::config
//!
//!  shared by both sides: mqtt (framing over rumqttc's mqttbytes v4), tls (rustls configs),
//!  toml_file (the TOML files scenario, emulator::config and cli read)
//! ```
//!
//! Rules: the sans-IO modules (`credentials`, `topics`, `messages`, `device::flow`,
//! `emulator::service`, `metrics`, `report`) never touch sockets, files or the clock: they take
//! `now` and bytes. Only `cli` reads environment variables, writes report files and picks exit
//! codes. Failures of the service under test are data (`device::FailureKind`), never `Err`.
//! Secrets (keys, tokens) live in `credentials` types whose `Debug` is redacted.

pub mod arrival;
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
pub mod tls;
pub mod toml_file;
pub mod topics;
pub mod websocket;
pub mod x509;
