//! Codec path micro-benchmarks: a register PUBLISH built into bytes, and a reply parsed from
//! bytes (framing, topic, body) as a device does for every reply.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use dpsbench::messages::ReplyBody;
use dpsbench::mqtt::{self, QoS, v4};
use dpsbench::topics::{self, ReplyTopic};

const ASSIGNED: &str = r#"{"operationId":"4.d0a671905ea5b2c8.42d78160-4c78-479e-8be7-61d5e55dac0d","status":"assigned","registrationState":{"registrationId":"bench-000042","createdDateTimeUtc":"2020-04-10T03:11:13.0276997Z","assignedHub":"contoso.azure-devices.net","deviceId":"bench-000042","status":"assigned","substatus":"initialAssignment","lastUpdatedDateTimeUtc":"2020-04-10T03:11:13.2096201Z","etag":"IjYxMDA4ZDQ2LTAwMDAtMDEwMC0wMDAwLTVlOGZlM2QxMDAwMCI="}}"#;

fn codec_path(c: &mut Criterion) {
    let body = Bytes::from_static(br#"{"registrationId":"bench-000042"}"#);
    let mut buffer = BytesMut::with_capacity(256);
    c.bench_function("build_register_publish_bytes", |b| {
        b.iter(|| {
            buffer.clear();
            let mut publish =
                v4::Publish::from_bytes(topics::register_topic(black_box("7")), QoS::AtLeastOnce, body.clone());
            publish.pkid = 2;
            v4::Packet::Publish(publish).write(&mut buffer, mqtt::MAX_PACKET_SIZE).unwrap()
        })
    });

    let mut reply =
        v4::Publish::new(topics::reply_topic(200, "3", None), QoS::AtLeastOnce, ASSIGNED.as_bytes().to_vec());
    reply.pkid = 2;
    let mut wire = BytesMut::new();
    v4::Packet::Publish(reply).write(&mut wire, mqtt::MAX_PACKET_SIZE).unwrap();
    let wire = wire.freeze();

    c.bench_function("parse_reply_topic", |b| {
        b.iter(|| {
            ReplyTopic::parse(black_box(
                "$dps/registrations/res/202/?$rid=3226c2f7-3d30-425c-b83b-0c34335f8220&retry-after=3",
            ))
            .unwrap()
        })
    });
    c.bench_function("parse_assigned_body", |b| {
        b.iter(|| ReplyBody::parse(200, black_box(ASSIGNED.as_bytes())).unwrap())
    });
    c.bench_function("decode_reply_packet_topic_and_body", |b| {
        b.iter(|| {
            let mut bytes = BytesMut::from(&black_box(&wire)[..]);
            let Some(v4::Packet::Publish(publish)) = mqtt::decode(&mut bytes).unwrap() else { unreachable!() };
            let topic = ReplyTopic::parse(&publish.topic).unwrap();
            ReplyBody::parse(topic.status, &publish.payload).unwrap()
        })
    });
}

criterion_group!(benches, codec_path);
criterion_main!(benches);
