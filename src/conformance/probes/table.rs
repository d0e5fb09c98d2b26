//! The probe table: one entry per probe, with its deadline, whether it creates registrations,
//! and how to run it. Catalogue entries name the probes that judge them; the suite runs each
//! probe of this table, in this order, when any of its checks is wanted.
//!
//! A probe yields one verdict per check it judges: most judge one check, the lifecycle judges
//! DPS-FLOW-005 and every passive check, the CleanSession 0 probe DPS-MQTT-002 and (adding to
//! the lifecycle's finding) DPS-MQTT-001.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{ProbeTarget, Verdicts, auth, certificates, flow, session, tls, websocket};

/// A probe at work against a target.
pub type Probing<'a> = Pin<Box<dyn Future<Output = Verdicts> + Send + 'a>>;

/// One probe: a name, a deadline, whether it creates registrations, and how to run it.
pub struct Probe {
    /// Stable and unique, for reports and docs.
    pub name: &'static str,
    pub deadline: Deadline,
    /// Whether it creates registrations (billable on a real DPS instance).
    pub billable: bool,
    pub run: for<'a> fn(&'a ProbeTarget) -> Probing<'a>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("name", &self.name)
            .field("deadline", &self.deadline)
            .field("billable", &self.billable)
            .finish_non_exhaustive()
    }
}

/// How long a probe may take, in multiples of the target's base deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// This many base deadlines.
    Times(u32),
    /// One base deadline per registration the throttling probe may send, plus this many.
    ThrottleRequestsPlus(u32),
}

impl Deadline {
    /// The deadline against `target`.
    pub fn of(self, target: &ProbeTarget) -> Duration {
        match self {
            Deadline::Times(n) => target.deadline * n,
            Deadline::ThrottleRequestsPlus(n) => target.deadline * (target.throttle_requests + n),
        }
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deadline::Times(n) => write!(f, "{n} × deadline"),
            Deadline::ThrottleRequestsPlus(n) => write!(f, "(throttle requests + {n}) × deadline"),
        }
    }
}

/// A probe that judges one check.
macro_rules! probe {
    ($static:ident, $name:literal, $deadline:expr, billable: $billable:literal, $check:literal => $probe:path) => {
        pub static $static: Probe = Probe {
            name: $name,
            deadline: $deadline,
            billable: $billable,
            run: |target| Box::pin(async move { vec![($check, $probe(target).await)] }),
        };
    };
}

use Deadline::{ThrottleRequestsPlus, Times};

probe!(PLAIN_MQTT, "plain-mqtt", Times(2), billable: false, "DPS-TLS-001" => tls::plain_mqtt_refused);
probe!(PLAIN_PORT, "plain-port", Times(2), billable: false, "DPS-TLS-002" => tls::plain_port_not_served);
probe!(TLS12, "tls12", Times(2), billable: false, "DPS-TLS-003" => tls::tls12_negotiated);
probe!(OLD_TLS, "old-tls", Times(3), billable: false, "DPS-TLS-004" => tls::old_tls_refused);
probe!(TLS13_ALONE, "tls13-alone", Times(2), billable: false, "DPS-TLS-005" => tls::tls13_alone_refused);

/// One device provisions, every packet checked: DPS-FLOW-005 and every passive check.
pub static LIFECYCLE: Probe = Probe {
    name: "lifecycle",
    deadline: Times(6),
    billable: true,
    run: |target| {
        Box::pin(async move {
            let (completed, passive) = flow::lifecycle(target).await;
            let mut verdicts = vec![("DPS-FLOW-005", completed)];
            verdicts.extend(passive.into_iter().map(|(check, verdict)| (check.id(), verdict)));
            verdicts
        })
    },
};

/// Three preview devices (no CSR, a CSR, a bad CSR): every DPS-CERT check.
pub static CERTIFICATE_ISSUANCE: Probe = Probe {
    name: "certificate-issuance",
    deadline: Times(8),
    billable: true,
    run: |target| Box::pin(certificates::issuance(target)),
};

/// CleanSession 0 twice: DPS-MQTT-002, and SessionPresent for DPS-MQTT-001.
pub static CLEAN_SESSION: Probe = Probe {
    name: "clean-session-0",
    deadline: Times(5),
    billable: true,
    run: |target| {
        Box::pin(async move {
            let (present, survived) = session::no_session_survives(target).await;
            vec![("DPS-MQTT-001", present), ("DPS-MQTT-002", survived)]
        })
    },
};

