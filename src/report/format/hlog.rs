//! `latency.hlog`: every phase's latencies as an HdrHistogram interval log, one interval a
//! second, written as the run goes and read back for merging and re-rendering.
//!
//! The format is the standard one (Java's `HistogramLogWriter`, read by `HistogramLogProcessor`
//! and the other ports): `#[StartTime: …]` and `#[BaseTime: …]` headers (both the run's start, in
//! seconds since the epoch), the legend line, then one line per phase per interval,
//! `Tag=<phase>,<start>,<length>,<max>,<histogram>`, where start is seconds since BaseTime and
//! the histogram is a base64, DEFLATE-compressed V2 histogram of microseconds. A phase with no
//! value in an interval has no line for it. The hdrhistogram crate encodes and decodes; this
//! module only arranges it. Pure: bytes in, bytes out; the CLI writes the file.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use crate::metrics::{Phase, PhaseHistograms};
use crate::results::Tick;

/// The legend line the Java writer puts after the headers.
const LEGEND: &str = "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// The header of `latency.hlog` for a run whose clock started (elapsed zero) at `base_time`.
pub fn header(base_time: SystemTime) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut serializer = DeflateSerializer::default();
    IntervalLogWriterBuilder::new()
        .add_comment("[Logged with dpsbench: latencies in microseconds, one interval per second per phase]")
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(base_time)
        .with_base_time(base_time)
        .begin_log_with(&mut bytes, &mut serializer)
        .expect("writing into memory cannot fail");
    bytes.extend_from_slice(LEGEND.as_bytes());
    bytes
}

/// Turns each second's [`Tick`] into its lines of `latency.hlog`, with one compressor for the
/// whole log.
#[derive(Default)]
pub struct IntervalLines {
    serializer: DeflateSerializer,
}

impl IntervalLines {
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines of the interval that `tick` closes: its span from the plan's start instant
    /// (the log's `BaseTime`), so interval k starts at k s in every shard's log.
    pub fn lines(&mut self, tick: &Tick) -> Vec<u8> {
        let span = &tick.span;
        lines_with(&mut self.serializer, span.start, span.end.saturating_sub(span.start), &tick.latencies)
    }
}

/// The lines of one interval: one per phase that recorded anything, tagged with its name.
pub fn interval(start: Duration, length: Duration, latencies: &PhaseHistograms) -> Vec<u8> {
    lines_with(&mut DeflateSerializer::default(), start, length, latencies)
}

fn lines_with(
    serializer: &mut DeflateSerializer,
    start: Duration,
    length: Duration,
    latencies: &PhaseHistograms,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer =
        IntervalLogWriterBuilder::new().begin_log_with(&mut bytes, serializer).expect("no headers to write");
    for (phase, histogram) in latencies.iter().filter(|(_, h)| !h.is_empty()) {
        let tag = Tag::new(phase.as_str()).expect("phase names hold no comma, space or newline");
        writer.write_histogram(histogram, start, length, Some(tag)).expect("serialising into memory cannot fail");
    }
    bytes
}

/// The compressed V2 encoding of one histogram, as `V2DeflateSerializer` writes it (the cookie,
/// the compressed length, a zlib stream of the V2 encoding), with one compressor reused from
/// histogram to histogram. `V2DeflateSerializer` builds a new one each time: about 300 KB
/// allocated and zeroed per histogram, eleven phases every second of a run.
struct DeflateSerializer {
    v2: V2Serializer,
    plain: Vec<u8>,
    compressor: flate2::Compress,
}

impl Default for DeflateSerializer {
    fn default() -> Self {
        Self { v2: V2Serializer::new(), plain: Vec::new(), compressor: flate2::Compress::new(Default::default(), true) }
    }
}

impl DeflateSerializer {
    /// hdrhistogram's cookie of a compressed V2 histogram (`V2_COMPRESSED_COOKIE`).
    const COOKIE: u32 = 0x1c84_9314;
}

impl Serializer for DeflateSerializer {
    type SerializeError = std::io::Error;

