//! Head snapshots: the head's series and chunks in one file, so that opening after a crash
//! reads the snapshot and replays only the WAL segments written after it.
//!
//! ```text
//! <db>/head_snapshot.NNNNNNNN      covers every WAL segment before NNNNNNNN
//! ┌──────────────┬─────────┬──────────────────────────────────────────┐
//! │ magic "ASNP" │ version │ section … (META, PAGE*, SERIES*, END)    │
//! └──────────────┴─────────┴──────────────────────────────────────────┘
//! section:
//! ┌─────────┬──────────────┬────────────────┬───────────────────────────────────┐
//! │ kind u8 │ len u32 (LE) │ payload [len]  │ CRC32 (IEEE) u32 (LE) of kind,len,payload │
//! └─────────┴──────────────┴────────────────┴───────────────────────────────────┘
//! META    segment uvarint │ next_ref uvarint │ min_time varint │ max_time varint │
//!         pages uvarint (always 5 bytes, padded) │ series uvarint
//! PAGE    seq uvarint │ max_t varint │ current u8 │ zstd(page bytes, see chunk_files.rs)
//! SERIES  zstd(count uvarint │ series entry …)
//! entry   id uvarint │ #labels uvarint │ (name str, value str) … │
//!         #closed uvarint │ (min_t varint, max_t varint, ref uvarint) … │
//!         open u8 [min_t varint, max_t varint, bytes str] │
//!         #ooo uvarint │ (t varint, value bits u64 LE) … │ last u8 [t varint, bits u64 LE]
//! END     empty: the file is complete (its counts match META's)
//! ```
//! `zstd(…)` is one zstd frame declaring its content size (version 1: the bytes as they are).
//! A completed chunk's `ref` has bit 31 set when the chunk is packed (`chunk/packed.rs`)
//! rather than XOR (version 1: never). `str` is a uvarint length and the bytes. Pages come in
//! increasing `seq`; the page being
//! filled, if any, is the last. The file is written to `…tmp` one section at a time (a page is
//! encoded, compressed, written and dropped before the next), then META is rewritten in place
//! with the page count (same length: the count is a padded uvarint), the file fsynced, renamed
//! and the directory fsynced.
//!
//! **Consistent cut.** A snapshot holds the WAL's lock from the segment cut that picks
//! `NNNNNNNN` until its state is copied: no batch is logged meanwhile, and it waits (bounded)
//! until every batch already logged is applied (`Head::unapplied`); cuts, deletions and
//! truncations are excluded by the caller (the database's compaction lock). So the snapshot
//! holds exactly the batches of the segments before `NNNNNNNN` and none of the later ones:
//! replaying the segments from `NNNNNNNN` on applies each batch once.
//!
//! **What is covered.** Every WAL record type changes the head only through what is copied:
//! series records (series and refs, `next_ref`), samples (chunks, out-of-order buffers, the
//! newest sample), tombstones (deletions re-encode chunks in memory). Native histograms are
//! not covered: while any series holds one, no snapshot is written (the WAL alone is replayed).
//!
//! Taking a snapshot deletes no WAL segment (the database deletes those it covers once it is
//! written and read back): a missing, torn or corrupt snapshot (or one whose segment the WAL no
//! longer has) is ignored with a warning and the WAL replayed. Later snapshots of the same head
//! may be deltas on top of this one (`snapshot_delta.rs`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::Head;
use super::append;
use super::series::{ClosedChunk, Series};
pub(crate) use super::snapshot_delta::Chain;
use super::snapshot_load::{Prepare, Prepared, ReadyPage, pipelined, send_in_parts};
use crate::encoding::crc::crc32_parts;
use crate::encoding::{Decbuf, put_uvarint, put_varint};
use crate::error::{Error, Result};
use crate::model::{Labels, Timestamp};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

#[path = "snapshot_codec.rs"]
mod codec;
pub(crate) use codec::*;

pub(crate) use crate::fs::layout::HEAD_SNAPSHOT_PREFIX as SNAPSHOT_PREFIX;
/// Suffix of a snapshot being written.
pub(super) const TMP_SUFFIX: &str = ".tmp";
/// First bytes of a snapshot file.
pub(crate) const MAGIC: [u8; 4] = *b"ASNP";
/// Format version: 2 stores completed chunks packed where that is smaller (chunk refs with
/// `chunk_files::PACKED_REF`) and compresses each page's bytes and each SERIES payload with
/// zstd; version 1 (XOR pages, nothing compressed) is read too.
pub(crate) const VERSION: u8 = 2;
/// zstd level of version 2's compressed parts (level 3 gives 1.70 B/sample on the harness's
/// medium set against 2.43 uncompressed: `benches/README.md`, section "startup").
const ZSTD_LEVEL: i32 = 3;
/// Oldest version read.
const MIN_VERSION: u8 = 1;
/// Magic and version.
pub(super) const HEADER_LEN: usize = MAGIC.len() + 1;
/// Kind and length.
const SECTION_HEADER_LEN: usize = 1 + 4;
const CRC_LEN: usize = 4;
/// Largest section payload (a page is at most 16 MiB, series sections are cut at ~1 MiB).
const MAX_SECTION_LEN: usize = 64 << 20;
/// Series sections are cut once their entries pass this many bytes.
pub(super) const SERIES_SECTION_BYTES: usize = 1 << 20;
/// How long a snapshot waits for logged batches to be applied before giving up.
const APPLY_WAIT: Duration = Duration::from_secs(10);

