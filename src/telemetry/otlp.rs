//! OpenTelemetry metrics of a run in progress, for `dpsbench run --metrics-otlp URL`: an OTLP
//! `ExportMetricsServiceRequest` (the messages of the `opentelemetry-proto` crate), sent over
//! HTTP as protobuf. It holds the same figures as the Prometheus page: its counters as monotonic
//! cumulative sums, its gauges as gauges, and each phase's latencies as an exponential histogram
//! in seconds, cumulative from the run's start. Pure: figures in, a request out.
//!
//! Names are the Prometheus page's, without the `_total` a Prometheus receiver adds back to a
//! monotonic sum, and the histogram is `dpsbench_phase_duration` with unit `s`, which such a
//! receiver names `dpsbench_phase_duration_seconds`: the same series whichever way they arrive.
//!
//! Each point describes the latencies of the intervals closed so far (the run's HDR histograms,
//! 3 significant digits, added interval by interval), so its count, buckets, sum, min and max
//! describe the same values and a point agrees with `latency.hlog` through the same second. A
//! value counts in the bucket of its HDR bucket's middle, so a count can sit one bucket off only
//! when a bucket bound falls within 0.1 % of it; the count, min and max are exact, the sum is
//! HDR's (within 0.1 %).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::prometheus::{Family, Kind, Value};
use crate::metrics::{LiveBuckets, PhaseHistograms};

/// The headers an OTLP/HTTP protobuf request carries besides its length.
pub const HEADERS: [(&str, &str); 1] = [("Content-Type", "application/x-protobuf")];
/// The most buckets of one data point, as OpenTelemetry SDKs keep by default.
pub const MAX_BUCKETS: usize = 160;
/// The finest scale tried: 2^(2^-8), buckets about 0.27 % wide.
const MAX_SCALE: i32 = 8;
/// The name of the latency histogram.
const PHASE_DURATION: &str = "dpsbench_phase_duration";

/// The figures of one moment of the run, for one request.
pub struct Figures<'a> {
    /// The Prometheus page's families (its histogram family is not sent: the exponential
    /// histograms below replace it).
    pub families: &'a [Family],
    /// Every phase's latencies since the run's start, in microseconds.
    pub latencies: &'a PhaseHistograms,
    /// The phases measured, in the Prometheus page's order.
    pub phases: &'a [LiveBuckets],
    /// When the run's figures began (the start of every cumulative point), Unix nanoseconds.
    pub start_unix_nano: u64,
    /// When these figures were taken, Unix nanoseconds.
    pub time_unix_nano: u64,
}

/// The request carrying `figures`, from a resource with `attributes` (service.name and the run's
/// own: scenario, run, shard).
pub fn request(figures: &Figures<'_>, attributes: &[(String, String)]) -> ExportMetricsServiceRequest {
    let mut metrics: Vec<Metric> =
        figures.families.iter().filter_map(|family| number_metric(family, figures)).collect();
    metrics.push(phase_durations(figures));
    let resource = Resource {
        attributes: attributes.iter().map(|(key, value)| key_value(key, value)).collect(),
        ..Resource::default()
    };
    let scope = InstrumentationScope {
        name: "dpsbench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..InstrumentationScope::default()
    };
    let scope_metrics = ScopeMetrics { scope: Some(scope), metrics, ..ScopeMetrics::default() };
    let resource_metrics =
        ResourceMetrics { resource: Some(resource), scope_metrics: vec![scope_metrics], ..ResourceMetrics::default() };
    ExportMetricsServiceRequest { resource_metrics: vec![resource_metrics] }
}

/// The body of a push: `request` encoded.
pub fn body(request: &ExportMetricsServiceRequest) -> Vec<u8> {
    prost::Message::encode_to_vec(request)
}

