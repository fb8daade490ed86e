//! Completed head chunks, kept in memory in append-only pages.
//!
//! ```text
//! page (Options::head_chunk_segment_size, default 1 MiB), chunks back to back:
//! ┌─────────────┬────────────┬─────────────┬────────────┬─────┐
//! │ len uvarint │ data [len] │ len uvarint │ data [len] │ ... │
//! └─────────────┴────────────┴─────────────┴────────────┴─────┘
//! ```
//! A chunk ref is `page number << 32 | offset of the chunk's length`, with bit 31
//! ([`PACKED_REF`]) set when the chunk is in the packed encoding (`chunk/packed.rs`) rather
//! than XOR: chunks loaded from a head snapshot are packed, chunks cut by appends are XOR. The
//! series keep
//! `{min_t, max_t, ref}` per completed chunk; the page being filled is behind a mutex, full pages
//! are immutable and read under a read lock. Truncation drops whole pages whose newest chunk is
//! older than the cut (pages fill in time order, so a page spans a short time range).
//!
//! Why memory and not files: completed head chunks used to be written to `<db>/chunks_head/`
//! (Prometheus's m-mapped head chunks) as well as being in the WAL, so recent data was on disk
//! twice. The files were never a durability source (they were deleted at open and rebuilt from
//! the WAL replay), so they only moved chunk bytes from the heap to the page cache. Packed in
//! pages, completed chunks cost their XOR size plus 1–2 bytes (about 1.5–3 B/sample on scrape
//! data, ~0.9 KiB per series for 2 h at 15 s), while the data directory before compaction
//! shrinks to the compressed WAL alone. An older `chunks_head/` is removed at open.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::{Encoding, PackedIterator, XorChunk};
use crate::encoding::{Decbuf, put_uvarint};
use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::model::Timestamp;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Default page size.
pub(crate) const DEFAULT_SEGMENT_SIZE: u64 = 1 << 20;
/// Smallest and largest page sizes (a chunk larger than a page gets a page of its own).
const PAGE_SIZE_RANGE: (u64, u64) = (256, 16 << 20);
/// Ref bit telling a packed chunk (offsets stay below 2^31: a page holds at most 16 MiB or
/// one chunk).
pub(crate) const PACKED_REF: u64 = 1 << 31;
/// Name used in errors.
const STORE_NAME: &str = "<head chunks>";

/// A full, immutable page.
struct Page {
    /// Shared with head snapshots being written (`export_pages`).
    bytes: Arc<[u8]>,
    /// Newest `max_t` of its chunks.
    max_t: Timestamp,
}

/// The page being filled.
#[derive(Default)]
struct Current {
    /// Number of the newest page (0 before the first).
    seq: u32,
    /// Whether page `seq` is being filled (false before the first write and after truncation
    /// dropped it).
    open: bool,
    /// Its bytes; the capacity is the page size.
    buf: Vec<u8>,
    /// Newest `max_t` of its chunks.
    max_t: Timestamp,
}

/// The store of completed head chunks, shared by all series of a head.
///
/// Writers (a series cutting its open chunk, under that series' lock) and readers (queries,
/// compaction) may call concurrently. Lock order: `cur`, then `full`.
pub(crate) struct HeadChunkFiles {
    // Immutable after construction.
    /// Bytes per page.
    page_size: usize,
    /// Full pages by number.
    full: RwLock<BTreeMap<u32, Page>>,
    /// The page being filled.
    cur: Mutex<Current>,
}

impl HeadChunkFiles {
    /// A store with pages of `page_size` bytes.
    fn with_page_size(page_size: u64) -> Self {
        let size = page_size.clamp(PAGE_SIZE_RANGE.0, PAGE_SIZE_RANGE.1);
        Self {
            page_size: usize::try_from(size).unwrap_or(1 << 20),
            full: RwLock::default(),
            cur: Mutex::default(),
        }
    }

