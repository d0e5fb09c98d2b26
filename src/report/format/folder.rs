//! A run's report folder read back into memory: `summary.json` parsed, `timeseries.csv` and
//! `latency.hlog` as they are; or, for `report render`, what a run that never finished left
//! ([`Leftovers`]: its per-second files, without a summary).
//!
//! The one part of `report` that reads files: [`ReportFolder::load`] reads the folder once;
//! everything else (rendering, comparing, merging) is then a pure function of what it read.

use std::path::{Path, PathBuf};

use crate::results::{RunSummary, SUMMARY_SCHEMA};

/// What a report folder holds. `summary.json` is required; the other files are optional.
#[derive(Debug, Clone)]
pub struct ReportFolder {
    pub dir: PathBuf,
    pub summary: RunSummary,
    /// `timeseries.csv`, when the folder has one.
    pub timeseries: Option<String>,
    /// `latency.hlog`, when the folder has one.
    pub latency_hlog: Option<Vec<u8>>,
}

/// What a run killed before its end left in its folder: the files written each second, and no
/// `summary.json` (it is written at the end).
#[derive(Debug, Clone)]
pub struct Leftovers {
    pub dir: PathBuf,
    /// `timeseries.csv` (a run writes it first, so a folder without it is no run's).
    pub timeseries: String,
    /// `latency.hlog`, when the folder has one.
    pub latency_hlog: Option<Vec<u8>>,
}

/// A folder `report render` can build a report from: a whole report, or a killed run's files.
#[derive(Debug, Clone)]
pub enum Renderable {
    Whole(Box<ReportFolder>),
    Leftovers(Leftovers),
}

/// Why a folder cannot be read as a report. Each variant names the folder or file.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("report folder {0} does not exist")]
    Missing(PathBuf),
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("{0} is not a dpsbench report folder: it has no summary.json")]
    NotAReport(PathBuf),
    #[error(
        "{0} is not a dpsbench report folder: it has no summary.json, nor the timeseries.csv a run writes as it goes"
    )]
    NothingLeft(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a dpsbench summary: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: schema {found:?} is not {SUMMARY_SCHEMA}, which this dpsbench reads")]
    Schema { path: PathBuf, found: String },
}

impl ReportFolder {
    /// Reads `dir`: `summary.json` (required, of this dpsbench's schema), `timeseries.csv`
    /// (optional).
    pub fn load(dir: &Path) -> Result<Self, FolderError> {
        let meta = std::fs::metadata(dir).map_err(|_| FolderError::Missing(dir.to_path_buf()))?;
        if !meta.is_dir() {
            return Err(FolderError::NotAFolder(dir.to_path_buf()));
        }
        let path = dir.join("summary.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(FolderError::NotAReport(dir.to_path_buf()));
            }
            Err(source) => return Err(FolderError::Read { path, source }),
        };
        let summary = parse_summary(&path, &bytes)?;
        let timeseries = optional(&dir.join("timeseries.csv"))?
            .map(String::from_utf8)
            .transpose()
            .map_err(|_| FolderError::Parse { path: dir.join("timeseries.csv"), message: "not UTF-8 text".into() })?;
        let latency_hlog = optional(&dir.join("latency.hlog"))?;
        Ok(Self { dir: dir.to_path_buf(), summary, timeseries, latency_hlog })
    }
}

impl Renderable {
    /// Reads `dir` as [`ReportFolder::load`] does; a folder without `summary.json` that holds
    /// `timeseries.csv` is a killed run's leftovers.
    pub fn load(dir: &Path) -> Result<Self, FolderError> {
        match ReportFolder::load(dir) {
            Ok(folder) => Ok(Self::Whole(Box::new(folder))),
            Err(FolderError::NotAReport(_)) => {
                let Some(timeseries) = optional(&dir.join("timeseries.csv"))? else {
                    return Err(FolderError::NothingLeft(dir.to_path_buf()));
                };
                let timeseries = String::from_utf8(timeseries).map_err(|_| FolderError::Parse {
                    path: dir.join("timeseries.csv"),
                    message: "not UTF-8 text".into(),
                })?;
                let latency_hlog = optional(&dir.join("latency.hlog"))?;
                Ok(Self::Leftovers(Leftovers { dir: dir.to_path_buf(), timeseries, latency_hlog }))
            }
            Err(error) => Err(error),
        }
    }
}

/// Parses `summary.json`, refusing another schema by name before looking at its fields.
fn parse_summary(path: &Path, bytes: &[u8]) -> Result<RunSummary, FolderError> {
    let parse_error = |message: String| FolderError::Parse { path: path.to_path_buf(), message };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| parse_error(e.to_string()))?;
    match value.get("schema").and_then(serde_json::Value::as_str) {
        Some(SUMMARY_SCHEMA) => {}
        Some(other) => return Err(FolderError::Schema { path: path.to_path_buf(), found: other.to_string() }),
        None => return Err(parse_error("no `schema` field".into())),
    }
    serde_json::from_value(value).map_err(|e| parse_error(e.to_string()))
}

fn optional(path: &Path) -> Result<Option<Vec<u8>>, FolderError> {
    match std::fs::read(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FolderError::Read { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temp dir.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dpsbench-folder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        dir
    }

    #[test]
    fn loads_a_summary_and_the_optional_time_series() {
        let dir = folder("ok");
        std::fs::write(dir.join("summary.json"), crate::report::tests::summary().to_string()).unwrap();
        let loaded = ReportFolder::load(&dir).unwrap();
        assert_eq!(loaded.summary.results.devices.total, 1000);
        assert!(loaded.timeseries.is_none());
        std::fs::write(dir.join("timeseries.csv"), "elapsed_s\n").unwrap();
        assert_eq!(ReportFolder::load(&dir).unwrap().timeseries.as_deref(), Some("elapsed_s\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_the_folder_and_what_is_wrong() {
        let dir = folder("bad");
        let missing = dir.join("nope");
        let error = ReportFolder::load(&missing).unwrap_err().to_string();
        assert_eq!(error, format!("report folder {} does not exist", missing.display()));
        let error = ReportFolder::load(&dir).unwrap_err().to_string();
        assert_eq!(error, format!("{} is not a dpsbench report folder: it has no summary.json", dir.display()));
        let mut other = crate::report::tests::summary();
        other["schema"] = "dpsbench.summary/v9".into();
        std::fs::write(dir.join("summary.json"), other.to_string()).unwrap();
        let error = ReportFolder::load(&dir).unwrap_err().to_string();
        assert!(error.contains("summary.json: schema \"dpsbench.summary/v9\" is not dpsbench.summary/v1"), "{error}");
        std::fs::write(dir.join("summary.json"), "{\"schema\": \"dpsbench.summary/v1\"}").unwrap();
        let error = ReportFolder::load(&dir).unwrap_err().to_string();
        assert!(error.contains("summary.json: not a dpsbench summary: missing field"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
