//! `Db`: opens a directory and owns the head, WAL, blocks and background compaction.
//! OWNER: engine helper.
//!
//! Only this module knows both the head and the blocks: it cuts the head's oldest range into a
//! block, checkpoints the WAL, plans and runs compactions and retention, and hands queriers a
//! snapshot of `Arc<Block>`s plus a head range (all through [`BlockReader`]).

use crate::block::reader::Block;
use crate::block::writer::{BlockSpec, write_block};
use crate::block::{BlockReader, overlaps, ulid};
use crate::compact::{self, plan};
use crate::error::{Error, Result};
use crate::fs::layout::{CHUNKS_HEAD_DIR, DELETE_SUFFIX, LOCK_FILE, TMP_SUFFIX, WAL_DIR};
use crate::head::append::HeadAppender;
use crate::head::chunk_files::HeadChunkFiles;
use crate::head::read::HeadRange;
use crate::head::{Head, HeadOptions, replay, snapshot, snapshot_delta};
use crate::interface::{Appendable, Appender, Querier, Queryable};
use crate::matcher::Matcher;
use crate::model::{METRIC_NAME, Timestamp};
use crate::querier::{DbQuerier, select};
use crate::wal::checkpoint::SeriesRecords;
use crate::wal::watch::{Keepers, WalKeep, WalPosition, WalWatchMetrics, WalWatcher};
use crate::wal::{SyncMode, Wal, WalOptions};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak, mpsc};
use std::time::Duration;

/// Milliseconds since the epoch by the wall clock.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How often the background thread cuts the head, compacts and applies retention.
const BACKGROUND_INTERVAL: Duration = Duration::from_secs(60);

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
    /// Size in bytes of the memory pages that hold completed head chunks (default 1 MiB; the
    /// head frees whole pages when it is truncated).
    pub head_chunk_segment_size: u64,
    /// Bytes of WAL segments kept for WAL readers (remote-write queues) beyond what the head
    /// needs; past it the oldest are deleted anyway (None = no bound).
    pub wal_max_backlog_bytes: Option<u64>,
    /// WAL segments kept for WAL readers are deleted anyway once last written (file mtime)
    /// longer ago than this, ms (None = no bound). Agent mode's `retention.max-time`.
    pub wal_max_backlog_age_ms: Option<i64>,
    /// A head range is cut only once its end is at least this old by the wall clock, ms
    /// (0 = as soon as the head spans 1.5 ranges). Agent mode's `retention.min-time`.
    pub min_cut_age_ms: i64,
    /// Write the ranges cut off the head as blocks (default). `false` is agent mode: a range
    /// that reaches the cut is dropped from the head and its WAL segments are checkpointed away
    /// as soon as no WAL reader (remote-write queue) needs them; no block is ever written.
    pub write_blocks: bool,
    /// Write a snapshot of the head this often, ms (None = not by time), so that opening after
    /// a crash replays only the WAL written since (see `head/snapshot.rs`). Checked by the
    /// background thread every `SNAPSHOT_CHECK_INTERVAL` (250 ms).
    pub head_snapshot_interval_ms: Option<i64>,
    /// Write a snapshot of the head once this many bytes of WAL were written since the last
    /// one, or a quarter of the last snapshot file's size, or 64 B per head series, whichever
    /// is most (None, the library's default: not by size; the server's flag defaults to 4 MiB).
    /// The trigger is checked every `SNAPSHOT_CHECK_INTERVAL` (250 ms), so a fast writer
    /// leaves little more WAL than the bound to replay after a crash, and its snapshots are
    /// fast ones ([`Db::snapshot_head_with`]). Until the chain's deltas outgrow its base they
    /// are deltas (`head/snapshot_delta.rs`); the quarter keeps the bytes of whole snapshots at
    /// most about 4× the WAL's on big heads and the per-series bound does the same for deltas
    /// (`snapshot_due_on_head`). With either trigger set a snapshot is also written at
    /// [`Db::close`] and after each head cut, and the WAL segments a whole snapshot covers are
    /// deleted (but not those a WAL reader still needs), so the snapshot replaces the WAL
    /// rather than adding to it.
    pub head_snapshot_wal_bytes: Option<u64>,
}

/// Whether the size trigger of head snapshots is due: `wal_since` bytes of WAL were written
/// since the last snapshot, whose file has `last_snapshot` bytes (0: none), and the bound is
/// `min_bytes` ([`Options::head_snapshot_wal_bytes`]). Due at `max(min_bytes, last_snapshot /
/// 4)`, so writing snapshots costs at most about 4× the WAL's own bytes however big the head.
pub(crate) fn snapshot_due_by_size(wal_since: u64, min_bytes: u64, last_snapshot: u64) -> bool {
    wal_since >= min_bytes.max(last_snapshot / 4)
}

/// [`snapshot_due_by_size`] on a head of `series` series: the bound is at least `series ×`
/// [`SNAPSHOT_WAL_BYTES_PER_SERIES`], which does for deltas what the quarter does for whole
/// snapshots (a delta's cost follows the series that changed: on a scraped head, all).
pub(crate) fn snapshot_due_on_head(
    wal_since: u64,
    min_bytes: u64,
    last_snapshot: u64,
    series: u64,
) -> bool {
    let per_series = series.saturating_mul(SNAPSHOT_WAL_BYTES_PER_SERIES);
    snapshot_due_by_size(wal_since, min_bytes.max(per_series), last_snapshot)
}

