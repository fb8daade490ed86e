//! Completed head chunks on disk (Prometheus's m-mapped head chunks): `<db>/chunks_head/000001 …`.
//!
//! ```text
//! segment: ┌──────────────┬────────────┬─────────┐
//!          │ magic u32 LE │ version u8 │ pad [3] │  then chunks back to back:
//!          └──────────────┴────────────┴─────────┘
//! chunk:   ┌───────────────┬──────────────┬──────────────┬────────────┬─────────────┬────────────┬───────────┐
//!          │ series u64 LE │ min_t i64 LE │ max_t i64 LE │ len u32 LE │ encoding u8 │ data [len] │ CRC32 LE  │
//!          └───────────────┴──────────────┴──────────────┴────────────┴─────────────┴────────────┴───────────┘
//!          the CRC covers every byte of the chunk before it
//! ```
//! A chunk ref is `segment number << 32 | offset of the chunk's series field`. The head keeps
//! only `{min_t, max_t, ref}` per completed chunk in memory.
//!
//! The files are a memory saving, not a durability mechanism: they are written with buffered
//! `write(2)` and never fsynced, and `Db::open` deletes the directory and rebuilds it from the
//! WAL replay. A segment is finished (flushed, closed and mapped read-only) once the next chunk
//! would take it past the segment size; the one being written is read with `pread` plus its
//! unflushed buffer. Truncation deletes whole segments whose newest chunk is older than the cut.
//!
//! A chunk that cannot be written (disk full, I/O error) stays in memory under a ref with
//! [`MEM_BIT`] set, so the head loses nothing; a store without a directory keeps every chunk
//! that way.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::Encoding;
use crate::error::{Error, Result};
use crate::fs::layout::chunk_segment_name;
use crate::fs::mmap::Mmap;
use crate::head::series::U64Map;
use crate::model::Timestamp;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Magic number at the start of every head chunk segment.
pub(crate) const MAGIC: u32 = 0x48C4_0C4D;
/// Segment format version.
pub(crate) const VERSION: u8 = 1;
/// Segment header: magic, version, padding.
pub(crate) const HEADER_LEN: usize = 4 + 1 + 3;
/// Offset of `min_t` in a chunk record (after the series ref).
const MIN_T_OFF: usize = 8;
/// Offset of `max_t`.
const MAX_T_OFF: usize = MIN_T_OFF + 8;
/// Offset of the data length.
const LEN_OFF: usize = MAX_T_OFF + 8;
/// Offset of the encoding byte.
const ENC_OFF: usize = LEN_OFF + 4;
/// Bytes of a chunk record before its data.
const RECORD_HEADER: usize = ENC_OFF + 1;
/// Bytes of a chunk record besides its data (header and CRC).
const RECORD_OVERHEAD: usize = RECORD_HEADER + 4;
/// Default size at which a segment is finished and mapped.
pub(crate) const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Set in refs of chunks kept in memory.
pub(crate) const MEM_BIT: u64 = 1 << 63;
/// Capacity of the write buffer of the current segment.
const WRITE_BUFFER: usize = 1 << 16;

/// A finished, read-only segment.
struct Finished {
    map: Mmap,
    /// Newest `max_t` of its chunks.
    max_t: Timestamp,
}

/// A chunk kept in memory.
struct MemChunk {
    max_t: Timestamp,
    bytes: Box<[u8]>,
}

/// The segment being written, and the in-memory fallback.
#[derive(Default)]
struct Current {
    /// Number of the newest segment (0 before the first).
    seq: u32,
    /// Writer of segment `seq`; None when no segment is open.
    file: Option<BufWriter<File>>,
    /// Bytes of segment `seq` written so far, buffered ones included.
    size: u64,
    /// Newest `max_t` of its chunks.
    max_t: Timestamp,
    /// Chunks that are in memory, by ref.
    mem: U64Map<MemChunk>,
    /// Next in-memory ref (without [`MEM_BIT`]).
    next_mem: u64,
    /// Scratch buffer for one encoded record.
    record: Vec<u8>,
    /// Chunks that could not be written to disk.
    write_errors: u64,
}