pub(super) const KIND_META: u8 = 1;
pub(super) const KIND_PAGE: u8 = 2;
pub(super) const KIND_SERIES: u8 = 3;
pub(super) const KIND_END: u8 = 4;

/// Name of the snapshot covering the segments before `segment`.
pub(crate) fn snapshot_name(segment: u32) -> String {
    format!("{SNAPSHOT_PREFIX}{segment:08}")
}

/// The META section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// First WAL segment not covered.
    pub(crate) segment: u32,
    /// The head's next series ref.
    pub(crate) next_ref: u64,
    pub(crate) min_time: Timestamp,
    pub(crate) max_time: Timestamp,
    pub(crate) pages: u64,
    pub(crate) series: u64,
}

/// A PAGE section (tests and the fuzz target; loading reads [`PageFrame`]s).
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PageImage {
    pub(crate) seq: u32,
    pub(crate) max_t: Timestamp,
    /// The page being filled.
    pub(crate) current: bool,
    pub(crate) bytes: Vec<u8>,
}

/// One series entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeriesImage {
    pub(crate) id: u64,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) closed: Vec<ClosedChunk>,
    /// `(min_t, max_t, XOR bytes)` of the open chunk.
    pub(crate) open: Option<(Timestamp, Timestamp, Vec<u8>)>,
    pub(crate) ooo: Vec<(Timestamp, f64)>,
    /// Newest in-order sample `(t, value bits)`.
    pub(crate) last: Option<(Timestamp, u64)>,
}

/// A decoded section (a page's bytes still as stored).
pub(crate) enum Section {
    Meta(Meta),
    Page(PageFrame),
    Series(Vec<SeriesImage>),
}

/// A whole snapshot in memory (tests and the fuzz target; opening streams it instead).
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct Image {
    pub(crate) meta: Meta,
    pub(crate) pages: Vec<PageImage>,
    pub(crate) series: Vec<SeriesImage>,
}

// ---------------------------------------------------------------------------------------
// Taking and loading.

/// Snapshot files in `dir`, sorted by segment.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    crate::fs::numbered_entries(dir, SNAPSHOT_PREFIX)
}

/// Removes leftovers of interrupted snapshot writes.
pub(crate) fn remove_tmp(dir: &Path) -> Result<()> {
    crate::fs::remove_leftovers(dir, SNAPSHOT_PREFIX, TMP_SUFFIX, |p| {
        std::fs::remove_file(p)
    })
}

/// Removes a snapshot file.
pub(crate) fn remove(path: &Path) -> Result<()> {
    std::fs::remove_file(path)
        .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))
}

/// What a snapshot recorded while holding the WAL's lock: where each series stood, in a few
/// words (its chunks are read afterwards, see [`SeriesMark`]).
pub(crate) struct Captured {
    pub(super) meta: Meta,
    /// Bytes per page of the head's chunk store (packed pages are cut at this size too).
    pub(super) page_size: usize,
    /// Sorted by id once [`Captured::sort_by_id`] ran (`take` does, after the WAL lock).
    pub(super) series: Vec<SeriesMark>,
    /// Out-of-order samples of the series that held any: (id, samples), sorted as `series`.
    pub(super) ooo: Vec<(u32, Vec<(Timestamp, f64)>)>,
    /// Re-encode completed XOR chunks in the packed encoding where smaller (false: copy them
    /// as they are, a fast snapshot).
    pub(super) pack: bool,
}

impl Captured {
    /// Series marked.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Sorts the series (and out-of-order samples) by id, comparing the ids the marks hold
    /// (not through each `Arc<Series>`: at 400,000 series that was a cache miss a comparison).
    /// Whole snapshots are written in id order, and deltas walk the series and the chain's
    /// marks (sorted by id) side by side.
    pub(super) fn sort_by_id(&mut self) {
        self.series.sort_unstable_by_key(|m| m.id);
        self.ooo.sort_unstable_by_key(|x| x.0);
    }

    /// The out-of-order samples of series `id` (empty for almost all).
    pub(super) fn ooo_of(&self, id: u32) -> &[(Timestamp, f64)] {
        self.ooo
            .binary_search_by_key(&id, |x| x.0)
            .ok()
            .and_then(|k| self.ooo.get(k))
            .map_or(&[][..], |x| &x.1[..])
    }
}

