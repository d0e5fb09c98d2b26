//! Passive checks: evaluated on every packet of a device flow, without sending anything extra.
//!
//! Sans IO. `device::flow` reports what it sent and received as [`Observation`]s; [`CheckLog`],
//! a flow's [`Observer`], records which checks were evaluated and every violation with its
//! evidence (topic, body excerpt). [`PassiveTally`] folds the logs of a run's flows. Evidence
//! never holds secrets: topics and bodies carry none.

use std::collections::BTreeMap;

use rumqttc::mqttbytes::v4::Publish;
use serde::{Deserialize, Serialize};

use crate::device::{Observation, Observer, RequestKind};
use crate::grading::excerpt;
use crate::messages::{ErrorBody, OperationStatus, ParsedOperation, RegistrationOperationStatus};
use crate::mqtt::QoS;
use crate::topics::{RESPONSE_PREFIX, ReplyTopic, TopicError};

/// The passive checks; the catalogue maps each to its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PassiveCheck {
    SessionPresent,
    ReplyQos,
    PubackFirst,
    TopicForm,
    RidEcho,
    RidFirst,
    RetryAfter,
    RetryAfterRange,
    RegisterAccepted,
    PollStatus,
    OperationIdStable,
    BodySchema,
    NoUnassigned,
    /// `issuedCertificateChain`, where a reply carries one (a device that sent a CSR).
    IssuedChainShape,
}

impl PassiveCheck {
    pub const ALL: [PassiveCheck; 14] = [
        Self::SessionPresent,
        Self::ReplyQos,
        Self::PubackFirst,
        Self::TopicForm,
        Self::RidEcho,
        Self::RidFirst,
        Self::RetryAfter,
        Self::RetryAfterRange,
        Self::RegisterAccepted,
        Self::PollStatus,
        Self::OperationIdStable,
        Self::BodySchema,
        Self::NoUnassigned,
        Self::IssuedChainShape,
    ];

    /// Its catalogue ID: the catalogue's entry for it takes its ID from here.
    pub const fn id(self) -> &'static str {
        match self {
            Self::SessionPresent => "DPS-MQTT-001",
            Self::ReplyQos => "DPS-MQTT-004",
            Self::PubackFirst => "DPS-MQTT-005",
            Self::TopicForm => "DPS-TOPIC-001",
            Self::RidEcho => "DPS-TOPIC-002",
            Self::RidFirst => "DPS-TOPIC-003",
            Self::RetryAfter => "DPS-TOPIC-004",
            Self::RetryAfterRange => "DPS-TOPIC-005",
            Self::RegisterAccepted => "DPS-FLOW-001",
            Self::PollStatus => "DPS-FLOW-002",
            Self::OperationIdStable => "DPS-FLOW-003",
            Self::BodySchema => "DPS-BODY-001",
            Self::NoUnassigned => "DPS-BODY-002",
            Self::IssuedChainShape => "DPS-CERT-004",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

/// A violation seen: the check and what was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub check: String,
    pub evidence: String,
}

/// What one flow's passive checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckLog {
    evaluated: u16,
    pub violations: Vec<Finding>,
    /// State carried between packets.
    operation_id: Option<String>,
    final_status: bool,
    granted_qos: Option<QoS>,
    /// Packet id of a QoS 1 request not yet PUBACKed.
    awaiting_puback: Option<u16>,
}

impl CheckLog {
    /// Whether `check` was evaluated at least once.
    pub fn evaluated(&self, check: PassiveCheck) -> bool {
        self.evaluated & check.bit() != 0
    }

    /// Violations of `check`.
    pub fn violations_of(&self, check: PassiveCheck) -> impl Iterator<Item = &Finding> {
        self.violations.iter().filter(move |f| f.check == check.id())
    }

    fn verdict(&mut self, check: PassiveCheck, ok: bool, evidence: impl FnOnce() -> String) {
        self.evaluated |= check.bit();
        if !ok {
            self.violations.push(Finding { check: check.id().to_string(), evidence: evidence() });
        }
    }

    pub fn connack(&mut self, session_present: bool) {
        self.verdict(PassiveCheck::SessionPresent, !session_present, || "CONNACK SessionPresent = 1".into());
    }

    pub fn suback(&mut self, granted: Option<QoS>) {
        self.granted_qos = granted;
    }

    pub fn request_sent(&mut self, qos: QoS, packet_id: u16) {
        self.awaiting_puback = (qos == QoS::AtLeastOnce).then_some(packet_id);
    }

    pub fn puback(&mut self, packet_id: u16) {
        if self.awaiting_puback == Some(packet_id) {
            self.awaiting_puback = None;
        }
    }

