//! What the emulated DPS answers to an authorised register or poll request: throttling, the
//! size limit, the registration body's payload, certificate issuance, the operation's status.
//!
//! Sans IO, like the rest of `service`.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::Service;
use super::reply::Reply;
use crate::credentials::RegistrationId;
use crate::emulator::issuance::{self, Enrollment, Issued};
use crate::messages::{self, OperationStatus, RegistrationOperationStatus};
use crate::topics::RequestTopic;

/// DPS's largest message, 96 KB (`docs/dps-mqtt.md` §5). Larger requests get 413. The MQTT
/// codec reads packets up to [`crate::mqtt::MAX_PACKET_SIZE`] (100 KiB), so requests between
/// the two get this answer; larger packets cannot be read and end the connection.
pub const MAX_MESSAGE_BYTES: usize = 96 * 1024;

/// The custom allocation payload of a register body, or why the body is refused (400): it is
/// not JSON, or its `payload` is neither an object nor null. An empty body is an empty
/// registration (the C SDK sends none).
pub(super) fn register_payload(body: &[u8]) -> Result<Option<serde_json::Value>, &'static str> {
    let registration =
        messages::DeviceRegistration::parse(body).map_err(|_| "The request body is not a valid registration.")?;
    match registration.payload {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(object @ serde_json::Value::Object(_)) => Ok(Some(object)),
        Some(_) => Err("The registration payload must be a JSON object."),
    }
}

/// The authorised device a request came from.
pub(super) struct Device<'a> {
    pub(super) registration_id: &'a RegistrationId,
    pub(super) x509: Option<serde_json::Value>,
    pub(super) enrollment: Option<&'a Enrollment>,
}

/// The reply to an authorised register or poll.
pub(super) fn answer(
    service: &Service,
    device: Device<'_>,
    request: RequestTopic<'_>,
    body: &[u8],
    now: Instant,
    wall: SystemTime,
) -> Reply {
    let Device { registration_id, x509, enrollment } = device;
    if body.len() > MAX_MESSAGE_BYTES {
        // DPS documents the limit, not its answer over MQTT: the emulator answers 413 with an
        // error body, so the device learns why instead of losing its connection.
        let message = format!("The message is {} bytes; the limit is 96 KB ({MAX_MESSAGE_BYTES} bytes).", body.len());
        return Reply::error(service, 413, 413001, message, None, wall);
    }
    let retry_after = service.config.retry_after_seconds;
    let throttled = |seconds: u32| {
        service.stats.throttled.fetch_add(1, Ordering::Relaxed);
        Reply::error(service, 429, 429001, "Operations are being throttled by the service.", Some(seconds), wall)
    };
    match request {
        RequestTopic::Register { .. } => {
            if let Err(seconds) = service.throttle(|q| &q.registrations, now) {
                return throttled(seconds);
            }
            // DPS takes identity from the connection; the body only matters for its payload,
            // but it must be a registration: JSON, with a `payload` that is an object (or null).
            let payload = match register_payload(body) {
                Ok(payload) => payload,
                Err(message) => return Reply::error(service, 400, 400004, message, None, wall),
            };
            service.stats.registrations.fetch_add(1, Ordering::Relaxed);
            // Drawn only when issuing, so seeded emulators that do not issue answer as before.
            let issuing = service.config.issuance.delay.is_some();
            let draw = if issuing { service.random(rand::Rng::random::<f64>) } else { 0.0 };
            let issued = issuance::issue(
                (&service.config.issuance, &service.config.deviations),
                enrollment,
                registration_id,
                body,
                wall,
                draw,
            );
            match &issued {
                Some((Issued::Chain(_), _)) => service.stats.certificates_issued.fetch_add(1, Ordering::Relaxed),
                Some((Issued::Refused(_), _)) => service.stats.certificates_refused.fetch_add(1, Ordering::Relaxed),
                None => 0,
            };
            let operation_id = service.register(registration_id, payload, x509, issued, now, wall);
            let accepted = RegistrationOperationStatus {
                operation_id,
                status: OperationStatus::Assigning,
                registration_state: None,
            };
            let code = if service.config.deviations.register_answered_201 { 201 } else { 202 };
            Reply::operation(code, Some(retry_after), &accepted)
        }
        RequestTopic::Poll { operation_id, .. } => {
            if let Err(seconds) = service.throttle(|q| &q.operations, now) {
                return throttled(seconds);
            }
            if let Err(seconds) = service.poll_limit(&registration_id.canonical(), now) {
                return throttled(seconds);
            }
            service.stats.polls.fetch_add(1, Ordering::Relaxed);
            let status = service.operation_status(registration_id, operation_id, now).map(|mut status| {
                service.random(|rng| service.config.deviations.poll_operation_id(&mut status, rng));
                status
            });
            match status {
                Some(status) if status.status == OperationStatus::Assigning => {
                    Reply::operation(202, Some(retry_after), &status)
                }
                Some(status) => {
                    // Final: assigned, or failed (a refused CSR, an injected failure).
                    if status.status == OperationStatus::Assigned {
                        service.stats.assigned.fetch_add(1, Ordering::Relaxed);
                    }
                    let code = if service.config.deviations.poll_done_201 { 201 } else { 200 };
                    Reply::operation(code, None, &status)
                }
                None => Reply::error(service, 404, 404202, "Operation not found.", None, wall),
            }
        }
    }
}
