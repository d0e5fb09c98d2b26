//! An operation completed by an event through the service's table ([`Service::complete`]):
//! what a later allocation (a webhook's answer) relies on (sans IO).

use super::tests::{operation, ready_session, request, service_with};
use super::*;
use crate::topics;

#[test]
fn an_event_completes_a_pending_operation_once_and_its_poll_then_answers_assigned() {
    let (service, key) = service_with(|c| c.assign_delay = Duration::from_secs(3600));
    let mut session = ready_session(&service, &key, "dev-1");
    let t0 = Instant::now();
    let (status, _, body) = request(&mut session, &service, topics::register_topic("1"), t0);
    assert_eq!(status, 202);
    let operation_id = operation(&body).operation_id;
    let poll = topics::poll_topic("2", &operation_id);
    let (status, _, body) = request(&mut session, &service, poll.clone(), t0 + Duration::from_secs(1));
    assert_eq!((status, operation(&body).status), (202, OperationStatus::Assigning), "pending: not due for an hour");

    assert!(service.complete(&operation_id, Completion::Assigned), "the event ends the pending operation");
    assert!(!service.complete(&operation_id, Completion::Assigned), "an ended operation does not end again");
    assert!(!service.complete("4.0.nope", Completion::Assigned), "no such operation");

    let (status, _, body) = request(&mut session, &service, poll, t0 + Duration::from_secs(2));
    let done = operation(&body);
    assert_eq!((status, done.status), (200, OperationStatus::Assigned));
    let state = done.registration_state.unwrap();
    assert_eq!(state.assigned_hub.as_deref(), Some(service.hub_for("dev-1")));
}
