//! The embedded DPS emulator: a real MQTT 3.1.1 server over TLS that behaves as DPS does.
//!
//! `config` parses its TOML; `service` is the sans-IO DPS logic (what to answer); `server` is
//! the network loop (TLS, framing, deadlines, shutdown). Tests and `dpsbench run` start it
//! in-process on `127.0.0.1:0`; `dpsbench emulator` serves it standalone.

pub mod activity;
pub mod admission;
pub mod client_checks;
pub mod config;
pub mod deviations;
pub mod facts;
pub mod faults;
pub mod issuance;
pub mod observe;
pub mod server;
pub mod service;
pub mod standalone;
pub mod start;
pub mod tracked;

pub use config::{EmulatorConfig, ServiceConfig};
pub use deviations::Deviations;
pub use server::{EmulatorHandle, bind, bind_shared, spawn};
pub use service::{Service, ServiceStats, Session};
pub use start::{
    LoopbackEmulator, StartError, serve, server_identity, start_on_loopback, start_on_loopback_with,
    start_service_on_loopback,
};
