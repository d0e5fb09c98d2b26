//! What the flow does with a reply to its register or poll request: a retry on 429 and 5xx,
//! the next poll while assigning, the assignment (and the check of an issued certificate chain)
//! or a failure.

use std::time::{Duration, Instant};

use rand::Rng as _;
use rumqttc::mqttbytes::v4::{Packet, Publish};

use super::{Flow, State};
use crate::device::observation::{Observer, RequestKind};
use crate::device::outcome::{FailureKind, Outcome, Violation};
use crate::device::{Decision, Misbehaviour};
use crate::messages::{OperationStatus, ParsedOperation};
use crate::mqtt::QoS;
use crate::topics::{self, ReplyTopic};

impl<O: Observer> Flow<O> {
    pub(super) fn handle_reply(
        &mut self,
        now: Instant,
        topic: Option<ReplyTopic<'_>>,
        operation: Option<ParsedOperation>,
    ) {
        let Some(reply) = topic else {
            return self.fail(now, FailureKind::ProtocolViolation(Violation::ReplyTopic));
        };
        // A reply must answer the request in flight; others are ignored, as every SDK does. A
        // conformance probe takes any reply (the wrong $rid is DPS-TOPIC-002's finding alone).
        let lenient = self.settings.lenient_rid;
        let matches = self.outstanding.as_ref().is_some_and(|r| lenient || reply.rid == Some(r.rid.as_str()));
        if self.state != State::AwaitReply || !matches {
            self.report.stray_replies += 1;
            return;
        }
        let request = self.outstanding.take().expect("matches implies a request in flight");
        if request.kind == RequestKind::Poll {
            self.report.timings.polls.push(now - request.sent_at);
        }
        self.report.statuses.push(reply.status);
        if let Some(Some(seconds)) = reply.retry_after {
            self.report.retry_after_seconds.push(seconds);
        }
        // What the service asked for, to check later that the device waited as told.
        self.told_until = reply.retry_after.flatten().map(|seconds| now + Duration::from_secs(seconds.into()));
        match reply.status {
            429 | 500..=599 => self.retry(now, request.kind, reply.status, reply.retry_after),
            200..=299 => self.handle_operation(now, request.kind, operation, reply.retry_after),
            status => self.fail(now, FailureKind::Status(status)),
        }
    }

    fn retry(&mut self, now: Instant, kind: RequestKind, status: u16, retry_after: Option<Option<u32>>) {
        match self.settings.retry.after_error(retry_after, self.retries, self.rng.random()) {
            Decision::GiveUp => self.fail(now, FailureKind::Status(status)),
            Decision::Wait(wait) => {
                self.retries += 1;
                let wait = if self.misbehaves(Misbehaviour::IgnoreThrottleRetryAfter) { Duration::ZERO } else { wait };
                self.wait_then(now, kind, wait);
            }
        }
    }

    fn handle_operation(
        &mut self,
        now: Instant,
        kind: RequestKind,
        operation: Option<ParsedOperation>,
        retry_after: Option<Option<u32>>,
    ) {
        let Some(Ok(operation)) = operation else {
            return self.fail(now, FailureKind::ProtocolViolation(Violation::ReplyBody));
        };
        self.retries = 0;
        if kind == RequestKind::Register {
            self.report.timings.register_accepted.get_or_insert(now);
        }
        let state = operation.registration_state.unwrap_or_default();
        match operation.status {
            OperationStatus::Assigning => {
                if operation.operation_id.is_empty() {
                    return self.fail(now, FailureKind::ProtocolViolation(Violation::MissingOperationId));
                }
                self.operation_id = Some(operation.operation_id);
                let first_poll = self.report.polls == 0;
                let wait = self.settings.retry.poll_wait(retry_after, first_poll, self.rng.random());
                let wait = if self.misbehaves(Misbehaviour::PollEarly) { Duration::ZERO } else { wait };
                self.wait_then(now, RequestKind::Poll, wait);
            }
            OperationStatus::Assigned => match (state.assigned_hub, state.device_id) {
                (Some(hub), Some(device_id)) => {
                    if let (Some(sent), Some(returned)) = (&self.identity.payload, &state.payload) {
                        self.report.payload_returned = Some(sent == returned);
                    }
                    // A device whose chain fails its check is not assigned: no `assigned` instant,
                    // so the assigned phase holds only devices counted as assigned.
                    if let Err(failure) = self.judge_certificate(now, &device_id, state.issued_certificate_chain) {
                        return self.fail(now, FailureKind::Certificate(failure));
                    }
                    self.report.timings.assigned = Some(now);
                    if self.misbehaves(Misbehaviour::PollAfterAssigned) {
                        let topic = topics::poll_topic("after-final", self.operation_id.as_deref().unwrap_or_default());
                        self.push(now, Packet::Publish(Publish::new(topic, QoS::AtMostOnce, Vec::new())));
                    }
                    self.finish(now, Outcome::Assigned { hub, device_id });
                }
                _ => self.fail(now, FailureKind::ProtocolViolation(Violation::IncompleteAssignment)),
            },
            OperationStatus::Failed => self.fail(now, FailureKind::RegistrationFailed(state.error_code)),
            OperationStatus::Disabled => self.fail(now, FailureKind::Disabled),
            OperationStatus::Unassigned => self.fail(now, FailureKind::ProtocolViolation(Violation::Unassigned)),
        }
    }

    /// Checks the chain issued for the device's CSR, when it sent one, and records the outcome.
    fn judge_certificate(
        &mut self,
        now: Instant,
        device_id: &str,
        chain: Option<Vec<String>>,
    ) -> Result<(), crate::certificates::ChainFailure> {
        use crate::certificates::CertificateOutcome;
        let Some(request) = &self.identity.certificate_request else { return Ok(()) };
        let wall = self.wall_start.map(|at| at + now.saturating_duration_since(self.report.timings.start));
        let now_unix =
            wall.and_then(|w| w.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs() as i64);
        let issuer = self.settings.certificate_issuer.as_ref();
        let verdict =
            crate::certificates::verify_chain(&chain.unwrap_or_default(), request, Some(device_id), issuer, now_unix);
        self.report.certificate = Some(match verdict {
            Ok(_) => CertificateOutcome::Verified,
            Err(failure) => CertificateOutcome::Failed(failure),
        });
        verdict.map(|_| ())
    }
}