/// Where one series stood at the cut. Until the snapshot is written nothing but appends
/// change a series (the caller holds the compaction lock: no cut, truncation or deletion), and
/// an append only adds: a completed chunk after the first `closed` ones (which stay as they
/// are), samples at the end of the open chunk, or the open chunk itself completed as chunk
/// number `closed`. An XOR chunk's bytes at `open_samples` samples are its later bytes cut to
/// `open_len`, with that count in the header and the last byte's `open_free` low bits cleared
/// (later samples' bits are ORed into them). So these words rebuild the series as it was at the
/// cut, without a copy of its chunks under the lock ([`SeriesMark::open_bytes`]), and reading
/// only the start of the open chunk's buffer (header and first sample, one cache line), not
/// its end.
pub(super) struct SeriesMark {
    /// Id and labels (immutable).
    pub(super) series: Arc<Series>,
    /// `series`' id (refs are below 2^32), kept here so sorting by it reads no series.
    pub(super) id: u32,
    /// Completed chunks at the cut.
    pub(super) closed: u32,
    /// Bytes of the open chunk at the cut (0: no open chunk).
    pub(super) open_len: u32,
    pub(super) open_samples: u16,
    /// Free low bits of the open chunk's last byte at the cut (`0..=7`).
    open_free: u8,
    /// Whether `last_t`/`last_bits` hold the newest sample.
    pub(super) has_last: bool,
    pub(super) open_min_t: Timestamp,
    pub(super) open_max_t: Timestamp,
    pub(super) last_t: Timestamp,
    pub(super) last_bits: u64,
}

impl SeriesMark {
    /// Records where `d` stands.
    fn new(series: Arc<Series>, d: &super::series::SeriesData) -> Option<Self> {
        let (open_len, open_samples, open_free, open_min_t, open_max_t) = match &d.open {
            Some(o) => {
                let b = o.chunk.bytes();
                (
                    u32::try_from(b.len()).ok()?,
                    u16::try_from(o.chunk.num_samples()).ok()?,
                    u8::try_from(o.chunk.free_bits()).ok().filter(|f| *f < 8)?,
                    o.min_t(),
                    o.max_t(),
                )
            }
            None => (0, 0, 0, 0, 0),
        };
        let last = d.last(series.lock_word());
        let (last_t, last_bits) = last.unwrap_or((0, 0));
        Some(Self {
            id: u32::try_from(series.id()).ok()?,
            series,
            closed: u32::try_from(d.closed.len()).ok()?,
            open_len,
            open_samples,
            open_free,
            has_last: last.is_some(),
            open_min_t,
            open_max_t,
            last_t,
            last_bits,
        })
    }

    /// The completed chunks of the cut, from the series' current state `d`.
    pub(super) fn closed<'d>(&self, d: &'d super::series::SeriesData) -> Result<&'d [ClosedChunk]> {
        d.closed
            .get(..self.closed as usize)
            .ok_or_else(|| self.changed("completed chunks went away"))
    }

    /// Writes into `dst` the open chunk's bytes as they were at the cut, from the series'
    /// current state `d` (the chunk still open, or completed since as chunk `closed`). False
    /// when there was no open chunk.
    pub(super) fn open_bytes(
        &self,
        d: &super::series::SeriesData,
        files: &super::chunk_files::HeadChunkFiles,
        dst: &mut Vec<u8>,
    ) -> Result<bool> {
        dst.clear();
        if self.open_len == 0 {
            return Ok(false);
        }
        match d.closed.get(self.closed as usize) {
            None => {
                let o = d
                    .open
                    .as_ref()
                    .filter(|o| o.min_t() == self.open_min_t)
                    .ok_or_else(|| self.changed("the open chunk went away"))?;
                dst.extend_from_slice(o.chunk.bytes());
            }
            Some(c) if c.min_t == self.open_min_t => files.read_into(c.r, dst)?,
            Some(_) => return Err(self.changed("the open chunk was replaced")),
        }
        let len = self.open_len as usize;
        if dst.len() < len {
            return Err(self.changed("the open chunk shrank"));
        }
        dst.truncate(len);
        if let Some(b) = dst.last_mut() {
            *b &= 0xffu8 << self.open_free;
        }
        match dst.get_mut(..crate::chunk::xor::HEADER_LEN) {
            Some(h) => h.copy_from_slice(&self.open_samples.to_le_bytes()),
            None => return Err(self.changed("the open chunk has no header")),
        }
        Ok(true)
    }

    pub(super) fn changed(&self, what: &str) -> Error {
        Error::corruption(
            "<head snapshot>",
            self.series.id(),
            format!("BUG: series changed under a snapshot: {what}"),
        )
    }
}

/// Where a snapshot's time before and under the WAL's lock went (logged with it).
#[derive(Clone, Copy, Debug)]
pub(super) struct Hold {
    /// Syncing the WAL written so far, before the lock.
    pub(super) presync: Duration,
    /// Under the lock: the segment cut (syncing the batches written since the presync).
    pub(super) cut: Duration,
    /// Under the lock: waiting for logged batches to be applied.
    pub(super) applied: Duration,
    /// Under the lock: recording each series' position.
    pub(super) capture: Duration,
}

impl Hold {
    /// The time the WAL's lock was held (appends waited).
    pub(super) fn locked(&self) -> Duration {
        self.cut + self.applied + self.capture
    }

