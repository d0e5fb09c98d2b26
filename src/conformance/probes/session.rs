//! MQTT session and subscription probes: SessionPresent with CleanSession 0, no subscription
//! surviving a reconnect, QoS 2 granted as 1, other filters and undocumented topics refused.

use std::time::Duration;

use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet, SubscribeReasonCode};

use super::{Answer, ClientError, ProbeClient, ProbeTarget, Verdict, could_not, describe};
use crate::mqtt::QoS;
use crate::topics;

/// How long a probe listens for a reply that must not come: 3 s, or the deadline if shorter.
fn silence(target: &ProbeTarget) -> Duration {
    target.deadline.min(Duration::from_secs(3))
}

/// A connected probe client for the device `name`.
async fn connected(target: &ProbeTarget, name: &str, clean: bool) -> Result<(ProbeClient, bool), ClientError> {
    let device = target.device(name);
    let password = device.password.as_ref().expect("probe devices have tokens");
    let id = device.registration_id.as_str();
    let mut client = target.open().await?;
    let connack = client.connect(target.connect_packet(id, &target.id_scope, id, password, clean)).await?;
    if connack.code != ConnectReturnCode::Success {
        return Err(ClientError::Refused(connack.code as u8));
    }
    Ok((client, connack.session_present))
}

/// DPS-MQTT-002 (and DPS-MQTT-001 with CleanSession 0): subscribe and register (a reply must
/// come: the control), reconnect with CleanSession 0 and register without subscribing: no reply
/// may come now.
pub async fn no_session_survives(target: &ProbeTarget) -> (Verdict, Verdict) {
    let body = format!("{{\"registrationId\":\"{}\"}}", target.registration_id("session"));
    let first = async {
        let (mut client, present) = connected(target, "session", false).await?;
        client.subscribe(&[(topics::RESPONSE_FILTER, QoS::AtLeastOnce)]).await?;
        client.publish(topics::register_topic("1"), body.as_bytes()).await?;
        let control = client.reply(target.deadline).await;
        client.disconnect().await;
        Ok::<_, ClientError>((present, matches!(control, Answer::Packet(Packet::Publish(_)))))
    };
    let (first_present, control_replied) = match first.await {
        Ok(first) => first,
        Err(e) => return (could_not("first connection", &e), could_not("first connection", &e)),
    };
    let (mut client, second_present) = match connected(target, "session", false).await {
        Ok(connected) => connected,
        Err(e) => return (could_not("reconnect", &e), could_not("reconnect", &e)),
    };
    let session_present = if first_present || second_present {
        Verdict::Fail(format!("CleanSession 0: SessionPresent {} then {}", first_present as u8, second_present as u8))
    } else {
        Verdict::Pass("CleanSession 0 twice: SessionPresent 0 both times".into())
    };
    if !control_replied {
        client.disconnect().await;
        let why = "no reply to register even while subscribed, so silence after reconnecting would prove nothing";
        let blocked_by = "clean-session-0 (its control: a register while subscribed got no reply)".into();
        return (session_present, Verdict::Inconclusive { blocked_by, reason: why.into() });
    }
    if let Err(e) = client.publish(topics::register_topic("2"), body.as_bytes()).await {
        return (session_present, could_not("register", &e));
    }
    let wait = silence(target);
    let survived = match client.reply(wait).await {
        Answer::Packet(Packet::Publish(reply)) => Verdict::Fail(format!(
            "a reply arrived without a new SUBSCRIBE (the subscription survived): {}",
            reply.topic
        )),
        Answer::Packet(other) => Verdict::Pass(format!("no reply after reconnecting; got {}", describe(&other))),
        Answer::Closed => Verdict::Pass("no reply after reconnecting (connection closed)".into()),
        Answer::Silent => Verdict::Pass(format!(
            "a reply came while subscribed; none within {} s after reconnecting without SUBSCRIBE",
            wait.as_secs_f32()
        )),
    };
    client.disconnect().await;
    (session_present, survived)
}

/// DPS-MQTT-003: the response filter at QoS 2 is granted QoS 1.
pub async fn qos2_granted_as_1(target: &ProbeTarget) -> Verdict {
    let granted = async {
        let (mut client, _) = connected(target, "qos", true).await?;
        let suback = client.subscribe(&[(topics::RESPONSE_FILTER, QoS::ExactlyOnce)]).await?;
        client.disconnect().await;
        Ok::<_, ClientError>(suback.return_codes)
    };
    match granted.await {
        Ok(codes) if codes == [SubscribeReasonCode::Success(QoS::AtLeastOnce)] => {
            Verdict::Pass("QoS 2 request granted QoS 1".into())
        }
        Ok(codes) => Verdict::Fail(format!("QoS 2 request answered {codes:?}")),
        Err(e) => could_not("subscribe", &e),
    }
}

