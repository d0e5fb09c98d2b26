//! The report files a run writes as it goes and at its end: the IO around `report`'s pure
//! writers. What is written at the end is written whole or not at all ([`write_whole`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::sinks::Sink;
use crate::report::format::report::Report;
use crate::report::format::{devices, hlog, timeseries};
use crate::report::render::files;
use crate::results::Tick;

/// Writes every file rendered from `report` (report.md, report.html) into `dir`, each on its
/// own: one that cannot be rendered is reported and does not stop the others. Returns the paths
/// written.
pub fn write_rendered(dir: &Path, report: &Report) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, rendered) in files::rendered(report) {
        let path = dir.join(name);
        match rendered {
            Ok(bytes) => {
                write_whole(&path, &bytes)?;
                written.push(path);
            }
            Err(error) => errln!("dpsbench: {name} not written: {}: {error}", dir.display()),
        }
    }
    Ok(written)
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file in the same folder,
/// synced, then renamed over `path`. A full disk leaves the file as it was (or absent), never
/// empty or cut short; the temporary file is removed on failure.
pub(super) fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// `timeseries.csv`, a row written each second as the run goes.
pub(super) struct TimeseriesFile {
    path: PathBuf,
    file: std::fs::File,
}

impl TimeseriesFile {
    pub(super) fn create(path: PathBuf) -> Result<Self> {
        let mut file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&timeseries::header()).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path, file })
    }
}

impl Sink for TimeseriesFile {
    /// Written (unbuffered) every second, so a crash keeps everything up to then.
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        let row = timeseries::Row::of(tick).line();
        self.file.write_all(&row).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// `latency.hlog`, written each second as the run goes.
pub(super) struct LatencyLogFile {
    path: PathBuf,
    file: std::fs::File,
    lines: Option<hlog::IntervalLines>,
}

impl LatencyLogFile {
    pub(super) fn create(path: PathBuf) -> Result<Self> {
        let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path, file, lines: None })
    }

    /// Writes the interval `tick` closes; the header first, at the first tick, with the plan's
    /// start instant (every interval's start counts from it).
    pub(super) fn write(&mut self, tick: &Tick) -> std::io::Result<()> {
        let lines = match &mut self.lines {
            Some(lines) => lines,
            None => {
                let origin = std::time::Duration::from_micros(tick.span.origin_unix_us);
                self.file.write_all(&hlog::header(std::time::SystemTime::UNIX_EPOCH + origin))?;
                self.lines.insert(hlog::IntervalLines::new())
            }
        };
        self.file.write_all(&lines.lines(tick))
    }
}

impl Sink for LatencyLogFile {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        self.write(tick).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// `devices.csv`, a row appended for each device as it finishes (each second, unbuffered).
pub(super) struct DevicesCsvFile {
    path: PathBuf,
    file: std::fs::File,
}

impl DevicesCsvFile {
    pub(super) fn create(path: PathBuf) -> Result<Self> {
        let mut file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&devices::header()).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path, file })
    }

    pub(super) fn write(&mut self, tick: &Tick) -> std::io::Result<()> {
        self.file.write_all(&devices::rows(&tick.finished))
    }
}

impl Sink for DevicesCsvFile {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        self.write(tick).with_context(|| format!("cannot write {}", self.path.display()))
    }
}
