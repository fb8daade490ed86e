//! WAL tailing: a reader that follows the segments while the head writes them (the remote-write
//! queues' source), and the retention hook that keeps segments a reader still needs.
//!
//! A [`WalWatcher`] starts at a [`WalPosition`] (segment index, byte offset of the next frame).
//! Before returning any sample it returns every series record written before that position (from
//! the latest checkpoint and the older segments), so the caller can resolve the refs of the
//! samples that follow. It reads files with ordinary `read(2)` calls and never takes the WAL's
//! lock: a frame that is still being written looks like a torn tail and is read again on the
//! next call. Memory is bounded by the read chunk ([`READ_CHUNK`], or one record when a record
//! is larger), whatever the backlog. A watcher of a live WAL ([`WalWatcher::following`]) reads
//! the segment being written only up to the end of the last batch written
//! ([`GroupSync::written_end`]), not into the zeros the writer keeps written ahead of its
//! batches (up to 1 MiB, `Wal::preallocate`), so a caught-up reader's poll reads nothing.
//!
//! Segments a reader still needs are kept by [`WalKeep`] handles: before a checkpoint deletes
//! segments, the database asks [`Keepers::first_needed`] for the lowest segment any handle
//! holds and checkpoints only the segments below it, unless the retained segments exceed the
//! `max_backlog` bound (bytes, or age since last written), in which case the oldest are
//! released anyway and counted
//! ([`WalWatchMetrics`]). A reader whose segment was deleted skips to the first remaining
//! segment and counts the skip.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::checkpoint;
use super::compress::Decompressor;
use super::group_sync::GroupSync;
use super::record::{self, Record};
use super::segment::{self, SEGMENT_HEADER_LEN, SegmentReader};
use crate::error::{Error, Result};
use crate::histogram::FloatHistogram;
use crate::model::Labels;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Bytes read from a segment per call when catching up.
pub const READ_CHUNK: usize = 4 << 20;

/// A place in the WAL: the segment index and the byte offset of the next frame in it (0 and
/// the header length both mean "the first frame").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPosition {
    /// Segment index (the file name).
    pub segment: u32,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// A series definition read from the WAL.
#[derive(Clone, Debug, PartialEq)]
pub struct WalSeries {
    /// The head's ref for the series, used by later samples.
    pub series_ref: u64,
    /// Its labels.
    pub labels: Labels,
}

/// A sample read from the WAL.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WalSample {
    /// The series ref (see [`WalSeries`]).
    pub series_ref: u64,
    /// Timestamp, ms.
    pub t: i64,
    /// Value (staleness markers are the stale NaN bit pattern).
    pub v: f64,
}

/// A native-histogram sample read from the WAL.
#[derive(Clone, Debug, PartialEq)]
pub struct WalHistogram {
    /// The series ref (see [`WalSeries`]).
    pub series_ref: u64,
    /// Timestamp, ms.
    pub t: i64,
    /// The histogram (absolute counts; a staleness marker has a stale NaN `sum`).
    pub h: FloatHistogram,
}

/// One WAL record as a watcher returns it (tombstones are skipped).
#[derive(Clone, Debug, PartialEq)]
pub enum WalEntry {
    /// New series.
    Series(Vec<WalSeries>),
    /// Samples, in commit order.
    Samples(Vec<WalSample>),
    /// Native-histogram samples, in commit order.
    Histograms(Vec<WalHistogram>),
    /// Checkpoint `n` was written and its series (every series the head still holds) were just
    /// returned again: series defined in segments up to `n` and not returned since can no
    /// longer have samples, so a reader may forget them.
    SeriesReset(u32),
}

/// Counters of what the WAL's retention did to readers, shared with metric readers.
#[derive(Debug, Default)]
pub struct WalWatchMetrics {
    /// Segments deleted although a reader still needed them (past the backlog bound).
    pub segments_dropped: AtomicU64,
    /// Bytes of those segments.
    pub bytes_dropped: AtomicU64,
}

/// The set of [`WalKeep`] handles of one database.
#[derive(Default)]
pub(crate) struct Keepers {
    /// Live handles; dead ones are pruned when the set is read.
    handles: Mutex<Vec<Weak<AtomicU32>>>,
    /// What retention released past the bound.
    pub(crate) metrics: Arc<WalWatchMetrics>,
}

