//! The embedded DPS emulator: a real MQTT 3.1.1 server over TLS that behaves as DPS does.
//!
//! In layers, each calling only the ones below it:
//!
//! ```text
//!  standalone (`dpsbench emulator`: serve until told, log the activity) ─┐
//!  start (TLS policy, listeners; the in-process loopback emulator) ──────┴─► server
//!  server (IO: accept, TLS, WebSocket, framing, deadlines; tasks tracked, stop() awaits them)
//!    ├─► admission (the lab's faults and deviations, decided once per connection or packet)
//!    └─► service (sans IO: what DPS answers; an operation completes by an event)
//!          ├─► admission, facts (a CONNECT parsed once), observe (the events it reports)
//!          └─► config, deviations, faults, issuance, activity (counters)
//!  client_checks (an observer: implements observe's traits; judges each client)
//! ```
//!
//! Tests and `dpsbench run` start it in-process on `127.0.0.1:0`; `dpsbench emulator` serves
//! it standalone.

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