/// DPS-MQTT-011: after a subscription requested at QoS 2, a reply still arrives at QoS 1.
/// Registers one device (billable).
pub async fn qos2_replies_at_qos1(target: &ProbeTarget) -> Verdict {
    let (mut client, _) = match connected(target, "qos2-replies", true).await {
        Ok(connected) => connected,
        Err(e) => return could_not("connect", &e),
    };
    if let Err(e) = client.subscribe(&[(topics::RESPONSE_FILTER, QoS::ExactlyOnce)]).await {
        return could_not("subscribe at QoS 2", &e);
    }
    let body = format!("{{\"registrationId\":\"{}\"}}", target.registration_id("qos2-replies"));
    if let Err(e) = client.publish(topics::register_topic("1"), body.as_bytes()).await {
        return could_not("register", &e);
    }
    let verdict = match client.reply(target.deadline).await {
        Answer::Packet(Packet::Publish(reply)) if reply.qos == QoS::AtLeastOnce => {
            Verdict::Pass(format!("subscribed at QoS 2; the reply {} came at QoS 1", reply.topic))
        }
        Answer::Packet(Packet::Publish(reply)) => {
            Verdict::Fail(format!("subscribed at QoS 2; the reply {} came at {:?}", reply.topic, reply.qos))
        }
        other => Verdict::Inconclusive {
            blocked_by: "qos2-replies (no reply to register)".into(),
            reason: format!(
                "no reply to register to judge: {}",
                match other {
                    Answer::Packet(packet) => describe(&packet),
                    Answer::Closed => "connection closed".into(),
                    Answer::Silent => format!("silent for {} s", target.deadline.as_secs()),
                }
            ),
        },
    };
    client.disconnect().await;
    verdict
}

/// Subscribes `filters` and passes when every one is refused with 0x80.
async fn filters_refused(target: &ProbeTarget, name: &str, filters: &[&str]) -> Verdict {
    let answered = async {
        let (mut client, _) = connected(target, name, true).await?;
        let with_qos: Vec<(&str, QoS)> = filters.iter().map(|f| (*f, QoS::AtLeastOnce)).collect();
        let result = client.subscribe(&with_qos).await;
        client.disconnect().await;
        result
    };
    match answered.await {
        Ok(suback) => {
            let granted: Vec<String> = filters
                .iter()
                .zip(&suback.return_codes)
                .filter(|(_, code)| **code != SubscribeReasonCode::Failure)
                .map(|(filter, code)| format!("{filter} -> {code:?}"))
                .collect();
            if granted.is_empty() && suback.return_codes.len() == filters.len() {
                Verdict::Pass(format!("refused with 0x80: {}", filters.join(", ")))
            } else if granted.is_empty() {
                Verdict::Fail(format!("SUBACK has {} codes for {} filters", suback.return_codes.len(), filters.len()))
            } else {
                Verdict::Fail(format!("granted: {}", granted.join(", ")))
            }
        }
        // Closing the connection also refuses the subscription.
        Err(e) if e.closed() => Verdict::Pass(format!("connection closed on SUBSCRIBE: {e}")),
        Err(e) => could_not("subscribe", &e),
    }
}

/// DPS-MQTT-006: filters of other services and plain wildcards are refused.
pub async fn other_filters_refused(target: &ProbeTarget) -> Verdict {
    let id = target.registration_id("filters");
    let devicebound = format!("devices/{id}/messages/devicebound/#");
    filters_refused(target, "filters", &[devicebound.as_str(), "#", "$dps/registrations/PUT/#"]).await
}

/// DPS-MQTT-007: wildcards on reply subtopics are refused.
pub async fn wildcard_subtopics_refused(target: &ProbeTarget) -> Verdict {
    filters_refused(
        target,
        "wildcards",
        &["$dps/registrations/res/+/#", "$dps/registrations/res/202/#", "$dps/registrations/#"],
    )
    .await
}

/// DPS-MQTT-008: a PUBLISH to an undocumented topic ends the connection (or at least is not
/// acknowledged).
pub async fn undocumented_topic_refused(target: &ProbeTarget) -> Verdict {
    let (mut client, _) = match connected(target, "topics", true).await {
        Ok(connected) => connected,
        Err(e) => return could_not("connect", &e),
    };
    let topic = "$dps/registrations/POST/iotdps-undocumented/?$rid=1".to_string();
    if let Err(e) = client.publish(topic.clone(), b"{}").await {
        return Verdict::Pass(format!("connection closed on PUBLISH: {e}"));
    }
    let verdict = match client.next(silence(target)).await {
        Answer::Closed => Verdict::Pass(format!("connection closed after PUBLISH to {topic}")),
        Answer::Packet(Packet::PubAck(_)) => {
            // Acknowledged: is the connection still open?
            let _ = client.send(&Packet::PingReq).await;
            match client.next(silence(target)).await {
                Answer::Packet(Packet::PingResp) => {
                    Verdict::Fail(format!("PUBLISH to {topic} was acknowledged and the connection stayed open"))
                }
                _ => Verdict::Pass(format!("PUBLISH to {topic} was acknowledged, then the connection closed")),
            }
        }
        Answer::Packet(other) => Verdict::Fail(format!("PUBLISH to {topic} was answered: {}", describe(&other))),
        Answer::Silent => Verdict::Pass(format!(
            "PUBLISH to {topic} was neither acknowledged nor answered in {} s",
            silence(target).as_secs_f32()
        )),
    };
    client.disconnect().await;
    verdict
}

