//! Write-ahead log.
//!
//! `segment` frames records (lengths, CRC32, torn-tail repair); `record` encodes their meaning.
pub(crate) mod checkpoint;
pub(crate) mod compress;
pub(crate) mod delta;
pub(crate) mod group_sync;
pub(crate) mod record;
pub(crate) mod record_histogram;
pub(crate) mod segment;
pub(crate) mod watch;

use crate::error::{Error, Result};
use group_sync::{GroupSync, SyncTicket};
use segment::{SEGMENT_HEADER_LEN, SegmentFile, SegmentOpener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use record::{Record, RefSample, RefSeries, RefTombstone};

/// A record as [`Wal::replay_items`] hands it over.
pub(crate) enum Item<'a> {
    /// A samples record's samples, in record order.
    Samples(&'a [RefSample]),
    /// Any other record.
    Record(Record),
}

/// What survives a crash after an acknowledged commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Written to the OS page cache only: survives a process crash (`kill -9`), not a power cut.
    Buffer,
    /// `fdatasync` before a batch is acknowledged: survives a power cut. Concurrent commits
    /// share one `fdatasync` (group commit).
    #[default]
    Data,
    /// `fsync` (data and metadata) after every batch. (`Data` and `All` both fsync the directory
    /// when a segment is created, so a new segment's name survives a power cut too.)
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

/// Counters of WAL syncs and the write health, shared with metric and readiness readers (who
/// must not wait for the WAL's mutex, which a stalled sync holds).
#[derive(Debug, Default)]
pub(crate) struct WalMetrics {
    /// `fsync`/`fdatasync` calls on segments.
    pub(crate) fsyncs: std::sync::atomic::AtomicU64,
    /// Total nanoseconds spent in them.
    pub(crate) fsync_nanos: std::sync::atomic::AtomicU64,
    /// The error of the last failed write or sync, until a later write or sync succeeds.
    pub(crate) failing: parking_lot::Mutex<Option<String>>,
}

/// An open WAL directory. Not thread-safe; the head keeps it behind a mutex. Syncs happen
/// outside that mutex: a write returns a [`SyncTicket`] to wait on after releasing it (see
/// `group_sync.rs`).
pub(crate) struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    opener: Box<SegmentOpener>,
    /// Index of the segment being written.
    cur_index: u32,
    /// The segment being written (shared with the syncer in `group`).
    cur_file: Arc<dyn SegmentFile>,
    /// Bytes written to the current segment (header included), synced or not.
    cur_size: u64,
    /// Length of the current segment file: `cur_size` plus the zero bytes written ahead of the
    /// batches (see [`PREALLOC`]); trimmed back to `cur_size` when the segment is finished.
    cur_len: u64,
    /// Set by a failed write: the current segment may end in a torn batch. The next call (or a
    /// failed sync, which poisons `group`) truncates it back to the end of the last complete
    /// batch and starts a new segment (see [`Wal::recover`]).
    broken: bool,
    /// A recovery dropped written batches since [`Wal::take_lost`] was last called: series
    /// records in them must be written again.
    lost: bool,
    /// Sequence numbers, syncs outside the lock, and their failures.
    group: Arc<GroupSync>,
    /// What open's repair truncated.
    truncated_bytes: u64,
    /// Frame buffer reused across batches.
    scratch: Vec<u8>,
    /// Frames records for the current segment; its delta state covers the frames written to
    /// `cur_file` since the segment began (reset by `next_segment`; after a failed write the
    /// state is ahead of the file, and `broken` makes the next call start a new segment).
    compressor: compress::Compressor,
    /// Sync counters.
    metrics: std::sync::Arc<WalMetrics>,
}

impl Wal {
    /// Opens (creating) the WAL in `dir`, repairing a torn or corrupt tail by truncating at the
    /// last valid record (logged as a warning, never an error).
    pub(crate) fn open(dir: &Path, opts: WalOptions) -> Result<Wal> {
        Self::open_with(dir, opts, Box::new(segment::create_segment_file))
    }

