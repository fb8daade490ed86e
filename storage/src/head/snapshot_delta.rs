//! Head snapshot deltas: what changed in the head since the last snapshot or delta (a link of
//! the chain), so that a snapshot of a big head does not rewrite every label and completed
//! chunk each time. Opening loads the snapshot (the chain's base), then each delta in order,
//! then replays the WAL after the last.
//!
//! ```text
//! <db>/head_delta.NNNNNNNN     covers every WAL segment before NNNNNNNN; builds on the link
//!                              (snapshot or delta) whose segment is META's `prev`
//! ┌──────────────┬─────────┬─────────────────────────────────────────┐
//! │ magic "ASND" │ version │ section … (META, PAGE*, SERIES*, END)   │  sections framed as in
//! └──────────────┴─────────┴─────────────────────────────────────────┘  head_snapshot (CRC32)
//! META    segment uvarint │ prev uvarint │ base uvarint │ next_ref uvarint │ min_time varint │
//!         max_time varint │ first_page uvarint │ pages uvarint (5 bytes, padded) │
//!         series uvarint (5 bytes, padded)
//! PAGE    as in the snapshot, numbered first_page + 1, first_page + 2, … (the chain's pages
//!         so far are 1..=first_page)
//! SERIES  zstd(count uvarint │ entry …)
//! entry   id uvarint │ new u8 │ [#labels uvarint │ (name str, value str) …]  (when new = 1) │
//!         closed_before uvarint │ #closed uvarint │ (min_t varint, max_t varint, ref uvarint) … │
//!         open u8: 0 │ 1 min_t varint, max_t varint, bytes str │
//!                  2 max_t varint, from uvarint, samples uvarint, bytes str │
//!         #ooo uvarint │ (t varint, value bits u64 LE) … │ last u8 [t varint, bits u64 LE]
//! END     empty: the file is complete (its counts match META's)
//! ```
//! An entry is written for each series that changed since the previous link: `closed_before`
//! is the number of completed chunks it had there (the entry's `closed` are appended after
//! them), open `1` is the whole open chunk, open `2` the same open chunk as at the previous link
//! grown by appends: its first `from` bytes are kept, `bytes` appended, and its sample count
//! (the XOR header) set to `samples`. The out-of-order samples and the newest sample replace the
//! series' own. A series absent from the delta is as it was at the previous link.
//!
//! **When.** A delta is written instead of a whole snapshot while the deltas of the chain are
//! smaller than its base ([`MAX_DELTAS_PER_BASE`]) and neither a truncation nor a deletion changed the head since the
//! base (`Head::rewrites`); a database always starts a new chain with a whole snapshot after
//! opening and at a clean close.
//!
//! **Crash safety.** A delta deletes no WAL segment (only whole snapshots do): a torn, corrupt
//! or unchained delta is ignored at opening and the WAL is replayed from the last link that
//! loaded, so nothing is lost. A delta is written to `…tmp`, fsynced, renamed, and the
//! directory fsynced.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::Head;
use super::series::{ClosedChunk, OpenChunk, Series};
use super::snapshot::{
    Captured, HEADER_LEN, KIND_END, KIND_META, KIND_PAGE, KIND_SERIES, Loaded, PageFrame, Reader,
    SeriesImage, SeriesMark, SeriesSections, TMP_SUFFIX, Zstd, decode_closed, decode_labels,
    decode_ooo_last, decode_page, flag, pack_chunks, put_closed, put_padded_uvarint,
    put_series_head, put_str, restore, unzstd, write_section,
};
use super::snapshot_load::{Prepare, ReadyPage, newest_covers, pipelined};
use crate::chunk::XorChunk;
use crate::encoding::{Decbuf, put_uvarint, put_varint};
use crate::error::{Error, Result};
use crate::model::Timestamp;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub(crate) use crate::fs::layout::HEAD_DELTA_PREFIX as DELTA_PREFIX;
/// First bytes of a delta file.
const MAGIC: [u8; 4] = *b"ASND";
/// Format version.
const VERSION: u8 = 1;
/// A chain takes deltas while their total size is below this many times its base's.
///
/// 1 since session 15 (8 before): a chain loads slower than a whole snapshot of its bytes
/// (74 against 44–48 ms in session 14), and a burst of writes (2 h of the medium set in ~2 s)
/// made chains of a base and three ~9 MB deltas, each rewriting every open chunk. Killed right
/// after such a burst, a restart needed 0.29 CPU s with the 8× cap and 0.21 with 1×, against
/// Prometheus's 1.01–1.09 (`benches/README.md`, "lead (2026-12-07 session 15)"). What a whole
/// snapshot more often costs stays bounded by the size trigger's quarter rule (bytes of whole
/// snapshots at most about 4× the WAL's, [`crate::db`]), and the size trigger's snapshots no
/// longer re-encode completed chunks (`Db::snapshot_head_with` unpacked), which was most of a whole
/// snapshot's CPU. A whole snapshot deletes the WAL it covers, where a delta keeps it: on
/// scrape-bench's 400,000 series the WAL under an 8× chain doubled the data dir (89 against 50
/// MiB after 5 minutes, session 14). Opening reads at most about 2× the base's bytes.
pub(crate) const MAX_DELTAS_PER_BASE: u64 = 1;
/// zstd level of a delta's pages and SERIES sections (whole snapshots use level 3): a delta is
/// written every few MiB of WAL and read back at most once, so compression time counts more
/// than its size.
const DELTA_ZSTD_LEVEL: i32 = 1;

/// Name of the delta covering the segments before `segment`.
pub(crate) fn delta_name(segment: u32) -> String {
    format!("{DELTA_PREFIX}{segment:08}")
}

/// Delta files in `dir`, sorted by segment.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    crate::fs::numbered_entries(dir, DELTA_PREFIX)
}

