//! One connection's client checks: what the device did on it, judged packet by packet as the
//! session sees it. Cheap: a few bitmasks, the `$rid`s in flight, the instant the last
//! `retry-after` pointed to, and one line of evidence per broken check. Evidence names the
//! check's subject (a topic, an api-version, the `sr` resource, a delay), never a token or key.
//!
//! Sans IO: `now` (monotonic) and `now_unix` (wall seconds) are inputs.

use std::time::{Duration, Instant};

use rumqttc::mqttbytes::Protocol;

use super::catalogue::{ClientCheck, KNOWN_API_VERSIONS, LONGEST_SAS_SECONDS, TIMING_SLACK_MS};
pub use crate::emulator::facts::{ConnectContext, ConnectFacts};
pub use crate::emulator::observe::Ending;
use crate::messages::DeviceRegistration;
use crate::topics::{self, RequestTopic};

/// A request the device sent, not yet answered.
#[derive(Debug, Clone)]
struct InFlight {
    rid: String,
}

/// What a reply told the device, in force once the device has it: when it PUBACKs a QoS 1
/// reply (its own requests sent before then did not know), at once for a QoS 0 one.
#[derive(Debug, Clone)]
struct Told {
    rid: String,
    wait_until: Option<(Instant, ClientCheck, u32)>,
    final_status: bool,
}

/// Replies awaiting the device's PUBACK, at most this many kept.
const UNACKED_KEPT: usize = 8;

/// One connection's verdicts so far.
#[derive(Debug, Default)]
pub struct ConnectionLog {
    /// The registration ID the device named (its ClientId, else the username's); `None`
    /// before CONNECT.
    pub(super) registration_id: Option<String>,
    pub(super) evaluated: u32,
    pub(super) violated: u32,
    /// The first evidence of each broken check.
    pub(super) evidence: Vec<(ClientCheck, String)>,
    subscribed: bool,
    in_flight: Vec<InFlight>,
    /// A request before this instant breaks the check (FLOW-001 after 202, FLOW-004 after 429);
    /// the seconds it was told.
    wait_until: Option<(Instant, ClientCheck, u32)>,
    /// A final status was sent on this connection.
    pub(super) final_sent: bool,
    /// The device has the final status (it PUBACKed the reply, or the reply was QoS 0).
    final_known: bool,
    /// Replies sent at QoS 1 and not yet PUBACKed, by packet ID.
    unacked: Vec<(u16, Told)>,
    /// Negotiated TLS protocol, when the connection runs on TLS.
    tls12: Option<bool>,
    /// The device sent a SUBSCRIBE or a PUBLISH.
    asked: bool,
    /// How the connection ended (`None` while it runs).
    ending: Option<Ending>,
}

impl ConnectionLog {
    /// A log for a connection whose TLS handshake negotiated TLS 1.2 (`Some(true)`), another
    /// version (`Some(false)`), or ran without TLS (`None`).
    pub fn new(tls12: Option<bool>) -> Self {
        Self { tls12, ..Self::default() }
    }

    pub fn registration_id(&self) -> Option<&str> {
        self.registration_id.as_deref()
    }

    /// Whether the connection only checked that the device can connect: CONNECT, then
    /// DISCONNECT with nothing between (as a run's preflight does). It is judged like any
    /// other, but is no client connection for `--exit-after`.
    pub fn connection_check(&self) -> bool {
        !self.asked && self.ending == Some(Ending::Disconnect)
    }

    /// Whether `check` was broken on this connection.
    pub fn broke(&self, check: ClientCheck) -> bool {
        self.violated & check.bit() != 0
    }

    /// Whether `check` was judged on this connection.
    pub fn judged(&self, check: ClientCheck) -> bool {
        self.evaluated & check.bit() != 0
    }

    pub(super) fn verdict(&mut self, check: ClientCheck, ok: bool, evidence: impl FnOnce() -> String) {
        self.evaluated |= check.bit();
        if !ok && self.violated & check.bit() == 0 {
            self.violated |= check.bit();
            self.evidence.push((check, evidence()));
        }
    }