    /// [`Wal::open`] with a custom segment-file opener (the I/O seam for crash tests).
    pub(crate) fn open_with(
        dir: &Path,
        opts: WalOptions,
        opener: Box<SegmentOpener>,
    ) -> Result<Wal> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create WAL dir {}", dir.display()), e))?;
        checkpoint::remove_tmp(dir)?;
        let cp = checkpoint::list_checkpoints(dir)?.pop().map(|(i, _)| i);
        let mut segs = segment::list_segments(dir)?;
        // Segments a checkpoint covers are leftovers of an interrupted cleanup.
        if let Some(cp) = cp {
            for (_, p) in segs.iter().filter(|(i, _)| *i <= cp) {
                remove_file(p)?;
            }
            segs.retain(|(i, _)| *i > cp);
        }
        if let Some(w) = segs
            .windows(2)
            .find(|w| matches!(w, [a, b] if a.0 + 1 != b.0))
            && let [_, b] = w
        {
            return Err(Error::corruption(&b.1, 0, "gap in WAL segment sequence"));
        }
        let truncated_bytes = repair(&segs)?;
        let next = segment::list_segments(dir)?
            .last()
            .map(|(i, _)| i + 1)
            .or(cp.map(|c| c + 1))
            .unwrap_or(0);
        let (file, size) = create_segment(&*opener, dir, next, opts.sync)?;
        let file: Arc<dyn SegmentFile> = Arc::from(file);
        let metrics: Arc<WalMetrics> = Default::default();
        let group = GroupSync::new(
            file.clone(),
            dir.join(segment::segment_name(next)),
            watch::WalPosition {
                segment: next,
                offset: size,
            },
            opts.sync == SyncMode::All,
            metrics.clone(),
        );
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            opener,
            cur_index: next,
            cur_file: file,
            cur_size: size,
            cur_len: size,
            broken: false,
            lost: false,
            group: Arc::new(group),
            truncated_bytes,
            metrics,
            scratch: Vec::new(),
            compressor: compress::Compressor::new(),
        })
    }

    /// Reads the latest checkpoint and then every segment in order, calling `f` per record
    /// ([`Wal::replay_items`] with every record built).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn replay(&self, f: &mut dyn FnMut(Record) -> Result<()>) -> Result<ReplayStats> {
        self.replay_items(&mut |item| match item {
            Item::Samples(s) => f(Record::Samples(s.to_vec())),
            Item::Record(r) => f(r),
        })
    }

    /// Reads the latest checkpoint and then every segment in order, calling `f` per record:
    /// a samples record as a slice of its samples (decoded straight from a delta frame, or
    /// from a plain record into a reused buffer, so nothing is allocated per samples record),
    /// any other as a [`Record`]. Segments are streamed (`segment::stream_segment`).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn replay_items(
        &self,
        f: &mut dyn FnMut(Item<'_>) -> Result<()>,
    ) -> Result<ReplayStats> {
        self.replay_items_from(None, f)
    }

    /// [`Wal::replay_items`] of segments `from` on only (when set: a head snapshot covers the
    /// ones before), without the checkpoint. The caller has checked that segment `from` exists
    /// ([`Wal::first_segment`] `<= from <` [`Wal::current_segment`]).
    pub(crate) fn replay_items_from(
        &self,
        from: Option<u32>,
        f: &mut dyn FnMut(Item<'_>) -> Result<()>,
    ) -> Result<ReplayStats> {
        let mut stats = ReplayStats {
            records: 0,
            truncated_bytes: self.truncated_bytes,
        };
        let (mut buf, mut samples) = (Vec::new(), Vec::new());
        let paths = match from {
            None => self.replay_paths()?,
            Some(first) => segment::list_segments(&self.dir)?
                .into_iter()
                .filter(|(i, _)| *i >= first)
                .map(|(_, p)| p)
                .collect(),
        };
        for p in &paths {
            let mut dec = compress::Decompressor::default();
            checkpoint::read_segment_with(p, &mut buf, &mut |r| {
                stats.records += 1;
                let off = r.record_offset();
                match r.payload_decoded(&mut dec)? {
                    compress::Payload::Samples(s) => f(Item::Samples(s)),
                    compress::Payload::Record(b) if b.first() == Some(&record::TYPE_SAMPLES) => {
                        samples.clear();
                        record::decode_samples(b, &mut samples).map_err(|e| match e {
                            Error::Corruption { reason, .. } => {
                                Error::corruption(p, off as u64, reason)
                            }
                            other => other,
                        })?;
                        f(Item::Samples(&samples))
                    }
                    compress::Payload::Record(b) => {
                        f(Item::Record(checkpoint::decode_at(b, p, off)?))
                    }
                }
            })?;
        }
        Ok(stats)
    }

    /// The files a replay reads, in order: the latest checkpoint's segments, then the segments
    /// after it.
    fn replay_paths(&self) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        let cp = checkpoint::list_checkpoints(&self.dir)?.pop();
        if let Some((_, cp_dir)) = &cp {
            paths.extend(segment::list_segments(cp_dir)?.into_iter().map(|(_, p)| p));
        }
        let first = cp.map_or(0, |(i, _)| i + 1);
        paths.extend(
            segment::list_segments(&self.dir)?
                .into_iter()
                .filter(|(i, _)| *i >= first)
                .map(|(_, p)| p),
        );
        Ok(paths)
    }

    /// Appends already-encoded records (from `record::encode_*`) as one batch and syncs per the
    /// policy. When this returns `Ok`, the batch is durable per [`SyncMode`]. A failed write or
    /// sync (disk full, EIO) leaves the batch unacknowledged; the next call first truncates that
    /// batch away and starts a new segment, so writing resumes once space is back, without a
    /// restart.
    ///
    /// Each record must be 1..=[`segment::MAX_RECORD_LEN`] bytes (`InvalidArgument` otherwise,
    /// without poisoning). A batch is written with one `write(2)` and never split across
    /// segments.
    pub(crate) fn log(&mut self, records: &[&[u8]]) -> Result<()> {
        self.log_with(records, true)
    }

    /// [`Wal::log`], with the sync policy applied only when `sync` is true: an unsynced batch is
    /// in the page cache (it survives a crash of the process, not of the machine) until the next
    /// synced batch or segment close syncs the file.
    ///
    /// Records are framed here, under the caller's lock, because samples records are encoded
    /// against the samples before them in the same segment (`delta.rs`): the batch is framed
    /// for the segment it lands in, and framed again when it has to start a new one.
    pub(crate) fn log_with(&mut self, records: &[&[u8]], sync: bool) -> Result<()> {
        self.log_records(records, sync)?.wait()
    }

    /// [`Wal::log_with`] without waiting for the sync: returns once the batch is written; it is
    /// durable once the ticket's [`SyncTicket::wait`] returns `Ok` (call that after releasing
    /// the WAL's lock, so that concurrent commits share the sync).
    pub(crate) fn log_records(&mut self, records: &[&[u8]], sync: bool) -> Result<SyncTicket> {
        check_lengths(records.iter().copied())?;
        self.log_framed(records.len(), sync, &mut |c, dst| {
            for r in records {
                c.put_frame(dst, r);
            }
        })
    }

    /// [`Wal::log_records`] of records some of which are samples not yet encoded
    /// ([`WalRecord::Samples`]): the segment holds the same bytes as for the records
    /// `record::encode_samples` makes of them, but those records are never built (the frame's
    /// delta body is encoded from the samples).
    pub(crate) fn log_batch(
        &mut self,
        records: &[WalRecord<'_>],
        sync: bool,
    ) -> Result<SyncTicket> {
        check_lengths(records.iter().filter_map(|r| match r {
            WalRecord::Encoded(b) => Some(*b),
            WalRecord::Samples(_) => None,
        }))?;
        if let Some(n) = records.iter().find_map(|r| match r {
            WalRecord::Samples(s) if s.len() > MAX_SAMPLES_PER_RECORD => Some(s.len()),
            _ => None,
        }) {
            return Err(Error::InvalidArgument(format!(
                "WAL samples record of {n} samples, more than {MAX_SAMPLES_PER_RECORD}"
            )));
        }
        self.log_framed(records.len(), sync, &mut |c, dst| {
            for r in records {
                match r {
                    WalRecord::Encoded(b) => c.put_frame(dst, b),
                    WalRecord::Samples(s) => c.put_samples(dst, s),
                }
            }
        })
    }

    /// Frames a batch with `put` (which frames every record of it, in order, with the given
    /// compressor) and writes it: see [`Wal::log_records`]. `put` is called again when the
    /// batch has to start a new segment.
    fn log_framed(
        &mut self,
        n_records: usize,
        sync: bool,
        put: &mut dyn FnMut(&mut compress::Compressor, &mut Vec<u8>),
    ) -> Result<SyncTicket> {
        if n_records == 0 {
            return Ok(SyncTicket::none());
        }
        self.recover()?;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        put(&mut self.compressor, &mut scratch);
        let len = scratch.len() as u64;
        let mut res = Ok(SyncTicket::none());
        if self.cur_size > SEGMENT_HEADER_LEN as u64 && self.cur_size + len > self.opts.segment_size
        {
            // The frames refer to this segment's samples: frame them again for the next one
            // (`next_segment` resets the compressor's state).
            res = self.next_segment(true).map(|()| SyncTicket::none());
            if res.is_ok() {
                scratch.clear();
                put(&mut self.compressor, &mut scratch);
            }
        }
        if res.is_ok() {
            res = self.write_batch(&scratch, sync);
        }
        self.scratch = scratch;
        res
    }

    /// Writes whole frames, framed for the current segment, as one batch; the ticket waits for
    /// the sync the policy asks for (see [`Wal::log_records`]). The caller has recovered and
    /// started a new segment if needed.
    fn write_batch(&mut self, batch: &[u8], sync: bool) -> Result<SyncTicket> {
        if batch.is_empty() {
            return Ok(SyncTicket::none());
        }
        let len = batch.len() as u64;
        if let Err(e) = self.cur_file.write_all(batch) {
            let path = self.segment_path();
            return Err(self.fail(Error::io(
                format!("cannot write WAL segment {}", path.display()),
                e,
            )));
        }
        self.cur_size += len;
        self.preallocate();
        let need = sync && self.opts.sync != SyncMode::Buffer;
        let seq = self.group.wrote(self.end_written(), need);
        if !need {
            group_sync::healthy(&self.metrics);
        }
        Ok(SyncTicket::new(need.then(|| self.group.clone()), seq))
    }

    /// Writes zeros ahead of the batches (unless `Buffer`, whose batches are not synced) once
    /// fewer than half of [`PREALLOC`] bytes are left: the sync that follows flushes them and
    /// the new file size once, and the syncs of the batches that overwrite them write data
    /// only. Never past the segment size (plus a batch). A failed zero write (a full disk)
    /// only costs that saving: batches are appended as before.
    fn preallocate(&mut self) {
        if self.opts.sync == SyncMode::Buffer || self.cur_len >= self.cur_size + PREALLOC / 2 {
            return;
        }
        let from = self.cur_len.max(self.cur_size);
        let to = (self.cur_size + PREALLOC).min(self.opts.segment_size.max(self.cur_size));
        if to <= from {
            return;
        }
        match self.cur_file.zero_fill(from, to - from) {
            Ok(()) => self.cur_len = to,
            Err(e) => {
                tracing::debug!(
                    segment = self.cur_index,
                    "cannot preallocate WAL space: {e}"
                );
                self.cur_len = from;
            }
        }
    }

    /// Truncates the current segment's preallocated zero tail (see [`Wal::preallocate`]), so a
    /// finished segment is as long as what was written to it.
    fn trim(&mut self) -> Result<()> {
        if self.cur_len <= self.cur_size {
            return Ok(());
        }
        if let Err(e) = self.cur_file.set_len(self.cur_size) {
            let path = self.segment_path();
            return Err(self.fail(Error::io(
                format!("cannot trim WAL segment {}", path.display()),
                e,
            )));
        }
        self.cur_len = self.cur_size;
        Ok(())
    }

    /// The end of the last batch written, synced or not.
    pub(crate) fn end_written(&self) -> watch::WalPosition {
        watch::WalPosition {
            segment: self.cur_index,
            offset: self.cur_size,
        }
    }

    /// Marks the WAL broken after a failed write or sync and records the error for readiness.
    fn fail(&mut self, e: Error) -> Error {
        self.broken = true;
        *self.metrics.failing.lock() = Some(e.to_string());
        e
    }

    /// After a failed write or sync: truncates the current segment back to the end of its last
    /// complete (acknowledged, or acknowledgeable) batch (shrinking needs no free space), syncs
    /// it, and starts a new segment, so neither a torn frame nor an unsynced batch sits between
    /// acknowledged ones (replay would stop at it and drop every later segment). Batches written
    /// after that end are lost: their waiters get the error (see `group_sync.rs`). Fails,
    /// staying broken, while the disk still refuses. Writes call it first; a committer calls it
    /// before deciding which series records its batch needs (see [`Wal::take_lost`]).
    pub(crate) fn recover(&mut self) -> Result<()> {
        if !self.broken && !self.group.poisoned() {
            return Ok(());
        }
        self.broken = true;
        let path = self.segment_path();
        let (size, lost) = self.group.begin_recovery("a later write or sync failed");
        self.lost |= lost;
        self.cur_size = size;
        self.cur_len = size;
        let sync = self.opts.sync != SyncMode::Buffer;
        let r = self.cur_file.set_len(size).and_then(|()| {
            if sync {
                self.cur_file.sync_all()
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            let context = format!(
                "cannot truncate WAL segment {} after a failed write",
                path.display()
            );
            self.group.fail(context.clone(), &e);
            return Err(self.fail(Error::io(context, e)));
        }
        self.next_segment(false)?;
        self.group.end_recovery();
        self.broken = false;
        tracing::info!(
            segment = self.cur_index,
            "WAL recovered from a failed write: new segment"
        );
        Ok(())
    }

    fn segment_path(&self) -> PathBuf {
        self.dir.join(segment::segment_name(self.cur_index))
    }

    /// True once after a recovery dropped written batches: series records logged in them are
    /// gone, so the caller must log the records of every series again when next used.
    pub(crate) fn take_lost(&mut self) -> bool {
        std::mem::take(&mut self.lost)
    }

    /// The WAL's sync coordination, whose [`GroupSync::written_end`] caps what a
    /// [`watch::WalWatcher`] reads of the segment being written.
    pub(crate) fn group(&self) -> Arc<GroupSync> {
        self.group.clone()
    }

    /// The position after the last complete record: synced per the policy (for WAL readers
    /// starting at the end; a batch still waiting for its sync is not included).
    pub(crate) fn end_position(&self) -> watch::WalPosition {
        self.group.done_end()
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the segment being written.
    pub(crate) fn current_segment(&self) -> u32 {
        self.cur_index
    }

    /// Index of the oldest segment on disk (the one after the checkpoint when none is left).
    pub(crate) fn first_segment(&self) -> Result<u32> {
        let cp = checkpoint::list_checkpoints(&self.dir)?
            .pop()
            .map(|(i, _)| i);
        Ok(segment::list_segments(&self.dir)?
            .into_iter()
            .map(|(i, _)| i)
            .find(|i| cp.is_none_or(|c| *i > c))
            .unwrap_or(self.cur_index))
    }

    /// Closes the current segment (synced unless `Buffer`) and starts the next; returns the new
    /// segment's index: every batch written so far is in the segments before it. For a head
    /// snapshot, which covers those segments.
    pub(crate) fn cut_segment(&mut self) -> Result<u32> {
        self.recover()?;
        self.next_segment(true)?;
        Ok(self.cur_index)
    }

    /// The syncer, for [`GroupSync::sync_ahead`] without the WAL's lock (None under `Buffer`,
    /// whose segment cuts do not sync).
    pub(crate) fn syncer(&self) -> Option<Arc<GroupSync>> {
        (self.opts.sync != SyncMode::Buffer).then(|| self.group.clone())
    }

    /// The sync counters, for metrics.
    pub(crate) fn metrics(&self) -> std::sync::Arc<WalMetrics> {
        self.metrics.clone()
    }

    /// Closes the current segment and starts the next one. Unless `Buffer` (or `sync_old` is
    /// false: recovery synced it already), the current segment is synced first, so every batch
    /// in it is durable before any in the next one can be acknowledged. A failure (say the disk
    /// is full) keeps the current segment; the half-created next one is removed so that a later
    /// attempt can create it again.
    fn next_segment(&mut self, sync_old: bool) -> Result<()> {
        self.trim()?;
        if sync_old && self.opts.sync != SyncMode::Buffer {
            self.group.sync_now()?;
        }
        let next = self.cur_index + 1;
        match create_segment(&*self.opener, &self.dir, next, self.opts.sync) {
            Ok((file, size)) => {
                let file: Arc<dyn SegmentFile> = Arc::from(file);
                self.cur_file = file.clone();
                self.cur_size = size;
                self.cur_len = size;
                self.cur_index = next;
                self.group
                    .switch_file(file, self.segment_path(), self.end_written());
                self.compressor.reset();
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(self.dir.join(segment::segment_name(next)));
                Err(self.fail(e))
            }
        }
    }

    /// Writes a checkpoint of all closed segments: series records for which `keep_series(ref)` is
    /// true, samples with `t >= mint` of kept series, tombstones of kept series; then deletes
    /// the segments and older checkpoints it covers. Starts a new segment first.
    ///
    /// Tombstones whose `maxt < mint` are dropped too. Blocks appends for its duration (it holds
    /// `&mut self`).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn checkpoint(
        &mut self,
        keep_series: &dyn Fn(u64) -> bool,
        mint: i64,
    ) -> Result<()> {
        self.checkpoint_before(keep_series, mint, None)
    }

    /// [`Wal::checkpoint`] of the segments before `keep_from` only (when set): the segments a
    /// WAL reader still needs stay as they are (see `watch.rs`).
    pub(crate) fn checkpoint_before(
        &mut self,
        keep_series: &dyn Fn(u64) -> bool,
        mint: i64,
        keep_from: Option<u32>,
    ) -> Result<()> {
        self.recover()?;
        let cps = checkpoint::list_checkpoints(&self.dir)?;
        let first = cps.last().map_or(0, |(i, _)| i + 1);
        let last = match keep_from {
            Some(k) if k <= self.cur_index => match k.checked_sub(1) {
                Some(l) if l >= first => l,
                _ => return Ok(()),
            },
            _ => {
                let last = self.cur_index;
                self.next_segment(true)?;
                last
            }
        };
        let prev = cps.last().map(|(_, p)| p.as_path());
        let segs: Vec<(u32, PathBuf)> = segment::list_segments(&self.dir)?
            .into_iter()
            .filter(|(i, _)| (first..=last).contains(i))
            .collect();
        checkpoint::write(&self.dir, prev, &segs, last, keep_series, mint)?;
        for (_, p) in &segs {
            remove_file(p)?;
        }
        for (_, p) in &cps {
            std::fs::remove_dir_all(p)
                .map_err(|e| Error::io(format!("cannot remove {}", p.display()), e))?;
        }
        Ok(())
    }

    /// Bytes written to the segments from `from` on (closed ones by their file size, the
    /// current one as written so far): the WAL a replay after a snapshot covering the segments
    /// before `from` would read.
    pub(crate) fn bytes_since(&self, from: u32) -> u64 {
        // The usual case (a snapshot cuts a segment and starts from it): no listing of the
        // directory under the WAL's lock, four times a second (`db::SNAPSHOT_CHECK_INTERVAL`).
        if from >= self.cur_index {
            return if from == self.cur_index {
                self.cur_size
            } else {
                0
            };
        }
        let closed: u64 = segment::list_segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|(i, _)| (from..self.cur_index).contains(i))
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        closed
            + if from <= self.cur_index {
                self.cur_size
            } else {
                0
            }
    }

    /// Deletes the segments before `upto`, whose batches a durable head snapshot holds, with
    /// every older checkpoint, leaving `checkpoint.{upto - 1}` with the series records of
    /// `series` only (WAL readers and a replay without the snapshot still learn every series;
    /// see `checkpoint::write_series`). Segment `upto` and later stay. Nothing happens when no
    /// segment is below `upto`. The checkpoint is durable before anything is deleted.
    pub(crate) fn drop_covered(
        &mut self,
        upto: u32,
        series: &mut checkpoint::FillSeries<'_>,
    ) -> Result<()> {
        self.recover()?;
        let upto = upto.min(self.cur_index);
        let segs: Vec<(u32, PathBuf)> = segment::list_segments(&self.dir)?
            .into_iter()
            .filter(|(i, _)| *i < upto)
            .collect();
        let Some(last) = upto.checked_sub(1).filter(|_| !segs.is_empty()) else {
            return Ok(());
        };
        let cps = checkpoint::list_checkpoints(&self.dir)?;
        if cps.last().is_some_and(|(i, _)| *i >= last) {
            return Ok(()); // already covered by a later checkpoint
        }
        checkpoint::write_series(&self.dir, last, series)?;
        for (_, p) in &segs {
            remove_file(p)?;
        }
        for (_, p) in &cps {
            std::fs::remove_dir_all(p)
                .map_err(|e| Error::io(format!("cannot remove {}", p.display()), e))?;
        }
        Ok(())
    }

    /// Flushes and syncs the current segment (whatever the policy), so that every batch
    /// written so far is durable; waits for a sync in progress first. The segment keeps its
    /// preallocated zero tail (the next open trims it; a close with head snapshots on cuts
    /// the segment first, which trims it).
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.recover()?;
        self.group.sync_now()
    }
}

