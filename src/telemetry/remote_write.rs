//! Prometheus remote write 1.0 of a run's [`Family`]s, for `dpsbench run --metrics-push`: the
//! protocol buffer messages (declared here with `prost`'s derive, so no `protoc` at build time)
//! and the body a push sends, the encoded `WriteRequest` compressed in snappy's block format.
//! Pure: families, labels and a timestamp in, bytes out.
//!
//! The messages are the subset of `prompb` (types.proto, remote.proto) the 1.0 specification
//! requires: `WriteRequest.timeseries` (1), `TimeSeries.labels` (1) and `.samples` (2),
//! `Label.name` (1) and `.value` (2), `Sample.value` (1, double) and `.timestamp` (2, int64
//! milliseconds since the Unix epoch).

use super::prometheus::Family;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, `__name__` among them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The headers a remote-write 1.0 request carries besides its length.
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// One series per sample of `families`, each with one sample at `timestamp_ms` and, besides its
/// own labels and `__name__`, the `extra` labels (a sample's own label of the same name wins).
pub fn write_request(families: &[Family], extra: &[(String, String)], timestamp_ms: i64) -> WriteRequest {
    let timeseries = families
        .iter()
        .flat_map(|family| &family.samples)
        .map(|sample| {
            let mut labels = vec![Label { name: "__name__".into(), value: sample.name.clone() }];
            labels
                .extend(sample.labels.iter().map(|(name, value)| Label { name: (*name).into(), value: value.clone() }));
            for (name, value) in extra {
                if !labels.iter().any(|label| &label.name == name) {
                    labels.push(Label { name: name.clone(), value: value.clone() });
                }
            }
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries { labels, samples: vec![Sample { value: sample.value.as_f64(), timestamp: timestamp_ms }] }
        })
        .collect();
    WriteRequest { timeseries }
}

/// The body of a push: `request` encoded, then compressed in snappy's block (not framed) format.
pub fn body(request: &WriteRequest) -> Vec<u8> {
    let encoded = prost::Message::encode_to_vec(request);
    snap::raw::Encoder::new()
        .compress_vec(&encoded)
        .expect("a run's write request is far below snappy's 4 GiB block limit")
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::results::Tick;
    use crate::telemetry::prometheus::{Kind, Sample as TextSample, Value, families};

    fn family(samples: Vec<TextSample>) -> Family {
        Family { name: "dpsbench_x", kind: Kind::Counter, help: "x", samples }
    }

    #[test]
    fn a_sample_is_one_series_with_sorted_labels() {
        let families = [family(vec![TextSample {
            name: "dpsbench_devices_failed_total".into(),
            labels: vec![("kind", "tls".into())],
            value: Value::Count(3),
        }])];
        let extra = [("job".to_string(), "dpsbench".to_string()), ("kind".to_string(), "ignored".to_string())];
        let request = write_request(&families, &extra, 1_767_225_600_000);
        let label = |name: &str, value: &str| Label { name: name.into(), value: value.into() };
        assert_eq!(
            request.timeseries,
            [TimeSeries {
                labels: vec![
                    label("__name__", "dpsbench_devices_failed_total"),
                    label("job", "dpsbench"),
                    label("kind", "tls")
                ],
                samples: vec![Sample { value: 3.0, timestamp: 1_767_225_600_000 }],
            }]
        );
    }

    #[test]
    fn the_wire_bytes_of_a_tiny_request() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label { name: "a".into(), value: "b".into() }],
                samples: vec![Sample { value: 1.0, timestamp: 2 }],
            }],
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x0a, 0x15,                    // WriteRequest.timeseries (1, length-delimited), 21 bytes
            0x0a, 0x06,                    //   TimeSeries.labels (1), 6 bytes
            0x0a, 0x01, b'a',              //     Label.name (1) "a"
            0x12, 0x01, b'b',              //     Label.value (2) "b"
            0x12, 0x0b,                    //   TimeSeries.samples (2), 11 bytes
            0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, //     Sample.value (1, 64-bit) 1.0
            0x10, 0x02,                    //     Sample.timestamp (2, varint) 2
        ];
        assert_eq!(request.encode_to_vec(), expected);
        // Snappy's block format: the uncompressed length as a varint (23), then a literal of
        // 23 bytes (tag (23 - 1) << 2 = 0x58), then those bytes.
        let body = body(&request);
        assert_eq!(&body[..2], &[23, 0x58]);
        assert_eq!(&body[2..], expected);
    }

    #[test]
    fn a_body_decodes_back_to_the_run_s_figures() {
        let tick = Tick { phases: crate::metrics::Metrics::new().live_buckets(), ..Tick::default() };
        let families = families(&tick, true);
        let request = write_request(&families, &[("job".into(), "dpsbench".into())], 42);
        let body = body(&request);
        let decoded = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let back = WriteRequest::decode(decoded.as_slice()).unwrap();
        assert_eq!(back, request);
        let samples: usize = families.iter().map(|f| f.samples.len()).sum();
        assert_eq!(back.timeseries.len(), samples);
        for series in &back.timeseries {
            assert_eq!(series.labels[0].name, "__name__");
            assert!(series.labels.windows(2).all(|w| w[0].name < w[1].name), "{series:?}");
            assert!(series.labels.iter().all(|l| !l.value.is_empty()), "{series:?}");
            assert_eq!(series.samples.len(), 1);
        }
        let ended = back.timeseries.iter().find(|s| s.labels[0].value == "dpsbench_run_ended").unwrap();
        assert_eq!(ended.samples[0], Sample { value: 1.0, timestamp: 42 });
    }

    proptest::proptest! {
        #[test]
        fn bodies_round_trip(values in proptest::collection::vec((0u64..u64::MAX / 2, "[a-z_]{1,12}"), 0..40), at in 0i64..i64::MAX) {
            let samples = values
                .iter()
                .map(|(count, kind)| TextSample {
                    name: "dpsbench_devices_failed_total".into(),
                    labels: vec![("kind", kind.clone())],
                    value: Value::Micros(*count),
                })
                .collect();
            let request = write_request(&[family(samples)], &[], at);
            let decoded = snap::raw::Decoder::new().decompress_vec(&body(&request)).unwrap();
            proptest::prop_assert_eq!(WriteRequest::decode(decoded.as_slice()).unwrap(), request);
        }
    }
}