    /// A store with the default page size.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn in_memory() -> Self {
        Self::with_page_size(DEFAULT_SEGMENT_SIZE)
    }

    /// A store with pages of about `page_size` bytes. `old_dir` (`<db>/chunks_head`, written by
    /// earlier versions and rebuilt from the WAL anyway) is removed if present.
    pub(crate) fn open(old_dir: &Path, page_size: u64) -> Result<Self> {
        match std::fs::symlink_metadata(old_dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(old_dir),
            Ok(_) => std::fs::remove_file(old_dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| Error::io(format!("cannot remove {}", old_dir.display()), e))?;
        Ok(Self::with_page_size(page_size))
    }

    /// Stores one completed XOR chunk covering `[min_t, max_t]`; returns its ref. `series` is
    /// the owner's id (unused: the ref is all a reader needs).
    pub(crate) fn write(
        &self,
        _series: u64,
        _min_t: Timestamp,
        max_t: Timestamp,
        data: &[u8],
    ) -> u64 {
        let mut cur = self.cur.lock();
        let need = data.len() + 10;
        if !cur.open || cur.buf.len() + need > cur.buf.capacity() {
            self.finish_current(&mut cur);
            cur.seq += 1;
            cur.open = true;
            cur.buf = Vec::with_capacity(self.page_size.max(need));
            cur.max_t = Timestamp::MIN;
        }
        let off = cur.buf.len() as u64;
        put_uvarint(&mut cur.buf, data.len() as u64);
        cur.buf.extend_from_slice(data);
        cur.max_t = cur.max_t.max(max_t);
        u64::from(cur.seq) << 32 | off
    }

    /// Moves the page being filled (if any) to the full pages.
    fn finish_current(&self, cur: &mut Current) {
        if !cur.open {
            return;
        }
        cur.open = false;
        let bytes = Arc::from(std::mem::take(&mut cur.buf));
        self.full.write().insert(
            cur.seq,
            Page {
                bytes,
                max_t: cur.max_t,
            },
        );
    }

    /// Appends the chunk `r` to `dst` as XOR bytes (a packed chunk is re-encoded), for callers
    /// that read XOR only (deletions, duplicate checks). Checks bounds.
    pub(crate) fn read_into(&self, r: u64, dst: &mut Vec<u8>) -> Result<()> {
        if encoding(r) == Encoding::Xor {
            return self.read_raw_into(r, dst);
        }
        let mut raw = Vec::new();
        self.read_raw_into(r, &mut raw)?;
        let mut it = PackedIterator::new(&raw);
        let mut c = XorChunk::new();
        while it.next() {
            let (t, v) = it.at();
            if c.last_t().is_some_and(|l| t <= l) {
                return Err(corrupt(r, "packed head chunk samples out of time order"));
            }
            c.append(t, v);
        }
        if let Some(e) = it.err() {
            return Err(corrupt(r, &format!("bad packed head chunk: {e}")));
        }
        dst.extend_from_slice(c.bytes());
        Ok(())
    }

    /// Appends the bytes of the chunk `r`, in [`encoding`]`(r)`, to `dst`. Checks bounds.
    pub(crate) fn read_raw_into(&self, r: u64, dst: &mut Vec<u8>) -> Result<()> {
        let seq = (r >> 32) as u32;
        let off = r & u64::from(u32::MAX) & !PACKED_REF;
        if let Some(p) = self.full.read().get(&seq) {
            return copy_chunk(&p.bytes, off, r, dst);
        }
        {
            let cur = self.cur.lock();
            if cur.open && cur.seq == seq {
                return copy_chunk(&cur.buf, off, r, dst);
            }
        }
        // Finished between the two looks (finishing holds `cur`, so it is in the map now).
        match self.full.read().get(&seq) {
            Some(p) => copy_chunk(&p.bytes, off, r, dst),
            None => Err(corrupt(r, "head chunk ref not found")),
        }
    }

    /// Bytes per page.
    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    /// Drops pages whose newest chunk is older than `before`. The caller has dropped every ref
    /// to them.
    pub(crate) fn truncate(&self, before: Timestamp) {
        let mut cur = self.cur.lock();
        if cur.open && cur.max_t < before {
            cur.open = false;
            cur.buf = Vec::new();
        }
        self.full.write().retain(|_, p| p.max_t >= before);
    }

    /// Heap bytes: every page (the one being filled at its capacity) and the page table.
    pub(crate) fn heap_bytes(&self) -> usize {
        let cur = self.cur.lock().buf.capacity();
        let full = self.full.read();
        cur + full
            .values()
            .map(|p| p.bytes.len() + std::mem::size_of::<(u32, Page)>() + 16)
            .sum::<usize>()
    }

    /// Every page for a head snapshot, by number: `(seq, bytes)`. Full
    /// pages are shared, the page being filled is copied. Chunk refs stay valid in a store that
    /// imports them ([`HeadChunkFiles::import_page`]).
    pub(crate) fn export_pages(&self) -> Vec<ExportedPage> {
        let cur = self.cur.lock();
        let mut out: Vec<ExportedPage> = self
            .full
            .read()
            .iter()
            .map(|(&seq, p)| ExportedPage {
                seq,
                bytes: p.bytes.clone(),
            })
            .collect();
        if cur.open {
            out.push(ExportedPage {
                seq: cur.seq,
                bytes: Arc::from(cur.buf.as_slice()),
            });
        }
        out
    }

    /// Adds a page of a head snapshot, keeping its number (so the snapshot's chunk refs
    /// resolve). Pages are imported in increasing `seq`, into a store nothing was written to;
    /// the page being filled (`current`) comes last and writes continue in it.
    pub(crate) fn import_page(&self, seq: u32, max_t: Timestamp, bytes: Vec<u8>, current: bool) {
        let mut cur = self.cur.lock();
        cur.seq = cur.seq.max(seq);
        if current {
            let mut buf = bytes;
            buf.reserve(self.page_size.saturating_sub(buf.len()));
            cur.open = true;
            cur.buf = buf;
            cur.max_t = max_t;
        } else {
            self.full.write().insert(
                seq,
                Page {
                    bytes: Arc::from(bytes),
                    max_t,
                },
            );
        }
    }

    /// Adds a completed page of a head snapshot or delta, its bytes already shared (see
    /// [`HeadChunkFiles::import_page`]).
    pub(crate) fn import_full_page(&self, seq: u32, max_t: Timestamp, bytes: Arc<[u8]>) {
        let mut cur = self.cur.lock();
        cur.seq = cur.seq.max(seq);
        self.full.write().insert(seq, Page { bytes, max_t });
    }

    /// Number of pages (full and being filled).
    #[cfg(test)]
    pub(crate) fn num_pages(&self) -> usize {
        self.full.read().len() + usize::from(self.cur.lock().open)
    }
}