/// The store of completed head chunks, shared by all series of a head.
///
/// Writers (a series cutting its open chunk, under that series' lock) and readers (queries,
/// compaction) may call concurrently. Lock order: `cur`, then `finished`.
pub(crate) struct HeadChunkFiles {
    // Immutable after construction.
    /// `chunks_head/`; None keeps every chunk in memory.
    dir: Option<PathBuf>,
    /// Segments are finished before a chunk would take them past this size.
    segment_size: u64,
    /// Finished segments by number.
    finished: RwLock<BTreeMap<u32, Finished>>,
    /// The segment being written and the in-memory chunks.
    cur: Mutex<Current>,
}

impl HeadChunkFiles {
    /// A store that keeps every chunk in memory.
    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        Self {
            dir: None,
            segment_size: DEFAULT_SEGMENT_SIZE,
            finished: RwLock::default(),
            cur: Mutex::default(),
        }
    }

    /// Opens `dir` (`<db>/chunks_head`): whatever is there is deleted, as the head is rebuilt
    /// from the WAL. Segments are finished at about `segment_size` bytes.
    pub(crate) fn open(dir: &Path, segment_size: u64) -> Result<Self> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir),
            Ok(_) => std::fs::remove_file(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| Error::io(format!("cannot remove {}", dir.display()), e))?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(Self {
            dir: Some(dir.to_path_buf()),
            segment_size: segment_size
                .clamp((HEADER_LEN + RECORD_OVERHEAD) as u64, u64::from(u32::MAX)),
            finished: RwLock::default(),
            cur: Mutex::default(),
        })
    }

    fn path(&self, seq: u32) -> PathBuf {
        self.dir
            .as_deref()
            .unwrap_or(Path::new(""))
            .join(chunk_segment_name(seq))
    }

    /// Stores one completed XOR chunk of `series` covering `[min_t, max_t]`; returns its ref.
    /// Never fails: a chunk that cannot be written is kept in memory.
    pub(crate) fn write(
        &self,
        series: u64,
        min_t: Timestamp,
        max_t: Timestamp,
        data: &[u8],
    ) -> u64 {
        let mut cur = self.cur.lock();
        if self.dir.is_some() {
            match self.write_disk(&mut cur, series, min_t, max_t, data) {
                Ok(r) => return r,
                Err(e) => {
                    if cur.write_errors == 0 {
                        tracing::error!("head chunk kept in memory: {e}");
                    }
                    cur.write_errors += 1;
                    // Records after a failed write could sit at wrong offsets: start afresh.
                    self.finish_current(&mut cur);
                }
            }
        }
        let r = MEM_BIT | cur.next_mem;
        cur.next_mem += 1;
        cur.mem.insert(
            r,
            MemChunk {
                max_t,
                bytes: data.into(),
            },
        );
        r
    }

    fn write_disk(
        &self,
        cur: &mut Current,
        series: u64,
        min_t: Timestamp,
        max_t: Timestamp,
        data: &[u8],
    ) -> Result<u64> {
        let need = (RECORD_OVERHEAD + data.len()) as u64;
        let len = u32::try_from(data.len())
            .map_err(|_| Error::InvalidArgument("head chunk over 4 GiB".into()))?;
        if cur.file.is_none() || cur.size + need > self.segment_size {
            self.finish_current(cur);
            self.start_segment(cur)?;
        }
        let mut rec = std::mem::take(&mut cur.record);
        rec.clear();
        rec.extend_from_slice(&series.to_le_bytes());
        rec.extend_from_slice(&min_t.to_le_bytes());
        rec.extend_from_slice(&max_t.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.push(Encoding::Xor as u8);
        rec.extend_from_slice(data);
        let crc = crc32fast::hash(&rec);
        rec.extend_from_slice(&crc.to_le_bytes());
        let res = match cur.file.as_mut() {
            Some(f) => f.write_all(&rec),
            None => unreachable!("BUG: no head chunk segment open after start_segment"),
        };
        cur.record = rec;
        let path = self.path(cur.seq);
        res.map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        let r = u64::from(cur.seq) << 32 | cur.size;
        cur.size += need;
        cur.max_t = cur.max_t.max(max_t);
        Ok(r)
    }

    /// Opens segment `seq + 1` and writes its header.
    fn start_segment(&self, cur: &mut Current) -> Result<()> {
        let seq = cur.seq + 1;
        let path = self.path(seq);
        let mut f = BufWriter::with_capacity(
            WRITE_BUFFER,
            // Read and write: the segment being written is also read back with pread.
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?,
        );
        let mut hdr = [0u8; HEADER_LEN];
        if let Some(m) = hdr.get_mut(..4) {
            m.copy_from_slice(&MAGIC.to_le_bytes());
        }
        if let Some(v) = hdr.get_mut(4) {
            *v = VERSION;
        }
        f.write_all(&hdr)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        cur.seq = seq;
        cur.file = Some(f);
        cur.size = HEADER_LEN as u64;
        cur.max_t = i64::MIN;
        Ok(())
    }

    /// Flushes, closes and maps the current segment (if any). On failure the segment's chunks
    /// become unreadable (reads return errors; the WAL still has their samples).
    fn finish_current(&self, cur: &mut Current) {
        let Some(f) = cur.file.take() else {
            return;
        };
        let path = self.path(cur.seq);
        let res = f
            .into_inner()
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e.into_error()))
            .and_then(|_| Mmap::open(&path));
        match res {
            Ok(map) => {
                self.finished.write().insert(
                    cur.seq,
                    Finished {
                        map,
                        max_t: cur.max_t,
                    },
                );
            }
            Err(e) => tracing::error!("cannot finish head chunk segment: {e}"),
        }
    }

    /// Appends the data of the chunk `r` to `dst`. Checks bounds and the CRC.
    pub(crate) fn read_into(&self, r: u64, dst: &mut Vec<u8>) -> Result<()> {
        if r & MEM_BIT != 0 {
            let cur = self.cur.lock();
            let c = cur.mem.get(&r).ok_or_else(|| self.missing(r))?;
            dst.extend_from_slice(&c.bytes);
            return Ok(());
        }
        let (seq, off) = ((r >> 32) as u32, r & u64::from(u32::MAX));
        if let Some(f) = self.finished.read().get(&seq) {
            return decode_record(f.map.bytes(), off, dst, &self.path(seq));
        }
        {
            let cur = self.cur.lock();
            if cur.seq == seq
                && let Some(w) = cur.file.as_ref()
            {
                return read_current(w, cur.size, off, dst, &self.path(seq));
            }
        }
        // Finished between the two looks (finishing holds `cur`, so it is in the map now).
        match self.finished.read().get(&seq) {
            Some(f) => decode_record(f.map.bytes(), off, dst, &self.path(seq)),
            None => Err(self.missing(r)),
        }
    }

    fn missing(&self, r: u64) -> Error {
        Error::Corruption {
            path: self.dir.clone().unwrap_or_default(),
            offset: r,
            reason: "head chunk ref not found".into(),
        }
    }

    /// Deletes segments (and in-memory chunks) whose newest chunk is older than `before`.
    /// The caller has dropped every ref to them.
    pub(crate) fn truncate(&self, before: Timestamp) {
        let mut cur = self.cur.lock();
        cur.mem.retain(|_, c| c.max_t >= before);
        if cur.file.is_some() && cur.max_t < before {
            cur.file = None;
            remove_segment(&self.path(cur.seq));
        }
        let mut fin = self.finished.write();
        let old: Vec<u32> = fin
            .iter()
            .filter(|(_, f)| f.max_t < before)
            .map(|(&s, _)| s)
            .collect();
        for seq in old {
            // Unmap before unlinking.
            drop(fin.remove(&seq));
            remove_segment(&self.path(seq));
        }
    }

    /// Heap bytes: write buffer, segment table, in-memory chunks (not the mapped files).
    pub(crate) fn heap_bytes(&self) -> usize {
        let cur = self.cur.lock();
        let buf = cur.file.as_ref().map_or(0, |f| f.capacity());
        let mem: usize = cur
            .mem
            .values()
            .map(|c| c.bytes.len() + std::mem::size_of::<(u64, MemChunk)>() + 1)
            .sum();
        buf + mem + cur.record.capacity() + self.finished.read().len() * 64
    }

    /// Number of segment files (finished and current).
    #[cfg(test)]
    pub(crate) fn num_segments(&self) -> usize {
        self.finished.read().len() + usize::from(self.cur.lock().file.is_some())
    }

    /// Number of chunks kept in memory.
    #[cfg(test)]
    pub(crate) fn num_mem_chunks(&self) -> usize {
        self.cur.lock().mem.len()
    }
}

