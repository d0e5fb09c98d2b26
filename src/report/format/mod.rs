//! The files of a report folder, each written and read back by one module: `summary.json`,
//! `timeseries.csv`, `latency.hlog` (and its seconds kept sparse, [`intervals`]), `devices.csv`, the folder loaded whole, and the in-memory
//! [`report::Report`] the renderers take, built by a run or from a folder (a killed run's
//! partial one by [`partial`]). Pure but for
//! [`folder`], which reads a folder; writing the files is the CLI's.

mod csv;
pub mod devices;
pub mod folder;
pub mod hlog;
pub mod intervals;
pub mod partial;
pub mod report;
pub mod summary;
pub mod timeseries;
