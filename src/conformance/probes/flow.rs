//! Flow probes: the registration lifecycle (a real device flow, whose passive checks become
//! results), forward-only status after assignment, and 429 with retry-after under throttling.
//! These create registrations: billable on a real DPS instance.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::mqttbytes::v4::Packet;

use super::{Answer, ClientError, ProbeClient, ProbeTarget, Verdict, could_not, describe};
use crate::conformance::passive::{CheckLog, PassiveCheck};
use crate::credentials::SasToken;
use crate::device::driver::{never_abort, now};
use crate::device::{
    FailureKind, FlowReport, FlowSettings, Outcome, Personality, fresh_rng, run_device, run_device_observed,
};
use crate::messages::{OperationStatus, RegistrationOperationStatus};
use crate::mqtt::QoS;
use crate::topics::{self, ReplyTopic, TopicError};

/// Why a flow probe's exchange went wrong before it could decide.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    ReplyTopic(#[from] TopicError),
    #[error("reply {topic} has no operation status: {source}")]
    NoOperationStatus { topic: String, source: serde_json::Error },
    #[error("no final status after 10 polls")]
    NoFinalStatus,
}

/// Longest wait between polls a probe honours (a real DPS says 1-3 s).
const MAX_POLL_WAIT: Duration = Duration::from_secs(5);

/// DPS-FLOW-005 and every passive check: one device provisions, every packet checked.
pub async fn lifecycle(target: &ProbeTarget) -> (Verdict, Vec<(PassiveCheck, Verdict)>) {
    let settings = target.flow_settings(4);
    let (device_target, identity, checks) = (target.device_target(), target.device("lifecycle"), CheckLog::default());
    let report =
        run_device_observed(&device_target, Arc::new(settings), identity, None, never_abort(), fresh_rng(), checks)
            .await;
    let completed = match &report.outcome {
        Outcome::Assigned { hub, device_id } => Verdict::Pass(format!(
            "assigned to {hub} as {device_id} after {} register attempt(s) and {} poll(s)",
            report.register_attempts, report.polls
        )),
        Outcome::Failed(kind) => super::flow_failed(kind, format!("the lifecycle ended with {}", kind.label())),
        Outcome::Connected => unreachable!("probes run whole flows, never connect-only ones"),
    };
    (completed, passive_verdicts(&report))
}

/// DPS-FLOW-006: one device of each SDK personality provisions, all at once.
pub async fn every_dialect(target: &ProbeTarget) -> Verdict {
    let base = target.flow_settings(6);
    let flows = Personality::ALL.into_iter().filter(|p| *p != Personality::Dpsbench).map(|personality| {
        let settings = Arc::new(FlowSettings { lenient_rid: true, ..personality.settings(&base) });
        let mut identity = target.device(&format!("dialect-{}", personality.name()));
        let key = target.device_key(&identity.registration_id);
        let token =
            SasToken::build(&target.id_scope, &identity.registration_id, &key, expiry(), personality.sas_style());
        identity.password = Some(token);
        identity.register_body = personality.register_body(&identity.registration_id, None);
        identity.personality = personality;
        let device_target = target.device_target();
        async move { (personality, run_device(&device_target, settings, identity, now(), never_abort()).await) }
    });
    let results = futures_util::future::join_all(flows).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(p, report)| match &report.outcome {
            Outcome::Assigned { .. } => None,
            Outcome::Connected => Some(format!("{}: ended at CONNACK", p.name())),
            Outcome::Failed(kind) => Some(format!("{}: {}", p.name(), kind.label())),
        })
        .collect();
    let tls_only = results.iter().all(|(_, r)| matches!(&r.outcome, Outcome::Failed(FailureKind::Tls)));
    if tls_only {
        return super::flow_failed(&FailureKind::Tls, failed.join("; "));
    }
    if failed.is_empty() {
        let names: Vec<&str> = results.iter().map(|(p, _)| p.name()).collect();
        Verdict::Pass(format!("assigned in every dialect: {}", names.join(", ")))
    } else {
        Verdict::Fail(failed.join("; "))
    }
}

fn expiry() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default() + 3600
}

/// Turns a flow's check log into one verdict per passive check.
fn passive_verdicts(report: &FlowReport<CheckLog>) -> Vec<(PassiveCheck, Verdict)> {
    PassiveCheck::ALL
        .iter()
        .map(|check| {
            let violations: Vec<String> = report.observer.violations_of(*check).map(|f| f.evidence.clone()).collect();
            let verdict = if !violations.is_empty() {
                Verdict::Fail(violations.join("; "))
            } else if report.observer.evaluated(*check) {
                Verdict::Pass("held on every packet of the lifecycle".into())
            } else if *check == PassiveCheck::IssuedChainShape && report.certificate.is_none() {
                Verdict::Skipped("the lifecycle sends no CSR: the certificate-issuance probe judges it".into())
            } else {
                // Nothing to judge: the flow that would have shown it ended first. When the flow
                // failed, DPS-FLOW-005 says why; this check is not failed by it.
                let (blocked_by, ended) = match &report.outcome {
                    Outcome::Assigned { .. } => ("lifecycle", "assigned".to_string()),
                    Outcome::Connected => ("lifecycle", "connected".to_string()),
                    Outcome::Failed(kind @ FailureKind::Tls) => ("DPS-TLS-003", kind.label()),
                    Outcome::Failed(kind) => ("lifecycle (DPS-FLOW-005)", kind.label()),
                };
                Verdict::Inconclusive {
                    blocked_by: blocked_by.into(),
                    reason: format!("not observed: the lifecycle ended ({ended}) before this could be checked"),
                }
            };
            (*check, verdict)
        })
        .collect()
}