fn remove_segment(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("cannot remove head chunk segment {}: {e}", path.display());
    }
}

fn corrupt(path: &Path, offset: u64, reason: &str) -> Error {
    Error::Corruption {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}

/// Decodes the record at `off` of a finished segment's bytes, appending its data to `dst`.
fn decode_record(seg: &[u8], off: u64, dst: &mut Vec<u8>, path: &Path) -> Result<()> {
    let start = usize::try_from(off).map_err(|_| corrupt(path, off, "offset out of range"))?;
    if start < HEADER_LEN {
        return Err(corrupt(path, off, "chunk ref inside the segment header"));
    }
    let rec = seg
        .get(start..)
        .ok_or_else(|| corrupt(path, off, "chunk ref past the end"))?;
    let len = le_u32(rec, LEN_OFF).ok_or_else(|| corrupt(path, off, "truncated chunk"))? as usize;
    let body = rec
        .get(..RECORD_HEADER + len)
        .ok_or_else(|| corrupt(path, off, "truncated chunk"))?;
    let crc =
        le_u32(rec, RECORD_HEADER + len).ok_or_else(|| corrupt(path, off, "truncated chunk"))?;
    if crc32fast::hash(body) != crc {
        return Err(corrupt(path, off, "chunk CRC mismatch"));
    }
    if body.get(ENC_OFF) != Some(&(Encoding::Xor as u8)) {
        return Err(corrupt(path, off, "unknown head chunk encoding"));
    }
    dst.extend_from_slice(body.get(RECORD_HEADER..).unwrap_or(&[]));
    Ok(())
}

/// Reads `buf.len()` bytes at `off` of the segment being written: the flushed part with
/// `pread`, the rest from the writer's buffer.
fn read_at(w: &BufWriter<File>, size: u64, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let pending = w.buffer();
    let flushed = size - pending.len() as u64;
    let end = off + buf.len() as u64;
    if end > size {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let on_disk = (flushed.saturating_sub(off) as usize).min(buf.len());
    let (a, b) = buf.split_at_mut(on_disk);
    if !a.is_empty() {
        w.get_ref().read_exact_at(a, off)?;
    }
    if !b.is_empty() {
        let from = (off + on_disk as u64 - flushed) as usize;
        let src = pending
            .get(from..from + b.len())
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        b.copy_from_slice(src);
    }
    Ok(())
}

/// Reads the record at `off` of the segment being written, appending its data to `dst`.
fn read_current(
    w: &BufWriter<File>,
    size: u64,
    off: u64,
    dst: &mut Vec<u8>,
    path: &Path,
) -> Result<()> {
    if off < HEADER_LEN as u64 {
        return Err(corrupt(path, off, "chunk ref inside the segment header"));
    }
    let io = |e| Error::io(format!("cannot read {}", path.display()), e);
    let mut hdr = [0u8; RECORD_HEADER];
    read_at(w, size, off, &mut hdr).map_err(io)?;
    let len = le_u32(&hdr, LEN_OFF).unwrap_or(0) as usize;
    // Read header, data and CRC into `dst`, check, then keep only the data.
    let start = dst.len();
    dst.resize(start + RECORD_OVERHEAD + len, 0);
    let res = match dst.get_mut(start..) {
        Some(rec) => read_at(w, size, off, rec).map_err(io).and_then(|()| {
            let crc = le_u32(rec, RECORD_HEADER + len).unwrap_or(0);
            let body = rec.get(..RECORD_HEADER + len).unwrap_or(&[]);
            if crc32fast::hash(body) != crc {
                Err(corrupt(path, off, "chunk CRC mismatch"))
            } else if body.get(ENC_OFF) != Some(&(Encoding::Xor as u8)) {
                Err(corrupt(path, off, "unknown head chunk encoding"))
            } else {
                Ok(())
            }
        }),
        None => unreachable!("BUG: dst was just resized"),
    };
    if res.is_ok() {
        dst.copy_within(start + RECORD_HEADER..start + RECORD_HEADER + len, start);
        dst.truncate(start + len);
    } else {
        dst.truncate(start);
    }
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn chunk(i: u64) -> Vec<u8> {
        (0..(i % 50 + 1)).map(|j| (i * 31 + j) as u8).collect()
    }

    #[test]
    fn chunks_read_back_from_current_and_finished_segments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chunks_head");
        // Small segments: many get finished and mapped.
        let f = HeadChunkFiles::open(&p, 1000).unwrap();
        let mut refs = Vec::new();
        let mut got = Vec::new();
        for i in 0..200u64 {
            let r = f.write(i, i as i64 * 10, i as i64 * 10 + 9, &chunk(i));
            assert_eq!(r & MEM_BIT, 0);
            refs.push(r);
            // Read right away (from the write buffer) and again later.
            got.clear();
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got, chunk(i));
        }
        assert!(f.num_segments() > 5, "{}", f.num_segments());
        for (i, &r) in refs.iter().enumerate() {
            got.clear();
            got.push(0xAA);
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got[0], 0xAA);
            assert_eq!(&got[1..], &chunk(i as u64)[..]);
        }
        // Truncation deletes whole segments below the cut and keeps the rest readable.
        let before_files = std::fs::read_dir(&p).unwrap().count();
        f.truncate(1000);
        let after_files = std::fs::read_dir(&p).unwrap().count();
        assert!(after_files < before_files, "{after_files} < {before_files}");
        assert_eq!(after_files, f.num_segments());
        for (i, &r) in refs.iter().enumerate().skip(100) {
            got.clear();
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got, chunk(i as u64));
        }
        assert!(f.read_into(refs[0], &mut got).is_err());
        // Everything old: all files go, and writing starts a new segment.
        f.truncate(i64::MAX);
        assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0);
        let r = f.write(1, 0, 1, b"abc");
        got.clear();
        f.read_into(r, &mut got).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn flushed_part_of_the_current_segment_reads_back() {
        // One large segment: early chunks leave the write buffer for the file still being
        // written, and are read back from it with pread (the file must be open for reading).
        let dir = tempfile::tempdir().unwrap();
        let f = HeadChunkFiles::open(&dir.path().join("chunks_head"), 64 << 20).unwrap();
        let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let refs: Vec<u64> = (0..3 * WRITE_BUFFER as u64 / 1000)
            .map(|i| f.write(i, i as i64, i as i64, &big))
            .collect();
        assert_eq!(f.num_segments(), 1, "only the current segment");
        let mut got = Vec::new();
        for &r in &refs {
            got.clear();
            f.read_into(r, &mut got).unwrap();
            assert_eq!(got, big);
        }
    }

    #[test]
    fn corrupt_and_unknown_refs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chunks_head");
        let f = HeadChunkFiles::open(&p, 100).unwrap();
        let r1 = f.write(1, 0, 1, &[1; 40]);
        let _r2 = f.write(2, 0, 1, &[2; 40]); // finishes segment 1
        let mut got = Vec::new();
        assert!(f.read_into(r1 + 1, &mut got).is_err());
        assert!(f.read_into(5 << 32 | 8, &mut got).is_err());
        assert!(f.read_into(1 << 32, &mut got).is_err());
        assert!(f.read_into(MEM_BIT | 7, &mut got).is_err());
        assert!(got.is_empty());
        f.read_into(r1, &mut got).unwrap();
        assert_eq!(got, [1; 40]);
    }

    #[test]
    fn open_replaces_garbage_and_memory_store_works() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chunks_head");
        std::fs::write(&p, b"not a directory").unwrap();
        let f = HeadChunkFiles::open(&p, DEFAULT_SEGMENT_SIZE).unwrap();
        assert!(p.is_dir());
        drop(f);
        std::fs::write(p.join("000001"), b"garbage").unwrap();
        let f = HeadChunkFiles::open(&p, DEFAULT_SEGMENT_SIZE).unwrap();
        assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0);
        drop(f);

        let m = HeadChunkFiles::in_memory();
        let r = m.write(1, 5, 9, b"xyz");
        assert_ne!(r & MEM_BIT, 0);
        let mut got = Vec::new();
        m.read_into(r, &mut got).unwrap();
        assert_eq!(got, b"xyz");
        assert_eq!(m.num_mem_chunks(), 1);
        m.truncate(10);
        assert_eq!(m.num_mem_chunks(), 0);
    }
}
