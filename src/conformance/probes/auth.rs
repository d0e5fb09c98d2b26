//! Authentication probes: a wrong signature, an expired token, another ID scope and a clientId
//! that is not the registration ID must each be refused, by CONNACK 5 or by `res/401` on
//! register (both are observed from DPS; the evidence says which).

use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet};

use super::{Answer, ProbeTarget, Verdict, could_not, describe};
use crate::credentials::{IdScope, SymmetricKey};
use crate::mqtt::QoS;
use crate::topics::{self, ReplyTopic};

/// Sends `connect`; passes when it is refused at CONNACK or by `res/401` on register.
async fn refused(target: &ProbeTarget, connect: Packet, registration: &str) -> Verdict {
    let mut client = match target.open().await {
        Ok(client) => client,
        Err(e) => return could_not("connect", &e),
    };
    let connack = match client.connect(connect).await {
        Ok(connack) => connack,
        Err(e) if e.closed() => return Verdict::Pass(format!("connection closed instead of CONNACK ({e})")),
        Err(e) => return could_not("CONNECT", &e),
    };
    if connack.code != ConnectReturnCode::Success {
        return Verdict::Pass(format!("refused at CONNACK with return code {}", connack.code as u8));
    }
    // Accepted at CONNACK: DPS may still refuse on register with res/401.
    if let Err(e) = client.subscribe(&[(topics::RESPONSE_FILTER, QoS::AtLeastOnce)]).await {
        return Verdict::Pass(format!("CONNACK 0, then refused on SUBSCRIBE ({e})"));
    }
    let body = format!("{{\"registrationId\":\"{registration}\"}}");
    if let Err(e) = client.publish(topics::register_topic("1"), body.as_bytes()).await {
        return Verdict::Pass(format!("CONNACK 0, then refused on register ({e})"));
    }
    let verdict = match client.reply(target.deadline).await {
        Answer::Packet(Packet::Publish(reply)) => match ReplyTopic::parse(&reply.topic) {
            Ok(parsed) if parsed.status == 401 || parsed.status == 403 => {
                Verdict::Pass(format!("CONNACK 0, then res/{} on register", parsed.status))
            }
            _ => Verdict::Fail(format!(
                "accepted: CONNACK 0, then register answered {}",
                describe(&Packet::Publish(reply))
            )),
        },
        Answer::Packet(other) => Verdict::Fail(format!("accepted: CONNACK 0, then {}", describe(&other))),
        Answer::Closed => Verdict::Pass("CONNACK 0, then the connection closed on register".into()),
        Answer::Silent => Verdict::Fail(format!(
            "accepted: CONNACK 0 and no answer to register within {} s",
            target.deadline.as_secs()
        )),
    };
    client.disconnect().await;
    verdict
}

/// DPS-AUTH-001: a token signed with a key that is not the device's.
pub async fn wrong_signature(target: &ProbeTarget) -> Verdict {
    let id = target.registration_id("auth-signature");
    let token = target.token(&target.id_scope, &id, &SymmetricKey::random(), 3600);
    refused(target, target.connect_packet(id.as_str(), &target.id_scope, id.as_str(), &token, true), id.as_str()).await
}

/// DPS-AUTH-002: a correctly signed token that expired a minute ago.
pub async fn expired_token(target: &ProbeTarget) -> Verdict {
    let id = target.registration_id("auth-expired");
    let token = target.token(&target.id_scope, &id, &target.device_key(&id), -60);
    refused(target, target.connect_packet(id.as_str(), &target.id_scope, id.as_str(), &token, true), id.as_str()).await
}

/// DPS-AUTH-006: a token whose `sig` escapes are in lower-case hex, as the C SDK writes them,
/// is accepted like any other (the signature is compared after URL-decoding).
pub async fn lower_case_sig_accepted(target: &ProbeTarget) -> Verdict {
    let id = target.registration_id("auth-sig-case");
    let key = target.device_key(&id);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1);
    // A signature has escapes (for +, / or =) at most expiries; try a bounded few.
    let style = crate::device::Personality::C.sas_style();
    let token = (3600..3664)
        .map(|valid_for| crate::credentials::SasToken::build(&target.id_scope, &id, &key, now + valid_for, style))
        .find(|token| {
            token.expose().split("&sig=").nth(1).is_some_and(|sig| sig.split('&').next().unwrap_or("").contains('%'))
        });
    let Some(token) = token else {
        return Verdict::Fail("no signature with an escape in 64 expiries (cannot happen with base64 padding)".into());
    };
    let mut client = match target.open().await {
        Ok(client) => client,
        Err(e) => return could_not("connect", &e),
    };
    let connack =
        match client.connect(target.connect_packet(id.as_str(), &target.id_scope, id.as_str(), &token, true)).await {
            Ok(connack) => connack,
            Err(e) => return Verdict::Fail(format!("a token with lower-case sig escapes: {e}")),
        };
    client.disconnect().await;
    match connack.code as u8 {
        0 => Verdict::Pass("a token with lower-case hex in its sig escapes got CONNACK 0".into()),
        code => Verdict::Fail(format!("a token with lower-case hex in its sig escapes got CONNACK {code}")),
    }
}

