//! The files rendered from a [`Report`], in order: `report.md` and `report.html`, what
//! `dpsbench run` and `report merge` write at their end and `report render` rebuilds. Pure.

use super::{html, markdown};
use crate::report::format::report::{InputError, Report};

/// The names of the rendered files, in order.
pub const NAMES: [&str; 2] = ["report.md", "report.html"];

/// Every rendered file: its name and bytes, or why it cannot be made (`report.html` needs the
/// per-second rows and the latencies).
pub fn rendered(report: &Report) -> [(&'static str, Result<Vec<u8>, &InputError>); 2] {
    [(NAMES[0], Ok(markdown::report(&report.summary))), (NAMES[1], html::of(report))]
}
