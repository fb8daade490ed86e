//! Argus's time-series database.
//!
//! [`Db`] opens a directory and owns an in-memory head (Gorilla-compressed chunks, roaring
//! postings), a write-ahead log, immutable memory-mapped blocks and their compaction. Ingest goes
//! through [`Appender`]; reads go through [`Queryable`] → [`Querier`] → [`SeriesSet`] →
//! [`SampleIterator`]. All timestamps are `i64` milliseconds; intervals are closed.
//!
//! ```no_run
//! use argus_storage::{Db, Labels, Options, Queryable, Appendable, Matcher};
//! let db = Db::open("/tmp/argus-doc", Options::default())?;
//! let mut app = db.appender();
//! app.append(None, &Labels::from_pairs(&[("__name__", "up"), ("job", "a")]), 1000, 1.0)?;
//! app.commit()?;
//! let q = db.querier(0, 2000)?;
//! let mut set = q.select(&[Matcher::equal("__name__", "up")]);
//! while set.next() {
//!     let mut it = set.samples();
//!     while it.next() {
//!         let (t, v) = it.at();
//!         println!("{} {t} {v}", set.labels());
//!     }
//! }
//! # Ok::<(), argus_storage::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod block;
mod chunk;
mod compact;
mod db;
mod encoding;
mod error;
mod fs;
mod head;
pub mod histogram;
mod index;
mod interface;
pub mod internals;
mod matcher;
mod model;
mod postings;
mod querier;
#[cfg(test)]
mod test_rng;
mod wal;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use chunk::prometheus::{
    PROMETHEUS_XOR_MAX_SAMPLES, decode_prometheus_xor, encode_prometheus_xor,
};
pub use db::{Db, DbMetrics, Options, TsdbStats};
pub use error::{Error, ErrorKind, Result};
pub use histogram::{CounterResetHint, FloatHistogram, SampleValue, Span};
pub use interface::HeldSeries;
pub use interface::SeriesHandle;
pub use interface::{
    Appendable, Appender, EmptySampleIterator, ErrSeriesSet, NewestSample, Querier, Queryable,
    SampleIterator, SeriesSet, SliceSampleIterator,
};
pub use matcher::{MatchType, Matcher, validate_selector};
pub use model::{
    Label, Labels, METRIC_NAME, STALE_NAN_BITS, Sample, SeriesRef, Timestamp, is_stale_nan,
    stale_nan,
};
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use postings::bench as postings_bench;
pub use wal::SyncMode;
pub use wal::watch::{
    READ_CHUNK, WalEntry, WalHistogram, WalKeep, WalPosition, WalSample, WalSeries,
    WalWatchMetrics, WalWatcher,
};