/// Zero bytes a segment keeps written ahead of its batches (see [`Wal::preallocate`]). On this
/// ext4 (no journal) an `fdatasync` after a write inside the file's length took 0.08–0.09 ms
/// (median), one after an append that grew it 0.17–0.20 ms, and one inside `fallocate`d space
/// 0.16–0.17 ms (unwritten extents are converted at the sync, also metadata): so the space is
/// written with zeros, not `fallocate`d. The zeros are a crash's leftover only in the newest
/// segment: `repair` truncates such a tail at open without counting it as corruption.
const PREALLOC: u64 = 1 << 20;

/// One record of a batch for [`Wal::log_batch`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum WalRecord<'a> {
    /// A record as `record::encode_*` wrote it.
    Encoded(&'a [u8]),
    /// The samples of a samples record (at most [`MAX_SAMPLES_PER_RECORD`]).
    Samples(&'a [RefSample]),
}

/// Most samples of a [`WalRecord::Samples`]: each takes at most 28 bytes (two 10-byte varints
/// and the value) after the record's 17-byte header, so its record is at most
/// [`segment::MAX_RECORD_LEN`] bytes.
pub(crate) const MAX_SAMPLES_PER_RECORD: usize = (segment::MAX_RECORD_LEN - 17) / 28;

/// `InvalidArgument` unless every record is 1..=[`segment::MAX_RECORD_LEN`] bytes.
fn check_lengths<'a>(mut records: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    match records.find(|r| r.is_empty() || r.len() > segment::MAX_RECORD_LEN) {
        Some(r) => Err(Error::InvalidArgument(format!(
            "WAL record of {} bytes not in 1..={}",
            r.len(),
            segment::MAX_RECORD_LEN
        ))),
        None => Ok(()),
    }
}