/// Keeps WAL segments from `segment()` on from being deleted by a checkpoint (up to the
/// database's backlog bound). Dropping it releases them. May be updated from any thread.
#[derive(Debug)]
pub struct WalKeep {
    segment: Arc<AtomicU32>,
}

impl WalKeep {
    /// Keeps segments from `segment` on (usually the segment of the acknowledged position).
    pub fn set(&self, segment: u32) {
        self.segment.store(segment, Ordering::Release);
    }

    /// The first segment kept.
    pub fn segment(&self) -> u32 {
        self.segment.load(Ordering::Acquire)
    }
}

impl Keepers {
    /// A new handle keeping segments from `segment` on.
    pub(crate) fn keep(&self, segment: u32) -> WalKeep {
        let segment = Arc::new(AtomicU32::new(segment));
        self.handles.lock().push(Arc::downgrade(&segment));
        WalKeep { segment }
    }

    /// The first segment a checkpoint of `dir` must keep (None: no reader needs any), after
    /// applying the bounds on what readers keep before `current` (the segment being written):
    /// `max_backlog` bytes, and `max_age_ms` since a segment was last written (its mtime).
    /// Segments released past a bound are counted.
    pub(crate) fn first_needed(
        &self,
        dir: &Path,
        current: u32,
        max_backlog: Option<u64>,
        max_age_ms: Option<i64>,
    ) -> Option<u32> {
        let min = {
            let mut h = self.handles.lock();
            h.retain(|w| w.strong_count() > 0);
            h.iter()
                .filter_map(Weak::upgrade)
                .map(|a| a.load(Ordering::Acquire))
                .min()?
        };
        if max_backlog.is_none() && max_age_ms.is_none() {
            return Some(min);
        }
        let segs = segment::list_segments(dir).unwrap_or_default();
        let meta = |i: u32| {
            segs.iter()
                .find(|(j, _)| *j == i)
                .and_then(|(_, p)| std::fs::metadata(p).ok())
        };
        let size = |i: u32| meta(i).map_or(0, |m| m.len());
        // Last written before this: too old to keep.
        let too_old = max_age_ms.and_then(|ms| {
            std::time::SystemTime::now()
                .checked_sub(std::time::Duration::from_millis(u64::try_from(ms).ok()?))
        });
        // A segment already gone holds nothing to keep.
        let expired = |i: u32| {
            too_old.is_some_and(|limit| match meta(i) {
                None => true,
                Some(m) => m.modified().is_ok_and(|t| t < limit),
            })
        };
        let mut kept: u64 = (min..current).map(size).sum();
        let mut first = min;
        while first < current && (max_backlog.is_some_and(|l| kept > l) || expired(first)) {
            let s = size(first);
            kept -= s;
            first += 1;
            if segs.iter().any(|(j, _)| *j == first - 1) {
                self.metrics
                    .segments_dropped
                    .fetch_add(1, Ordering::Relaxed);
                self.metrics.bytes_dropped.fetch_add(s, Ordering::Relaxed);
            }
        }
        if first > min {
            tracing::warn!(
                from = min,
                to = first,
                "WAL backlog of remote-write readers exceeds its bound (size or age); deleting the oldest segments"
            );
        }
        Some(first)
    }
}

/// Where the watcher is reading.
enum Source {
    /// Checkpoint segment files still to read (series records only), front first, and the
    /// checkpoint's index.
    Checkpoint(VecDeque<PathBuf>, u32),
    /// The live segments.
    Segments,
}

/// Follows the WAL from a position; see the module docs. Not thread-safe: one per reader.
pub struct WalWatcher {
    dir: PathBuf,
    /// Samples before this position are skipped (series records are returned).
    start: WalPosition,
    source: Source,
    /// The segment being read and the offset of the next unread frame in it.
    pos: WalPosition,
    /// Position after the last entry returned by [`WalWatcher::next_entry`].
    returned: WalPosition,
    /// Decoded entries not yet returned, with the position after each.
    ready: VecDeque<(WalEntry, WalPosition)>,
    /// Read buffer: a segment header followed by file bytes from `pos.offset`.
    buf: Vec<u8>,
    /// Segments skipped because they were deleted or corrupt.
    skipped: u64,
    /// Index of the newest checkpoint read.
    checkpoint_seen: Option<u32>,
    /// Decompresses records (segment format 2).
    dec: Decompressor,
    /// The live WAL's writer, whose written end caps reads of the segment being written.
    writer: Option<Arc<GroupSync>>,
    /// File bytes read so far (segment headers included), for tests of what a poll costs.
    #[cfg(test)]
    bytes_read: u64,
}

