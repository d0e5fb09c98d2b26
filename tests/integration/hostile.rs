//! Hostile clients against the real emulator: silent, slow, garbage, oversized and idle clients.
//! Each must be closed within the emulator's deadlines, memory must stay bounded, and a good
//! device must still provision afterwards. `max_connections` closes connections beyond it at once.

use std::time::Duration;

use dpsbench::device::driver::{never_abort, now};
use dpsbench::device::{Outcome, run_device};
use dpsbench::emulator::config::AuthFailure;
use dpsbench::emulator::faults::Fault;
use dpsbench::mqtt::Framed;
use rumqttc::mqttbytes::v4::{Connect, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The emulator's handshake and CONNECT deadlines are 10 s each: a hostile client must be gone
/// well within this.
const CLOSED_WITHIN: Duration = Duration::from_secs(25);

/// Reads until the peer closes (end of stream or an error), at most `limit` bytes and
/// [`CLOSED_WITHIN`]; whether the peer closed.
async fn closed_by_peer(stream: &mut (impl AsyncRead + Unpin), limit: usize) -> bool {
    let mut seen = 0;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(CLOSED_WITHIN, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    seen += n;
                    if seen > limit {
                        return false;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// A good device still provisions.
async fn good_device_provisions(emulator: &Emulator, id: &str) {
    let report =
        run_device(&emulator.target, quick_settings(), device(&emulator.group_key, id), now(), never_abort()).await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
}

async fn tls_to(emulator: &Emulator) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(emulator.handle.address).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(emulator.target.tls.clone());
    connector.connect(emulator.target.server_name.clone(), tcp).await.unwrap()
}

/// A CONNECT the emulator accepts under `auth_failure = "reply"` (the username has DPS's form).
fn connect_packet(id: &str) -> Packet {
    let mut connect = Connect::new(id);
    connect.set_login(format!("{SCOPE}/registrations/{id}/api-version=2019-03-31"), "not-a-token");
    Packet::Connect(connect)
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_says_hello_or_trickles_is_closed() {
    let emulator = start_emulator(|_| {});
    let mut silent = TcpStream::connect(emulator.handle.address).await.unwrap();
    let mut slow = TcpStream::connect(emulator.handle.address).await.unwrap();
    // Slowloris: the first bytes of a ClientHello, one a second.
    let trickle = tokio::spawn(async move {
        for byte in [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01].iter().cycle().take(60) {
            if slow.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        closed_by_peer(&mut slow, 0).await
    });
    assert!(closed_by_peer(&mut silent, 0).await, "a silent client was never closed");
    assert!(trickle.await.unwrap(), "a slowloris client was never closed");
    good_device_provisions(&emulator, "after-slow").await;
}

#[tokio::test]
async fn random_bytes_are_refused_before_and_after_tls() {
    let emulator = start_emulator(|c| c.auth_failure = AuthFailure::Reply);
    let noise: Vec<u8> = (0..65_536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut raw = TcpStream::connect(emulator.handle.address).await.unwrap();
    let _ = raw.write_all(&noise).await;
    assert!(closed_by_peer(&mut raw, 1 << 16).await, "random bytes instead of TLS were not refused");
    let mut tls = tls_to(&emulator).await;
    let _ = tls.write_all(&noise).await;
    let _ = tls.flush().await;
    assert!(closed_by_peer(&mut tls, 1 << 16).await, "random bytes inside TLS were not refused");
    good_device_provisions(&emulator, "after-noise").await;
}

#[tokio::test]
async fn oversized_packets_are_refused_without_being_buffered() {
    let emulator = start_emulator(|c| c.auth_failure = AuthFailure::Reply);
    let before = rss_mib();
    // A CONNECT announcing 256 MB (the largest MQTT remaining length), then nothing more.
    let mut huge = tls_to(&emulator).await;
    huge.write_all(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F]).await.unwrap();
    huge.flush().await.unwrap();
    assert!(closed_by_peer(&mut huge, 0).await, "a 256 MB remaining length was not refused");

    // A connected client publishing 10 MB to the register topic.
    let mut framed = Framed::new(tls_to(&emulator).await);
    framed.send(&connect_packet("big-publisher")).await.unwrap();
    assert!(matches!(framed.read_packet().await.unwrap(), Packet::ConnAck(_)));
    let mut stream = framed.into_inner();
    let topic = b"$dps/registrations/PUT/iotdps-register/?$rid=1";
    let length = 2 + topic.len() + 10 * 1024 * 1024;
    let mut header = vec![0x30u8];
    let mut rest = length;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        header.push(if rest > 0 { byte | 0x80 } else { byte });
        if rest == 0 {
            break;
        }
    }
    header.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    header.extend_from_slice(topic);
    stream.write_all(&header).await.unwrap();
    // The body follows in chunks until the emulator closes (it must not wait for all 10 MB).
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < 10 * 1024 * 1024 && stream.write_all(&chunk).await.is_ok() {
        sent += chunk.len();
    }
    // The emulator closed before the client could push it all: it judged the length, not the body.
    assert!(sent < 10 * 1024 * 1024, "the emulator read all of a 10 MB publish");
    assert!(closed_by_peer(&mut stream, 0).await, "a 10 MB publish was not refused");
    // Other tests share this process, so the bound is loose; buffering 256 MB would break it.
    let grown = rss_mib().saturating_sub(before);
    assert!(grown < 128, "the emulator buffered oversized packets: RSS grew {grown} MiB");
    good_device_provisions(&emulator, "after-huge").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_connect_is_refused() {
    let emulator = start_emulator(|c| c.auth_failure = AuthFailure::Reply);
    let mut tls = tls_to(&emulator).await;
    // CONNECT: protocol "MQTT" level 4, flags 0x02 (clean session), keep-alive 60, client ID
    // of two bytes that are not UTF-8.
    let mut connect = vec![0x10, 16, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x04];
    connect.extend_from_slice(&[0xFF, 0xFE, 0xC3, 0x28]);
    tls.write_all(&connect).await.unwrap();
    tls.flush().await.unwrap();
    assert!(closed_by_peer(&mut tls, 64).await, "invalid UTF-8 was not refused");
    good_device_provisions(&emulator, "after-utf8").await;
}

/// MQTT-3.1.2-2: a CONNECT of a protocol level the server does not support gets CONNACK 0x01
/// (unacceptable protocol version), then the close: MQTT 3.1's level 3 under the name `MQTT`,
/// which the codec cannot read, as MQTT 5's level 5, which it can.
#[tokio::test]
async fn an_unsupported_protocol_level_gets_connack_1() {
    let emulator = start_emulator(|_| {});
    for level in [3u8, 5] {
        let mut tls = tls_to(&emulator).await;
        // CONNECT: protocol "MQTT", the level, flags 0x02 (clean session), keep-alive 60, client
        // ID "l3"; level 5 adds an empty property length.
        let mut connect = vec![0x10, 14, 0x00, 0x04, b'M', b'Q', b'T', b'T', level, 0x02, 0x00, 0x3C];
        if level == 5 {
            connect[1] += 1;
            connect.push(0x00);
        }
        connect.extend_from_slice(&[0x00, 0x02, b'l', b'3']);
        tls.write_all(&connect).await.unwrap();
        tls.flush().await.unwrap();
        let mut connack = [0u8; 4];
        tokio::time::timeout(CLOSED_WITHIN, tls.read_exact(&mut connack)).await.unwrap().unwrap();
        // CONNACK, remaining length 2, session present 0, return code 1.
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x01], "level {level}");
        assert!(closed_by_peer(&mut tls, 0).await, "level {level}: not closed after CONNACK 1");
    }
    let refused = emulator.handle.service.stats.refusals.get(dpsbench::emulator::activity::Refusal::ProtocolVersion);
    assert_eq!(refused, 2);
    good_device_provisions(&emulator, "after-level-3").await;
}

#[tokio::test]
async fn many_idle_connections_leave_room_for_good_devices() {
    let emulator = start_emulator(|_| {});
    let before = rss_mib();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(emulator.handle.address).await.unwrap());
    }
    good_device_provisions(&emulator, "among-idle").await;
    let grown = rss_mib().saturating_sub(before);
    // Loose (other tests share this process): 500 idle connections take a few MiB.
    assert!(grown < 128, "500 idle connections took {grown} MiB");
    assert!(dpsbench::emulator::ServiceStats::get(&emulator.handle.service.stats.connections) >= 501);
}

#[tokio::test]
async fn connections_beyond_max_connections_are_closed_at_once_and_counted() {
    let emulator = start_emulator(|c| c.max_connections = Some(3));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(emulator.handle.address).await.unwrap());
    }
    let mut extra = TcpStream::connect(emulator.handle.address).await.unwrap();
    // Closed at once: well before the 10 s handshake deadline.
    let closed = tokio::time::timeout(Duration::from_secs(5), closed_by_peer(&mut extra, 0)).await;
    assert_eq!(closed, Ok(true), "a connection beyond the cap was not closed at once");
    assert_eq!(emulator.handle.service.faults.counts.get(Fault::ConnectionCap), 1);
    // Once the held ones go, a good device fits again.
    drop(held);
    let mut assigned = false;
    for attempt in 0..20 {
        let report = run_device(
            &emulator.target,
            quick_settings(),
            device(&emulator.group_key, &format!("after-cap-{attempt}")),
            now(),
            never_abort(),
        )
        .await;
        if matches!(report.outcome, Outcome::Assigned { .. }) {
            assigned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(assigned, "no device provisioned once the cap had room");
}
