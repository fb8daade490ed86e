//! A runner for Prometheus's promqltest script format (`*.test`): `load`, `clear`, `eval`
//! (instant and range) with expected results, failures, ordering, strings and range vectors.
//!
//! Native histograms (`{{…}}`, `load_with_nhcb`) are loaded and compared with the reference's
//! tolerances; `expect warn/info/no_warn/no_info` and `eval_warn/eval_info` are checked against
//! the engine's annotations (without the ` (line:column)` position, which Argus does not
//! produce). Statements that need start timestamps, or whose expression `promql-parser` cannot
//! parse, are skipped with a reason and never counted as passed.

mod hist;
mod parse;
#[cfg(feature = "promqltest")]
mod run;
#[cfg(feature = "promqltest")]
mod script;

#[cfg(feature = "promqltest")]
pub use run::{FileReport, RunOptions, run_file, run_source};

/// One value of a `load` line's sequence (`../shared/conformance/promqltest/FORMAT.md` §6–7).
#[derive(Clone, Debug, PartialEq)]
pub enum LoadValue {
    /// A float sample (may be NaN).
    Value(f64),
    /// `_`: no sample at this position.
    Omitted,
    /// `stale`: a staleness marker.
    Stale,
    /// A native-histogram literal (`{{…}}`) (its value is not carried here).
    Histogram,
}

/// Parses one line of a `load` block (`series values…`): the series notation and its expanded
/// value sequence. Used by `argus test rules` for `input_series`.
pub fn parse_load_line(line: &str) -> Result<(argus_storage::Labels, Vec<LoadValue>), String> {
    let (series, values, st) = parse::split_series(line.trim())?;
    if st {
        return Err("start timestamps (@st) are not supported here".into());
    }
    let labels = parse::parse_series(series)?;
    let items = parse::parse_sequence(values)?;
    Ok((labels, items.into_iter().map(LoadValue::from).collect()))
}

/// Parses series notation (`name`, `name{a="b"}`, `{a="b"}`) into labels.
pub fn parse_series_labels(s: &str) -> Result<argus_storage::Labels, String> {
    parse::parse_series(s)
}

impl From<parse::Item> for LoadValue {
    fn from(i: parse::Item) -> Self {
        match i {
            parse::Item::Value(v) => LoadValue::Value(v),
            parse::Item::Omitted => LoadValue::Omitted,
            parse::Item::Stale => LoadValue::Stale,
            parse::Item::Histogram(_) => LoadValue::Histogram,
        }
    }
}