/// Removes every delta of `dir` and the leftovers of interrupted delta writes.
pub(crate) fn remove_all(dir: &Path) -> Result<()> {
    crate::fs::remove_leftovers(dir, DELTA_PREFIX, TMP_SUFFIX, |p| std::fs::remove_file(p))?;
    for (_, p) in list(dir)? {
        super::snapshot::remove(&p)?;
    }
    Ok(())
}

/// Removes leftovers of interrupted delta writes.
pub(crate) fn remove_tmp(dir: &Path) -> Result<()> {
    crate::fs::remove_leftovers(dir, DELTA_PREFIX, TMP_SUFFIX, |p| std::fs::remove_file(p))
}

/// Where a series stood at the last link of a chain (24 bytes: a chain holds one per series
/// between snapshots).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    id: u32,
    closed: u32,
    /// Bytes of the open chunk (0: none), with [`OOO_BIT`] set when the series held
    /// out-of-order samples.
    open_len: u32,
    open_samples: u16,
    open_min_t: Timestamp,
}

const OOO_BIT: u32 = 1 << 31;

impl Mark {
    fn open_len(&self) -> u32 {
        self.open_len & !OOO_BIT
    }

    fn had_ooo(&self) -> bool {
        self.open_len & OOO_BIT != 0
    }
}

/// The snapshot chain written so far by a database: the base snapshot, the deltas on top of it,
/// and where every series stood at the last one (what the next delta is computed against).
/// Owned by the database, used under its compaction lock.
#[derive(Debug)]
pub(crate) struct Chain {
    /// Segment of the base snapshot.
    pub(crate) base: u32,
    /// Size of the base snapshot file.
    pub(crate) base_bytes: u64,
    /// Segment of the last link (the base or the newest delta).
    pub(crate) last: u32,
    /// Deltas written on top of the base.
    pub(crate) deltas: u32,
    /// Their total size.
    pub(crate) delta_bytes: u64,
    /// Pages of the chain (numbered 1..=pages).
    pub(crate) pages: u32,
    /// `Head::rewrites` at the base: a delta needs it unchanged.
    pub(crate) rewrites: u64,
    /// Sorted by id.
    pub(super) marks: Vec<Mark>,
}

impl Chain {
    /// The marks of the series of `c` (sorted by id: [`Captured::sort_by_id`] ran).
    pub(super) fn marks(c: &Captured) -> Vec<Mark> {
        let mut ooo = c.ooo.iter().map(|x| x.0).peekable();
        c.series
            .iter()
            .map(|m| {
                let had_ooo = ooo.next_if(|k| *k == m.id).is_some();
                Mark {
                    id: m.id,
                    closed: m.closed,
                    open_len: m.open_len.min(!OOO_BIT) | if had_ooo { OOO_BIT } else { 0 },
                    open_samples: m.open_samples,
                    open_min_t: m.open_min_t,
                }
            })
            .collect()
    }
}

/// Each series of `c` (sorted by id) with its mark among `marks` (sorted by id), if it had one:
/// a merge of the two lists, no search per series.
fn with_prev<'a>(
    c: &'a Captured,
    marks: &'a [Mark],
) -> impl Iterator<Item = (&'a SeriesMark, Option<&'a Mark>)> {
    let mut marks = marks.iter().peekable();
    c.series.iter().map(move |m| {
        while marks.next_if(|p| p.id < m.id).is_some() {}
        (m, marks.next_if(|p| p.id == m.id))
    })
}

/// The META section of a delta.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DeltaMeta {
    /// First WAL segment not covered.
    pub(crate) segment: u32,
    /// Segment of the link it builds on.
    pub(crate) prev: u32,
    /// Segment of the chain's base snapshot.
    pub(crate) base: u32,
    pub(crate) next_ref: u64,
    pub(crate) min_time: Timestamp,
    pub(crate) max_time: Timestamp,
    /// Pages of the chain before this delta.
    pub(crate) first_page: u32,
    pub(crate) pages: u64,
    pub(crate) series: u64,
}

fn meta_payload(m: &DeltaMeta) -> Vec<u8> {
    let mut p = Vec::new();
    put_uvarint(&mut p, u64::from(m.segment));
    put_uvarint(&mut p, u64::from(m.prev));
    put_uvarint(&mut p, u64::from(m.base));
    put_uvarint(&mut p, m.next_ref);
    put_varint(&mut p, m.min_time);
    put_varint(&mut p, m.max_time);
    put_uvarint(&mut p, u64::from(m.first_page));
    put_padded_uvarint(&mut p, m.pages);
    put_padded_uvarint(&mut p, m.series);
    p
}

fn decode_meta(p: &[u8]) -> Option<DeltaMeta> {
    let mut d = Decbuf::new(p);
    let m = DeltaMeta {
        segment: u32::try_from(d.uvarint()?).ok()?,
        prev: u32::try_from(d.uvarint()?).ok()?,
        base: u32::try_from(d.uvarint()?).ok()?,
        next_ref: d.uvarint()?,
        min_time: d.varint()?,
        max_time: d.varint()?,
        first_page: u32::try_from(d.uvarint()?).ok()?,
        pages: d.uvarint()?,
        series: d.uvarint()?,
    };
    d.is_empty().then_some(m)
}

const OPEN_NONE: u8 = 0;
const OPEN_WHOLE: u8 = 1;
const OPEN_TAIL: u8 = 2;
const OPEN_TAIL_LAST: u8 = 3;

/// The open chunk of a delta entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum OpenImage {
    #[default]
    None,
    Whole {
        min_t: Timestamp,
        max_t: Timestamp,
        bytes: Vec<u8>,
    },
    Tail {
        /// None: the chunk's newest sample's (which is also the series' newest).
        max_t: Option<Timestamp>,
        from: usize,
        samples: u16,
        bytes: Vec<u8>,
    },
}