/// A counter family as a monotonic cumulative sum, a gauge as a gauge; `None` for a histogram.
fn number_metric(family: &Family, figures: &Figures<'_>) -> Option<Metric> {
    let points = family
        .samples
        .iter()
        .map(|sample| NumberDataPoint {
            attributes: sample.labels.iter().map(|(key, value)| key_value(key, value)).collect(),
            start_time_unix_nano: figures.start_unix_nano,
            time_unix_nano: figures.time_unix_nano,
            value: Some(match sample.value {
                Value::Count(count) => number_data_point::Value::AsInt(i64::try_from(count).unwrap_or(i64::MAX)),
                Value::Micros(us) => number_data_point::Value::AsDouble(us as f64 / 1e6),
            }),
            ..NumberDataPoint::default()
        })
        .collect();
    let data = match family.kind {
        Kind::Counter => metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        Kind::Gauge => metric::Data::Gauge(Gauge { data_points: points }),
        Kind::Histogram => return None,
    };
    let name = family.name.strip_suffix("_total").unwrap_or(family.name);
    Some(Metric { name: name.into(), description: family.help.into(), data: Some(data), ..Metric::default() })
}

/// One exponential histogram point per phase, in seconds, labelled `phase`.
fn phase_durations(figures: &Figures<'_>) -> Metric {
    let points = figures
        .phases
        .iter()
        .map(|live| {
            let histogram = figures.latencies.get(live.phase);
            let buckets = ExponentialBuckets::of(histogram);
            let measured = buckets.count > 0;
            ExponentialHistogramDataPoint {
                attributes: vec![key_value("phase", live.phase.as_str())],
                start_time_unix_nano: figures.start_unix_nano,
                time_unix_nano: figures.time_unix_nano,
                count: buckets.count,
                sum: Some(buckets.sum_us as f64 / 1e6),
                scale: buckets.scale,
                zero_count: buckets.zero_count,
                positive: Some(Buckets { offset: buckets.offset, bucket_counts: buckets.counts }),
                min: measured.then(|| histogram.min() as f64 / 1e6),
                max: measured.then(|| histogram.max() as f64 / 1e6),
                ..ExponentialHistogramDataPoint::default()
            }
        })
        .collect();
    Metric {
        name: PHASE_DURATION.into(),
        description: "Latency of each phase of the flow (assigned and end_to_end from the intended start).".into(),
        unit: "s".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Metric::default()
    }
}

/// An HDR histogram of microseconds as OpenTelemetry's exponential buckets of seconds: bucket
/// `offset + i` holds the values in (base^(offset+i), base^(offset+i+1)], base = 2^(2^-scale),
/// at the finest scale (at most [`MAX_SCALE`]) that keeps within [`MAX_BUCKETS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExponentialBuckets {
    pub scale: i32,
    pub zero_count: u64,
    pub offset: i32,
    pub counts: Vec<u64>,
    /// Every value's count: `zero_count` plus the buckets'.
    pub count: u64,
    /// The values' sum as HDR keeps them (each its HDR bucket's middle), microseconds.
    pub sum_us: u64,
}

impl ExponentialBuckets {
    pub fn of(histogram: &hdrhistogram::Histogram<u64>) -> Self {
        let (mut zero_count, mut sum_us) = (0, 0);
        // (index at MAX_SCALE, count) of each recorded HDR bucket.
        let mut indexed = Vec::new();
        for recorded in histogram.iter_recorded() {
            let value = histogram.median_equivalent(recorded.value_iterated_to());
            sum_us += value * recorded.count_at_value();
            match value {
                0 => zero_count += recorded.count_at_value(),
                us => indexed.push((index(us as f64 / 1e6, MAX_SCALE), recorded.count_at_value())),
            }
        }
        let mut scale = MAX_SCALE;
        let span = |indexed: &[(i64, u64)]| match (indexed.first(), indexed.last()) {
            (Some((low, _)), Some((high, _))) => usize::try_from(high - low + 1).unwrap_or(usize::MAX),
            _ => 0,
        };
        // Recorded values come in ascending order, so the first and last index bound the span.
        while span(&indexed) > MAX_BUCKETS {
            scale -= 1;
            indexed.iter_mut().for_each(|(index, _)| *index >>= 1);
        }
        let offset = indexed.first().map_or(0, |(low, _)| *low);
        let mut counts = vec![0; span(&indexed)];
        for (index, count) in &indexed {
            counts[usize::try_from(index - offset).expect("an index is at least the offset")] += count;
        }
        let count = zero_count + counts.iter().sum::<u64>();
        let offset = i32::try_from(offset).expect("a latency's bucket index fits in 32 bits");
        Self { scale, zero_count, offset, counts, count, sum_us }
    }
}