    /// The device's CONNECT, its username and token parsed once in `facts`.
    pub fn connect(&mut self, facts: &ConnectFacts<'_>) {
        let (connect, parsed, context) = (facts.connect, facts.username, &facts.context);
        self.registration_id = facts.named_registration_id().map(str::to_string);
        if let Some(tls12) = self.tls12 {
            self.verdict(ClientCheck::Tls12, tls12, || "the handshake negotiated TLS 1.3".into());
        }
        self.verdict(ClientCheck::Mqtt311, connect.protocol == Protocol::V4, || {
            format!("CONNECT protocol {:?}", connect.protocol)
        });
        self.verdict(ClientCheck::CleanSession, connect.clean_session, || "CONNECT CleanSession 0".into());
        let username_ok =
            parsed.is_some_and(|u| u.id_scope == context.id_scope && KNOWN_API_VERSIONS.contains(&u.api_version));
        self.verdict(ClientCheck::UsernameForm, username_ok, || match parsed {
            None => "the username does not have the form {idScope}/registrations/{id}/api-version={v}".into(),
            Some(u) if u.id_scope != context.id_scope => format!("the username names ID scope {}", u.id_scope),
            Some(u) => format!("api-version={} is not a released version", u.api_version),
        });
        if let Some(u) = parsed {
            self.verdict(
                ClientCheck::ClientIdIsRegistrationId,
                u.registration_id.eq_ignore_ascii_case(&connect.client_id),
                || format!("ClientId {:?}, username registration ID {}", connect.client_id, u.registration_id),
            );
        }
        let registration_id = parsed.map(|u| u.registration_id).unwrap_or(&connect.client_id);
        if context.x509 {
            let cn = context.certificate_cn.unwrap_or_default();
            return self.verdict(ClientCheck::CertificateCn, cn.eq_ignore_ascii_case(registration_id), || {
                format!("certificate CN {cn:?}, registration ID {registration_id}")
            });
        }
        self.token(facts, registration_id);
    }

    /// The SAS token's fields; a password that is not a token breaks the resource check.
    fn token(&mut self, facts: &ConnectFacts<'_>, registration_id: &str) {
        let (Some(parsed), context) = (&facts.token, &facts.context) else {
            return self.verdict(ClientCheck::SasResource, false, || "the password is not a SAS token".into());
        };
        let resource = percent_encoding::percent_decode_str(parsed.sr).decode_utf8_lossy();
        self.verdict(ClientCheck::SasResource, names_device(&resource, context.id_scope, registration_id), || {
            format!("sr names {resource}, not {}/registrations/{registration_id}", context.id_scope)
        });
        let key_name = parsed.key_name;
        let key_ok = match key_name {
            Some(name) => name == "registration",
            None => (context.individual)(registration_id),
        };
        self.verdict(ClientCheck::SasKeyName, key_ok, || match key_name {
            Some(name) => format!("skn={name}"),
            None => "no skn (a group enrollment's device)".into(),
        });
        let (expiry, now_unix) = (parsed.expiry, context.now_unix);
        self.verdict(ClientCheck::SasUnexpired, expiry > now_unix, || {
            format!("se is {} s in the past", now_unix.saturating_sub(expiry))
        });
        self.verdict(ClientCheck::SasExpiryBounded, expiry <= now_unix + LONGEST_SAS_SECONDS, || {
            format!("se is {} days ahead", expiry.saturating_sub(now_unix) / 86_400)
        });
    }