/// WAL bytes per head series that the size trigger waits for at least (see
/// [`snapshot_due_on_head`]). On a scraped head every series changes between two deltas, so a
/// delta costs about the same per series whatever the WAL between them; scrape-bench writes
/// ~1.8 B of WAL per sample, so 64 B a series is ~35 samples of each series between deltas, and
/// the replay after a crash stays about that much WAL. 400,000 series: a delta every 25.6 MB of
/// WAL, about 3 minutes of scraping them every 5 s, ~0.4 CPU s each (~+3 % scrape CPU; at 32 B
/// one came every ~70 s, and the fresh head's first whole snapshot fell inside scrape-bench's
/// 60 s window: +20 %, `benches/README.md` "snapdef"); 20,000 series (the medium set):
/// 1.28 MB, under the 4 MiB default.
pub(crate) const SNAPSHOT_WAL_BYTES_PER_SERIES: u64 = 64;

/// How often the background thread checks whether a head snapshot is due.
///
/// 250 ms since session 15 (5 s before): `replay_vs_prometheus.py` writes 2 h of the medium set
/// (20.1 MiB of WAL) in ~2 s and kills the server right after (`--settle 0`). With a 5 s check
/// the kill found 0.3–20.1 MiB of WAL past the last snapshot, depending on where the check
/// fell, and a restart took 0.41–0.75× Prometheus's time (0.37–0.55 CPU s). With 250 ms checks
/// it finds the snapshots taken during the burst, and about one bound of WAL after them (0.21
/// CPU s against Prometheus's 1.01). The snapshots the size trigger takes are fast ones
/// ([`Db::snapshot_head_with`]: no re-encoding of completed chunks, most of a whole snapshot's
/// CPU), so that the snapshots now taken during a burst cost `measure`'s ingest no more CPU
/// than the one packed snapshot the 5 s check used to take in it. A check reads the WAL's
/// length under its lock (no I/O when the last snapshot's segment is the current one).
pub const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_millis(250);

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
            head_chunk_segment_size: crate::head::chunk_files::DEFAULT_SEGMENT_SIZE,
            wal_max_backlog_bytes: None,
            wal_max_backlog_age_ms: None,
            min_cut_age_ms: 0,
            write_blocks: true,
            head_snapshot_interval_ms: None,
            head_snapshot_wal_bytes: None,
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
    inner: Arc<Inner>,
}

struct Background {
    stop: mpsc::Sender<()>,
    handle: std::thread::JoinHandle<()>,
}

struct Inner {
    // Immutable after open.
    dir: PathBuf,
    opts: Options,
    head: Arc<Head>,
    /// Held (locked) for the lifetime of the Db.
    _lock_file: File,
    wal_corruptions: u64,
    /// The WAL's sync counters.
    wal_metrics: Arc<crate::wal::WalMetrics>,
    /// Segments WAL readers still need.
    wal_keepers: Keepers,
    /// First WAL segment not covered by the newest head snapshot (the first replayed at open
    /// when there is none): the size trigger counts the WAL bytes from it.
    snapshot_segment: AtomicU32,
    /// Size of the newest head snapshot file (0: none): the size trigger waits for a quarter
    /// of it.
    snapshot_bytes: AtomicU64,
    /// The head snapshot chain written since opening (None: the next snapshot is a whole
    /// one). Used under `compact_lock`.
    snapshot_chain: Mutex<Option<snapshot::Chain>>,
    /// The chain holds a fast link (`Db::snapshot_head_with` unpacked: chunks as XOR), which a
    /// pause in writes replaces by a packed whole snapshot ([`Quiet`]).
    snapshot_fast: AtomicBool,
    /// Blocks sorted by min time; replaced as a whole under the write lock.
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Serialises head cuts, compactions, retention, deletions and snapshots.
    compact_lock: Mutex<()>,
    /// The background thread, if running.
    bg: Mutex<Option<Background>>,
    closed: AtomicBool,
    compactions: AtomicU64,
    compactions_failed: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.head.closed.store(true, Ordering::Release);
            if let Some(wal) = self.head.wal.lock().as_mut()
                && let Err(e) = wal.sync()
            {
                tracing::warn!("cannot sync WAL on drop: {e}");
            }
        }
    }
}

fn io(ctx: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let ctx = ctx.into();
    move |e| Error::io(ctx, e)
}

