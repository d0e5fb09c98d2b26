//! A run's report in memory, what `report.md` and `report.html` are rendered from: the summary,
//! the per-second rows, the whole-run histograms and each second's latencies. The run builds it from what its sinks kept
//! ([`PerSecond`]); `dpsbench report render` and `report merge` build it from a folder's files
//! ([`Report::from_folder`], [`Report::of_files`]). Pure: files already read, ticks in.

use super::folder::{FolderError, ReportFolder};
use super::hlog::{self, HlogError};
use super::intervals::LatencyIntervals;
use super::timeseries::{self, Row};
use crate::metrics::PhaseHistograms;
use crate::results::{RunSummary, Tick};

/// A run's report. The rows and histograms of a folder that lacks or garbles its files hold
/// why, so what needs only the summary (`report.md`) is still rendered.
#[derive(Debug)]
pub struct Report {
    pub summary: RunSummary,
    /// `timeseries.csv`'s rows, one a second.
    pub series: Result<Vec<Row>, InputError>,
    /// Every phase's whole-run histogram: `latency.hlog`'s intervals added up.
    pub latency: Result<PhaseHistograms, InputError>,
    /// `latency.hlog`'s intervals, each phase second by second (empty where `latency` says why
    /// there are none).
    pub intervals: LatencyIntervals,
}

impl Report {
    /// The report of a run that just ended, from its summary and what it kept each tick.
    pub fn of_run(summary: RunSummary, kept: PerSecond) -> Self {
        Self { summary, series: Ok(kept.series), latency: Ok(kept.latency), intervals: kept.intervals }
    }

    /// The report of a folder read back.
    pub fn from_folder(folder: &ReportFolder) -> Self {
        let series = folder.timeseries.as_deref().map(str::as_bytes);
        Self::of_files(folder.summary.clone(), series, folder.latency_hlog.as_deref())
    }

    /// Reads the report folder `dir`.
    pub fn load(dir: &std::path::Path) -> Result<Self, FolderError> {
        Ok(Self::from_folder(&ReportFolder::load(dir)?))
    }

    /// The report of a summary and the bytes of `timeseries.csv` and `latency.hlog`, when there.
    pub fn of_files(summary: RunSummary, timeseries_csv: Option<&[u8]>, latency_hlog: Option<&[u8]>) -> Self {
        let series = timeseries_csv.ok_or(InputError::Missing("timeseries.csv")).and_then(read_series);
        let log = latency_hlog.ok_or(InputError::Missing("latency.hlog")).and_then(|bytes| Ok(hlog::read(bytes)?));
        let intervals = log.as_ref().map(LatencyIntervals::of_log).unwrap_or_default();
        Self { summary, series, latency: log.map(|log| log.totals()), intervals }
    }

    /// The report of a folder's three files' bytes.
    pub fn parse(summary_json: &[u8], timeseries_csv: &[u8], latency_hlog: &[u8]) -> Result<Self, InputError> {
        let summary = serde_json::from_slice(summary_json).map_err(InputError::Summary)?;
        Ok(Self::of_files(summary, Some(timeseries_csv), Some(latency_hlog)))
    }

    /// The rows and histograms the charts are drawn from, or why they are not there: a missing
    /// file first, then one that does not read.
    pub fn charted(&self) -> Result<(&[Row], &PhaseHistograms), &InputError> {
        match (&self.series, &self.latency) {
            (Ok(series), Ok(latency)) => Ok((series, latency)),
            (Err(missing @ InputError::Missing(_)), _) | (_, Err(missing @ InputError::Missing(_))) => Err(missing),
            (Err(error), _) | (_, Err(error)) => Err(error),
        }
    }
}

/// A report folder file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("summary.json: {0}")]
    Summary(serde_json::Error),
    #[error("timeseries.csv: {0}")]
    Series(String),
    #[error("latency.hlog: {0}")]
    Latency(#[from] HlogError),
    #[error("the folder has no {0}")]
    Missing(&'static str),
}

/// What a run keeps of each tick for its report: the rows of `timeseries.csv` and the
/// histograms of `latency.hlog` added up and second by second, as the files it writes would
/// read back.
#[derive(Debug, Default)]
pub struct PerSecond {
    series: Vec<Row>,
    latency: PhaseHistograms,
    intervals: LatencyIntervals,
}

impl PerSecond {
    /// Keeps the row of `tick` and adds its interval's latencies.
    pub fn take(&mut self, tick: &Tick) {
        self.series.push(Row::of(tick));
        self.latency.add_all(&tick.latencies);
        self.intervals.add_all(tick.span.start.as_secs(), &tick.latencies);
    }
}

/// Reads `timeseries.csv` by column name.
fn read_series(bytes: &[u8]) -> Result<Vec<Row>, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|_| InputError::Series("not UTF-8 text".into()))?;
    timeseries::read(text).map_err(InputError::Series)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::metrics::Phase;

    /// What a run keeps in memory is what `report render` reads back from the files it wrote.
    #[test]
    fn a_runs_report_equals_the_one_read_back_from_its_files() {
        let summary: RunSummary = serde_json::from_value(crate::report::tests::summary()).expect("a summary");
        let (mut kept, mut csv, mut log) =
            (PerSecond::default(), timeseries::header(), hlog::header(SystemTime::now()));
        let mut lines = hlog::IntervalLines::new();
        for second in 1..=3u64 {
            let mut tick = Tick::default();
            tick.progress.elapsed = Duration::from_millis(second * 1000 + 250);
            tick.progress.started = second * 10;
            tick.span.start = Duration::from_secs(second);
            tick.span.end = Duration::from_secs(second + 1);
            tick.failures.insert("tls".into(), second);
            let mut one = crate::metrics::latency_histogram();
            one.record(second * 1_000).expect("in range");
            tick.latencies.add(Phase::Assigned, &one).expect("same bounds");
            kept.take(&tick);
            csv.extend(Row::of(&tick).line());
            log.extend(lines.lines(&tick));
        }
        let run = Report::of_run(summary.clone(), kept);
        let read = Report::of_files(summary, Some(&csv), Some(&log));
        let ((run_rows, run_latency), (read_rows, read_latency)) = (run.charted().unwrap(), read.charted().unwrap());
        assert_eq!(run_rows, read_rows);
        for phase in Phase::ALL {
            assert_eq!(run_latency.get(phase), read_latency.get(phase), "{phase}");
        }
        assert_eq!(run.intervals, read.intervals, "each second's latencies");
        assert_eq!(read.intervals.of_phase(Phase::Assigned).map(|s| s.len()), Some(3), "one column a second");
        let missing = Report::of_files(run.summary.clone(), Some(&csv), None);
        assert_eq!(missing.charted().unwrap_err().to_string(), "the folder has no latency.hlog");
    }
}
