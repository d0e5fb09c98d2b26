//! The simulated device: one DPS provisioning flow, from TCP connect to DISCONNECT.
//!
//! `flow` is the sans-IO state machine (packets and `now` in, packets and deadlines out);
//! `driver` owns the socket, TLS and clock and runs one flow to its single [`Outcome`];
//! `outcome` holds what a finished flow reports; `observation` what it saw on the wire, handed to
//! an [`Observer`] (the passive conformance checks) without judging it. Failures of the service
//! under test are data ([`FailureKind`]), never Rust errors. Randomness (`$rid` UUIDs, retry
//! jitter) comes from a [`DeviceRng`] the caller seeds.

pub mod clock;
pub mod driver;
pub mod flow;
pub mod misbehaviour;
pub mod observation;
pub mod outcome;
pub mod personality;
pub mod reason;
pub mod retry;
pub mod target_watch;

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::credentials::{IdScope, RegistrationId, SasToken};
use crate::mqtt::QoS;
use crate::topics::{DEFAULT_API_VERSION, Username};

pub use driver::{Target, Transport, fresh_rng, run_device, run_device_observed};
pub use flow::Flow;
pub use misbehaviour::{Misbehaviour, Misbehaviours};
pub use observation::{Observation, Observer, RequestKind};
pub use outcome::{FailureKind, FlowReport, Outcome, Step, Timings};
pub use personality::Personality;
pub use reason::FailureReason;
pub use retry::{Decision, RetryPolicy, RetryProfile};
pub use target_watch::TargetWatch;

/// A device's randomness (`$rid` UUIDs, retry jitter): an input of the flow, so a seeded flow is
/// reproducible. Small and fast; a run seeds each device's from one run-level generator.
pub type DeviceRng = rand::rngs::SmallRng;

/// How `$rid` values are chosen (SDKs differ, `docs/dps-mqtt.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RidStyle {
    /// 1, 2, 3, ... per connection (C, C#, Java).
    #[default]
    Counter,
    /// Always `1` (azure-sdk-for-c).
    Literal1,
    /// A random UUID (Python, Node).
    Uuid,
}

/// Deadlines for each step of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_connect: Duration,
    pub tls_handshake: Duration,
    pub connack: Duration,
    pub suback: Duration,
    /// Per register or poll request, until its reply.
    pub reply: Duration,
    /// The whole flow, from start to outcome.
    pub flow: Duration,
}

impl Default for Timeouts {
    /// The SDKs' own request timeout is 30 s (Python, Node); connection steps get 10 s.
    fn default() -> Self {
        Self {
            tcp_connect: Duration::from_secs(10),
            tls_handshake: Duration::from_secs(10),
            connack: Duration::from_secs(10),
            suback: Duration::from_secs(10),
            reply: Duration::from_secs(30),
            flow: Duration::from_secs(300),
        }
    }
}

/// Wire behaviour shared by every device of a run (one personality).
#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub api_version: String,
    /// `ClientVersion` appended to the username, already in its wire encoding.
    pub client_version: Option<String>,
    pub keep_alive: u16,
    pub clean_session: bool,
    pub subscribe_qos: QoS,
    /// QoS of register requests.
    pub register_qos: QoS,
    /// QoS of poll requests (azure-sdk-for-c samples poll at 0).
    pub poll_qos: QoS,
    pub rid_style: RidStyle,
    /// Body of the poll request (SDKs send nothing, a space, or the register body).
    pub poll_body: PollBody,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Take any reply as the answer to the request in flight, whatever its `$rid` (conformance
    /// probes, so a wrong `$rid` is one finding, not a timeout). SDKs drop such replies.
    pub lenient_rid: bool,
    /// End the flow at an accepted CONNACK with [`Outcome::Connected`], sending DISCONNECT:
    /// credentials and TLS tried, nothing registered (nothing billable). The run's preflight.
    pub connect_only: bool,
    /// Client checks the device breaks on purpose (failing controls); none by default.
    pub misbehave: Misbehaviours,
    /// The issuing CA an operational certificate chain must reach (`[target]
    /// issuer_ca_certificate`, or the embedded emulator's); `None` checks the chain's own links.
    pub certificate_issuer: Option<rustls_pki_types::CertificateDer<'static>>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.into(),
            client_version: Some("dpsbench%2F0.1.0".into()),
            keep_alive: 60,
            clean_session: true,
            subscribe_qos: QoS::AtLeastOnce,
            register_qos: QoS::AtLeastOnce,
            poll_qos: QoS::AtLeastOnce,
            rid_style: RidStyle::Counter,
            poll_body: PollBody::Empty,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            lenient_rid: false,
            connect_only: false,
            misbehave: Misbehaviours::default(),
            certificate_issuer: None,
        }
    }
}

/// What a device sends as the poll body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollBody {
    Empty,
    Space,
    RegisterBody,
}

/// Who one device is: its registration ID, scope, password and register body.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    pub registration_id: RegistrationId,
    pub id_scope: IdScope,
    /// The SAS token; `None` for X.509 devices.
    pub password: Option<SasToken>,
    pub register_body: Bytes,
    /// Local address its connection is bound to (from a source-address pool); `None` lets the
    /// kernel choose.
    pub source_address: Option<IpAddr>,
    /// Whose wire dialect it speaks (for reporting; its settings already follow it).
    pub personality: Personality,
    /// The custom allocation payload in its register body, to compare with what comes back.
    pub payload: Option<serde_json::Value>,
    /// An X.509 device's own TLS configuration, presenting its certificate; `None` uses the
    /// target's shared one.
    pub client_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The CSR its register body carries (`2025-07-01-preview`), to check the issued chain
    /// against; `None` requests no certificate.
    pub certificate_request: Option<std::sync::Arc<crate::certificates::CertificateRequest>>,
}

impl DeviceIdentity {
    /// The MQTT username: `{scope}/registrations/{id}/api-version={v}[&ClientVersion={cv}]`.
    pub fn username(&self, settings: &FlowSettings) -> String {
        Username {
            id_scope: self.id_scope.as_str(),
            registration_id: self.registration_id.as_str(),
            api_version: &settings.api_version,
            client_version: settings.client_version.as_deref(),
        }
        .to_string()
    }

    /// The register body most SDKs send, `{"registrationId":"..."}`: the dpsbench personality's.
    pub fn default_register_body(registration_id: &RegistrationId) -> Bytes {
        Personality::Dpsbench.register_body(registration_id, None)
    }
}
