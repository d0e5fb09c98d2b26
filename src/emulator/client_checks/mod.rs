//! Client checks: the emulator judges the device as well as serving it. Every connection a
//! judging emulator serves is held to what the DPS MQTT page asks of a device (`docs/clients.md`).
//!
//! `catalogue` lists the checks (stable `DPS-CLIENT-…` IDs, level, source, the misbehaviour
//! that fails each); `connection` judges one connection packet by packet, fed by the session
//! (sans IO); `judge` folds finished connections into per-check counts, per-client detail and
//! each registration ID's reconnect history; `report` is the report and its pure writers.

pub mod catalogue;
pub mod connection;
pub mod judge;
pub mod observer;
pub mod report;

pub use catalogue::{CATALOGUE, ClientCheck, Entry};
pub use connection::{ConnectContext, ConnectFacts, ConnectionLog, Ending};
pub use judge::{Judge, JudgeConfig};
pub use report::{ClientReport, Verdict};
