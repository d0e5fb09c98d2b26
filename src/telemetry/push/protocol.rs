//! What a pusher sends: the protocols (Prometheus remote write, OTLP/HTTP), their headers and
//! the body each makes of one tick's figures. Pure.

use super::Snapshot;
use crate::metrics::{LiveBuckets, PhaseHistograms};
use crate::telemetry::prometheus::Family;
use crate::telemetry::{otlp, remote_write};

/// What a pusher sends, and to whom it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Prometheus remote write 1.0: every series with these labels.
    RemoteWrite { labels: Vec<(String, String)> },
    /// OTLP/HTTP protobuf, from a resource with these attributes.
    Otlp { attributes: Vec<(String, String)> },
}

impl Protocol {
    /// What its report lines call the metrics it pushes (`metrics push to …`, `OTLP metrics
    /// pushed to …`).
    pub(super) fn name(&self) -> &'static str {
        match self {
            Protocol::RemoteWrite { .. } => "metrics",
            Protocol::Otlp { .. } => "OTLP metrics",
        }
    }

    pub(super) fn headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Protocol::RemoteWrite { .. } => &remote_write::HEADERS,
            Protocol::Otlp { .. } => &otlp::HEADERS,
        }
    }

    /// The body of a push of `snapshot`, for a run whose figures began at `start_ms`.
    pub(super) fn body(&self, snapshot: &Snapshot, start_ms: i64) -> Vec<u8> {
        let measured = &snapshot.measured;
        match self {
            Protocol::RemoteWrite { labels } => {
                remote_write::body(&remote_write::write_request(&measured.families, labels, snapshot.timestamp_ms))
            }
            Protocol::Otlp { attributes } => {
                let nanos = |ms: i64| u64::try_from(ms).unwrap_or_default() * 1_000_000;
                let empty = PhaseHistograms::new();
                let figures = otlp::Figures {
                    families: &measured.families,
                    latencies: measured.latencies.as_ref().unwrap_or(&empty),
                    phases: &measured.phases,
                    start_unix_nano: nanos(start_ms),
                    time_unix_nano: nanos(snapshot.timestamp_ms),
                };
                otlp::body(&otlp::request(&figures, attributes))
            }
        }
    }
}

/// One tick's figures, as every protocol takes them.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The Prometheus page's families.
    pub families: Vec<Family>,
    /// Every phase's latencies since the run's start; kept only for a pusher that sends them
    /// (OTLP's exponential histograms).
    pub latencies: Option<PhaseHistograms>,
    /// Every phase's exact count and sum of latencies so far.
    pub phases: Vec<LiveBuckets>,
}