/// A connected, subscribed probe client for the device `name`.
async fn subscribed(target: &ProbeTarget, name: &str) -> Result<ProbeClient, ClientError> {
    let device = target.device(name);
    let password = device.password.as_ref().expect("probe devices have tokens");
    let id = device.registration_id.as_str();
    let mut client = target.open().await?;
    let connack = client.connect(target.connect_packet(id, &target.id_scope, id, password, true)).await?;
    if connack.code as u8 != 0 {
        return Err(ClientError::Refused(connack.code as u8));
    }
    client.subscribe(&[(topics::RESPONSE_FILTER, QoS::AtLeastOnce)]).await?;
    Ok(client)
}

/// Sends a request and returns the reply's status, retry-after and body.
async fn request(
    client: &mut ProbeClient,
    topic: String,
    body: &[u8],
    wait: Duration,
) -> Result<(u16, Option<u32>, RegistrationOperationStatus), FlowError> {
    client.publish(topic, body).await?;
    match client.reply(wait).await {
        Answer::Packet(Packet::Publish(reply)) => {
            let parsed = ReplyTopic::parse(&reply.topic)?;
            let status = serde_json::from_slice(&reply.payload)
                .map_err(|source| FlowError::NoOperationStatus { topic: reply.topic.clone(), source })?;
            Ok((parsed.status, parsed.retry_after.flatten(), status))
        }
        Answer::Packet(other) => Err(ClientError::Unexpected { expected: "a reply", got: describe(&other) }.into()),
        Answer::Closed => Err(ClientError::Closed("a reply").into()),
        Answer::Silent => Err(ClientError::Silent { expected: "reply", seconds: wait.as_secs() }.into()),
    }
}

/// DPS-FLOW-004: after a final status, a further poll does not answer `assigning`.
pub async fn status_only_forward(target: &ProbeTarget) -> Verdict {
    let mut client = match subscribed(target, "forward").await {
        Ok(client) => client,
        Err(e) => return could_not("connect", &e),
    };
    let body = format!("{{\"registrationId\":\"{}\"}}", target.registration_id("forward"));
    let verdict = async {
        let (_, mut retry_after, accepted) =
            request(&mut client, topics::register_topic("1"), body.as_bytes(), target.deadline).await?;
        let operation_id = accepted.operation_id;
        let mut final_status = None;
        for rid in 2..12 {
            let wait = Duration::from_secs(retry_after.unwrap_or(1).into()).min(MAX_POLL_WAIT);
            tokio::time::sleep(wait).await;
            let (status, next_wait, reply) =
                request(&mut client, topics::poll_topic(&rid.to_string(), &operation_id), b"", target.deadline).await?;
            retry_after = next_wait;
            if final_status.is_some() {
                return Ok(if reply.status == OperationStatus::Assigning || status == 202 {
                    Verdict::Fail(format!(
                        "after {} a further poll answered {status} {}",
                        final_status.unwrap_or("a final status"),
                        reply.status.as_str()
                    ))
                } else {
                    Verdict::Pass(format!(
                        "after {}, a further poll answered {status} {}",
                        final_status.unwrap_or(""),
                        reply.status.as_str()
                    ))
                });
            }
            // Anything but assigning ends the operation (unassigned too: it is never valid here).
            if reply.status != OperationStatus::Assigning {
                final_status = Some(reply.status.as_str());
            }
        }
        Err::<Verdict, FlowError>(FlowError::NoFinalStatus)
    };
    let verdict = verdict.await.unwrap_or_else(|e| could_not("lifecycle", &e));
    client.disconnect().await;
    verdict
}

/// DPS-THR-001: registrations back to back until a 429, which must carry retry-after.
pub async fn throttled_with_retry_after(target: &ProbeTarget) -> Verdict {
    let mut client = match subscribed(target, "throttle").await {
        Ok(client) => client,
        Err(e) => return could_not("connect", &e),
    };
    let body = format!("{{\"registrationId\":\"{}\"}}", target.registration_id("throttle"));
    let mut verdict = Verdict::Skipped(format!(
        "no 429 within {} registrations back to back: the target enforces no quota (an emulator without one; a \
         real DPS instance always has one), or a quota above that many (then raise --throttle-requests)",
        target.throttle_requests
    ));
    for rid in 1..=target.throttle_requests {
        client.publish(topics::register_topic(&rid.to_string()), body.as_bytes()).await.ok();
        match client.reply(target.deadline).await {
            Answer::Packet(Packet::Publish(reply)) => {
                let topic = reply.topic.clone();
                let throttled = topic.starts_with("$dps/registrations/res/429/");
                if !throttled {
                    continue;
                }
                let retry_after = topic.split(['?', '&']).find_map(|p| p.strip_prefix("retry-after="));
                verdict = match retry_after.map(str::parse::<u32>) {
                    Some(Ok(seconds)) => {
                        Verdict::Pass(format!("registration {rid} answered 429 with retry-after={seconds}"))
                    }
                    _ => Verdict::Fail(format!("429 without a numeric retry-after: {topic}")),
                };
                break;
            }
            Answer::Packet(other) => {
                verdict = Verdict::Fail(format!("registration {rid} answered {}", describe(&other)));
                break;
            }
            Answer::Closed => {
                verdict = Verdict::Fail(format!("connection closed at registration {rid}"));
                break;
            }
            Answer::Silent => {
                verdict =
                    Verdict::Fail(format!("no reply to registration {rid} within {} s", target.deadline.as_secs()));
                break;
            }
        }
    }
    client.disconnect().await;
    verdict
}
