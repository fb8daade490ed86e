//! `Db`: opens a directory and owns the head, WAL, blocks and background compaction.
//! OWNER: engine helper. (API stub: signatures are the contract other crates build against.)

use crate::error::Result;
use crate::interface::{Appendable, Appender, Querier, Queryable};
use crate::matcher::Matcher;
use crate::model::Timestamp;
use crate::wal::SyncMode;
use std::path::Path;
use std::sync::Arc;

/// Database settings. Durations are milliseconds.
#[derive(Clone, Debug)]
pub struct Options {
    /// Drop blocks whose data is entirely older than `now - retention` (None = keep forever;
    /// Prometheus's default is 15 days).
    pub retention_ms: Option<i64>,
    /// Drop oldest blocks while the total size exceeds this many bytes (None = no limit).
    pub retention_bytes: Option<u64>,
    /// Accept samples up to this much older than their series' newest sample (0 = in order only).
    pub out_of_order_window_ms: i64,
    /// Range of the head that is cut into a block (default 2 h).
    pub block_range_ms: i64,
    /// WAL segment size in bytes (default 128 MiB).
    pub wal_segment_size: u64,
    /// WAL durability per commit.
    pub sync: SyncMode,
    /// Run head cutting, compaction and retention on a background thread.
    pub background: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retention_ms: Some(15 * 24 * 3600 * 1000),
            retention_bytes: None,
            out_of_order_window_ms: 0,
            block_range_ms: 2 * 3600 * 1000,
            wal_segment_size: 128 << 20,
            sync: SyncMode::Data,
            background: true,
        }
    }
}

/// Counters and gauges the server exports as `argus_tsdb_*` metrics.
#[derive(Clone, Debug, Default)]
pub struct DbMetrics {
    /// Series in the head.
    pub head_series: u64,
    /// Chunks in the head.
    pub head_chunks: u64,
    /// Bytes of head memory (estimate).
    pub head_bytes: u64,
    /// Samples appended (committed).
    pub samples_appended: u64,
    /// Samples rejected, by reason ("out_of_order", "out_of_bounds", "too_old", "duplicate").
    pub samples_rejected: Vec<(String, u64)>,
    /// WAL fsyncs and their total duration in seconds.
    pub wal_fsyncs: u64,
    /// Total seconds spent in WAL fsync.
    pub wal_fsync_seconds: f64,
    /// WAL corruptions repaired at open.
    pub wal_corruptions: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Compactions failed.
    pub compactions_failed: u64,
    /// Blocks loaded.
    pub blocks: u64,
    /// Bytes of all blocks on disk.
    pub blocks_bytes: u64,
    /// Head min time (ms), `i64::MAX` when empty.
    pub head_min_time: i64,
    /// Head max time (ms), `i64::MIN` when empty.
    pub head_max_time: i64,
}

/// TSDB statistics for `/api/v1/status/tsdb`.
#[derive(Clone, Debug, Default)]
pub struct TsdbStats {
    /// Series in the head.
    pub num_series: u64,
    /// Head min time, ms.
    pub min_time: i64,
    /// Head max time, ms.
    pub max_time: i64,
    /// Chunks in the head.
    pub num_chunks: u64,
    /// Top metric names by series count, descending.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// Top label names by number of distinct values, descending.
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Top label names by bytes of their values, descending.
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// Top `name=value` pairs by series count, descending.
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// An open database. Cheap to clone (shared); all methods may be called concurrently.
#[derive(Clone)]
pub struct Db {
    _inner: Arc<()>,
}

impl Db {
    /// Opens (creating) the database in `dir`: takes a lock file, loads blocks, replays the WAL.
    pub fn open(_dir: impl AsRef<Path>, _opts: Options) -> Result<Db> {
        todo!()
    }

    /// Flushes and syncs the WAL, stops background work. Later appends fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        todo!()
    }

    /// Cuts the head's old range into blocks, compacts and applies retention now.
    pub fn compact(&self) -> Result<()> {
        todo!()
    }

    /// Deletes samples of series matching `matchers` within `[mint, maxt]` (tombstones).
    pub fn delete_series(
        &self,
        _matchers: &[Matcher],
        _mint: Timestamp,
        _maxt: Timestamp,
    ) -> Result<()> {
        todo!()
    }

    /// Rewrites blocks that have tombstones so the deleted data is gone from disk.
    pub fn clean_tombstones(&self) -> Result<()> {
        todo!()
    }

    /// Writes a consistent copy of all blocks (and, with `with_head`, the head cut into a block)
    /// into `dir`, which must not exist yet.
    pub fn snapshot(&self, _dir: &Path, _with_head: bool) -> Result<()> {
        todo!()
    }

    /// Head statistics with the top `limit` entries per list.
    pub fn stats(&self, _limit: usize) -> TsdbStats {
        todo!()
    }

    /// Current counters and gauges.
    pub fn metrics(&self) -> DbMetrics {
        todo!()
    }
}

impl Queryable for Db {
    fn querier(&self, _mint: Timestamp, _maxt: Timestamp) -> Result<Box<dyn Querier + '_>> {
        todo!()
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        todo!()
    }
}