    /// A reply arrived for the request in flight (`rid`, `kind`), or with none in flight.
    /// `operation` is the body already parsed by the caller (2xx replies), so it is parsed once.
    pub fn reply(
        &mut self,
        publish: &Publish,
        request: Option<(&str, RequestKind)>,
        operation: Option<&ParsedOperation>,
    ) {
        let topic = publish.topic.as_str();
        let evidence = || format!("topic {topic}, body {}", excerpt(&publish.payload));
        if self.granted_qos == Some(QoS::AtLeastOnce) {
            self.verdict(PassiveCheck::ReplyQos, publish.qos == QoS::AtLeastOnce, || {
                format!("reply at {:?} on a QoS 1 subscription: {}", publish.qos, evidence())
            });
        }
        if request.is_some() {
            let unacknowledged = self.awaiting_puback.take();
            self.verdict(PassiveCheck::PubackFirst, unacknowledged.is_none(), || {
                format!(
                    "reply arrived before the PUBACK of request packet {}: {}",
                    unacknowledged.unwrap_or(0),
                    evidence()
                )
            });
        }
        let query = topic.strip_prefix(RESPONSE_PREFIX).and_then(|rest| rest.split_once("/?")).map(|(_, q)| q);
        let status =
            topic.strip_prefix(RESPONSE_PREFIX).and_then(|rest| rest.get(..3)).and_then(|s| s.parse::<u16>().ok());
        if let (Some(query), Some(status)) = (query, status)
            && matches!(status, 202 | 429)
        {
            let retry_after = query.split('&').find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.eq_ignore_ascii_case("retry-after").then_some(value)
            });
            self.verdict(PassiveCheck::RetryAfter, retry_after.is_some_and(|v| v.parse::<u32>().is_ok()), || {
                format!("retry-after missing or not numeric on {status}: {}", evidence())
            });
            if let Some(seconds) = retry_after.and_then(|v| v.parse::<u32>().ok()) {
                self.verdict(PassiveCheck::RetryAfterRange, (1..=300).contains(&seconds), || {
                    format!("retry-after {seconds} is outside 1-300 s on {status}: {}", evidence())
                });
            }
        }
        // The form is judged without retry-after, which DPS-TOPIC-004 covers: only a topic that
        // fails on retry-after alone is rebuilt without it (rare; most replies parse as sent).
        let parsed = match ReplyTopic::parse(topic) {
            Err(TopicError::BadRetryAfter(_)) => {
                let q = query.unwrap_or_default();
                let kept: Vec<&str> =
                    q.split('&').filter(|p| !p.to_ascii_lowercase().starts_with("retry-after=")).collect();
                let lenient = format!("{}?{}", &topic[..topic.len() - q.len() - 1], kept.join("&"));
                ReplyTopic::parse(&lenient).map(|r| ReplyTopic { rid: None, ..r }).map(|r| (r, true))
            }
            other => other.map(|r| (r, false)),
        };
        self.verdict(PassiveCheck::TopicForm, parsed.is_ok(), || format!("malformed reply topic: {}", evidence()));
        let Ok((mut reply, rebuilt)) = parsed else { return };
        if rebuilt {
            // The rebuilt topic borrowed a temporary: read $rid from the original query.
            reply.rid = query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("$rid=")));
        }
        if let Some((rid, _)) = request {
            self.verdict(PassiveCheck::RidEcho, reply.rid == Some(rid), || {
                format!("request $rid={rid}, reply {}", evidence())
            });
        }
        self.verdict(PassiveCheck::RidFirst, query.is_some_and(|q| q.starts_with("$rid=")), || {
            format!("$rid is not first: {}", evidence())
        });
        self.body(reply.status, &publish.payload, operation, request.map(|(_, kind)| kind), &evidence);
    }

    fn body(
        &mut self,
        status: u16,
        payload: &[u8],
        parsed: Option<&ParsedOperation>,
        kind: Option<RequestKind>,
        evidence: &dyn Fn() -> String,
    ) {
        if !(200..300).contains(&status) {
            let parsed = serde_json::from_slice::<ErrorBody>(payload);
            self.verdict(PassiveCheck::BodySchema, parsed.is_ok(), || {
                format!("error body does not parse: {}", evidence())
            });
            return;
        }
        let owned;
        let operation = match parsed {
            Some(parsed) => parsed.as_ref(),
            None => {
                owned = serde_json::from_slice::<RegistrationOperationStatus>(payload);
                owned.as_ref()
            }
        };
        let schema_problem = match operation {
            Err(e) => Some(format!("not a RegistrationOperationStatus ({e})")),
            Ok(op) => schema_problem(op),
        };
        self.verdict(PassiveCheck::BodySchema, schema_problem.is_none(), || {
            format!("{}: {}", schema_problem.clone().unwrap_or_default(), evidence())
        });
        let Ok(operation) = operation else { return };
        self.verdict(PassiveCheck::NoUnassigned, operation.status != OperationStatus::Unassigned, || {
            format!("status unassigned over MQTT: {}", evidence())
        });
        if let Some(chain) = operation.registration_state.as_ref().and_then(|s| s.issued_certificate_chain.as_ref()) {
            let shape = crate::certificates::chain_shape(chain);
            self.verdict(PassiveCheck::IssuedChainShape, shape.is_ok(), || {
                format!("issuedCertificateChain: {}: {}", shape.err().unwrap_or_default(), evidence())
            });
        }
        match kind {
            Some(RequestKind::Register) => {
                let ok = status == 202
                    && operation.status == OperationStatus::Assigning
                    && !operation.operation_id.is_empty();
                self.verdict(PassiveCheck::RegisterAccepted, ok, || format!("register answered: {}", evidence()));
            }
            Some(RequestKind::Poll) => {
                let expected = if operation.status == OperationStatus::Assigning { 202 } else { 200 };
                self.verdict(PassiveCheck::PollStatus, status == expected, || {
                    format!("poll answered {status} with status {}: {}", operation.status.as_str(), evidence())
                });
            }
            None => {}
        }
        if !operation.operation_id.is_empty() {
            match &self.operation_id {
                Some(known) => {
                    let (known, got) = (known.clone(), operation.operation_id.clone());
                    self.verdict(PassiveCheck::OperationIdStable, known == got, || {
                        format!("operationId changed from {known} to {got}")
                    });
                }
                None => self.operation_id = Some(operation.operation_id.clone()),
            }
        }
        self.final_status |= operation.status.is_final();
    }
}