    /// The device's SUBSCRIBE.
    pub fn subscribe<'f>(&mut self, filters: impl Iterator<Item = &'f str>) {
        self.asked = true;
        for filter in filters {
            let documented = filter == topics::RESPONSE_FILTER;
            self.subscribed |= documented;
            self.verdict(ClientCheck::OnlyResponseFilter, documented, || format!("subscribed to {filter:?}"));
        }
    }

    /// A PUBLISH from the device. `latest_operation` gives the operation of the device's
    /// latest registration, looked up only for a poll.
    pub fn request(
        &mut self,
        topic: &str,
        payload: &[u8],
        now: Instant,
        latest_operation: impl FnOnce() -> Option<String>,
    ) {
        self.asked = true;
        self.verdict(ClientCheck::SubscribeFirst, self.subscribed, || {
            format!("published on {topic} before subscribing")
        });
        self.verdict(ClientCheck::PayloadSize, payload.len() <= super::super::service::MAX_MESSAGE_BYTES, || {
            format!("a {} byte payload on {topic}", payload.len())
        });
        let request = RequestTopic::parse(topic);
        self.verdict(ClientCheck::RequestTopic, request.is_ok(), || format!("published on {topic:?}"));
        let Ok(request) = request else { return };
        if let Some((until, check, seconds)) = self.wait_until.take() {
            let slack = Duration::from_millis(TIMING_SLACK_MS);
            let early = until.saturating_duration_since(now);
            self.verdict(check, early <= slack, || {
                format!("the next request came {} ms before the retry-after of {seconds} s ran out", early.as_millis())
            });
        }
        let rid = request.rid();
        let duplicate = self.in_flight.iter().any(|r| r.rid == rid);
        self.verdict(ClientCheck::DistinctRid, !duplicate, || format!("$rid={rid} is already in flight"));
        self.in_flight.push(InFlight { rid: rid.to_string() });
        match request {
            RequestTopic::Register { .. } => self.register_body(payload),
            RequestTopic::Poll { operation_id, .. } => {
                let final_known = self.final_known;
                self.verdict(ClientCheck::StopAfterFinal, !final_known, || {
                    "polled again after the final status".into()
                });
                let latest = latest_operation();
                self.verdict(ClientCheck::PollOwnOperation, latest.as_deref() == Some(operation_id), || {
                    format!("polled operationId {operation_id}, not the one it was given")
                });
            }
        }
    }

    fn register_body(&mut self, body: &[u8]) {
        if body.is_empty() {
            self.verdict(ClientCheck::RegisterBody, true, String::new);
            return self.verdict(ClientCheck::RegisterBodyNamesDevice, false, || "an empty register body".into());
        }
        let registration = DeviceRegistration::parse(body);
        let own = self.registration_id.clone().unwrap_or_default();
        let named = registration.as_ref().ok().and_then(|r| r.registration_id.clone());
        let ok = registration.is_ok() && named.as_deref().is_none_or(|id| id.eq_ignore_ascii_case(&own));
        self.verdict(ClientCheck::RegisterBody, ok, || match &named {
            Some(id) => format!("the register body names registrationId {id:?}"),
            None => format!("the register body is not a Device Registration: {}", crate::grading::excerpt(body)),
        });
        if registration.is_ok() {
            self.verdict(ClientCheck::RegisterBodyNamesDevice, named.is_some(), || {
                "the register body has no registrationId".into()
            });
        }
    }

    /// The emulator answered `rid` with `status` (and `retry-after`) in a reply with packet ID
    /// `packet_id` (`None` at QoS 0); `poll` says whether the request was a poll.
    pub fn replied(
        &mut self,
        rid: &str,
        status: u16,
        retry_after: Option<u32>,
        poll: bool,
        packet_id: Option<u16>,
        now: Instant,
    ) {
        let until = |seconds: u32, check| (now + Duration::from_secs(seconds.into()), check, seconds);
        let wait_until = match (status, retry_after) {
            (202, Some(seconds)) => Some(until(seconds, ClientCheck::PollAfterRetryAfter)),
            (429, Some(seconds)) => Some(until(seconds, ClientCheck::WaitAfterThrottle)),
            _ => None,
        };
        let final_status = poll && (200..300).contains(&status) && status != 202;
        self.final_sent |= final_status;
        let told = Told { rid: rid.to_string(), wait_until, final_status };
        match packet_id {
            None => self.apply(told),
            Some(packet_id) => {
                if self.unacked.len() >= UNACKED_KEPT {
                    let oldest = self.unacked.remove(0);
                    self.apply(oldest.1);
                }
                self.unacked.push((packet_id, told));
            }
        }
    }

    /// The device PUBACKed the emulator's PUBLISH `packet_id`.
    pub fn acked(&mut self, packet_id: u16) {
        if let Some(at) = self.unacked.iter().position(|(id, _)| *id == packet_id) {
            let (_, told) = self.unacked.remove(at);
            self.apply(told);
        }
    }

    fn apply(&mut self, told: Told) {
        if let Some(at) = self.in_flight.iter().position(|r| r.rid == told.rid) {
            self.in_flight.swap_remove(at);
        }
        self.wait_until = told.wait_until;
        self.final_known |= told.final_status;
    }

    /// The connection ended: judges DISCONNECT after a final status.
    pub fn end(&mut self, ending: Ending) {
        self.ending = Some(ending);
        if self.final_sent && ending != Ending::Emulator {
            self.verdict(ClientCheck::Disconnect, ending == Ending::Disconnect, || {
                "closed the connection without DISCONNECT after its final status".into()
            });
        }
    }
}