/// One page of [`HeadChunkFiles::export_pages`].
pub(crate) struct ExportedPage {
    pub(crate) seq: u32,
    pub(crate) bytes: Arc<[u8]>,
}

/// The encoding of the chunk `r`.
pub(crate) fn encoding(r: u64) -> Encoding {
    if r & PACKED_REF == 0 {
        Encoding::Xor
    } else {
        Encoding::Packed
    }
}

/// The bytes of the chunk at `off` of a page (the page's layout: see the module docs).
pub(crate) fn chunk_at(page: &[u8], off: u64) -> Option<&[u8]> {
    let rest = usize::try_from(off).ok().and_then(|o| page.get(o..))?;
    let mut d = Decbuf::new(rest);
    let len = d.uvarint().and_then(|l| usize::try_from(l).ok())?;
    d.bytes(len)
}

fn corrupt(r: u64, reason: &str) -> Error {
    Error::corruption(STORE_NAME, r, reason)
}

/// Appends the chunk at `off` of a page to `dst`.
fn copy_chunk(page: &[u8], off: u64, r: u64, dst: &mut Vec<u8>) -> Result<()> {
    let rest = usize::try_from(off)
        .ok()
        .and_then(|o| page.get(o..))
        .ok_or_else(|| corrupt(r, "chunk ref past the end of its page"))?;
    let mut d = Decbuf::new(rest);
    let len = d
        .uvarint()
        .and_then(|l| usize::try_from(l).ok())
        .ok_or_else(|| corrupt(r, "bad chunk length"))?;
    let start = rest.len() - d.remaining();
    let data = rest
        .get(start..start.saturating_add(len))
        .ok_or_else(|| corrupt(r, "chunk past the end of its page"))?;
    dst.extend_from_slice(data);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn chunk(i: u64) -> Vec<u8> {
        (0..(i % 50 + 1)).map(|j| (i * 31 + j) as u8).collect()
    }

    #[test]
    fn chunks_read_back_from_current_and_full_pages_and_truncation_drops_old_pages() {
        // Small pages: many fill up.
        let f = HeadChunkFiles::with_page_size(1000);
        let mut refs = Vec::new();
        let mut got = Vec::new();
        for i in 0..200u64 {
            let r = f.write(i, i as i64 * 10, i as i64 * 10 + 9, &chunk(i));
            refs.push(r);
            got.clear();
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got, chunk(i));
        }
        assert!(f.num_pages() > 5, "{}", f.num_pages());
        for (i, &r) in refs.iter().enumerate() {
            got.clear();
            got.push(0xAA);
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got[0], 0xAA, "appends");
            assert_eq!(&got[1..], &chunk(i as u64)[..]);
        }
        let before = f.num_pages();
        let heap = f.heap_bytes();
        f.truncate(1000);
        assert!(f.num_pages() < before);
        assert!(f.heap_bytes() < heap);
        for (i, &r) in refs.iter().enumerate().skip(100) {
            got.clear();
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got, chunk(i as u64));
        }
        assert!(f.read_into(refs[0], &mut got).is_err());
        // Everything old: all pages go, and writing starts a new one.
        f.truncate(i64::MAX);
        assert_eq!(f.num_pages(), 0);
        let r = f.write(1, 0, 1, b"abc");
        got.clear();
        f.read_into(r, &mut got).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn a_chunk_larger_than_a_page_gets_its_own() {
        let f = HeadChunkFiles::with_page_size(256);
        let big = vec![7u8; 5000];
        let a = f.write(1, 0, 1, b"x");
        let b = f.write(2, 0, 1, &big);
        let c = f.write(3, 0, 1, b"y");
        let mut got = Vec::new();
        for (r, want) in [(a, &b"x"[..]), (b, &big[..]), (c, &b"y"[..])] {
            got.clear();
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn unknown_refs_are_errors() {
        let f = HeadChunkFiles::with_page_size(256);
        let r1 = f.write(1, 0, 1, &[0x7f; 40]);
        let _ = f.write(2, 0, 1, &[2; 240]); // does not fit: page 1 is full at 41 bytes
        let mut got = Vec::new();
        let check = |r: u64, want: &str| {
            let mut got = Vec::new();
            let err = f.read_into(r, &mut got).unwrap_err();
            assert!(
                matches!(&err, Error::Corruption { reason, .. } if reason.contains(want)),
                "{r:#x}: want {want:?}, got {err}"
            );
            assert!(got.is_empty());
        };
        check(5 << 32 | 8, "not found");
        check(r1 + 10_000, "chunk ref past the end of its page");
        check(r1 + 41, "bad chunk length");
        // Inside a chunk: its bytes read as a length of 127, past the page's end.
        check(r1 + 1, "chunk past the end of its page");
        f.read_into(r1, &mut got).unwrap();
        assert_eq!(got, [0x7f; 40]);
    }

    #[test]
    fn open_removes_an_old_chunks_head() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chunks_head");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("000001"), b"old segment").unwrap();
        let _f = HeadChunkFiles::open(&p, DEFAULT_SEGMENT_SIZE).unwrap();
        assert!(!p.exists());
        std::fs::write(&p, b"not a directory").unwrap();
        let _f = HeadChunkFiles::open(&p, DEFAULT_SEGMENT_SIZE).unwrap();
        assert!(!p.exists());
        let _f = HeadChunkFiles::open(&p, DEFAULT_SEGMENT_SIZE).unwrap();
    }
}