    /// Milliseconds for the log: (locked, presync, cut, apply wait, capture).
    pub(super) fn ms(&self) -> [f64; 5] {
        [
            self.locked(),
            self.presync,
            self.cut,
            self.applied,
            self.capture,
        ]
        .map(|d| d.as_secs_f64() * 1e3)
    }
}

/// Writes a snapshot of `head` into `dir`, reads it back (every CRC checked) and removes older
/// ones. Returns its first uncovered segment `N` (the caller may then delete the segments
/// before `N`), or None when there is nothing to cover it with (no WAL) or a series holds
/// native histograms.
///
/// The caller excludes head cuts, truncations and deletions for the duration (the database's
/// compaction lock). Appends wait only while each series' position is recorded (a few words
/// per series, see [`SeriesMark`]), not while chunks are read, re-encoded and written.
///
/// With `prev` (the chain of the last snapshot written, see `snapshot_delta.rs`) and no
/// truncation or deletion since, it writes a delta on top of it instead of a whole snapshot.
/// Returns the chain the file written ends.
pub(crate) fn take(
    head: &Head,
    dir: &Path,
    prev: Option<Chain>,
    pack: bool,
) -> Result<Option<Chain>> {
    let start = Instant::now();
    // Truncations and deletions are excluded by the caller until the end.
    let rewrites = head.rewrites.load(Ordering::Acquire);
    // Syncs the batches written so far before the WAL's lock is taken (scrapes commit without
    // a sync: at 400,000 series the segment held up to ~25 MB of them), so the sync of the
    // segment cut under the lock covers only those written in between. A failure here is the
    // cut's to report (it recovers the WAL first).
    let syncer = head.wal.lock().as_ref().and_then(|w| w.syncer());
    if let Some(Err(e)) = syncer.map(|g| g.sync_ahead()) {
        tracing::debug!("head snapshot: WAL sync before the cut failed: {e}");
    }
    let locked = Instant::now();
    let (captured, cut, applied) = {
        let mut wal = head.wal.lock();
        let Some(wal) = wal.as_mut() else {
            return Ok(None);
        };
        let segment = wal.cut_segment()?;
        let cut = locked.elapsed();
        wait_applied(head)?;
        let applied = locked.elapsed();
        (capture(head, segment), cut, applied)
    };
    let held = locked.elapsed();
    let hold = Hold {
        presync: locked - start,
        cut,
        applied: applied - cut,
        capture: held - applied,
    };
    let Some(mut c) = captured else {
        tracing::info!("head snapshot skipped: native histograms are not covered");
        return Ok(None);
    };
    c.sort_by_id();
    c.pack = pack;
    match prev {
        Some(prev) if prev.rewrites == rewrites => {
            return super::snapshot_delta::write(head, dir, &c, prev, start, hold).map(Some);
        }
        // Its marks are not needed for a whole snapshot.
        _ => drop(prev),
    }
    let mut meta = c.meta.clone();
    meta.series = c.series.len() as u64;
    let path = dir.join(snapshot_name(meta.segment));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", snapshot_name(meta.segment)));
    let res = write_file(&tmp, &mut meta, &c, head).and_then(|()| {
        std::fs::rename(&tmp, &path)
            .map_err(|e| Error::io(format!("cannot rename {}", tmp.display()), e))?;
        crate::fs::fsync_dir(dir)
    });
    let marks = Chain::marks(&c);
    drop(c);
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    let written = locked.elapsed() - held;
    if let Err(e) = verify(&path) {
        // Never the only copy of anything: the WAL segments it covers are all still there.
        let _ = remove(&path);
        return Err(e);
    }
    for (seg, p) in list(dir)? {
        if seg != meta.segment {
            remove(&p)?;
        }
    }
    super::snapshot_delta::remove_all(dir)?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let ms = hold.ms();
    tracing::info!(
        snapshot = %path.display(),
        series = meta.series,
        wal_lock_ms = ms[0],
        presync_ms = ms[1],
        cut_ms = ms[2],
        apply_wait_ms = ms[3],
        capture_ms = ms[4],
        write_ms = written.as_secs_f64() * 1e3,
        total_ms = start.elapsed().as_secs_f64() * 1e3,
        "head snapshot written"
    );
    Ok(Some(Chain {
        base: meta.segment,
        base_bytes: bytes,
        last: meta.segment,
        deltas: 0,
        delta_bytes: 0,
        pages: u32::try_from(meta.pages).unwrap_or(u32::MAX),
        rewrites,
        marks,
    }))
}

/// Opens the snapshot at `path` for reading through its sections.
pub(super) fn open_reader(path: &Path) -> Result<Reader<'_, BufReader<std::fs::File>>> {
    open_framed(path, MAGIC, MIN_VERSION..=VERSION)
}