impl WalWatcher {
    /// A watcher of the WAL in `dir` starting at `start`.
    pub(crate) fn new(dir: &Path, start: WalPosition) -> Result<WalWatcher> {
        let start = WalPosition {
            segment: start.segment,
            offset: start.offset.max(SEGMENT_HEADER_LEN as u64),
        };
        let mut w = WalWatcher {
            dir: dir.to_path_buf(),
            start,
            source: Source::Segments,
            pos: WalPosition {
                segment: 0,
                offset: SEGMENT_HEADER_LEN as u64,
            },
            returned: start,
            ready: VecDeque::new(),
            buf: Vec::new(),
            skipped: 0,
            checkpoint_seen: None,
            dec: Decompressor::default(),
            writer: None,
            #[cfg(test)]
            bytes_read: 0,
        };
        let first = w.load_checkpoint()?;
        let segs = segment::list_segments(dir)?;
        w.pos.segment = segs
            .iter()
            .map(|(i, _)| *i)
            .find(|i| *i >= first)
            .unwrap_or(first)
            .min(start.segment);
        if start.segment < first {
            // The start is gone (covered by the checkpoint): samples up to it are lost.
            w.skipped += u64::from(first - start.segment);
            w.start = WalPosition {
                segment: first,
                offset: SEGMENT_HEADER_LEN as u64,
            };
            w.pos.segment = w.pos.segment.max(first);
            w.returned = w.start;
        }
        Ok(w)
    }

    /// A watcher of the live WAL in `dir` written by the WAL whose sync coordination is
    /// `writer`: it never reads past the end of the last batch written (see the module docs).
    pub(crate) fn following(
        dir: &Path,
        start: WalPosition,
        writer: Arc<GroupSync>,
    ) -> Result<WalWatcher> {
        let mut w = Self::new(dir, start)?;
        w.writer = Some(writer);
        Ok(w)
    }

    /// The readable length of the current segment, whose file is `file_len` bytes long: up to
    /// the writer's written end `end` when it is writing this segment. Read the end before the
    /// file's length: within a segment the file only grows past a published end (the trim at a
    /// segment's finish stops at the last batch, and the end moves on only after it).
    fn readable(&self, end: Option<WalPosition>, file_len: u64) -> u64 {
        match end {
            Some(e) if e.segment == self.pos.segment => file_len.min(e.offset),
            _ => file_len,
        }
    }

    /// Queues the latest checkpoint's files for reading; returns the first segment after it.
    fn load_checkpoint(&mut self) -> Result<u32> {
        let Some((idx, cp)) = checkpoint::list_checkpoints(&self.dir)?.pop() else {
            return Ok(0);
        };
        let files = segment::list_segments(&cp)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        self.source = Source::Checkpoint(files, idx);
        self.checkpoint_seen = Some(idx);
        Ok(idx + 1)
    }

    /// Position after the last entry [`WalWatcher::next_entry`] returned: a reader that has handled
    /// every entry so far resumes here.
    pub fn position(&self) -> WalPosition {
        self.returned
    }

    /// Segments skipped so far because they were deleted before they were read (backlog bound)
    /// or were corrupt.
    pub fn skipped_segments(&self) -> u64 {
        self.skipped
    }

    /// The next record, or `None` when the reader has caught up with the writer (call again
    /// later). Series records come before the samples that use them.
    pub fn next_entry(&mut self) -> Result<Option<WalEntry>> {
        loop {
            if let Some((e, pos)) = self.ready.pop_front() {
                self.returned = self.returned.max(pos);
                return Ok(Some(e));
            }
            let progressed = match &mut self.source {
                Source::Checkpoint(files, idx) => match files.pop_front() {
                    Some(p) => {
                        self.read_checkpoint_file(&p)?;
                        true
                    }
                    None => {
                        let reset = WalEntry::SeriesReset(*idx);
                        self.ready.push_back((reset, self.returned));
                        self.source = Source::Segments;
                        true
                    }
                },
                Source::Segments => self.read_segment()?,
            };
            if !progressed {
                return Ok(None);
            }
        }
    }

