//! Failure reasons beside the counts: each failure kind's one-line reason and its first
//! examples, folded from finished flows. Counting stays in `failures`, by label.

use std::collections::BTreeMap;

use super::Metrics;
use crate::device::{FailureKind, FailureReason, FlowReport, Outcome};

impl Metrics {
    /// Notes the reason and an example of `report`'s failure (nothing for assigned or aborted
    /// devices). `registration_id` names the example.
    pub fn note_failure<O>(&mut self, registration_id: &str, report: &FlowReport<O>) {
        let kind = match &report.outcome {
            Outcome::Failed(FailureKind::Aborted) | Outcome::Assigned { .. } | Outcome::Connected => return,
            Outcome::Failed(kind) => kind,
        };
        let detail = report.failure_detail.as_deref();
        let reason = self.failure_reasons.entry(kind.label()).or_insert_with(|| FailureReason::new(kind, detail));
        reason.add_example(match detail {
            Some(detail) => format!("{registration_id}: {detail}"),
            None => registration_id.to_string(),
        });
    }

    /// Reasons and first examples by failure kind label, so far.
    pub fn failure_reasons(&self) -> &BTreeMap<String, FailureReason> {
        &self.failure_reasons
    }

    /// Adds another collector's reasons: the first reason said stands, examples up to the limit.
    pub(super) fn merge_reasons(&mut self, other: &BTreeMap<String, FailureReason>) {
        super::summary::add_reasons(&mut self.failure_reasons, other);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::device::Timings;

    fn failed(kind: FailureKind, detail: Option<&str>) -> FlowReport {
        let start = Instant::now();
        let mut timings = Timings::new(start, start);
        timings.end = Some(start + Duration::from_millis(1));
        FlowReport {
            outcome: Outcome::Failed(kind),
            timings,
            register_attempts: 0,
            polls: 0,
            retry_after_seconds: Vec::new(),
            statuses: Vec::new(),
            stray_replies: 0,
            source_address: None,
            early_requests: 0,
            payload_returned: None,
            personality: Default::default(),
            failure_detail: detail.map(str::to_string),
            certificate: None,
            observer: (),
        }
    }

    #[test]
    fn each_kind_keeps_its_reason_and_first_examples_across_merges() {
        let mut one = Metrics::new();
        let unknown = Some("invalid peer certificate: UnknownIssuer");
        for n in 0..2 {
            one.note_failure(&format!("dev-{n}"), &failed(FailureKind::Tls, unknown));
        }
        one.note_failure("dev-9", &failed(FailureKind::Aborted, None));
        let mut two = Metrics::new();
        for n in 2..5 {
            two.note_failure(&format!("dev-{n}"), &failed(FailureKind::Tls, unknown));
        }
        two.note_failure("dev-5", &failed(FailureKind::Refused(5), None));
        one.merge(&two);
        let reasons = one.failure_reasons();
        assert_eq!(reasons.keys().collect::<Vec<_>>(), ["refused_5", "tls"], "aborted devices have no reason");
        assert!(reasons["tls"].reason.contains("unknown issuer"), "{:?}", reasons["tls"]);
        assert_eq!(reasons["tls"].examples.len(), crate::device::reason::EXAMPLES);
        assert_eq!(reasons["tls"].examples[0], "dev-0: invalid peer certificate: UnknownIssuer");
        assert_eq!(reasons["refused_5"].examples, ["dev-5"]);
    }
}