/// Opens a file in the snapshot framing that starts with `magic` and a version in `versions`
/// (snapshots, and the deltas of `snapshot_delta.rs`).
pub(super) fn open_framed(
    path: &Path,
    magic: [u8; 4],
    versions: std::ops::RangeInclusive<u8>,
) -> Result<Reader<'_, BufReader<std::fs::File>>> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?
        .len();
    Reader::with_magic(
        BufReader::with_capacity(1 << 20, f),
        path,
        len,
        magic,
        versions,
    )
}

/// Reads the snapshot at `path` through, checking every section's CRC, order and counts (the
/// SERIES payloads are decompressed for their counts, their entries not decoded: the bytes
/// are those just encoded, what is checked is that they reached the file).
fn verify(path: &Path) -> Result<()> {
    let mut r = open_reader(path)?;
    let (kind, p) = r.next()?;
    let meta = match (kind, decode_meta(p)) {
        (KIND_META, Some(m)) => m,
        _ => return Err(r.corrupt("snapshot does not start with a valid META section")),
    };
    let (mut pages, mut series) = (0u64, 0u64);
    loop {
        let (kind, p) = r.next()?;
        match kind {
            KIND_PAGE => pages += 1,
            KIND_SERIES => {
                let n = unzstd(p).and_then(|b| crate::encoding::varint::uvarint(&b).map(|x| x.0));
                series += n.ok_or_else(|| r.corrupt("bad SERIES section"))?;
            }
            KIND_END if pages == meta.pages && series == meta.series && r.off == r.len => {
                return Ok(());
            }
            _ => return Err(r.corrupt("snapshot sections do not match META")),
        }
    }
}

