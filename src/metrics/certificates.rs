//! Counts of the operational certificates devices asked for at registration: the
//! `certificates` object of `summary.json`. Plain data; no IO.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::certificates::CertificateOutcome;

/// Devices that sent a CSR, got a chain back, and got one that verified; failures by reason
/// ([`crate::certificates::ChainFailure::as_str`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateCounts {
    pub requested: u64,
    pub issued: u64,
    pub verified: u64,
    pub failures: BTreeMap<String, u64>,
}

impl CertificateCounts {
    /// Counts one device's outcome.
    pub fn record(&mut self, outcome: CertificateOutcome) {
        self.requested += 1;
        self.issued += u64::from(outcome.issued());
        match outcome {
            CertificateOutcome::Requested => {}
            CertificateOutcome::Verified => self.verified += 1,
            CertificateOutcome::Failed(failure) => *self.failures.entry(failure.as_str().to_string()).or_default() += 1,
        }
    }

    /// Adds another part's counts.
    pub fn add(&mut self, other: &CertificateCounts) {
        let CertificateCounts { requested, issued, verified, failures } = other;
        self.requested += requested;
        self.issued += issued;
        self.verified += verified;
        super::counts::add_counts(&mut self.failures, failures);
    }

    /// No device asked for a certificate (the object is left out of `summary.json`).
    pub fn is_empty(&self) -> bool {
        self.requested == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificates::ChainFailure;

    #[test]
    fn outcomes_count_and_parts_add() {
        let mut counts = CertificateCounts::default();
        assert!(counts.is_empty());
        for outcome in [
            CertificateOutcome::Verified,
            CertificateOutcome::Requested,
            CertificateOutcome::Failed(ChainFailure::Missing),
            CertificateOutcome::Failed(ChainFailure::Untrusted),
        ] {
            counts.record(outcome);
        }
        assert_eq!((counts.requested, counts.issued, counts.verified), (4, 2, 1), "a missing chain is not issued");
        assert_eq!(counts.failures.get("untrusted"), Some(&1));
        let mut added = counts.clone();
        added.add(&counts);
        assert_eq!((added.requested, added.issued, added.verified, added.failures["missing"]), (8, 4, 2, 2));
    }
}