/// The bucket index of `value` (> 0) at `scale`: the `i` with base^i < value <= base^(i+1).
fn index(value: f64, scale: i32) -> i64 {
    (value.log2() * f64::from(scale).exp2()).ceil() as i64 - 1
}

fn key_value(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> hdrhistogram::Histogram<u64> {
        let mut histogram = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        histogram.auto(true);
        values.iter().for_each(|value| histogram.record(*value).unwrap());
        histogram
    }

    /// The bucket bounds as OpenTelemetry defines them, from the bucket a value landed in.
    fn bounds(buckets: &ExponentialBuckets, position: usize) -> (f64, f64) {
        let base = 2f64.powf(2f64.powi(-buckets.scale));
        let index = buckets.offset + position as i32;
        (base.powi(index), base.powi(index + 1))
    }

    /// Values HDR holds exactly (below 2,048 us) or far from any bound at the scale chosen (1.5 s
    /// is 6 % from the nearest at scale 2): each must land in the bucket whose bounds hold it.
    #[test]
    fn every_value_lands_in_the_bucket_whose_bounds_hold_it() {
        let values = [1, 7, 250, 1_000, 1_024, 1_999, 1_500_000];
        let buckets = ExponentialBuckets::of(&histogram(&values));
        assert_eq!((buckets.count, buckets.zero_count), (7, 0));
        let exact: u64 = values.iter().sum();
        assert!(
            buckets.sum_us.abs_diff(exact) <= exact / 1000,
            "the sum within HDR's 0.1 %: {} vs {exact}",
            buckets.sum_us
        );
        assert!(buckets.counts.len() <= MAX_BUCKETS);
        let mut seen = 0;
        for (position, count) in buckets.counts.iter().enumerate().filter(|(_, count)| **count > 0) {
            let (low, high) = bounds(&buckets, position);
            let inside =
                values.iter().filter(|us| low * 1.000_001 < **us as f64 / 1e6 && **us as f64 / 1e6 <= high * 1.000_001);
            assert_eq!(inside.count() as u64, *count, "bucket ({low}, {high}] at scale {}", buckets.scale);
            seen += count;
        }
        assert_eq!(seen, 7);
    }

    #[test]
    fn a_wide_range_is_downscaled_to_fit_and_zeros_are_counted_apart() {
        let buckets = ExponentialBuckets::of(&histogram(&[0, 0, 1, 3_600_000_000]));
        assert!(buckets.counts.len() <= MAX_BUCKETS && buckets.scale < MAX_SCALE, "{buckets:?}");
        assert_eq!((buckets.zero_count, buckets.count), (2, 4));
        assert_eq!((buckets.counts.first(), buckets.counts.last()), (Some(&1), Some(&1)));
        let narrow = ExponentialBuckets::of(&histogram(&[1_000, 1_001]));
        assert_eq!(narrow.scale, MAX_SCALE, "a narrow range keeps the finest scale");
        let empty = ExponentialBuckets::of(&histogram(&[]));
        assert_eq!((empty.count, empty.counts.len()), (0, 0));
    }

    #[test]
    fn indices_follow_the_upper_inclusive_bounds() {
        // 1 s and 2 s are bucket bounds at every scale: each is the top of its bucket.
        assert_eq!(index(1.0, 0), -1);
        assert_eq!(index(2.0, 0), 0);
        assert_eq!(index(2.5, 0), 1);
        assert_eq!(index(2.0, 3), 7);
    }
}