impl Db {
    /// Opens (creating) the database in `dir`: takes a lock file, loads blocks, replays the WAL.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Self::open_inner(dir.as_ref(), opts, None)
    }

    /// [`Db::open`] whose WAL creates its segment files with `opener` (the I/O seam for fault
    /// injection: a full disk, failed or stalled fsyncs).
    #[cfg(any(test, feature = "testing"))]
    pub fn open_with_wal_files(
        dir: impl AsRef<Path>,
        opts: Options,
        opener: Box<crate::wal::segment::SegmentOpener>,
    ) -> Result<Db> {
        Self::open_inner(dir.as_ref(), opts, Some(opener))
    }

    fn open_inner(
        dir: &Path,
        opts: Options,
        opener: Option<Box<crate::wal::segment::SegmentOpener>>,
    ) -> Result<Db> {
        let dir = dir.to_path_buf();
        if opts.block_range_ms <= 0 {
            return Err(Error::InvalidArgument(
                "block_range_ms must be positive".into(),
            ));
        }
        if opts.out_of_order_window_ms < 0 {
            return Err(Error::InvalidArgument(
                "out_of_order_window_ms must not be negative".into(),
            ));
        }
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = File::create(&lock_path)
            .map_err(io(format!("cannot create {}", lock_path.display())))?;
        // A child process forked by this one between our close and reopen briefly holds a
        // copy of the old descriptor (until its exec), so retry for a moment before failing.
        let mut tries = 0;
        while let Err(e) = lock_file.try_lock() {
            tries += 1;
            if tries >= 50 {
                return Err(Error::InvalidArgument(format!(
                    "cannot lock {}: {e} (is another process using this directory?)",
                    lock_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let blocks = load_blocks(&dir)?;
        let min_valid = blocks
            .iter()
            .map(|b| b.meta.max_time)
            .max()
            .unwrap_or(i64::MIN);
        let wal_opts = WalOptions {
            segment_size: opts.wal_segment_size,
            sync: opts.sync,
        };
        let wal = match opener {
            Some(o) => Wal::open_with(&dir.join(WAL_DIR), wal_opts, o)?,
            None => Wal::open(&dir.join(WAL_DIR), wal_opts)?,
        };
        let new_head = || -> Result<Arc<Head>> {
            Ok(Arc::new(Head::new(
                HeadOptions {
                    block_range: opts.block_range_ms,
                    ooo_window: opts.out_of_order_window_ms,
                },
                None,
                // Not durable: whatever is there is deleted and rebuilt by the replay below.
                HeadChunkFiles::open(&dir.join(CHUNKS_HEAD_DIR), opts.head_chunk_segment_size)?,
                min_valid,
            )))
        };
        let mut head = new_head()?;
        // Without an out-of-order window, WAL replay skips samples already in blocks; a
        // snapshot taken before the last cut leaves them out the same way.
        let drop_before =
            (opts.out_of_order_window_ms <= 0 && min_valid > i64::MIN).then_some(min_valid);
        let loaded = load_head_snapshot(&dir, &wal, &mut head, drop_before, &new_head)?;
        let outcome = match &loaded {
            Some(l) => replay::replay_after_snapshot(&head, &wal, l)?,
            None => replay::replay(&head, &wal)?,
        };
        let snapshot_segment = match &loaded {
            Some(l) => l.segment,
            None => wal.first_segment()?,
        };
        drop(loaded);
        // The snapshot loaded is the only one left.
        let snapshot_bytes = snapshot::list(&dir)?
            .last()
            .and_then(|(_, p)| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        if outcome.unknown_refs > 0 {
            tracing::warn!(
                "WAL replay skipped {} samples of unknown series",
                outcome.unknown_refs
            );
        }
        let wal_metrics = wal.metrics();
        *head.wal.lock() = Some(wal);
        let inner = Arc::new(Inner {
            wal_metrics,
            wal_keepers: Keepers::default(),
            snapshot_segment: AtomicU32::new(snapshot_segment),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            snapshot_chain: Mutex::new(None),
            snapshot_fast: AtomicBool::new(false),
            dir,
            opts,
            head,
            _lock_file: lock_file,
            wal_corruptions: u64::from(outcome.truncated_bytes > 0),
            blocks: RwLock::new(blocks),
            compact_lock: Mutex::new(()),
            bg: Mutex::new(None),
            closed: AtomicBool::new(false),
            compactions: AtomicU64::new(0),
            compactions_failed: AtomicU64::new(0),
        });
        if inner.opts.background {
            start_background(&inner);
        }
        Ok(Db { inner })
    }

    /// Flushes and syncs the WAL, stops background work. Later appends fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        let bg = self.inner.bg.lock().take();
        if let Some(bg) = bg {
            drop(bg.stop);
            if bg.handle.join().is_err() {
                tracing::warn!("background compaction thread panicked");
            }
        }
        let _g = self.inner.compact_lock.lock();
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        // A whole snapshot: the WAL it covers is deleted and the next open loads one file.
        if self.inner.snapshots_on()
            && let Err(e) = self.inner.snapshot_head(true, true)
        {
            tracing::warn!("cannot write a head snapshot at close: {e}");
        }
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.head.closed.store(true, Ordering::Release);
        match self.inner.head.wal.lock().as_mut() {
            Some(wal) => wal.sync(),
            None => Ok(()),
        }
    }

    /// The error of the last failed WAL write or sync (a full disk, EIO) while writes fail;
    /// `None` once a write succeeds again. Never waits for the WAL (a stalled sync holds it), so
    /// readiness probes may call it at any time.
    pub fn wal_error(&self) -> Option<String> {
        self.inner.wal_metrics.failing.lock().clone()
    }

    /// Writes a snapshot of the head now (see [`Options::head_snapshot_interval_ms`]): a delta
    /// on top of the last one when the background trigger would write one, else a whole
    /// snapshot; the next open replays only the WAL written after it. Does nothing while the
    /// head holds native histograms (not covered: the WAL is replayed).
    pub fn snapshot_head(&self) -> Result<()> {
        self.snapshot_head_with(false, true)
    }

    /// Writes a whole snapshot of the head now (never a delta), as at [`Db::close`]: the WAL
    /// segments it covers are deleted (those a WAL reader still needs aside).
    pub fn snapshot_head_whole(&self) -> Result<()> {
        self.snapshot_head_with(true, true)
    }

    /// Writes a snapshot of the head now: a whole one if `whole` (else a delta when the chain
    /// takes one). Unless `pack`, a fast one, as the size trigger writes
    /// (`SNAPSHOT_CHECK_INTERVAL`, 250 ms): completed chunks are copied as they are, not re-encoded in
    /// the packed encoding, and compressed at zstd level 1 (about a third of the CPU, more bytes
    /// on disk until the next packed snapshot).
    pub fn snapshot_head_with(&self, whole: bool, pack: bool) -> Result<()> {
        let _g = self.inner.compact_lock.lock();
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.inner.snapshot_head(whole, pack).map(drop)
    }

    /// Cuts the head's old range into blocks, compacts and applies retention now.
    pub fn compact(&self) -> Result<()> {
        self.inner.compact()
    }

    /// Deletes samples of series matching `matchers` within `[mint, maxt]` (tombstones).
    pub fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<()> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if mint > maxt {
            return Err(Error::InvalidArgument(format!(
                "delete range start {mint} is after its end {maxt}"
            )));
        }
        let _g = inner.compact_lock.lock();
        let ids = inner.head.select_ids(matchers)?;
        inner.head.delete(&ids, mint, maxt, true)?;
        for b in inner.blocks.read().iter() {
            if !overlaps(b.min_time(), b.max_time(), mint, maxt) {
                continue;
            }
            let ids = select::postings_for_matchers(b.as_ref(), matchers)?;
            b.delete(&ids, mint, maxt)?;
        }
        Ok(())
    }

    /// Rewrites blocks that have tombstones so the deleted data is gone from disk.
    pub fn clean_tombstones(&self) -> Result<()> {
        let inner = &*self.inner;
        let _g = inner.compact_lock.lock();
        let dirty: Vec<Arc<Block>> = inner
            .blocks
            .read()
            .iter()
            .filter(|b| b.has_tombstones())
            .cloned()
            .collect();
        for b in dirty {
            let meta = compact::merge_blocks(&inner.dir, std::slice::from_ref(&b))?;
            inner.swap_blocks(&[b.id().to_string()], meta.map(|m| m.ulid))?;
        }
        Ok(())
    }

    /// Writes a consistent copy of all blocks (and, with `with_head`, the head cut into a block)
    /// into `dir`, which must not exist yet.
    pub fn snapshot(&self, dir: &Path, with_head: bool) -> Result<()> {
        if dir.exists() {
            return Err(Error::InvalidArgument(format!(
                "snapshot directory {} already exists",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let res = self.snapshot_into(dir, with_head);
        if res.is_err() {
            // No partial snapshot stays behind (it would look complete to whoever restores it).
            let _ = std::fs::remove_dir_all(dir);
        }
        res
    }

    fn snapshot_into(&self, dir: &Path, with_head: bool) -> Result<()> {
        let inner = &*self.inner;
        let _g = inner.compact_lock.lock();
        let blocks = inner.blocks.read().clone();
        for b in &blocks {
            link_tree(&b.dir, &dir.join(b.id()))?;
        }
        if with_head {
            let r: Arc<dyn BlockReader> =
                Arc::new(HeadRange::new(inner.head.clone(), i64::MIN, i64::MAX));
            let ids = r.sorted_ids(&r.all_postings()?)?;
            let spec = BlockSpec {
                mint: i64::MIN,
                maxt: i64::MAX,
                level: 1,
                sources: Vec::new(),
                parents: Vec::new(),
            };
            write_block(dir, vec![(r, ids)], spec)?;
        }
        crate::fs::fsync_dir(dir)
    }

    /// Head statistics with the top `limit` entries per list.
    pub fn stats(&self, limit: usize) -> TsdbStats {
        let head = &self.inner.head;
        let mut by_metric = Vec::new();
        let mut values_by_name: HashMap<String, u64> = HashMap::new();
        let mut bytes_by_name: HashMap<String, u64> = HashMap::new();
        let mut by_pair = Vec::new();
        head.postings.read().for_each(|n, v, ids| {
            if n == METRIC_NAME {
                by_metric.push((v.to_string(), ids.len()));
            }
            *values_by_name.entry(n.to_string()).or_default() += 1;
            *bytes_by_name.entry(n.to_string()).or_default() += v.len() as u64;
            by_pair.push((format!("{n}={v}"), ids.len()));
        });
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let (min, max) = (head.min_time(), head.max_time());
        TsdbStats {
            num_series: head.num_series(),
            min_time: min,
            max_time: max,
            num_chunks: head.num_chunks(),
            series_count_by_metric_name: top(by_metric),
            label_value_count_by_label_name: top(values_by_name.into_iter().collect()),
            memory_in_bytes_by_label_name: top(bytes_by_name.into_iter().collect()),
            series_count_by_label_value_pair: top(by_pair),
        }
    }

    /// A reader following the WAL from `start` (see [`WalWatcher`]); it never blocks appends.
    pub fn wal_watcher(&self, start: WalPosition) -> Result<WalWatcher> {
        let dir = self.inner.dir.join(WAL_DIR);
        match self.inner.head.wal.lock().as_ref() {
            Some(wal) => WalWatcher::following(&dir, start, wal.group()),
            None => WalWatcher::new(&dir, start),
        }
    }

    /// The position just after the last record written to the WAL.
    pub fn wal_end_position(&self) -> Result<WalPosition> {
        match self.inner.head.wal.lock().as_ref() {
            Some(wal) => Ok(wal.end_position()),
            None => Err(Error::Closed),
        }
    }

    /// Keeps WAL segments from `segment` on until the handle is dropped (bounded by
    /// [`Options::wal_max_backlog_bytes`]).
    pub fn wal_keep(&self, segment: u32) -> WalKeep {
        self.inner.wal_keepers.keep(segment)
    }

    /// The first timestamp local storage holds, ms: the oldest block's min time, else the
    /// head's (`i64::MAX` when empty), as Prometheus's `DB.StartTime`. Cheap (no series walk).
    pub fn start_time(&self) -> Timestamp {
        let oldest = self
            .inner
            .blocks
            .read()
            .iter()
            .map(|b| b.meta.min_time)
            .min();
        oldest.unwrap_or(i64::MAX).min(self.inner.head.min_time())
    }

    /// What the backlog bound deleted although a reader needed it.
    pub fn wal_watch_metrics(&self) -> Arc<WalWatchMetrics> {
        self.inner.wal_keepers.metrics.clone()
    }

    /// Current counters and gauges.
    pub fn metrics(&self) -> DbMetrics {
        let inner = &*self.inner;
        let head = &inner.head;
        let m = &head.metrics;
        let blocks = inner.blocks.read();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DbMetrics {
            head_series: head.num_series(),
            head_chunks: head.num_chunks(),
            head_bytes: head.heap_bytes(),
            samples_appended: load(&m.samples_appended),
            samples_rejected: vec![
                ("out_of_order".into(), load(&m.rejected_out_of_order)),
                ("out_of_bounds".into(), load(&m.rejected_out_of_bounds)),
                ("too_old".into(), load(&m.rejected_too_old)),
                ("duplicate".into(), load(&m.rejected_duplicate)),
            ],
            wal_fsyncs: load(&inner.wal_metrics.fsyncs),
            wal_fsync_seconds: load(&inner.wal_metrics.fsync_nanos) as f64 / 1e9,
            wal_corruptions: inner.wal_corruptions,
            compactions: load(&inner.compactions),
            compactions_failed: load(&inner.compactions_failed),
            blocks: blocks.len() as u64,
            blocks_bytes: blocks.iter().map(|b| b.size).sum(),
            head_min_time: head.min_time(),
            head_max_time: head.max_time(),
        }
    }
}

/// Loads the newest usable head snapshot of `dir` into `head` (an empty head) and returns what
/// it restored; removes the others. A snapshot is usable when the WAL still has the segment it
/// starts at (a checkpoint or a repair may have removed it). One that fails to load is ignored
/// with a warning and `head` replaced by a fresh one: the whole WAL is replayed then (a
/// snapshot deletes no segment, so nothing is lost).
fn load_head_snapshot(
    dir: &Path,
    wal: &Wal,
    head: &mut Arc<Head>,
    drop_before: Option<Timestamp>,
    new_head: &dyn Fn() -> Result<Arc<Head>>,
) -> Result<Option<snapshot::Loaded>> {
    snapshot::remove_tmp(dir)?;
    snapshot_delta::remove_tmp(dir)?;
    let (first, cur) = (wal.first_segment()?, wal.current_segment());
    let mut deltas = snapshot_delta::list(dir)?;
    let mut loaded = None;
    for (seg, path) in snapshot::list(dir)?.into_iter().rev() {
        if loaded.is_none() && (first..cur).contains(&seg) {
            let start = std::time::Instant::now();
            let mut res = snapshot_delta::load_chain(head, &path, &deltas, first..cur, drop_before);
            if let Ok(snapshot_delta::ChainLoad {
                failed: Some((k, e)),
                ..
            }) = &res
            {
                // The chain up to the delta before: its WAL segments are all still there.
                tracing::warn!(
                    "ignoring head snapshot delta {} and those after it: {e}",
                    deltas
                        .get(*k)
                        .map_or_else(String::new, |d| d.1.display().to_string())
                );
                deltas.truncate(*k);
                *head = new_head()?;
                res = snapshot_delta::load_chain(head, &path, &deltas, first..cur, drop_before);
            }
            match res {
                Ok(snapshot_delta::ChainLoad {
                    loaded: l,
                    deltas: n,
                    failed: None,
                }) => {
                    tracing::info!(
                        snapshot = %path.display(),
                        deltas = n,
                        series = l.series.len(),
                        ms = start.elapsed().as_millis() as u64,
                        "head snapshot loaded; replaying the WAL from segment {}",
                        l.segment
                    );
                    // Deltas not applied (not after the snapshot, or after a gap) go.
                    let used = l.segment;
                    deltas.retain(|d| d.0 > seg && d.0 <= used);
                    loaded = Some(l);
                    continue;
                }
                Ok(snapshot_delta::ChainLoad {
                    failed: Some((_, e)),
                    ..
                })
                | Err(e)
                    if first > 0 =>
                {
                    // Snapshots delete the segments they cover: the samples of the segments
                    // before `first` that were not cut into blocks yet were only in it.
                    tracing::error!(
                        "cannot load head snapshot {}: {e}; the samples of WAL segments 0..{first} not yet in blocks are lost (replaying the checkpoint's series and segments {first}..{cur})",
                        path.display()
                    );
                    *head = new_head()?;
                }
                Ok(snapshot_delta::ChainLoad {
                    failed: Some((_, e)),
                    ..
                })
                | Err(e) => {
                    tracing::warn!("ignoring head snapshot {}: {e}", path.display());
                    *head = new_head()?;
                }
            }
        } else if loaded.is_none() {
            tracing::warn!(
                "ignoring head snapshot {}: the WAL holds segments {first}..{cur}",
                path.display()
            );
        }
        snapshot::remove(&path)?;
    }
    if loaded.is_none() {
        deltas.clear();
    }
    for (_, p) in snapshot_delta::list(dir)? {
        if !deltas.iter().any(|d| d.1 == p) {
            snapshot::remove(&p)?;
        }
    }
    Ok(loaded)
}

/// Loads every block directory in `dir`; removes leftovers of interrupted writes/deletions and
/// blocks already merged into another (their id is in some block's `parents`).
fn load_blocks(dir: &Path) -> Result<Vec<Arc<Block>>> {
    let mut blocks = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?;
    for e in rd {
        let e = e.map_err(io(format!("cannot read {}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETE_SUFFIX) {
            std::fs::remove_dir_all(&path)
                .map_err(io(format!("cannot remove {}", path.display())))?;
            continue;
        }
        if ulid::is_ulid(&name) {
            blocks.push(Arc::new(Block::open(&path)?));
        }
    }
    let parents: BTreeSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta.compaction.parents.iter().cloned())
        .collect();
    blocks.retain(|b| {
        let merged = parents.contains(b.id());
        if merged {
            b.mark_deleted();
        }
        !merged
    });
    blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    Ok(blocks)
}

/// Hard-links (or copies, across file systems) every file under `src` into `dst`.
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(io(format!("cannot create {}", dst.display())))?;
    let rd = std::fs::read_dir(src).map_err(io(format!("cannot read {}", src.display())))?;
    for e in rd {
        let e = e.map_err(io(format!("cannot read {}", src.display())))?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if from.is_dir() {
            link_tree(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io(format!("cannot copy {}", from.display())))?;
        }
    }
    crate::fs::fsync_dir(dst)
}

/// Checks of the WAL's end without growth after which the background thread takes writes to
/// have paused: 1 s at [`SNAPSHOT_CHECK_INTERVAL`].
const QUIET_CHECKS: u32 = 4;

/// Tells when writes to the WAL pause, from its end seen at each background check. When they
/// do and the snapshot chain has deltas or a fast link, a packed whole snapshot replaces the
/// chain: one file to load instead of a base and deltas, the WAL segments it covers deleted
/// (deltas keep them), and the chunks packed (fast links copy them as XOR). So a burst of
/// writes (a remote-write backlog, a restart's catch-up) leaves, a second after it ends, what
/// the 5 s check used to leave: on `measure`, 9.0 MiB on disk while running (session 14's
/// binary 9.0–10.1) where the burst's fast snapshot, its delta and the WAL under it took
/// 18.9 MiB. One pause writes at most one. A steady scrape
/// whose WAL grows every second never pauses and is left to the size trigger. (From session
/// 14's `snapcap` branch, `benches/README.md` "snapcap".)
#[derive(Debug, Default)]
struct Quiet {
    /// The WAL's end at the last check (None: no WAL yet).
    end: Option<WalPosition>,
    /// Checks in a row that saw `end` unchanged.
    still: u32,
}

impl Quiet {
    /// Records the WAL's `end` at one check; true at the check that completes
    /// [`QUIET_CHECKS`] unchanged in a row after a change (once per pause).
    fn ended(&mut self, end: Option<WalPosition>) -> bool {
        if end != self.end {
            self.end = end;
            self.still = 0;
            return false;
        }
        self.still = self.still.saturating_add(1);
        self.still == QUIET_CHECKS
    }
}

fn start_background(inner: &Arc<Inner>) {
    let (stop, rx) = mpsc::channel::<()>();
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let handle = std::thread::Builder::new()
        .name("argus-tsdb-compact".into())
        .spawn(move || {
            let mut last_snapshot = std::time::Instant::now();
            let mut last_compact = std::time::Instant::now();
            let mut quiet = Quiet::default();
            let tick = BACKGROUND_INTERVAL.min(SNAPSHOT_CHECK_INTERVAL);
            // Any message or a disconnected sender stops the loop.
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(tick) {
                let Some(inner) = weak.upgrade() else { return };
                if last_compact.elapsed() >= BACKGROUND_INTERVAL {
                    last_compact = std::time::Instant::now();
                    if let Err(e) = inner.compact() {
                        tracing::warn!("background compaction failed: {e}");
                    }
                }
                let end = inner.head.wal.lock().as_ref().map(Wal::end_written);
                if quiet.ended(end) && inner.snapshots_on() {
                    let _g = inner.compact_lock.lock();
                    let chained = inner
                        .snapshot_chain
                        .lock()
                        .as_ref()
                        .is_some_and(|c| c.deltas > 0);
                    if (chained || inner.snapshot_fast.load(Ordering::Acquire))
                        && !inner.closed.load(Ordering::Acquire)
                    {
                        last_snapshot = std::time::Instant::now();
                        if let Err(e) = inner.snapshot_head(true, true) {
                            tracing::warn!("cannot write a head snapshot: {e}");
                        }
                        continue;
                    }
                }
                let by_time = inner.opts.head_snapshot_interval_ms.is_some_and(|ms| {
                    last_snapshot.elapsed().as_millis() >= u128::try_from(ms).unwrap_or(0)
                });
                let by_size = inner.opts.head_snapshot_wal_bytes.is_some_and(|b| {
                    let series = inner.head.num_series();
                    inner.head.wal.lock().as_ref().is_some_and(|w| {
                        snapshot_due_on_head(
                            w.bytes_since(inner.snapshot_segment.load(Ordering::Acquire)),
                            b,
                            inner.snapshot_bytes.load(Ordering::Acquire),
                            series,
                        )
                    })
                });
                if by_time || by_size {
                    last_snapshot = std::time::Instant::now();
                    let _g = inner.compact_lock.lock();
                    if !inner.closed.load(Ordering::Acquire)
                        && let Err(e) = inner.snapshot_head(false, by_time)
                    {
                        tracing::warn!("cannot write a head snapshot: {e}");
                    }
                }
            }
        });
    match handle {
        Ok(handle) => *inner.bg.lock() = Some(Background { stop, handle }),
        Err(e) => tracing::warn!("cannot start background compaction thread: {e}"),
    }
}

impl Inner {
    /// Whether head snapshots are written (either trigger set).
    fn snapshots_on(&self) -> bool {
        self.opts.head_snapshot_interval_ms.is_some() || self.opts.head_snapshot_wal_bytes.is_some()
    }

    /// Writes a head snapshot, then deletes the WAL segments it covers that no WAL reader
    /// needs. False when none was written (native histograms, no WAL). The caller holds
    /// `compact_lock`. Unless `pack`, a fast snapshot: completed chunks are copied as they are
    /// rather than re-encoded in the packed encoding (see [`SNAPSHOT_CHECK_INTERVAL`]).
    ///
    /// Unless `whole`, it writes a delta on top of the chain written so far while the chain's
    /// deltas are smaller than its base (`head/snapshot_delta.rs`); a delta deletes no WAL
    /// segment.
    fn snapshot_head(&self, whole: bool, pack: bool) -> Result<bool> {
        let mut chain = self.snapshot_chain.lock();
        // On an error or without a snapshot the next one starts a new chain.
        let prev = chain.take().filter(|c| {
            !whole && c.delta_bytes < c.base_bytes * snapshot_delta::MAX_DELTAS_PER_BASE
        });
        let Some(next) = snapshot::take(&self.head, &self.dir, prev, pack)? else {
            // Native histograms (or no WAL): the size trigger waits for another bound's worth
            // of WAL instead of retrying (and cutting a segment) at every check.
            if let Some(wal) = self.head.wal.lock().as_ref() {
                self.snapshot_segment
                    .store(wal.current_segment(), Ordering::Release);
            }
            return Ok(false);
        };
        let (segment, delta) = (next.last, next.deltas > 0);
        self.snapshot_segment.store(segment, Ordering::Release);
        self.snapshot_bytes
            .store(next.base_bytes, Ordering::Release);
        *chain = Some(next);
        drop(chain);
        if delta {
            self.snapshot_fast.fetch_or(!pack, Ordering::AcqRel);
            return Ok(true);
        }
        self.snapshot_fast.store(!pack, Ordering::Release);
        // Series logged so far (a superset of those in the covered segments) for the
        // checkpoint that replaces the deleted segments, encoded from the head's own label
        // sets as the checkpoint is written (no owned copy of every series' labels).
        let all = self.head.series.all();
        let mut fill = |recs: &mut SeriesRecords<'_>| {
            for s in all.iter().filter(|s| s.logged().load(Ordering::Acquire)) {
                recs.add(s.id(), s.labels.iter())?;
            }
            Ok(())
        };
        if let Some(wal) = self.head.wal.lock().as_mut() {
            let keep_from = self.wal_keepers.first_needed(
                wal.dir(),
                wal.current_segment(),
                self.opts.wal_max_backlog_bytes,
                self.opts.wal_max_backlog_age_ms,
            );
            wal.drop_covered(keep_from.map_or(segment, |k| k.min(segment)), &mut fill)?;
        }
        Ok(true)
    }

    fn compact(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let _g = self.compact_lock.lock();
        let res = self.cut_head().and_then(|()| self.compact_blocks());
        if res.is_err() {
            self.compactions_failed.fetch_add(1, Ordering::Relaxed);
        }
        // Retention runs even when compaction failed: on a full disk, deleting expired blocks is
        // what frees the space compaction needs.
        let retention = self.apply_retention();
        res.and(retention)
    }

    /// Cuts whole block ranges off the head while it spans more than 1.5 ranges, then
    /// checkpoints the WAL below the cut. Old out-of-order samples below earlier cuts are cut the
    /// same way, into blocks overlapping the existing ones.
    fn cut_head(&self) -> Result<()> {
        let res = self.cut_head_fenced();
        self.head.clear_cut_fence();
        res
    }

    fn cut_head_fenced(&self) -> Result<()> {
        let head = &self.head;
        let r = self.opts.block_range_ms;
        let mut cut_to = None;
        loop {
            let (hmin, hmax) = (head.min_time(), head.max_time());
            if hmin == i64::MAX || hmin > hmax {
                break;
            }
            let a = hmin.div_euclid(r) * r;
            let b = a + r;
            if hmax.saturating_sub(a) < r / 2 * 3 {
                break;
            }
            if self.opts.min_cut_age_ms > 0 && b > wall_clock_ms() - self.opts.min_cut_age_ms {
                break;
            }
            // No sample below `b` is accepted until the WAL checkpoint below is written, so the
            // block and the truncation see the same data and the checkpoint drops only samples
            // that are in blocks. In-order samples stay below `b` for good.
            head.raise_cut_fence(b);
            head.set_min_valid_time(b);
            // Agent mode (`!write_blocks`): the range is dropped, not persisted.
            if self.opts.write_blocks {
                let reader: Arc<dyn BlockReader> = Arc::new(HeadRange::new(head.clone(), a, b - 1));
                let ids = reader.sorted_ids(&reader.all_postings()?)?;
                let spec = BlockSpec {
                    mint: a,
                    maxt: b - 1,
                    level: 1,
                    sources: Vec::new(),
                    parents: Vec::new(),
                };
                if let Some(meta) = write_block(&self.dir, vec![(reader, ids)], spec)? {
                    self.swap_blocks(&[], Some(meta.ulid))?;
                }
            }
            head.truncate(b);
            cut_to = Some(b);
        }
        let Some(b) = cut_to else { return Ok(()) };
        // The newest snapshot may hold the only copy of samples whose segments it deleted: the
        // checkpoint keeps its segment, so that it stays usable (the next snapshot, due after
        // a bounded amount of WAL, deletes the rest).
        let snap = snapshot::list(&self.dir)?.last().map(|(seg, _)| *seg);
        if let Some(wal) = head.wal.lock().as_mut() {
            let keep = |id: u64| head.has_series(id);
            let keep_from = self.wal_keepers.first_needed(
                wal.dir(),
                wal.current_segment(),
                self.opts.wal_max_backlog_bytes,
                self.opts.wal_max_backlog_age_ms,
            );
            let keep_from = match (keep_from, snap) {
                (Some(k), Some(s)) => Some(k.min(s)),
                (k, s) => k.or(s),
            };
            wal.checkpoint_before(&keep, b, keep_from)?;
        }
        Ok(())
    }

    fn infos(&self) -> Vec<plan::BlockInfo> {
        self.blocks
            .read()
            .iter()
            .map(|b| plan::BlockInfo {
                id: b.id().to_string(),
                min_time: b.meta.min_time,
                max_time: b.meta.max_time,
                size: b.size,
            })
            .collect()
    }

    fn compact_blocks(&self) -> Result<()> {
        let ranges = plan::ranges(self.opts.block_range_ms, self.opts.retention_ms);
        // Each round merges at least two blocks into one, so this terminates.
        while let Some(ids) = plan::plan(&self.infos(), &ranges) {
            let blocks: Vec<Arc<Block>> = self
                .blocks
                .read()
                .iter()
                .filter(|b| ids.iter().any(|id| id == b.id()))
                .cloned()
                .collect();
            let meta = compact::merge_blocks(&self.dir, &blocks)?;
            self.swap_blocks(&ids, meta.map(|m| m.ulid))?;
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn apply_retention(&self) -> Result<()> {
        let drop = plan::retention(
            &self.infos(),
            self.opts.retention_ms,
            self.opts.retention_bytes,
        );
        if !drop.is_empty() {
            self.swap_blocks(&drop, None)?;
        }
        Ok(())
    }

    /// Opens block `add` (if any), then replaces the blocks `remove` with it in one step. The
    /// removed blocks' directories go when their last reader drops them.
    fn swap_blocks(&self, remove: &[String], add: Option<String>) -> Result<()> {
        let added = match add {
            Some(id) => Some(Arc::new(Block::open(&self.dir.join(id))?)),
            None => None,
        };
        let mut blocks = self.blocks.write();
        blocks.retain(|b| {
            let gone = remove.iter().any(|id| id == b.id());
            if gone {
                b.mark_deleted();
            }
            !gone
        });
        blocks.extend(added);
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        Ok(())
    }
}

impl Queryable for Db {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier + '_>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut readers: Vec<Arc<dyn BlockReader>> = self
            .inner
            .blocks
            .read()
            .iter()
            .map(|b| b.clone() as Arc<dyn BlockReader>)
            .collect();
        readers.push(Arc::new(HeadRange::new(
            self.inner.head.clone(),
            i64::MIN,
            i64::MAX,
        )));
        Ok(Box::new(DbQuerier::new(readers, mint, maxt)))
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(HeadAppender::new(self.inner.head.clone()))
    }

    fn appender_unsynced(&self) -> Box<dyn Appender> {
        Box::new(HeadAppender::new_unsynced(self.inner.head.clone()))
    }
}

#[cfg(test)]
#[path = "db_fault_tests.rs"]
mod fault_tests;

#[cfg(test)]
#[path = "db_snapshot_tests.rs"]
mod snapshot_tests;
