//! WAL record meaning: series, samples, tombstones. OWNER: codec helper. (API stub.)

use crate::error::Result;
use crate::model::Labels;

/// A series definition: its head ref and labels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RefSeries {
    /// Head series ref.
    pub(crate) series: u64,
    /// Its labels.
    pub(crate) labels: Labels,
}

/// One sample for a series ref.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RefSample {
    /// Head series ref.
    pub(crate) series: u64,
    /// Timestamp, ms.
    pub(crate) t: i64,
    /// Value (any bit pattern).
    pub(crate) v: f64,
}

/// A deletion interval for a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RefTombstone {
    /// Head series ref.
    pub(crate) series: u64,
    /// First deleted ms (inclusive).
    pub(crate) mint: i64,
    /// Last deleted ms (inclusive).
    pub(crate) maxt: i64,
}

/// A decoded WAL record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Record {
    /// New series.
    Series(Vec<RefSeries>),
    /// Samples.
    Samples(Vec<RefSample>),
    /// Deletions.
    Tombstones(Vec<RefTombstone>),
}

/// Encodes a series record into `dst` (appends).
pub(crate) fn encode_series(_series: &[RefSeries], _dst: &mut Vec<u8>) {
    todo!()
}

/// Encodes a samples record into `dst` (appends).
pub(crate) fn encode_samples(_samples: &[RefSample], _dst: &mut Vec<u8>) {
    todo!()
}

/// Encodes a tombstones record into `dst` (appends).
pub(crate) fn encode_tombstones(_tombstones: &[RefTombstone], _dst: &mut Vec<u8>) {
    todo!()
}

/// Decodes one record. Untrusted input: errors, never panics.
pub(crate) fn decode(_bytes: &[u8]) -> Result<Record> {
    todo!()
}