/// Waits until every batch logged so far is applied (the caller holds the WAL's lock, so no
/// new one is logged).
pub(super) fn wait_applied(head: &Head) -> Result<()> {
    let start = Instant::now();
    while head.unapplied.load(Ordering::Acquire) > 0 {
        if start.elapsed() > APPLY_WAIT {
            return Err(Error::io(
                "cannot take a head snapshot",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "logged batches not applied within 10 s",
                ),
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// Records where each series of the head stands (quiescent: see [`take`]), in the order of the
/// head's ref stripes (see [`Captured::sort_by_id`]). None when a series holds histograms.
///
/// Walks the ref stripes under their read locks (the order `Head::truncate` takes them in: a
/// stripe, then a series) instead of collecting every series first: one visit per series, no
/// list of them. The series of a stripe are visited in groups of [`append::PREFETCH`] through
/// [`append::apply_group`], so that their memory misses (series, lock, open chunk: a few per
/// series once the head outgrows the caches, as at 400,000 series) overlap instead of each
/// series waiting for its own.
pub(crate) fn capture(head: &Head, segment: u32) -> Option<Captured> {
    let n = usize::try_from(head.num_series()).unwrap_or(0);
    let mut series = Vec::with_capacity(n);
    let mut ooo = Vec::new();
    let mut ok = true;
    for st in head.series.ref_stripes.iter() {
        let st = st.read();
        let mut it = st.values();
        let mut group: Vec<&Arc<Series>> = Vec::with_capacity(append::PREFETCH);
        loop {
            group.clear();
            group.extend(it.by_ref().take(append::PREFETCH));
            if group.is_empty() {
                break;
            }
            append::apply_group(
                &group,
                |s| &***s,
                |_, s, d| {
                    if !ok {
                        return;
                    }
                    if d.hist().is_some() {
                        ok = false;
                        return;
                    }
                    // Created by an appender that has not committed: no WAL record mentions it.
                    if !s.logged().load(Ordering::Acquire) && d.is_empty() {
                        return;
                    }
                    let Some(mark) = SeriesMark::new(Arc::clone(s), d) else {
                        ok = false;
                        return;
                    };
                    if !d.ooo().is_empty() {
                        ooo.push((mark.id, d.ooo().to_vec()));
                    }
                    series.push(mark);
                },
            );
            if !ok {
                return None;
            }
        }
    }
    Some(Captured {
        meta: Meta {
            segment,
            next_ref: head.next_ref(),
            min_time: head.min_time(),
            max_time: head.max_time(),
            pages: 0,
            series: 0,
        },
        page_size: head.chunk_files.page_size(),
        series,
        ooo,
        pack: true,
    })
}

/// Writes one PAGE section (header and payload framed by hand: the compressed bytes are not
/// copied).
pub(super) fn write_page(
    w: &mut impl Write,
    z: &mut Zstd,
    seq: u32,
    max_t: Timestamp,
    current: bool,
    bytes: &[u8],
) -> std::io::Result<()> {
    let prefix = page_prefix(seq, max_t, current);
    let bytes = z.frame(bytes)?;
    let len = u32::try_from(prefix.len() + bytes.len())
        .map_err(|_| std::io::Error::other("page over 4 GiB"))?;
    let head = section_head(KIND_PAGE, len);
    w.write_all(&head)?;
    w.write_all(&prefix)?;
    w.write_all(bytes)?;
    w.write_all(&crc32_parts(&[&head, &prefix, bytes]).to_le_bytes())
}

/// One zstd compression context and output buffer for every section of a snapshot.
pub(super) struct Zstd {
    ctx: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl Zstd {
    pub(super) fn new() -> std::io::Result<Self> {
        Self::new_with_level(ZSTD_LEVEL)
    }

    /// A context compressing at `level` (the frames read the same whatever the level).
    pub(super) fn new_with_level(level: i32) -> std::io::Result<Self> {
        Ok(Self {
            ctx: zstd::bulk::Compressor::new(level)?,
            out: Vec::new(),
        })
    }

    /// `zstd(src)` as [`zstd_frame`] writes it, into the reused buffer.
    pub(super) fn frame(&mut self, src: &[u8]) -> std::io::Result<&[u8]> {
        self.out.clear();
        self.out.reserve(zstd::zstd_safe::compress_bound(src.len()));
        self.ctx.compress_to_buffer(src, &mut self.out)?;
        Ok(&self.out)
    }
}

/// Re-encodes the head's completed chunks `refs` (`(ref, max_t)`, sorted by ref, no
/// duplicates) with whichever of packed and XOR is smaller (XOR as they are unless `c.pack`)
/// into PAGE sections of `c.page_size` numbered from `first_seq + 1`, written to `w` as each
/// is full. Returns the new ref of each chunk (same
/// index) and the number of the last page written (`first_seq` when none).
pub(super) fn pack_chunks(
    refs: &[(u64, Timestamp)],
    first_seq: u32,
    c: &Captured,
    head: &Head,
    w: &mut impl Write,
    z: &mut Zstd,
    tmp: &Path,
) -> Result<(Vec<u64>, u32)> {
    let (page_size, pack) = (c.page_size, c.pack);
    use super::chunk_files::{PACKED_REF, chunk_at, encoding};
    use crate::chunk::{Encoding, XorIterator, packed};
    use crate::interface::SampleIterator;
    let io = |e| Error::io(format!("cannot write {}", tmp.display()), e);
    // Every page a completed chunk of the cut is in (pages filled since are in too).
    let exported = head.chunk_files.export_pages();
    let mut new_refs = Vec::with_capacity(refs.len());
    let mut pages: u32 = first_seq;
    let (mut page, mut page_max_t) = (Vec::with_capacity(page_size), Timestamp::MIN);
    let (mut samples, mut out) = (Vec::new(), Vec::new());
    let finish =
        |page: &mut Vec<u8>, max_t: Timestamp, pages: &mut u32, w: &mut _, z: &mut Zstd| {
            *pages = pages
                .checked_add(1)
                .ok_or_else(|| io(std::io::Error::other("more than 2^32 pages")))?;
            write_page(w, z, *pages, max_t, false, page).map_err(io)?;
            page.clear();
            Ok::<_, Error>(())
        };
    for &(r, max_t) in refs {
        let seq = (r >> 32) as u32;
        let off = r & u64::from(u32::MAX) & !PACKED_REF;
        let bytes = exported
            .binary_search_by_key(&seq, |p| p.seq)
            .ok()
            .and_then(|i| exported.get(i))
            .and_then(|p| chunk_at(&p.bytes, off))
            .ok_or_else(|| {
                Error::corruption("<head chunks>", r, "a series' chunk is not in its page")
            })?;
        out.clear();
        let enc = match encoding(r) {
            Encoding::Xor if pack => {
                samples.clear();
                let mut it = XorIterator::new(bytes);
                while it.next() {
                    samples.push(it.at());
                }
                if let Some(e) = it.err() {
                    return Err(Error::corruption("<head chunks>", r, e.to_string()));
                }
                if !crate::chunk::increasing(&samples) {
                    return Err(Error::corruption(
                        "<head chunks>",
                        r,
                        "samples out of time order",
                    ));
                }
                packed::encode_into(&samples, &mut out);
                if out.len() < bytes.len() {
                    Encoding::Packed
                } else {
                    out.clear();
                    out.extend_from_slice(bytes);
                    Encoding::Xor
                }
            }
            other => {
                out.extend_from_slice(bytes);
                other
            }
        };
        if !page.is_empty() && page.len() + out.len() + 10 > page_size {
            finish(&mut page, page_max_t, &mut pages, w, z)?;
            page_max_t = Timestamp::MIN;
        }
        let seq = u64::from(pages) + 1;
        let mut nr = seq << 32 | page.len() as u64;
        if enc == Encoding::Packed {
            nr |= PACKED_REF;
        }
        new_refs.push(nr);
        put_uvarint(&mut page, out.len() as u64);
        page.extend_from_slice(&out);
        page_max_t = page_max_t.max(max_t);
    }
    if !page.is_empty() {
        finish(&mut page, page_max_t, &mut pages, w, z)?;
    }
    Ok((new_refs, pages))
}

/// Re-encodes every completed chunk a series refers to with whichever of packed and XOR is
/// smaller, into new pages in the order of the old refs (so pages keep filling in time order,
/// and truncation frees them as it does the head's), and encodes the series entries with the
/// new refs, each series read from `head` as it was at the cut ([`SeriesMark`]). Chunks no
/// series refers to are left out. Each PAGE and SERIES section is written to `w` as soon as
/// it is complete (at most one of each in memory). Returns the page count.
fn pack(c: &Captured, head: &Head, w: &mut impl Write, tmp: &Path) -> Result<u64> {
    let io = |e| Error::io(format!("cannot write {}", tmp.display()), e);
    let mut z = if c.pack {
        Zstd::new()
    } else {
        Zstd::new_with_level(1)
    }
    .map_err(io)?;
    // (old ref, max_t), sorted by old ref; then the new ref of each, same index.
    let mut refs: Vec<(u64, Timestamp)> = Vec::new();
    for m in &c.series {
        let d = m.series.data.lock();
        refs.extend(m.closed(&d)?.iter().map(|x| (x.r, x.max_t)));
    }
    refs.sort_unstable();
    refs.dedup_by_key(|x| x.0);
    let (new_refs, pages) = pack_chunks(&refs, 0, c, head, w, &mut z, tmp)?;
    let mut out = Vec::new();
    let map = |r: u64| {
        refs.binary_search_by_key(&r, |x| x.0)
            .ok()
            .and_then(|i| new_refs.get(i).copied())
            .unwrap_or_else(|| unreachable!("BUG: chunk ref {r:#x} not packed"))
    };
    let mut sections = SeriesSections::default();
    let mut ooo = c.ooo.iter().peekable();
    for m in &c.series {
        put_series_head(&mut sections.body, m.series.id(), m.series.labels.iter());
        let has_open = {
            let d = m.series.data.lock();
            put_closed(&mut sections.body, m.closed(&d)?, map);
            m.open_bytes(&d, &head.chunk_files, &mut out)?
        };
        let o = ooo.next_if(|(k, _)| *k == m.id).map_or(&[][..], |(_, o)| o);
        put_series_tail(
            &mut sections.body,
            has_open.then_some((m.open_min_t, m.open_max_t, &out[..])),
            o,
            m.has_last.then_some((m.last_t, m.last_bits)),
        );
        sections.added();
        for p in sections.done.drain(..) {
            write_section(w, KIND_SERIES, z.frame(&p).map_err(io)?).map_err(io)?;
        }
    }
    for p in sections.finish().0 {
        write_section(w, KIND_SERIES, z.frame(&p).map_err(io)?).map_err(io)?;
    }
    Ok(u64::from(pages))
}

/// Writes the snapshot of `c` (series read from `head`) to `tmp`, streaming its sections
/// ([`pack`]), then rewrites META in place with the page count (set in `meta`) and fsyncs.
fn write_file(tmp: &Path, meta: &mut Meta, c: &Captured, head: &Head) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let ctx = |what: &str| format!("cannot {what} {}", tmp.display());
    let f = std::fs::File::create(tmp).map_err(|e| Error::io(ctx("create"), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut header = MAGIC.to_vec();
    header.push(VERSION);
    meta.pages = 0;
    let placeholder = meta_payload(meta);
    (|| {
        w.write_all(&header)?;
        write_section(&mut w, KIND_META, &placeholder)
    })()
    .map_err(|e| Error::io(ctx("write"), e))?;
    meta.pages = pack(c, head, &mut w, tmp)?;
    write_section(&mut w, KIND_END, &[]).map_err(|e| Error::io(ctx("write"), e))?;
    let mut f = w
        .into_inner()
        .map_err(|e| Error::io(ctx("write"), e.into_error()))?;
    let payload = meta_payload(meta);
    if payload.len() != placeholder.len() {
        return Err(Error::io(
            ctx("write"),
            std::io::Error::other("BUG: META changed length"),
        ));
    }
    f.seek(SeekFrom::Start(HEADER_LEN as u64))
        .and_then(|_| write_section(&mut f, KIND_META, &payload))
        .map_err(|e| Error::io(ctx("write"), e))?;
    f.sync_all().map_err(|e| Error::io(ctx("fsync"), e))
}

/// What [`load`] restored.
pub(crate) struct Loaded {
    /// First WAL segment to replay.
    pub(crate) segment: u32,
    /// The series restored (WAL refs = their ids).
    pub(crate) series: Vec<Arc<Series>>,
}

/// Restores the snapshot at `path` into `head`, an empty head. With `drop_before`, chunks and
/// samples older than it (already in blocks) are left out, as WAL replay skips them. On an
/// error the head is partly filled: the caller discards it.
#[cfg(test)]
pub(crate) fn load(head: &Head, path: &Path, drop_before: Option<Timestamp>) -> Result<Loaded> {
    let (meta, mut series) = load_base(head, path)?;
    finish_load(head, &mut series, drop_before, meta.min_time, meta.max_time);
    Ok(Loaded {
        segment: meta.segment,
        series,
    })
}

/// Restores the snapshot at `path` into `head`, an empty head, dropping nothing (deltas may
/// follow; then [`finish_load`]). Returns its META and the series restored. The file is read
/// and decoded on a second thread while this one fills the head (`snapshot_load.rs`).
pub(crate) fn load_base(head: &Head, path: &Path) -> Result<(Meta, Vec<Arc<Series>>)> {
    let mut r = open_reader(path)?;
    let len = r.len;
    let mut series = Vec::new();
    // Label sets go back to the decoding thread, which allocated them, to be freed.
    let (spent_tx, spent_rx) = mpsc::channel::<Vec<Labels>>();
    let r = &mut r;
    let meta = pipelined(
        move |send| {
            visit(r, &mut |s| {
                spent_rx.try_iter().for_each(drop);
                match s {
                    Section::Meta(m) => send(Ready::Meta(m)),
                    Section::Page(p) => send(Ready::Page(p, path)),
                    Section::Series(list) => send_in_parts(list, |l| Ready::Series(l, path), send),
                }
            })
        },
        |ready| {
            match ready {
                Ready::Meta(m) => {
                    head.raise_next_ref(m.next_ref);
                    // The count is the file's word: at most one series per 8 bytes of it.
                    let n = usize::try_from(m.series.min(len / 8)).unwrap_or(0);
                    head.series.reserve(n);
                    series.reserve(n);
                }
                Ready::Page(..) | Ready::Series(..) => {
                    unreachable!("BUG: a snapshot section consumed unprepared")
                }
                Ready::ReadyPage(p) => p.import(head),
                Ready::Prepared(list) => {
                    let mut spent = Vec::with_capacity(list.len());
                    for p in list {
                        let (s, labels) = p.insert(head).map_err(|e| at_path(path, e))?;
                        series.push(s);
                        spent.push(labels);
                    }
                    // The decoding thread may have finished: then they are freed here.
                    let _ = spent_tx.send(spent);
                }
            }
            Ok(())
        },
    )?;
    Ok((meta, series))
}

/// [`load_base`] on one thread, section by section (what the two-thread load must equal).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn load_base_sequential(head: &Head, path: &Path) -> Result<(Meta, Vec<Arc<Series>>)> {
    let mut r = open_reader(path)?;
    let mut series = Vec::new();
    let meta = visit(&mut r, &mut |s| {
        match s {
            Section::Meta(m) => head.raise_next_ref(m.next_ref),
            Section::Page(p) => {
                let p = p
                    .image()
                    .ok_or_else(|| Error::corruption(path, 0, "bad PAGE section"))?;
                head.chunk_files
                    .import_page(p.seq, p.max_t, p.bytes, p.current)
            }
            Section::Series(list) => {
                for img in list {
                    series.push(restore(head, img).map_err(|e| at_path(path, e))?);
                }
            }
        }
        Ok(())
    })?;
    Ok((meta, series))
}

/// A corruption found in a series entry of the snapshot at `path` (the entry's own errors name
/// the chunk or `<snapshot>`).
fn at_path(path: &Path, e: Error) -> Error {
    match e {
        Error::Corruption { reason, .. } => Error::corruption(path, 0, reason),
        other => other,
    }
}

/// A snapshot section decoded for [`load_base`], and prepared (`snapshot_load.rs`).
enum Ready<'p> {
    Meta(Meta),
    /// A PAGE section of the file at the path.
    Page(PageFrame, &'p Path),
    ReadyPage(ReadyPage),
    /// Part of a SERIES section of the file at the path.
    Series(Vec<SeriesImage>, &'p Path),
    Prepared(Vec<Prepared>),
}

impl Prepare for Ready<'_> {
    fn prepare(self) -> Result<Self> {
        Ok(match self {
            Ready::Page(p, path) => Ready::ReadyPage(ReadyPage::new(p, path)?),
            Ready::Series(list, path) => Ready::Prepared(
                list.into_iter()
                    .map(Prepared::new)
                    .collect::<Result<_>>()
                    .map_err(|e| at_path(path, e))?,
            ),
            ready => ready,
        })
    }
}

/// Ends a load of `series` (a snapshot and its deltas): with `drop_before`, chunks and samples
/// older than it (already in blocks) are left out, as WAL replay skips them; sets the head's
/// time range from the last file's `[mint, maxt]`.
pub(crate) fn finish_load(
    head: &Head,
    series: &mut [Arc<Series>],
    drop_before: Option<Timestamp>,
    mut mint: Timestamp,
    maxt: Timestamp,
) {
    if let Some(b) = drop_before {
        for s in series.iter() {
            let mut d = s.data.lock();
            d.truncate(b);
            if d.closed.is_empty() && d.open.is_none() {
                // WAL replay skips every sample below `b`: no newest sample either.
                d.set_last(s.lock_word(), None);
            }
        }
        if mint < b {
            mint = series
                .iter()
                .map(|s| s.data.lock().min_time())
                .min()
                .unwrap_or(i64::MAX);
        }
    }
    head.update_time_range(mint, maxt);
}

/// Creates one series of a snapshot in `head` with its samples.
pub(super) fn restore(head: &Head, img: SeriesImage) -> Result<Arc<Series>> {
    Ok(Prepared::new(img)?.insert(head)?.0)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
