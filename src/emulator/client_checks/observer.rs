//! The judge as an observer of the emulator's sessions: [`Judge`] implements
//! [`Observer`], and each connection's [`ConnectionLog`] its [`SessionObserver`], so the session
//! reports its events and never calls the judge by hand. Sans IO: it forwards events to the
//! log and folds the log into the judge; it must not change what the service answers.

use std::sync::Arc;
use std::time::Instant;

use super::connection::{ConnectFacts, ConnectionLog, Ending};
use super::judge::Judge;
use crate::emulator::observe::{Observer, ReplySent, RequestSeen, SessionObserver};

impl Observer for Judge {
    fn session(self: Arc<Self>, tls12: Option<bool>) -> Box<dyn SessionObserver> {
        Box::new(JudgedConnection { judge: self, log: ConnectionLog::new(tls12) })
    }

    fn tls_refused(&self, evidence: String) {
        Judge::tls_refused(self, evidence);
    }
}

/// One connection's log, folded into its judge when the connection ends.
struct JudgedConnection {
    judge: Arc<Judge>,
    log: ConnectionLog,
}

impl SessionObserver for JudgedConnection {
    fn connected(&mut self, facts: &ConnectFacts<'_>, now: Instant) {
        self.log.connect(facts);
        self.judge.connection_attempt(&mut self.log, now);
    }

    fn subscribed(&mut self, filters: &mut dyn Iterator<Item = &str>) {
        self.log.subscribe(filters);
    }

    fn requested(&mut self, request: RequestSeen<'_>, now: Instant) {
        self.log.request(request.topic, request.payload, now, request.latest_operation);
    }

    fn replied(&mut self, reply: ReplySent<'_>, now: Instant) {
        self.log.replied(reply.rid, reply.status, reply.retry_after, reply.poll, reply.packet_id, now);
    }

    fn acked(&mut self, packet_id: u16) {
        self.log.acked(packet_id);
    }

    fn ended(self: Box<Self>, ending: Ending, now: Instant) {
        let Self { judge, mut log } = *self;
        log.end(ending);
        judge.finish(log, now);
    }
}