/// A CONNECT of MQTT 3.1 (protocol name `MQIsdp`, level 3), clean session, no login.
const MQTT31_CONNECT: &[u8] = &[
    0x10, 17, // CONNECT, remaining length 17
    0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name
    0x03, // protocol level 3
    0x02, // flags: clean session
    0x00, 0x3c, // keep-alive 60 s
    0x00, 0x03, b'p', b'3', b'1', // client ID
];

/// A CONNECT of MQTT 5 (level 5), clean start, no login, no properties.
const MQTT5_CONNECT: &[u8] = &[
    0x10, 16, // CONNECT, remaining length 16
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x05, // protocol level 5
    0x02, // flags: clean start
    0x00, 0x3c, // keep-alive 60 s
    0x00, // properties: none
    0x00, 0x03, b'p', b'5', b'0', // client ID
];

/// DPS-MQTT-009: only MQTT 3.1.1 (level 4) is served; a CONNECT of MQTT 3.1 or of MQTT 5 gets
/// CONNACK 1 (unacceptable protocol version) or a closed connection, not another CONNACK.
pub async fn other_protocol_levels_refused(target: &ProbeTarget) -> Verdict {
    let mut seen = Vec::new();
    for (name, connect) in [("MQTT 3.1", MQTT31_CONNECT), ("MQTT 5", MQTT5_CONNECT)] {
        let mut client = match target.open().await {
            Ok(client) => client,
            Err(e) => return could_not("connect", &e),
        };
        if let Err(e) = client.send_raw(connect).await {
            seen.push(format!("{name}: closed on CONNECT ({e})"));
            continue;
        }
        match client.expect().await {
            // MQTT 3.1.1 §3.1.2.2: an unsupported level gets CONNACK 1, then the close.
            Answer::Packet(Packet::ConnAck(connack)) if connack.code as u8 == 1 => {
                seen.push(format!("{name}: CONNACK 1 (unacceptable protocol version)"));
            }
            Answer::Packet(other) => {
                return Verdict::Fail(format!("a {name} CONNECT was read as MQTT 3.1.1: {}", describe(&other)));
            }
            Answer::Closed => seen.push(format!("{name}: connection closed")),
            Answer::Silent => {
                return Verdict::Fail(format!(
                    "no CONNACK and no close within {} s after a {name} CONNECT",
                    target.deadline.as_secs()
                ));
            }
        }
    }
    Verdict::Pass(seen.join("; "))
}

/// DPS-MQTT-010: UNSUBSCRIBE is answered with UNSUBACK for its packet ID, and DISCONNECT ends
/// the connection.
pub async fn unsubscribe_and_disconnect(target: &ProbeTarget) -> Verdict {
    let (mut client, _) = match connected(target, "unsubscribe", true).await {
        Ok(connected) => connected,
        Err(e) => return could_not("connect", &e),
    };
    if let Err(e) = client.subscribe(&[(topics::RESPONSE_FILTER, QoS::AtLeastOnce)]).await {
        return could_not("subscribe", &e);
    }
    let unsubscribe = Packet::Unsubscribe(rumqttc::mqttbytes::v4::Unsubscribe {
        pkid: 77,
        topics: vec![topics::RESPONSE_FILTER.to_string()],
    });
    if let Err(e) = client.send(&unsubscribe).await {
        return Verdict::Fail(format!("connection closed on UNSUBSCRIBE: {e}"));
    }
    let unsubscribed = match client.expect().await {
        Answer::Packet(Packet::UnsubAck(ack)) if ack.pkid == 77 => "UNSUBACK 77".to_string(),
        Answer::Packet(other) => return Verdict::Fail(format!("UNSUBSCRIBE 77 answered {}", describe(&other))),
        Answer::Closed => return Verdict::Fail("the connection closed on UNSUBSCRIBE".into()),
        Answer::Silent => return Verdict::Fail(format!("no UNSUBACK within {} s", target.deadline.as_secs())),
    };
    if let Err(e) = client.send(&Packet::Disconnect).await {
        return Verdict::Pass(format!("{unsubscribed}; closed on DISCONNECT ({e})"));
    }
    match client.next(target.deadline).await {
        Answer::Closed => Verdict::Pass(format!("{unsubscribed}; DISCONNECT closed the connection")),
        Answer::Packet(other) => Verdict::Fail(format!("{unsubscribed}; DISCONNECT answered {}", describe(&other))),
        Answer::Silent => Verdict::Fail(format!(
            "{unsubscribed}; the connection stayed open {} s after DISCONNECT",
            target.deadline.as_secs()
        )),
    }
}