    fn read_checkpoint_file(&mut self, path: &Path) -> Result<()> {
        let mut buf = Vec::new();
        let ready = &mut self.ready;
        let pos = self.returned;
        checkpoint::read_segment(path, &mut buf, &mut |payload, off| {
            if let Record::Series(s) = checkpoint::decode_at(payload, path, off)? {
                ready.push_back((series_entry(s), pos));
            }
            Ok(())
        })
    }

    /// Reads more of the current segment into `ready`. `false` when nothing new is there yet.
    fn read_segment(&mut self) -> Result<bool> {
        let path = self.dir.join(segment::segment_name(self.pos.segment));
        let end = self.writer.as_ref().map(|g| g.written_end());
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.segment_gone(),
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        let len = self.readable(end, len);
        let got = self.fill(&mut file, &path, len, READ_CHUNK)?;
        let (frames, stop) = self.decode_buf(&path)?;
        if frames > 0 {
            return Ok(true);
        }
        // Nothing whole in the buffer. A record larger than the chunk: read it whole.
        if let Some(need) = stop.announced
            && (got as u64) < len - self.pos.offset.min(len)
        {
            self.fill(&mut file, &path, len, need)?;
            if self.decode_buf(&path)?.0 > 0 {
                return Ok(true);
            }
        }
        // Caught up with this segment. It is finished once a later one exists; read it once
        // more after seeing that, as the writer may have appended before switching.
        if !self.has_later_segment()? {
            return Ok(false);
        }
        let end2 = self.writer.as_ref().map(|g| g.written_end());
        let len2 = self.readable(end2, std::fs::metadata(&path).map_or(len, |m| m.len()));
        if len2 != len {
            return Ok(true);
        }
        if self.pos.offset < len {
            tracing::warn!(
                segment = %path.display(),
                offset = self.pos.offset,
                "corrupt record in a finished WAL segment; skipping the rest of it"
            );
            self.skipped += 1;
        }
        self.pos = WalPosition {
            segment: self.pos.segment + 1,
            offset: SEGMENT_HEADER_LEN as u64,
        };
        // A new checkpoint: re-read its series so the reader can forget the dead ones.
        let newest = checkpoint::list_checkpoints(&self.dir)?.last().map(|c| c.0);
        if newest > self.checkpoint_seen {
            self.load_checkpoint()?;
        }
        Ok(true)
    }

    /// Reads up to `max` bytes from `pos.offset` into `buf` (after a copy of a header).
    fn fill(
        &mut self,
        file: &mut std::fs::File,
        path: &Path,
        len: u64,
        max: usize,
    ) -> Result<usize> {
        self.buf.clear();
        if self.pos.offset < SEGMENT_HEADER_LEN as u64 {
            self.pos.offset = SEGMENT_HEADER_LEN as u64;
        }
        if len < SEGMENT_HEADER_LEN as u64 || self.pos.offset >= len {
            return Ok(0);
        }
        // Check the file's own header once per segment.
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        let io = |e| Error::io(format!("cannot read {}", path.display()), e);
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_exact(&mut header).map_err(io)?;
        let mut hr = SegmentReader::new(&header, path);
        hr.next();
        if let Some(e) = hr.take_err() {
            return Err(e);
        }
        self.buf.extend_from_slice(&header);
        let avail = len.saturating_sub(self.pos.offset);
        let n = usize::try_from(avail).unwrap_or(usize::MAX).min(max);
        file.seek(SeekFrom::Start(self.pos.offset)).map_err(io)?;
        let start = self.buf.len();
        self.buf.resize(start + n, 0);
        let got = read_full(file, self.buf.get_mut(start..).unwrap_or_default()).map_err(io)?;
        self.buf.truncate(start + got);
        #[cfg(test)]
        {
            self.bytes_read += (SEGMENT_HEADER_LEN + got) as u64;
        }
        Ok(got)
    }

