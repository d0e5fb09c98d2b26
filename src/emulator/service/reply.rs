//! The reply the emulated DPS sends to a register or poll: its status, `retry-after` and body,
//! typed. Every error body is built here, in [`Reply::error`].
//!
//! Sans IO, like the rest of `service`: the wall-clock instant and the RNG are inputs.

use std::time::SystemTime;

use super::Service;
use crate::messages::{ErrorBody, RegistrationOperationStatus};

/// A reply to one request, before it is put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u32>,
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with an operation's status as its body.
    pub(super) fn operation(status: u16, retry_after: Option<u32>, operation: &RegistrationOperationStatus) -> Self {
        let body = serde_json::to_vec(operation).expect("operation bodies serialise");
        Self { status, retry_after, body }
    }

    /// `status` with DPS's error body: `code`, `message`, the instant and a tracking ID drawn
    /// from the service's RNG.
    pub(super) fn error(
        service: &Service,
        status: u16,
        code: u32,
        message: impl Into<String>,
        retry_after: Option<u32>,
        wall: SystemTime,
    ) -> Self {
        let error = service.random(|rng| ErrorBody::new(code.into(), message, wall, rng));
        Self { status, retry_after, body: serde_json::to_vec(&error).expect("error bodies serialise") }
    }
}
