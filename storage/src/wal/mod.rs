//! Write-ahead log. OWNER: codec helper. (API stub: signatures are the contract.)
//!
//! `segment` frames records (lengths, CRC32, torn-tail repair); `record` encodes their meaning.
#![allow(
    dead_code,
    unused_imports,
    reason = "the engine helper's head/block code (a separate branch) is the user; remove after merge"
)]

pub(crate) mod record;

use crate::error::Result;
use std::path::{Path, PathBuf};

pub(crate) use record::{Record, RefSample, RefSeries, RefTombstone};

/// What survives a crash after an acknowledged commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Written to the OS page cache only: survives a process crash (`kill -9`), not a power cut.
    Buffer,
    /// `fdatasync` after every batch: survives a power cut.
    #[default]
    Data,
    /// `fsync` (data and metadata) after every batch, and of the directory on segment creation.
    All,
}

/// WAL settings.
#[derive(Clone, Debug)]
pub(crate) struct WalOptions {
    /// Bytes per segment file before a new one is started (default 128 MiB).
    pub(crate) segment_size: u64,
    /// Durability policy per batch.
    pub(crate) sync: SyncMode,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: 128 << 20,
            sync: SyncMode::Data,
        }
    }
}

/// Counts from a replay.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplayStats {
    /// Records read.
    pub(crate) records: u64,
    /// Bytes truncated from a torn or corrupt tail (0 when clean).
    pub(crate) truncated_bytes: u64,
}

/// An open WAL directory. Not thread-safe; the head keeps it behind a mutex.
pub(crate) struct Wal {
    _dir: PathBuf,
}

impl Wal {
    /// Opens (creating) the WAL in `dir`, repairing a torn or corrupt tail by truncating at the
    /// last valid record (logged as a warning, never an error).
    pub(crate) fn open(_dir: &Path, _opts: WalOptions) -> Result<Wal> {
        todo!()
    }

    /// Reads the latest checkpoint and then every segment in order, calling `f` per record.
    pub(crate) fn replay(&self, _f: &mut dyn FnMut(Record) -> Result<()>) -> Result<ReplayStats> {
        todo!()
    }

    /// Appends already-encoded records (from `record::encode_*`) as one batch and syncs per the
    /// policy. When this returns `Ok`, the batch is durable per [`SyncMode`]. After a failed
    /// write or sync the WAL is poisoned and every later call fails.
    pub(crate) fn log(&mut self, _records: &[&[u8]]) -> Result<()> {
        todo!()
    }

    /// Writes a checkpoint of all closed segments: series records for which `keep_series(ref)` is
    /// true, samples with `t >= mint` of kept series, tombstones of kept series; then deletes
    /// the segments and older checkpoints it covers. Starts a new segment first.
    pub(crate) fn checkpoint(
        &mut self,
        _keep_series: &dyn Fn(u64) -> bool,
        _mint: i64,
    ) -> Result<()> {
        todo!()
    }

    /// Flushes and syncs the current segment.
    pub(crate) fn sync(&mut self) -> Result<()> {
        todo!()
    }
}