    /// Decodes the whole frames in `buf` into `ready`, advancing `pos`. Returns how many, and
    /// where it stopped.
    fn decode_buf(&mut self, path: &Path) -> Result<(usize, Stop)> {
        let mut r = SegmentReader::new(&self.buf, path);
        let base = self.pos.offset;
        if base == SEGMENT_HEADER_LEN as u64 {
            // Samples frames refer to the segment's earlier ones (`delta.rs`): a segment is
            // decoded from its first frame on, with a fresh state.
            self.dec.reset();
        }
        let mut n = 0;
        let mut end = base;
        while r.next() {
            end = base + (r.valid_len() - SEGMENT_HEADER_LEN) as u64;
            let here = WalPosition {
                segment: self.pos.segment,
                offset: end,
            };
            n += 1;
            let rec = match r.record(&mut self.dec).and_then(record::decode) {
                Ok(rec) => rec,
                Err(e) => {
                    // The frames before this one are decoded (and the delta state holds them):
                    // a later call resumes at this frame, never decodes them twice.
                    let at = base + (r.record_offset() - SEGMENT_HEADER_LEN) as u64;
                    self.pos.offset = at;
                    return Err(match e {
                        Error::Corruption { reason, .. } => Error::corruption(path, at, reason),
                        other => other,
                    });
                }
            };
            match rec {
                Record::Series(s) => self.ready.push_back((series_entry(s), here)),
                Record::Samples(_) | Record::Histograms(_) => {
                    // Samples before the start position were handled by an earlier reader.
                    let before = WalPosition {
                        segment: self.pos.segment,
                        offset: base + (r.record_offset() - SEGMENT_HEADER_LEN) as u64,
                    };
                    if before < self.start {
                        continue;
                    }
                    let entry = match rec {
                        Record::Samples(s) => WalEntry::Samples(
                            s.into_iter()
                                .map(|s| WalSample {
                                    series_ref: s.series,
                                    t: s.t,
                                    v: s.v,
                                })
                                .collect(),
                        ),
                        Record::Histograms(h) => WalEntry::Histograms(
                            h.into_iter()
                                .map(|h| WalHistogram {
                                    series_ref: h.series,
                                    t: h.t,
                                    h: h.h,
                                })
                                .collect(),
                        ),
                        _ => unreachable!("BUG: only sample records reach this arm"),
                    };
                    self.ready.push_back((entry, here));
                }
                Record::Tombstones(_) => {}
            }
        }
        // The length of an incomplete frame at the stop, if it announces one.
        let valid = r.valid_len();
        let announced = self
            .buf
            .get(valid..valid + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .map(|w| segment::payload_len(w) + segment::FRAME_HEADER_LEN)
            .filter(|l| *l <= segment::MAX_RECORD_LEN + segment::FRAME_HEADER_LEN);
        self.pos.offset = end;
        Ok((n, Stop { announced }))
    }

    fn has_later_segment(&self) -> Result<bool> {
        Ok(segment::list_segments(&self.dir)?
            .iter()
            .any(|(i, _)| *i > self.pos.segment))
    }

    /// The current segment does not exist: either not created yet, or deleted by a checkpoint
    /// (skip to the first remaining one, re-reading the checkpoint's series).
    fn segment_gone(&mut self) -> Result<bool> {
        let segs = segment::list_segments(&self.dir)?;
        let Some(next) = segs.iter().map(|(i, _)| *i).find(|i| *i > self.pos.segment) else {
            return Ok(false);
        };
        tracing::warn!(
            from = self.pos.segment,
            to = next,
            "WAL segments deleted before a remote-write reader read them; skipping"
        );
        self.skipped += u64::from(next - self.pos.segment);
        let skip_to = WalPosition {
            segment: next,
            offset: SEGMENT_HEADER_LEN as u64,
        };
        self.pos = skip_to;
        self.start = self.start.max(skip_to);
        self.load_checkpoint()?;
        self.returned = self.returned.max(skip_to);
        Ok(true)
    }
}

/// Where decoding a buffer stopped.
struct Stop {
    /// Bytes of the incomplete frame at the stop (header included), when its length is sane.
    announced: Option<usize>,
}

fn series_entry(s: Vec<record::RefSeries>) -> WalEntry {
    WalEntry::Series(
        s.into_iter()
            .map(|s| WalSeries {
                series_ref: s.series,
                labels: s.labels,
            })
            .collect(),
    )
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests;