impl Observer for CheckLog {
    fn observe(&mut self, observation: Observation<'_>) {
        match observation {
            Observation::ConnAck { session_present } => self.connack(session_present),
            Observation::SubAck { granted } => self.suback(granted),
            Observation::RequestSent { qos, packet_id } => self.request_sent(qos, packet_id),
            Observation::PubAck { packet_id } => self.puback(packet_id),
            Observation::Reply { publish, request, operation, .. } => self.reply(publish, request, operation),
        }
    }
}

/// The passive checks over a run, by check ID: what `summary.json`'s `conformance` holds.
/// Tallies merge exactly, like `metrics::Metrics`, so per-worker tallies can be combined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassiveTally {
    checks: BTreeMap<&'static str, CheckCounts>,
}

impl PassiveTally {
    /// Folds one flow's log in.
    pub fn record(&mut self, log: &CheckLog) {
        for check in PassiveCheck::ALL {
            if log.evaluated(check) {
                let counts = self.checks.entry(check.id()).or_default();
                counts.flows += 1;
                for finding in log.violations_of(check) {
                    counts.violations += 1;
                    if counts.examples.len() < CheckCounts::EXAMPLES {
                        counts.examples.push(finding.clone());
                    }
                }
            }
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &PassiveTally) {
        for (id, counts) in &other.checks {
            self.checks.entry(id).or_default().add(counts);
        }
    }

    /// The counts by check ID, as `summary.json` writes them.
    pub fn counts(&self) -> BTreeMap<String, CheckCounts> {
        self.checks.iter().map(|(id, c)| (id.to_string(), c.clone())).collect()
    }
}

/// One passive check over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCounts {
    /// Flows on which the check was evaluated.
    pub flows: u64,
    pub violations: u64,
    /// The first few violations, with their evidence.
    pub examples: Vec<Finding>,
}

impl CheckCounts {
    const EXAMPLES: usize = 3;

    /// Adds another count: flows and violations summed, examples kept up to the first few.
    pub fn add(&mut self, other: &CheckCounts) {
        self.flows += other.flows;
        self.violations += other.violations;
        let room = Self::EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.iter().take(room).cloned());
    }
}

/// What a 2xx body lacks for its status, if anything.
fn schema_problem(op: &RegistrationOperationStatus) -> Option<String> {
    let state = op.registration_state.as_ref();
    match op.status {
        OperationStatus::Assigning if op.operation_id.is_empty() => Some("assigning without operationId".into()),
        OperationStatus::Assigned => {
            let state = state?;
            (state.assigned_hub.is_none() || state.device_id.is_none())
                .then(|| "assigned without registrationState.assignedHub and deviceId".into())
        }
        OperationStatus::Failed if state.and_then(|s| s.error_code).is_none() => {
            Some("failed without registrationState.errorCode".into())
        }
        _ => None,
    }
    .or_else(|| {
        (op.status == OperationStatus::Assigned && state.is_none()).then(|| "assigned without registrationState".into())
    })
}

#[cfg(test)]
mod tests;