fn remove_file(p: &Path) -> Result<()> {
    std::fs::remove_file(p).map_err(|e| Error::io(format!("cannot remove {}", p.display()), e))
}

/// Creates segment `index` in `dir` with its header; fsyncs the directory unless `Buffer`.
fn create_segment(
    opener: &SegmentOpener,
    dir: &Path,
    index: u32,
    sync: SyncMode,
) -> Result<(Box<dyn SegmentFile>, u64)> {
    let path = dir.join(segment::segment_name(index));
    let ctx = |what: &str| format!("cannot {what} WAL segment {}", path.display());
    let f = opener(&path).map_err(|e| Error::io(ctx("create"), e))?;
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
    segment::put_segment_header(&mut header);
    f.write_all(&header)
        .map_err(|e| Error::io(ctx("write"), e))?;
    if sync != SyncMode::Buffer {
        f.sync_all().map_err(|e| Error::io(ctx("fsync"), e))?;
        segment::fsync_dir(dir)?;
    }
    Ok((f, header.len() as u64))
}

/// Validates `segs` in order; at the first torn or corrupt frame truncates that segment there
/// and deletes every later segment. Returns the bytes dropped. The newest segment's
/// preallocated zero tail (all zero bytes from the end of its last valid frame) is truncated
/// too, but is not a corruption: no warning, not counted.
fn repair(segs: &[(u32, PathBuf)]) -> Result<u64> {
    let mut buf = Vec::new();
    for (n, (_, path)) in segs.iter().enumerate() {
        let end = segment::stream_segment(path, &mut buf, &mut |_| Ok(()))?;
        let Some(err) = end.tail else { continue };
        if let Error::Corruption { reason, .. } = &err
            && reason.starts_with("unsupported segment version")
        {
            return Err(err);
        }
        let valid = end.valid_len as u64;
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot read WAL segment {}", path.display()), e))?
            .len();
        let later = segs.get(n + 1..).unwrap_or(&[]);
        // The newest segment's preallocated space that no batch reached (a crash or kill left
        // it; see `Wal::preallocate`): nothing was lost, so it is trimmed without a warning.
        // Zeros after a frame's first byte are a torn frame (the tail is not all zero).
        let zeros = later.is_empty()
            && valid >= SEGMENT_HEADER_LEN as u64
            && segment::zero_tail(path, valid)
                .map_err(|e| Error::io(format!("cannot read WAL segment {}", path.display()), e))?;
        if zeros {
            tracing::debug!(
                segment = %path.display(),
                offset = valid,
                "trimming the preallocated zero tail of the newest WAL segment"
            );
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(format!("cannot open WAL segment {}", path.display()), e))?;
            f.set_len(valid).and_then(|()| f.sync_all()).map_err(|e| {
                Error::io(format!("cannot truncate WAL segment {}", path.display()), e)
            })?;
            return Ok(0);
        }
        let mut dropped = size.saturating_sub(valid);
        tracing::warn!(
            segment = %path.display(),
            offset = valid,
            later_segments = later.len(),
            error = %err,
            "WAL corruption: truncating at the last valid record"
        );
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(format!("cannot open WAL segment {}", path.display()), e))?;
        f.set_len(valid)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(format!("cannot truncate WAL segment {}", path.display()), e))?;
        for (_, p) in later {
            dropped += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            remove_file(p)?;
        }
        if let Some(dir) = path.parent() {
            segment::fsync_dir(dir)?;
        }
        return Ok(dropped);
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