    fn serialize<T: hdrhistogram::Counter, W: std::io::Write>(
        &mut self,
        h: &Histogram<T>,
        writer: &mut W,
    ) -> std::io::Result<usize> {
        self.plain.clear();
        self.v2.serialize(h, &mut self.plain).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        self.compressor.reset();
        let mut out = Vec::with_capacity(8 + self.plain.len() / 2 + 64);
        out.extend_from_slice(&Self::COOKIE.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        loop {
            let consumed = self.compressor.total_in() as usize;
            let status = self
                .compressor
                .compress_vec(&self.plain[consumed..], &mut out, flate2::FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            if status == flate2::Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        let compressed = u32::try_from(out.len() - 8).map_err(std::io::Error::other)?;
        out[4..8].copy_from_slice(&compressed.to_be_bytes());
        writer.write_all(&out)?;
        Ok(out.len())
    }
}

/// A `latency.hlog` read back.
#[derive(Debug, Clone)]
pub struct LatencyLog {
    /// `#[BaseTime]`: interval starts count from it (seconds since the epoch).
    pub base_time: Option<Duration>,
    /// `#[StartTime]`, seconds since the epoch.
    pub start_time: Option<Duration>,
    /// Every interval line, in file order.
    pub intervals: Vec<LoggedInterval>,
}

/// One line of the log: one phase's histogram over one interval.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    pub phase: Phase,
    /// Since `base_time`.
    pub start: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

impl LatencyLog {
    /// The intervals of one phase, in file order.
    pub fn intervals_of(&self, phase: Phase) -> impl Iterator<Item = &LoggedInterval> {
        self.intervals.iter().filter(move |interval| interval.phase == phase)
    }

    /// When `interval` started on the wall clock (since the epoch): its start plus `BaseTime`,
    /// which aligns the logs of runs (shards) that started at different instants. `None`
    /// without a `BaseTime`.
    pub fn wall_start(&self, interval: &LoggedInterval) -> Option<Duration> {
        Some(self.base_time? + interval.start)
    }

    /// Every phase's intervals added up: the run's whole-run histograms, exactly.
    pub fn totals(&self) -> PhaseHistograms {
        let mut totals = PhaseHistograms::new();
        for interval in &self.intervals {
            totals.add(interval.phase, &interval.histogram).expect("read checked every value is in range");
        }
        totals
    }
}

/// What makes a `latency.hlog` unreadable.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("not an interval log: cannot parse the line at byte {offset}")]
    Parse { offset: usize },
    #[error("an interval at {start_seconds:.3} s has no Tag= naming its phase")]
    Untagged { start_seconds: f64 },
    #[error("unknown phase tag {0:?}")]
    UnknownPhase(String),
    #[error("the {phase} histogram at {start_seconds:.3} s does not decode: {reason}")]
    Histogram { phase: Phase, start_seconds: f64, reason: String },
    #[error("the {phase} histogram at {start_seconds:.3} s holds values beyond one hour")]
    OutOfRange { phase: Phase, start_seconds: f64 },
}

/// Reads a `latency.hlog`: every interval decoded, each tag a [`Phase`].
pub fn read(bytes: &[u8]) -> Result<LatencyLog, HlogError> {
    let mut log = LatencyLog { base_time: None, start_time: None, intervals: Vec::new() };
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|error| match error {
            hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } => {
                HlogError::Parse { offset }
            }
        })? {
            LogEntry::StartTime(time) => log.start_time = Some(time),
            LogEntry::BaseTime(time) => log.base_time = Some(time),
            LogEntry::Interval(line) => {
                let start_seconds = line.start_timestamp().as_secs_f64();
                let tag = line.tag().ok_or(HlogError::Untagged { start_seconds })?;
                let phase = phase_named(&tag).ok_or_else(|| HlogError::UnknownPhase(tag.to_string()))?;
                let decoded = base64_decode(line.encoded_histogram()).map_err(|reason| HlogError::Histogram {
                    phase,
                    start_seconds,
                    reason,
                })?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut decoded.as_slice())
                    .map_err(|e| HlogError::Histogram { phase, start_seconds, reason: format!("{e:?}") })?;
                // Re-bound to the run's histograms, so totals add without surprises.
                let mut bounded = crate::metrics::latency_histogram();
                bounded.add(&histogram).map_err(|_| HlogError::OutOfRange { phase, start_seconds })?;
                log.intervals.push(LoggedInterval {
                    phase,
                    start: line.start_timestamp(),
                    length: line.duration(),
                    histogram: bounded,
                });
            }
        }
    }
    Ok(log)
}

