//! `argus test rules`: promtool's rule unit tests (FORMAT.md B) on in-memory storage.

mod file;
pub(crate) mod report;
mod run;

pub use run::{FileOutcome, GroupOutcome, RunOptions, run_file};