/// Whether `resource` is `{scope}/registrations/{registration_id}`, ignoring case.
fn names_device(resource: &str, scope: &str, registration_id: &str) -> bool {
    const MIDDLE: &[u8] = b"/registrations/";
    let (resource, scope, id) = (resource.as_bytes(), scope.as_bytes(), registration_id.as_bytes());
    let (middle_at, id_at) = (scope.len(), scope.len() + MIDDLE.len());
    resource.len() == id_at + id.len()
        && resource[..middle_at].eq_ignore_ascii_case(scope)
        && resource[middle_at..id_at].eq_ignore_ascii_case(MIDDLE)
        && resource[id_at..].eq_ignore_ascii_case(id)
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::v4::{Connect, Login};

    use super::*;
    use crate::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};

    const SCOPE: &str = "0ne00UNIT01";

    fn facts(now_unix: u64) -> ConnectContext<'static> {
        ConnectContext { id_scope: SCOPE, certificate_cn: None, x509: false, individual: &|_| false, now_unix }
    }

    impl ConnectionLog {
        /// CONNECT `connect`, parsed with `context`.
        fn connect_with(&mut self, connect: &Connect, context: ConnectContext<'_>) {
            self.connect(&ConnectFacts::parse(connect, context));
        }
    }

    fn connect(id: &str, style: SasStyle, expiry: u64) -> Connect {
        let registration_id = RegistrationId::new(id).unwrap();
        let scope = IdScope::new(SCOPE).unwrap();
        let token = SasToken::build(&scope, &registration_id, &SymmetricKey::random(), expiry, style);
        let mut connect = Connect::new(id);
        connect.login = Some(Login::new(format!("{SCOPE}/registrations/{id}/api-version=2019-03-31"), token.expose()));
        connect
    }

    fn broken(log: &ConnectionLog) -> Vec<&'static str> {
        ClientCheck::ALL.into_iter().filter(|c| log.broke(*c)).map(ClientCheck::id).collect()
    }

    /// CONNECT, SUBSCRIBE, register, its 202 PUBACKed, a poll `after` later, its 200 PUBACKed.
    fn flow(log: &mut ConnectionLog, start: Instant, after: Duration) {
        log.connect_with(&connect("dev-1", SasStyle::default(), 10_000), facts(1_000));
        log.subscribe(std::iter::once(topics::RESPONSE_FILTER));
        log.request(&topics::register_topic("1"), br#"{"registrationId":"dev-1"}"#, start, || None);
        log.replied("1", 202, Some(3), false, Some(1), start);
        log.acked(1);
        let at = start + after;
        log.request(&topics::poll_topic("2", "op-1"), b"", at, || Some("op-1".into()));
        log.replied("2", 200, None, true, Some(2), at);
        log.acked(2);
    }

    #[test]
    fn a_conformant_client_breaks_nothing_and_is_judged_on_every_connection_check() {
        let mut log = ConnectionLog::new(Some(true));
        flow(&mut log, Instant::now(), Duration::from_secs(3));
        log.end(Ending::Disconnect);
        assert_eq!(broken(&log), Vec::<&str>::new());
        for check in [
            ClientCheck::Tls12,
            ClientCheck::Mqtt311,
            ClientCheck::UsernameForm,
            ClientCheck::SasResource,
            ClientCheck::SasKeyName,
            ClientCheck::SubscribeFirst,
            ClientCheck::PollAfterRetryAfter,
            ClientCheck::PollOwnOperation,
            ClientCheck::StopAfterFinal,
            ClientCheck::Disconnect,
        ] {
            assert!(log.judged(check), "{check:?} not judged");
        }
        assert!(!log.judged(ClientCheck::CertificateCn) && !log.judged(ClientCheck::WaitAfterThrottle));
    }

    #[test]
    fn retry_after_counts_from_the_reply_with_slack_and_no_disconnect_is_a_should() {
        let mut log = ConnectionLog::new(Some(true));
        flow(&mut log, Instant::now(), Duration::from_millis(2_950));
        log.end(Ending::Dropped);
        assert_eq!(broken(&log), ["DPS-CLIENT-CONN-002"], "50 ms early is within the slack");
        let mut early = ConnectionLog::new(Some(true));
        flow(&mut early, Instant::now(), Duration::from_secs(2));
        assert_eq!(broken(&early), ["DPS-CLIENT-FLOW-001"]);
        assert!(early.evidence[0].1.contains("1000 ms before"), "{:?}", early.evidence);
    }

    #[test]
    fn a_request_sent_before_the_device_had_the_reply_is_not_early_but_a_shared_rid_is_caught() {
        let now = Instant::now();
        let mut log = ConnectionLog::new(None);
        log.connect_with(&connect("dev-1", SasStyle::default(), 10_000), facts(1_000));
        log.subscribe(std::iter::once(topics::RESPONSE_FILTER));
        log.request(&topics::register_topic("1"), b"", now, || None);
        log.replied("1", 202, Some(3), false, Some(1), now);
        log.request(&topics::poll_topic("7", "op-1"), b"", now, || Some("op-1".into()));
        log.request(&topics::poll_topic("7", "op-1"), b"", now, || Some("op-1".into()));
        assert_eq!(broken(&log), ["DPS-CLIENT-TOPIC-002", "DPS-CLIENT-BODY-002"]);
    }

    #[test]
    fn connect_checks_read_the_token_certificate_and_tls_version() {
        let style = SasStyle { key_name: false, ..SasStyle::default() };
        let mut log = ConnectionLog::new(Some(false));
        let mut packet = connect("dev-1", style, 500);
        packet.clean_session = false;
        log.connect_with(&packet, facts(1_000));
        assert_eq!(
            broken(&log),
            ["DPS-CLIENT-TLS-001", "DPS-CLIENT-MQTT-004", "DPS-CLIENT-AUTH-002", "DPS-CLIENT-AUTH-003"]
        );
        let mut individual = ConnectionLog::new(Some(true));
        individual.connect_with(
            &connect("dev-1", style, 5_000),
            ConnectContext { individual: &|id| id == "dev-1", ..facts(1_000) },
        );
        assert_eq!(broken(&individual), Vec::<&str>::new(), "an individual enrollment needs no skn");
        let mut x509 = ConnectionLog::new(Some(true));
        let x509_facts = ConnectContext { x509: true, certificate_cn: Some("dev-2"), ..facts(1_000) };
        x509.connect_with(&Connect::new("dev-1"), x509_facts);
        assert!(broken(&x509).contains(&"DPS-CLIENT-AUTH-005"), "{:?}", broken(&x509));
        assert!(!x509.judged(ClientCheck::SasResource), "an X.509 device has no token");
    }
}