/// DPS-AUTH-007: a valid token of another device, with this device's username and clientId.
pub async fn token_of_another_device(target: &ProbeTarget) -> Verdict {
    let id = target.registration_id("auth-sr-own");
    let other = target.registration_id("auth-sr-other");
    let token = target.token(&target.id_scope, &other, &target.device_key(&other), 3600);
    refused(target, target.connect_packet(id.as_str(), &target.id_scope, id.as_str(), &token, true), id.as_str()).await
}

/// DPS-AUTH-003: username and token naming another ID scope.
pub async fn wrong_scope(target: &ProbeTarget) -> Verdict {
    let other = if target.id_scope.as_str() == "0ne00000000" { "0ne11111111" } else { "0ne00000000" };
    let scope = IdScope::new(other).expect("a literal scope is valid");
    let id = target.registration_id("auth-scope");
    let token = target.token(&scope, &id, &target.device_key(&id), 3600);
    refused(target, target.connect_packet(id.as_str(), &scope, id.as_str(), &token, true), id.as_str()).await
}

/// DPS-AUTH-005: a certificate for one registration ID, used to claim another. The same
/// certificate claiming its own ID must be accepted first (the control), or nothing is shown.
pub async fn x509_cn_mismatch(target: &ProbeTarget) -> Verdict {
    let Some(ca) = &target.x509 else {
        return Verdict::Skipped("no CA that the target's X.509 enrollment group trusts (give --x509-ca-dir)".into());
    };
    let own = target.registration_id("x509-a");
    let certificate = match ca.mint(&own) {
        Ok(certificate) => certificate,
        Err(e) => return could_not("mint a probe certificate", &e),
    };
    let config = match crate::tls::client_config_with_certificate(
        target.roots.clone(),
        crate::tls::TlsVersions::Tls12Only,
        certificate.chain.clone(),
        certificate.key(),
    ) {
        Ok(config) => config,
        Err(e) => return could_not("client certificate", &e),
    };
    let connect = |claimed: &str| {
        let mut connect = rumqttc::mqttbytes::v4::Connect::new(claimed);
        connect.login = Some(rumqttc::mqttbytes::v4::Login::new(
            topics::Username {
                id_scope: target.id_scope.as_str(),
                registration_id: claimed,
                api_version: topics::DEFAULT_API_VERSION,
                client_version: None,
            }
            .to_string(),
            "",
        ));
        Packet::Connect(connect)
    };
    let control = match target.open_with(config.clone()).await {
        Ok(mut client) => client.connect(connect(own.as_str())).await,
        Err(e) => Err(e),
    };
    match control {
        Ok(connack) if connack.code == ConnectReturnCode::Success => {}
        Ok(connack) => {
            return Verdict::Fail(format!(
                "the control (CN = registration ID) was refused: CONNACK {}",
                connack.code as u8
            ));
        }
        Err(e) => return could_not("the control connection (CN = registration ID)", &e),
    }
    let other = target.registration_id("x509-b");
    let mut client = match target.open_with(config).await {
        Ok(client) => client,
        Err(e) if e.in_tls_handshake() => return Verdict::Pass(format!("refused in the TLS handshake: {e}")),
        Err(e) => return could_not("connect", &e),
    };
    match client.connect(connect(other.as_str())).await {
        Ok(connack) if connack.code != ConnectReturnCode::Success => {
            Verdict::Pass(format!("a certificate for {own} claiming {other}: CONNACK {}", connack.code as u8))
        }
        Ok(_) => Verdict::Fail(format!("a certificate for {own} was accepted as {other}")),
        Err(e) if e.closed() => Verdict::Pass(format!("connection closed instead of CONNACK ({e})")),
        Err(e) => could_not("CONNECT", &e),
    }
}

/// DPS-AUTH-004: a valid username and token, but a clientId naming another device.
pub async fn client_id_mismatch(target: &ProbeTarget) -> Verdict {
    let id = target.registration_id("auth-client");
    let token = target.token(&target.id_scope, &id, &target.device_key(&id), 3600);
    let other = format!("{id}-other");
    refused(target, target.connect_packet(&other, &target.id_scope, id.as_str(), &token, true), id.as_str()).await
}