/// One delta entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeltaEntry {
    pub(crate) id: u64,
    /// Labels of a series new since the previous link.
    pub(crate) labels: Option<Vec<(String, String)>>,
    pub(crate) closed_before: u64,
    pub(crate) closed: Vec<ClosedChunk>,
    pub(crate) open: OpenImage,
    pub(crate) ooo: Vec<(Timestamp, f64)>,
    pub(crate) last: Option<(Timestamp, u64)>,
}

fn decode_entry(d: &mut Decbuf<'_>, last_id: u64) -> Option<DeltaEntry> {
    let id = last_id.checked_add(d.uvarint()?)?;
    let labels = if flag(d)? {
        Some(decode_labels(d)?)
    } else {
        None
    };
    let closed_before = d.uvarint()?;
    let closed = decode_closed(d)?;
    let open = match d.u8()? {
        OPEN_NONE => OpenImage::None,
        OPEN_WHOLE => {
            let (min_t, max_t) = (d.varint()?, d.varint()?);
            let len = d.uvarint_len(d.remaining())?;
            OpenImage::Whole {
                min_t,
                max_t,
                bytes: d.bytes(len)?.to_vec(),
            }
        }
        tag @ (OPEN_TAIL | OPEN_TAIL_LAST) => {
            let max_t = if tag == OPEN_TAIL {
                Some(d.varint()?)
            } else {
                None
            };
            let from = usize::try_from(d.uvarint()?).ok()?;
            let samples = u16::try_from(d.uvarint()?).ok()?;
            let len = d.uvarint_len(d.remaining())?;
            OpenImage::Tail {
                max_t,
                from,
                samples,
                bytes: d.bytes(len)?.to_vec(),
            }
        }
        _ => return None,
    };
    if matches!(open, OpenImage::Tail { max_t: None, .. }) {
        return Some(DeltaEntry {
            id,
            labels,
            closed_before,
            closed,
            open,
            ooo: Vec::new(),
            last: None,
        });
    }
    let (ooo, last) = decode_ooo_last(d)?;
    Some(DeltaEntry {
        id,
        labels,
        closed_before,
        closed,
        open,
        ooo,
        last,
    })
}

fn decode_series(p: &[u8]) -> Option<Vec<DeltaEntry>> {
    let plain = unzstd(p)?;
    let mut d = Decbuf::new(&plain);
    let n = d.uvarint_len(d.remaining())?;
    let mut out = Vec::with_capacity(n);
    let mut last_id = 0;
    for _ in 0..n {
        let e = decode_entry(&mut d, last_id)?;
        last_id = e.id;
        out.push(e);
    }
    d.is_empty().then_some(out)
}

/// A decoded section of a delta.
pub(crate) enum DeltaSection {
    /// A PAGE section, its bytes as stored.
    Page(PageFrame),
    Series(Vec<DeltaEntry>),
}

/// Reads every section of a delta in order, checking order and counts, handing each to `f`.
/// Returns META (checked first by `check`).
fn visit<R: Read>(
    r: &mut Reader<'_, R>,
    check: &mut dyn FnMut(&DeltaMeta) -> Result<()>,
    f: &mut dyn FnMut(DeltaSection) -> Result<()>,
) -> Result<DeltaMeta> {
    let (kind, p) = r.next()?;
    let meta = match (kind, decode_meta(p)) {
        (KIND_META, Some(m)) => m,
        _ => return Err(r.corrupt("delta does not start with a valid META section")),
    };
    check(&meta)?;
    let (mut pages, mut series) = (0u64, 0u64);
    let mut last_seq = meta.first_page;
    let path = r.path;
    loop {
        let off = r.off;
        let (kind, p) = r.next()?;
        let bad = |reason: &str| Error::corruption(path, off, reason);
        match kind {
            KIND_PAGE => {
                let page = decode_page(p, 2, off).ok_or_else(|| bad("bad PAGE section"))?;
                if series > 0 || page.current || page.seq != last_seq.wrapping_add(1) {
                    return Err(bad("PAGE section out of order"));
                }
                last_seq = page.seq;
                pages += 1;
                f(DeltaSection::Page(page))?;
            }
            KIND_SERIES => {
                let list = decode_series(p).ok_or_else(|| bad("bad SERIES section"))?;
                series += list.len() as u64;
                f(DeltaSection::Series(list))?;
            }
            KIND_END => {
                let empty = p.is_empty();
                r.check_end(off, empty, (pages, series), (meta.pages, meta.series))?;
                return Ok(meta);
            }
            _ => return Err(bad("unknown delta section kind")),
        }
    }
}

fn open_reader(path: &Path) -> Result<Reader<'_, BufReader<std::fs::File>>> {
    super::snapshot::open_framed(path, MAGIC, VERSION..=VERSION)
}

// ---------------------------------------------------------------------------------------
// Writing.

