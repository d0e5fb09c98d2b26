//! What is worked out from report folders rather than from a run: two runs compared, the
//! `--fail-if` expressions judged on a comparison, the shards of a plan merged into one. Pure:
//! summaries and the folders' files in, a comparison or merged bytes out.

pub mod compare;
pub mod comparison;
pub mod expression;
pub mod merge;