fn phase_named(name: &str) -> Option<Phase> {
    Phase::ALL.into_iter().find(|phase| phase.as_str() == name)
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One compressor reused for histogram after histogram writes what hdrhistogram's own
    /// serializer reads back as the same histogram, with its cookie and length.
    #[test]
    fn a_reused_compressor_writes_what_hdrhistogram_reads() {
        let mut serializer = DeflateSerializer::default();
        let mut theirs = hdrhistogram::serialization::V2DeflateSerializer::new();
        for round in 1..=3u64 {
            let mut h = crate::metrics::latency_histogram();
            for i in 0..2_000 * round {
                h.record(1 + i * i * round).expect("in range");
            }
            let (mut ours, mut reference) = (Vec::new(), Vec::new());
            serializer.serialize(&h, &mut ours).expect("serialises");
            theirs.serialize(&h, &mut reference).expect("serialises");
            assert_eq!(ours[..4], reference[..4], "the compressed V2 cookie");
            assert_eq!(u32::from_be_bytes(ours[4..8].try_into().unwrap()) as usize, ours.len() - 8);
            let back: Histogram<u64> = Deserializer::new().deserialize(&mut &ours[..]).expect("decodes");
            assert_eq!(back, h, "round {round}");
        }
    }

    fn latencies(values: &[(Phase, u64)]) -> PhaseHistograms {
        let mut histograms = PhaseHistograms::new();
        for (phase, micros) in values {
            let mut one = crate::metrics::latency_histogram();
            one.record(*micros).expect("in range");
            histograms.add(*phase, &one).expect("same bounds");
        }
        histograms
    }

    #[test]
    fn header_has_start_and_base_time_then_the_legend() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_250);
        let text = String::from_utf8(header(base)).expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "#[Logged with dpsbench: latencies in microseconds, one interval per second per phase]",
                "#[Histogram log format version 1.3]",
                "#[StartTime: 1764000000.250 (seconds since epoch)]",
                "#[BaseTime: 1764000000.250 (seconds since epoch)]",
                "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
            ]
        );
    }

    #[test]
    fn an_interval_has_one_tagged_line_per_phase_that_recorded() {
        let histograms = latencies(&[(Phase::Assigned, 1_500), (Phase::Assigned, 2_500), (Phase::Poll, 40)]);
        let text =
            String::from_utf8(interval(Duration::from_secs(3), Duration::from_secs(1), &histograms)).expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("Tag=poll,3.000,1.000,40.000,"), "{}", lines[0]);
        assert!(lines[1].starts_with("Tag=assigned,3.000,1.000,2501.000,"), "max is the bucket's top: {}", lines[1]);
    }

    #[test]
    fn what_is_written_reads_back_exactly() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let seconds = [
            latencies(&[(Phase::TlsHandshake, 2_000), (Phase::Assigned, 1_000_000)]),
            latencies(&[]),
            latencies(&[(Phase::TlsHandshake, 9_999), (Phase::TlsHandshake, 3), (Phase::EndToEnd, 3_599_000_000)]),
        ];
        let mut bytes = header(base);
        let mut expected = PhaseHistograms::new();
        for (n, second) in seconds.iter().enumerate() {
            bytes.extend(interval(Duration::from_secs(n as u64), Duration::from_secs(1), second));
            expected.add_all(second);
        }
        let log = read(&bytes).expect("reads");
        assert_eq!(log.base_time, Some(Duration::from_secs(1_764_000_000)));
        assert_eq!(log.start_time, log.base_time);
        let starts: Vec<(Phase, u64)> = log.intervals.iter().map(|i| (i.phase, i.start.as_secs())).collect();
        assert_eq!(
            starts,
            [(Phase::TlsHandshake, 0), (Phase::Assigned, 0), (Phase::TlsHandshake, 2), (Phase::EndToEnd, 2)]
        );
        assert_eq!(log.totals(), expected);
        let handshakes: Vec<u64> = log.intervals_of(Phase::TlsHandshake).map(|i| i.histogram.len()).collect();
        assert_eq!(handshakes, [1, 2]);
        let last = log.intervals.last().expect("intervals");
        assert_eq!(log.wall_start(last), Some(Duration::from_secs(1_764_000_002)));
    }

    #[test]
    fn interval_lines_follow_the_ticks_intervals() {
        use crate::metrics::IntervalSpan;
        let mut lines = IntervalLines::new();
        let tick = |index: u64, end_ms: u64| Tick {
            span: IntervalSpan {
                index,
                start: Duration::from_secs(index),
                end: Duration::from_millis(end_ms),
                origin_unix_us: 1_764_000_000_000_000,
            },
            latencies: latencies(&[(Phase::Connack, 700)]),
            ..Tick::default()
        };
        let first = String::from_utf8(lines.lines(&tick(0, 1_000))).expect("text");
        let last = String::from_utf8(lines.lines(&tick(1, 1_400))).expect("text");
        assert!(first.starts_with("Tag=connack,0.000,1.000,"), "{first}");
        assert!(last.starts_with("Tag=connack,1.000,0.400,"), "{last}");
    }

    #[test]
    fn bad_logs_are_errors_naming_what_is_wrong() {
        let untagged = b"0.000,1.000,1.0,HISTFAAAABx4nJNpmSzMwMDAxAABzFCaEUzOmQQAF3wBiQ==\n";
        assert!(matches!(read(untagged), Err(HlogError::Untagged { .. })));
        let unknown = b"Tag=warp,0.000,1.000,1.0,HISTFAAAABx4nJNpmSzMwMDAxAABzFCaEUzOmQQAF3wBiQ==\n";
        assert!(matches!(read(unknown), Err(HlogError::UnknownPhase(tag)) if tag == "warp"));
        let garbage = b"Tag=poll,0.000,1.000,1.0,bm90IGEgaGlzdG9ncmFt\n";
        assert!(matches!(read(garbage), Err(HlogError::Histogram { phase: Phase::Poll, .. })));
        assert!(matches!(read(b"hello\n"), Err(HlogError::Parse { offset: 0 })));
    }

    #[test]
    fn reading_never_panics_on_arbitrary_bytes() {
        use proptest::prelude::*;
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..300))| {
            let _ = read(&bytes);
        });
    }
}