/// Writes the delta of `c` (captured by `snapshot::take`, the series read from `head`) on top
/// of `prev` into `dir`, and returns the chain it ends.
///
/// `prev`'s marks are dropped before the new ones are built (at 400,000 series each list is
/// ~10 MB).
pub(super) fn write(
    head: &Head,
    dir: &Path,
    c: &Captured,
    mut prev: Chain,
    start: Instant,
    hold: super::snapshot::Hold,
) -> Result<Chain> {
    let segment = c.meta.segment;
    let path = dir.join(delta_name(segment));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", delta_name(segment)));
    let res = write_file(&tmp, c, &prev, head).and_then(|m| {
        std::fs::rename(&tmp, &path)
            .map_err(|e| Error::io(format!("cannot rename {}", tmp.display()), e))?;
        crate::fs::fsync_dir(dir)?;
        Ok(m)
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let meta = res?;
    prev.marks = Vec::new();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let ms = hold.ms();
    tracing::info!(
        delta = %path.display(),
        series = meta.series,
        bytes,
        wal_lock_ms = ms[0],
        presync_ms = ms[1],
        cut_ms = ms[2],
        apply_wait_ms = ms[3],
        capture_ms = ms[4],
        total_ms = start.elapsed().as_secs_f64() * 1e3,
        "head snapshot delta written"
    );
    Ok(Chain {
        base: prev.base,
        base_bytes: prev.base_bytes,
        last: segment,
        deltas: prev.deltas + 1,
        delta_bytes: prev.delta_bytes + bytes,
        pages: meta
            .first_page
            .saturating_add(u32::try_from(meta.pages).unwrap_or(u32::MAX)),
        rewrites: prev.rewrites,
        marks: Chain::marks(c),
    })
}

/// Writes the delta file `tmp`: the chunks completed since `prev` into new pages, then an
/// entry per changed series; META is rewritten in place with the counts, then fsync.
fn write_file(tmp: &Path, c: &Captured, prev: &Chain, head: &Head) -> Result<DeltaMeta> {
    use std::io::{Seek, SeekFrom};
    let ctx = |what: &str| format!("cannot {what} {}", tmp.display());
    let io = |e| Error::io(ctx("write"), e);
    let f = std::fs::File::create(tmp).map_err(|e| Error::io(ctx("create"), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut meta = DeltaMeta {
        segment: c.meta.segment,
        prev: prev.last,
        base: prev.base,
        next_ref: c.meta.next_ref,
        min_time: c.meta.min_time,
        max_time: c.meta.max_time,
        first_page: prev.pages,
        pages: 0,
        series: 0,
    };
    let placeholder = meta_payload(&meta);
    w.write_all(&MAGIC)
        .and_then(|()| w.write_all(&[VERSION]))
        .and_then(|()| write_section(&mut w, KIND_META, &placeholder))
        .map_err(io)?;
    let mut z = Zstd::new_with_level(DELTA_ZSTD_LEVEL).map_err(io)?;
    // Completed chunks new since the previous link.
    let mut refs: Vec<(u64, Timestamp)> = Vec::new();
    for (m, p) in with_prev(c, &prev.marks) {
        let before = p.map_or(0, |p| p.closed);
        if before > m.closed {
            return Err(m.changed("completed chunks went away since the last snapshot"));
        }
        if before < m.closed {
            let d = m.series.data.lock();
            let new = m.closed(&d)?.get(before as usize..).unwrap_or_default();
            refs.extend(new.iter().map(|x| (x.r, x.max_t)));
        }
    }
    refs.sort_unstable();
    refs.dedup_by_key(|x| x.0);
    let (new_refs, last_page) = pack_chunks(&refs, prev.pages, c, head, &mut w, &mut z, tmp)?;
    let map = |r: u64| {
        refs.binary_search_by_key(&r, |x| x.0)
            .ok()
            .and_then(|i| new_refs.get(i).copied())
            .unwrap_or_else(|| unreachable!("BUG: chunk ref {r:#x} not packed"))
    };
    let mut sections = SeriesSections::default();
    let mut out = Vec::new();
    // Ids are written as the difference to the entry before in the same section.
    let mut last_id = 0;
    for (m, p) in with_prev(c, &prev.marks) {
        let o = c.ooo_of(m.id);
        let same_open = p.is_some_and(|p| p.closed == m.closed && p.open_min_t == m.open_min_t);
        if o.is_empty()
            && same_open
            && p.is_some_and(|p| {
                p.open_len() == m.open_len && p.open_samples == m.open_samples && !p.had_ooo()
            })
        {
            continue; // unchanged since the previous link
        }
        let body = &mut sections.body;
        put_uvarint(body, u64::from(m.id) - last_id);
        last_id = u64::from(m.id);
        match p {
            Some(_) => body.push(0),
            None => {
                body.push(1);
                // The entry's labels: a series-head's encoding without its id.
                let mut tmp = Vec::new();
                put_series_head(&mut tmp, 0, m.series.labels.iter());
                body.extend_from_slice(tmp.get(1..).unwrap_or_default());
            }
        }
        let before = p.map_or(0, |p| p.closed);
        put_uvarint(body, u64::from(before));
        let has_open = {
            let d = m.series.data.lock();
            let all = m.closed(&d)?;
            put_closed(body, all.get(before as usize..).unwrap_or_default(), map);
            m.open_bytes(&d, &head.chunk_files, &mut out)?
        };
        // The bytes the previous link holds of this open chunk: all but its last byte (which
        // later samples' bits may have been ORed into) and its header (the sample count).
        let from = p
            .filter(|p| same_open && p.open_len() as usize > crate::chunk::xor::HEADER_LEN + 1)
            .map(|p| p.open_len() as usize - 1)
            .filter(|&f| f <= out.len());
        // The usual case: a tail whose newest sample is the series' newest, no out-of-order
        // sample: max_t and the newest sample are read back from the chunk, and the entry ends.
        let implied = from.is_some() && m.has_last && m.last_t == m.open_max_t && o.is_empty();
        match (has_open, from) {
            (false, _) => body.push(OPEN_NONE),
            (true, Some(from)) => {
                body.push(if implied { OPEN_TAIL_LAST } else { OPEN_TAIL });
                if !implied {
                    put_varint(body, m.open_max_t);
                }
                put_uvarint(body, from as u64);
                put_uvarint(body, u64::from(m.open_samples));
                put_str(body, out.get(from..).unwrap_or_default());
            }
            (true, None) => {
                body.push(OPEN_WHOLE);
                put_varint(body, m.open_min_t);
                put_varint(body, m.open_max_t);
                put_str(body, &out);
            }
        }
        if !implied {
            put_uvarint(body, o.len() as u64);
            for (t, v) in o {
                put_varint(body, *t);
                body.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            if m.has_last {
                body.push(1);
                put_varint(body, m.last_t);
                body.extend_from_slice(&m.last_bits.to_le_bytes());
            } else {
                body.push(0);
            }
        }
        sections.added();
        for p in sections.done.drain(..) {
            last_id = 0;
            write_section(&mut w, KIND_SERIES, z.frame(&p).map_err(io)?).map_err(io)?;
        }
    }
    let (rest, total) = sections.finish();
    for p in rest {
        write_section(&mut w, KIND_SERIES, z.frame(&p).map_err(io)?).map_err(io)?;
    }
    write_section(&mut w, KIND_END, &[]).map_err(io)?;
    let mut f = w
        .into_inner()
        .map_err(|e| Error::io(ctx("write"), e.into_error()))?;
    meta.pages = u64::from(last_page - prev.pages);
    meta.series = total;
    let payload = meta_payload(&meta);
    if payload.len() != placeholder.len() {
        return Err(Error::io(
            ctx("write"),
            std::io::Error::other("BUG: META changed length"),
        ));
    }
    f.seek(SeekFrom::Start(HEADER_LEN as u64))
        .and_then(|_| write_section(&mut f, KIND_META, &payload))
        .map_err(|e| Error::io(ctx("write"), e))?;
    f.sync_all().map_err(|e| Error::io(ctx("fsync"), e))?;
    Ok(meta)
}

// ---------------------------------------------------------------------------------------
// Loading.

/// Applies the delta at `path` to `head`, which holds the chain up to the link at segment
/// `prev` with `pages` pages; series it creates are pushed to `series`. On an error the head
/// may be partly changed: the caller discards it.
pub(crate) fn apply(
    head: &Head,
    path: &Path,
    prev: u32,
    pages: u32,
    series: &mut Vec<Arc<Series>>,
) -> Result<DeltaMeta> {
    let mut r = open_reader(path)?;
    let bad = |id: u64, reason: &str| Error::corruption(path, id, reason.to_string());
    let mut check = |m: &DeltaMeta| {
        if m.prev != prev || m.first_page != pages {
            return Err(bad(0, "delta does not build on the chain loaded"));
        }
        Ok(())
    };
    let mut scratch = Vec::new();
    // Read and decoded on a second thread while this one applies (`snapshot_load.rs`).
    let meta = pipelined(
        |send| {
            visit(&mut r, &mut check, &mut |s| {
                send(match s {
                    DeltaSection::Page(p) => Ready::Page(p, path),
                    DeltaSection::Series(list) => Ready::Series(list),
                })
            })
        },
        |ready| {
            match ready {
                Ready::Page(..) => unreachable!("BUG: a delta page consumed unprepared"),
                Ready::ReadyPage(p) => p.import(head),
                Ready::Series(list) => {
                    for e in list {
                        apply_entry(head, e, series, &mut scratch)
                            .map_err(|(id, why)| bad(id, why))?;
                    }
                }
            }
            Ok(())
        },
    )?;
    head.raise_next_ref(meta.next_ref);
    Ok(meta)
}

/// A delta section decoded for [`apply`].
enum Ready<'p> {
    /// A PAGE section of the delta at the path.
    Page(PageFrame, &'p Path),
    ReadyPage(ReadyPage),
    /// A SERIES section (its entries build on the head's state: applied in order).
    Series(Vec<DeltaEntry>),
}

impl Prepare for Ready<'_> {
    fn prepare(self) -> Result<Self> {
        Ok(match self {
            Ready::Page(p, path) => Ready::ReadyPage(ReadyPage::new(p, path)?),
            ready => ready,
        })
    }
}

fn apply_entry(
    head: &Head,
    e: DeltaEntry,
    series: &mut Vec<Arc<Series>>,
    scratch: &mut Vec<u8>,
) -> std::result::Result<(), (u64, &'static str)> {
    let id = e.id;
    let s = match e.labels {
        Some(labels) => {
            let s = restore(
                head,
                SeriesImage {
                    id,
                    labels,
                    ..SeriesImage::default()
                },
            )
            .map_err(|_| (id, "a new series of a delta is already in the head"))?;
            series.push(Arc::clone(&s));
            s
        }
        None => head
            .series
            .get(id)
            .ok_or((id, "a delta changes a series the head does not hold"))?,
    };
    let mut d = s.data.lock();
    if d.closed.len() as u64 != e.closed_before {
        return Err((
            id,
            "a delta's completed chunks do not follow the series' own",
        ));
    }
    d.closed.extend(e.closed);
    d.open = match e.open {
        OpenImage::None => None,
        OpenImage::Whole {
            min_t,
            max_t,
            bytes,
        } => {
            let o = OpenChunk {
                chunk: XorChunk::from_bytes(&bytes).map_err(|_| (id, "bad open chunk"))?,
            };
            if (o.min_t(), o.max_t()) != (min_t, max_t) {
                return Err((id, "a delta's open chunk does not span what its entry says"));
            }
            Some(o)
        }
        OpenImage::Tail {
            max_t,
            from,
            samples,
            bytes,
        } => {
            let o = d
                .open
                .as_ref()
                .ok_or((id, "a delta grows an open chunk the series does not hold"))?;
            scratch.clear();
            scratch.extend_from_slice(
                o.chunk
                    .bytes()
                    .get(..from)
                    .ok_or((id, "a delta grows an open chunk from past its end"))?,
            );
            scratch.extend_from_slice(&bytes);
            match scratch.get_mut(..crate::chunk::xor::HEADER_LEN) {
                Some(h) => h.copy_from_slice(&samples.to_le_bytes()),
                None => return Err((id, "a delta's open chunk has no header")),
            }
            // Decoded from the old chunk's encoder state on: only the delta's samples.
            let chunk = o
                .chunk
                .reopen_grown(scratch)
                .map_err(|_| (id, "bad open chunk"))?;
            let last = match max_t {
                Some(t) if chunk.last_t() != Some(t) => {
                    return Err((id, "a delta's open chunk does not end where its entry says"));
                }
                Some(_) => e.last,
                None => {
                    // The encoder state read from the bytes ends at the chunk's newest sample.
                    let (t, v) = chunk.last().ok_or((id, "a delta's open chunk is empty"))?;
                    Some((t, v.to_bits()))
                }
            };
            let open = OpenChunk { chunk };
            if !newest_covers(Some(&open), last) {
                return Err((id, "a delta's newest sample is before its open chunk's end"));
            }
            d.set_ooo(e.ooo.into());
            d.set_last(s.lock_word(), last);
            d.open = Some(open);
            return Ok(());
        }
    };
    if !newest_covers(d.open.as_ref(), e.last) {
        return Err((id, "a delta's newest sample is before its open chunk's end"));
    }
    d.set_ooo(e.ooo.into());
    d.set_last(s.lock_word(), e.last);
    Ok(())
}

/// What [`load_chain`] did.
pub(crate) struct ChainLoad {
    pub(crate) loaded: Loaded,
    /// Deltas applied.
    pub(crate) deltas: usize,
    /// The index in the deltas given and the error of the delta that failed to load.
    pub(crate) failed: Option<(usize, Error)>,
}

/// Loads the snapshot at `base` into `head` (an empty head), then the deltas `deltas` (sorted
/// by segment; those not after the base are skipped) while each builds on the link before it
/// and its segment is in `wal_segments`, and finishes the load (`snapshot::finish_load`).
/// Returns what was loaded, the number of deltas applied, and the error of the delta that
/// stopped the chain, if one failed to load: then the head is partly changed by it, and the
/// caller rebuilds it with `deltas` cut before it.
pub(crate) fn load_chain(
    head: &Head,
    base: &Path,
    deltas: &[(u32, PathBuf)],
    wal_segments: std::ops::Range<u32>,
    drop_before: Option<Timestamp>,
) -> Result<ChainLoad> {
    let (meta, mut series) = super::snapshot::load_base(head, base)?;
    let (mut last, mut pages) = (meta.segment, u32::try_from(meta.pages).unwrap_or(u32::MAX));
    let (mut mint, mut maxt) = (meta.min_time, meta.max_time);
    let mut applied = 0;
    let mut failed = None;
    for (k, (seg, path)) in deltas.iter().enumerate() {
        if *seg <= meta.segment {
            continue;
        }
        if !wal_segments.contains(seg) {
            break;
        }
        match apply(head, path, last, pages, &mut series) {
            Ok(m) => {
                last = m.segment;
                pages = m
                    .first_page
                    .saturating_add(u32::try_from(m.pages).unwrap_or(u32::MAX));
                (mint, maxt) = (m.min_time, m.max_time);
                applied += 1;
            }
            Err(e) => {
                failed = Some((k, e));
                break;
            }
        }
    }
    super::snapshot::finish_load(head, &mut series, drop_before, mint, maxt);
    Ok(ChainLoad {
        loaded: Loaded {
            segment: last,
            series,
        },
        deltas: applied,
        failed,
    })
}

// ---------------------------------------------------------------------------------------
// Images (tests and the fuzz target; the writer encodes from the head in the same layout).

/// A whole delta in memory.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct DeltaImage {
    pub(crate) meta: DeltaMeta,
    pub(crate) pages: Vec<super::snapshot::PageImage>,
    pub(crate) entries: Vec<DeltaEntry>,
}

/// Appends one entry, its id written against `last_id`, in the layout `write_file` writes.
#[cfg(any(test, feature = "fuzzing"))]
fn put_entry(body: &mut Vec<u8>, e: &DeltaEntry, last_id: u64) {
    put_uvarint(body, e.id.wrapping_sub(last_id));
    match &e.labels {
        None => body.push(0),
        Some(l) => {
            body.push(1);
            let mut tmp = Vec::new();
            put_series_head(&mut tmp, 0, l.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            body.extend_from_slice(tmp.get(1..).unwrap_or_default());
        }
    }
    put_uvarint(body, e.closed_before);
    put_closed(body, &e.closed, |r| r);
    let implied = match &e.open {
        OpenImage::None => {
            body.push(OPEN_NONE);
            false
        }
        OpenImage::Whole {
            min_t,
            max_t,
            bytes,
        } => {
            body.push(OPEN_WHOLE);
            put_varint(body, *min_t);
            put_varint(body, *max_t);
            put_str(body, bytes);
            false
        }
        OpenImage::Tail {
            max_t,
            from,
            samples,
            bytes,
        } => {
            body.push(if max_t.is_some() {
                OPEN_TAIL
            } else {
                OPEN_TAIL_LAST
            });
            if let Some(t) = max_t {
                put_varint(body, *t);
            }
            put_uvarint(body, *from as u64);
            put_uvarint(body, u64::from(*samples));
            put_str(body, bytes);
            max_t.is_none()
        }
    };
    if implied {
        return;
    }
    put_uvarint(body, e.ooo.len() as u64);
    for (t, v) in &e.ooo {
        put_varint(body, *t);
        body.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    match e.last {
        Some((t, bits)) => {
            body.push(1);
            put_varint(body, t);
            body.extend_from_slice(&bits.to_le_bytes());
        }
        None => body.push(0),
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl DeltaImage {
    /// The delta file's bytes (META's counts from the image).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let put = |out: &mut Vec<u8>, kind: u8, payload: &[u8]| {
            write_section(out, kind, payload)
                .unwrap_or_else(|e| unreachable!("BUG: writing to a Vec failed: {e}"));
        };
        let z = |b: &[u8]| {
            super::snapshot::zstd_frame(b)
                .unwrap_or_else(|e| unreachable!("BUG: zstd of a Vec failed: {e}"))
        };
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        let mut meta = self.meta.clone();
        meta.pages = self.pages.len() as u64;
        meta.series = self.entries.len() as u64;
        put(&mut out, KIND_META, &meta_payload(&meta));
        for p in &self.pages {
            let mut payload = super::snapshot::page_prefix(p.seq, p.max_t, p.current);
            payload.extend_from_slice(&z(&p.bytes));
            put(&mut out, KIND_PAGE, &payload);
        }
        let mut sections = SeriesSections::default();
        let mut last_id = 0;
        for e in &self.entries {
            put_entry(&mut sections.body, e, last_id);
            last_id = e.id;
            sections.added();
            if !sections.done.is_empty() {
                last_id = 0;
                for p in sections.done.drain(..) {
                    put(&mut out, KIND_SERIES, &z(&p));
                }
            }
        }
        for p in sections.finish().0 {
            put(&mut out, KIND_SERIES, &z(&p));
        }
        put(&mut out, KIND_END, &[]);
        out
    }

    /// Decodes delta file bytes with the checks of opening (the chain checks apart).
    pub(crate) fn decode(bytes: &[u8]) -> Result<DeltaImage> {
        let path = Path::new("<delta>");
        let mut r = Reader::with_magic(bytes, path, bytes.len() as u64, MAGIC, VERSION..=VERSION)?;
        let mut img = DeltaImage::default();
        img.meta = visit(&mut r, &mut |_| Ok(()), &mut |s| {
            match s {
                DeltaSection::Page(p) => {
                    let off = p.off;
                    img.pages.push(
                        p.image()
                            .ok_or_else(|| Error::corruption(path, off, "bad PAGE section"))?,
                    );
                }
                DeltaSection::Series(l) => img.entries.extend(l),
            }
            Ok(())
        })?;
        Ok(img)
    }
}

/// The magic and version a delta file starts with.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) const HEADER: [u8; 5] = [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION];

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = DeltaEntry> {
        let open = prop_oneof![
            Just(OpenImage::None),
            (
                any::<i64>(),
                any::<i64>(),
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(min_t, max_t, bytes)| OpenImage::Whole {
                    min_t,
                    max_t,
                    bytes
                }),
            (
                prop::option::of(any::<i64>()),
                0usize..5000,
                any::<u16>(),
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(max_t, from, samples, bytes)| OpenImage::Tail {
                    max_t,
                    from,
                    samples,
                    bytes
                }),
        ];
        (
            0u64..1_000,
            prop::option::of(prop::collection::vec(("[a-z_]{1,8}", "[ -~]{0,12}"), 0..5)),
            0u64..10,
            prop::collection::vec((any::<i64>(), any::<i64>(), any::<u64>()), 0..4),
            open,
            prop::collection::vec((any::<i64>(), any::<u64>()), 0..4),
            prop::option::of((any::<i64>(), any::<u64>())),
        )
            .prop_map(|(id, labels, closed_before, closed, open, ooo, last)| {
                let implied = matches!(open, OpenImage::Tail { max_t: None, .. });
                DeltaEntry {
                    id,
                    labels,
                    closed_before,
                    closed: closed
                        .into_iter()
                        .map(|(min_t, max_t, r)| ClosedChunk { min_t, max_t, r })
                        .collect(),
                    open,
                    // An entry whose tail ends at the series' newest sample carries neither.
                    ooo: if implied {
                        Vec::new()
                    } else {
                        // Sorted by time, unique timestamps, as the head keeps them.
                        ooo.into_iter()
                            .collect::<std::collections::BTreeMap<_, _>>()
                            .into_iter()
                            .map(|(t, b)| (t, f64::from_bits(b)))
                            .collect()
                    },
                    last: if implied { None } else { last },
                }
            })
    }

    fn same(a: &DeltaEntry, b: &DeltaEntry) -> bool {
        let bits =
            |o: &[(Timestamp, f64)]| o.iter().map(|(t, v)| (*t, v.to_bits())).collect::<Vec<_>>();
        a.id == b.id
            && a.labels == b.labels
            && a.closed_before == b.closed_before
            && a.closed == b.closed
            && a.open == b.open
            && bits(&a.ooo) == bits(&b.ooo)
            && a.last == b.last
    }

    proptest! {
        /// Every field of every entry comes back (ids ascending, as the writer writes them;
        /// one SERIES section: sections are cut at 1 MiB).
        #[test]
        fn deltas_round_trip(
            mut entries in prop::collection::vec(entry(), 0..60),
            spread in 1u64..100_000,
            meta in (any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>(), any::<i64>(), any::<i64>(), any::<u32>()),
        ) {
            let mut id = 0u64;
            for e in &mut entries {
                id += e.id * spread + 1;
                e.id = id;
            }
            let (segment, prev, base, next_ref, min_time, max_time, first_page) = meta;
            let img = DeltaImage {
                meta: DeltaMeta { segment, prev, base, next_ref, min_time, max_time, first_page, pages: 0, series: 0 },
                pages: Vec::new(),
                entries,
            };
            let bytes = img.encode();
            let back = DeltaImage::decode(&bytes).expect("own encoding decodes");
            prop_assert_eq!(back.meta.segment, segment);
            prop_assert_eq!(back.meta.first_page, first_page);
            prop_assert_eq!(back.meta.series, img.entries.len() as u64);
            prop_assert_eq!(back.entries.len(), img.entries.len());
            for (a, b) in img.entries.iter().zip(&back.entries) {
                prop_assert!(same(a, b), "entry changed:\n{a:?}\n{b:?}");
            }
            prop_assert_eq!(back.encode(), bytes);
        }

        /// Arbitrary bytes after the header, CRCs fixed or not: an error or a delta that
        /// re-encodes to itself, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = HEADER.to_vec();
            bytes.extend_from_slice(&data);
            let mut fixed = bytes.clone();
            super::super::snapshot::fix_crcs(&mut fixed);
            for b in [&bytes, &fixed] {
                if let Ok(img) = DeltaImage::decode(b) {
                    let again = img.encode();
                    let twice = DeltaImage::decode(&again).expect("own encoding decodes").encode();
                    prop_assert_eq!(twice, again);
                }
            }
        }
    }

    /// A delta of `n` new series (ids 1..=n), each with a whole open chunk of three samples
    /// ending at `1_000 + id`; the entry of `bad` (if any) says its chunk ends a ms later.
    fn new_series_delta(n: u64, bad: Option<u64>) -> Vec<u8> {
        let entries = (1..=n)
            .map(|id| {
                let mut c = XorChunk::new();
                let end = 1_000 + id as i64;
                for t in end - 2..=end {
                    c.append(t, t as f64);
                }
                DeltaEntry {
                    id,
                    labels: Some(vec![("s".into(), id.to_string())]),
                    open: OpenImage::Whole {
                        min_t: end - 2,
                        max_t: end + i64::from(bad == Some(id)),
                        bytes: c.bytes().to_vec(),
                    },
                    last: Some((end, (end as f64).to_bits())),
                    ..DeltaEntry::default()
                }
            })
            .collect();
        DeltaImage {
            meta: DeltaMeta {
                next_ref: n + 1,
                series: n,
                ..DeltaMeta::default()
            },
            entries,
            ..DeltaImage::default()
        }
        .encode()
    }

    #[test]
    fn every_entry_is_applied_and_a_bad_one_fails_the_delta() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(delta_name(1));
        let head = || Head::in_memory(7_200_000, 0);
        let n = 1_300;
        std::fs::write(&path, new_series_delta(n, None)).expect("write");
        let h = head();
        let mut series = Vec::new();
        apply(&h, &path, 0, 0, &mut series).expect("the delta applies");
        assert_eq!(series.len(), n as usize);
        for (k, s) in series.iter().enumerate() {
            let id = k as u64 + 1;
            assert_eq!(s.id(), id);
            let d = s.data.lock();
            let end = 1_000 + id as i64;
            assert_eq!(d.open.as_ref().map(OpenChunk::max_t), Some(end));
            assert_eq!(d.last(s.lock_word()), Some((end, (end as f64).to_bits())));
        }
        // An entry whose chunk does not span what it says fails the delta, naming the series.
        std::fs::write(&path, new_series_delta(n, Some(1_100))).expect("write");
        let err =
            apply(&head(), &path, 0, 0, &mut Vec::new()).expect_err("a bad entry fails the delta");
        let msg = err.to_string();
        assert!(matches!(err, Error::Corruption { .. }), "{msg}");
        assert!(
            msg.contains("does not span") && msg.contains("1100"),
            "{msg}"
        );
    }

    /// An entry whose newest sample is before its open chunk's end (or missing) fails the
    /// delta: the next append would hand the chunk a time it already holds.
    #[test]
    fn a_newest_sample_before_the_open_chunks_end_fails_the_delta() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(delta_name(1));
        let mut c = XorChunk::new();
        for t in 998..=1_000 {
            c.append(t, t as f64);
        }
        for (last, ok) in [(Some(1_000), true), (Some(999), false), (None, false)] {
            let img = DeltaImage {
                meta: DeltaMeta {
                    next_ref: 2,
                    series: 1,
                    ..DeltaMeta::default()
                },
                entries: vec![DeltaEntry {
                    id: 1,
                    labels: Some(vec![("s".into(), "1".into())]),
                    open: OpenImage::Whole {
                        min_t: 998,
                        max_t: 1_000,
                        bytes: c.bytes().to_vec(),
                    },
                    last: last.map(|t: i64| (t, (t as f64).to_bits())),
                    ..DeltaEntry::default()
                }],
                ..DeltaImage::default()
            };
            std::fs::write(&path, img.encode()).expect("write");
            let res = apply(&Head::in_memory(7_200_000, 0), &path, 0, 0, &mut Vec::new());
            match res {
                Ok(_) => assert!(ok, "{last:?} applied"),
                Err(e) => {
                    assert!(!ok, "{last:?}: {e}");
                    assert!(e.to_string().contains("before its open chunk's end"), "{e}");
                }
            }
        }
    }

    #[test]
    fn a_cut_or_flipped_delta_is_an_error() {
        let img = DeltaImage {
            entries: vec![DeltaEntry {
                id: 7,
                labels: Some(vec![("job".into(), "a".into())]),
                open: OpenImage::Whole {
                    min_t: 1,
                    max_t: 2,
                    bytes: vec![1, 2, 3],
                },
                ..DeltaEntry::default()
            }],
            ..DeltaImage::default()
        };
        let bytes = img.encode();
        assert!(DeltaImage::decode(&bytes).is_ok());
        for n in 0..bytes.len() {
            let err = DeltaImage::decode(&bytes[..n]).expect_err("a cut delta is an error");
            assert!(matches!(err, Error::Corruption { .. }), "cut at {n}: {err}");
        }
        for i in HEADER.len()..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(DeltaImage::decode(&b).is_err(), "flip at {i} decoded");
        }
    }
}
