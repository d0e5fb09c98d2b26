//! What is worked out from report folders rather than from a run: runs compared (the table,
//! `compare.md` and `compare.html`), the `--fail-if` expressions judged on a comparison, the
//! shards of a plan merged into one. Pure: summaries and the folders' files in, a comparison,
//! its pages or merged bytes out.

pub mod compare;
pub mod compare_charts;
pub mod compare_html;
pub mod comparison;
pub mod expression;
pub mod merge;