probe!(
    PROTOCOL_LEVELS, "protocol-levels", Times(3), billable: false,
    "DPS-MQTT-009" => session::other_protocol_levels_refused
);
probe!(
    UNSUBSCRIBE_DISCONNECT, "unsubscribe-disconnect", Times(3), billable: false,
    "DPS-MQTT-010" => session::unsubscribe_and_disconnect
);
probe!(LOWER_CASE_SIG, "lower-case-sig", Times(3), billable: false, "DPS-AUTH-006" => auth::lower_case_sig_accepted);
probe!(QOS2_REPLIES, "qos2-replies", Times(3), billable: true, "DPS-MQTT-011" => session::qos2_replies_at_qos1);
probe!(SR_OTHER_DEVICE, "sr-other-device", Times(4), billable: false, "DPS-AUTH-007" => auth::token_of_another_device);
probe!(QOS2, "qos2", Times(3), billable: false, "DPS-MQTT-003" => session::qos2_granted_as_1);
probe!(OTHER_FILTERS, "other-filters", Times(3), billable: false, "DPS-MQTT-006" => session::other_filters_refused);
probe!(
    WILDCARD_SUBTOPICS, "wildcard-subtopics", Times(3), billable: false,
    "DPS-MQTT-007" => session::wildcard_subtopics_refused
);
probe!(
    UNDOCUMENTED_TOPIC, "undocumented-topic", Times(3), billable: false,
    "DPS-MQTT-008" => session::undocumented_topic_refused
);
probe!(WRONG_SIGNATURE, "wrong-signature", Times(4), billable: false, "DPS-AUTH-001" => auth::wrong_signature);
probe!(EXPIRED_TOKEN, "expired-token", Times(4), billable: false, "DPS-AUTH-002" => auth::expired_token);
probe!(WRONG_SCOPE, "wrong-scope", Times(4), billable: false, "DPS-AUTH-003" => auth::wrong_scope);
probe!(
    CLIENT_ID_MISMATCH, "client-id-mismatch", Times(4), billable: false,
    "DPS-AUTH-004" => auth::client_id_mismatch
);
probe!(X509_CN_MISMATCH, "x509-cn-mismatch", Times(4), billable: false, "DPS-AUTH-005" => auth::x509_cn_mismatch);
probe!(STATUS_FORWARD, "status-forward", Times(8), billable: true, "DPS-FLOW-004" => flow::status_only_forward);
probe!(EVERY_DIALECT, "every-dialect", Times(8), billable: true, "DPS-FLOW-006" => flow::every_dialect);
probe!(
    WEBSOCKET_LIFECYCLE, "websocket-lifecycle", Times(15), billable: true,
    "DPS-WS-001" => websocket::lifecycle_over_websocket
);
probe!(
    WRONG_SUBPROTOCOL, "wrong-subprotocol", Times(3), billable: false,
    "DPS-WS-002" => websocket::wrong_subprotocol_refused
);
probe!(
    THROTTLING, "throttling", ThrottleRequestsPlus(2), billable: true,
    "DPS-THR-001" => flow::throttled_with_retry_after
);

/// Every probe, in run order.
pub static PROBES: &[&Probe] = &[
    &PROTOCOL_LEVELS,
    &UNSUBSCRIBE_DISCONNECT,
    &LOWER_CASE_SIG,
    &QOS2_REPLIES,
    &SR_OTHER_DEVICE,
    &PLAIN_MQTT,
    &PLAIN_PORT,
    &TLS12,
    &OLD_TLS,
    &TLS13_ALONE,
    // Before the CleanSession 0 probe: its SessionPresent adds to the lifecycle's DPS-MQTT-001.
    &LIFECYCLE,
    &CLEAN_SESSION,
    &QOS2,
    &OTHER_FILTERS,
    &WILDCARD_SUBTOPICS,
    &UNDOCUMENTED_TOPIC,
    &WRONG_SIGNATURE,
    &EXPIRED_TOKEN,
    &WRONG_SCOPE,
    &CLIENT_ID_MISMATCH,
    &X509_CN_MISMATCH,
    &STATUS_FORWARD,
    &EVERY_DIALECT,
    &WEBSOCKET_LIFECYCLE,
    &WRONG_SUBPROTOCOL,
    &CERTIFICATE_ISSUANCE,
    // Last: it spends the registration quota.
    &THROTTLING,
];
