//! A registration's operation in the service's table: pending from the register until an
//! allocation completes it, by an event ([`Operation::complete`]). The built-in allocation
//! completes it when it falls due (the configured assignment and issuance delays); an
//! allocation that takes time elsewhere (a webhook call, say) can complete it whenever its
//! answer comes, through [`super::Service::complete`].
//!
//! Sans IO: `now` is an input.

use std::time::Instant;

use crate::emulator::issuance::Issued;

/// How an allocation ended an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Assigned to the hub the registration record names.
    Assigned,
}

#[derive(Debug, Clone)]
pub(super) struct Operation {
    /// Canonical registration ID of the device that registered.
    pub(super) device: String,
    /// When the built-in allocation completes it; `None` waits for [`Operation::complete`].
    pub(super) due: Option<Instant>,
    /// Kept from here for the operation's retention.
    pub(super) since: Instant,
    /// How it ended; `None` while pending.
    pub(super) completion: Option<Completion>,
    /// A final status was sent (for the `status_backwards` deviation).
    pub(super) reported_final: bool,
    /// What became of the registration's CSR, when it went to an issuing enrollment.
    pub(super) issued: Option<Issued>,
}

impl Operation {
    /// A pending operation of `device`, which the built-in allocation completes at `due`.
    pub(super) fn pending(device: String, due: Instant, issued: Option<Issued>) -> Self {
        Self { device, due: Some(due), since: due, completion: None, reported_final: false, issued }
    }

    /// Ends the operation as `completion` says, unless it has ended already; true when it ends
    /// now.
    pub(super) fn complete(&mut self, completion: Completion) -> bool {
        let pending = self.completion.is_none();
        if pending {
            self.completion = Some(completion);
        }
        pending
    }

    /// The event of the built-in allocation: completes the operation when it is due at `now`.
    pub(super) fn fall_due(&mut self, now: Instant) {
        if self.due.is_some_and(|due| now >= due) {
            self.complete(Completion::Assigned);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_operation_ends_once_by_its_first_completion_whether_an_event_or_falling_due() {
        let start = Instant::now();
        let mut due = Operation::pending("dev-1".into(), start + Duration::from_secs(2), None);
        due.fall_due(start + Duration::from_secs(1));
        assert_eq!(due.completion, None, "pending before it is due");
        due.fall_due(start + Duration::from_secs(2));
        assert_eq!(due.completion, Some(Completion::Assigned));
        assert!(!due.complete(Completion::Assigned), "an ended operation does not end again");
        let mut early = Operation::pending("dev-2".into(), start + Duration::from_secs(60), None);
        assert!(early.complete(Completion::Assigned), "an event ends it before it is due");
        assert_eq!(early.completion, Some(Completion::Assigned));
    }
}
