//! A runner for Prometheus's promqltest script format (`*.test`): `load`, `clear`, `eval`
//! (instant and range) with expected results, failures, ordering, strings and range vectors.
//!
//! Statements that need native histograms or start timestamps (not supported by Argus's float
//! storage), or whose expression `promql-parser` cannot parse, are skipped with a reason and
//! never counted as passed.

mod parse;
mod run;

pub use run::{FileReport, RunOptions, run_file, run_source};
