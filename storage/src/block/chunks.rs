//! Chunk segment files of a block: `chunks/000001`, `chunks/000002`, …
//!
//! Chunks are grouped into zstd frames of about [`FRAME_TARGET`] bytes, so that runs of
//! similar chunks (the buckets of one histogram, series of one target sharing timestamps)
//! compress together, while a read still decompresses only one small frame.
//!
//! ```text
//! segment: ┌──────────────┬────────────┬─────────┐
//!          │ magic u32 LE │ version u8 │ pad [3] │  then frames back to back:
//!          └──────────────┴────────────┴─────────┘
//! frame:   ┌─────────────┬──────────────────────────────────────────────────────────┐
//!          │ clen u32 LE │ zstd frame, clen bytes (content size and checksum set)   │
//!          └─────────────┴──────────────────────────────────────────────────────────┘
//! frame content, chunks back to back:
//!          ┌───────────────┬─────────────┬────────────┐
//!          │ len uvarint   │ encoding u8 │ data [len] │
//!          └───────────────┴─────────────┴────────────┘
//! ```
//! A chunk ref is `segment << 48 | frame offset << 16 | chunk offset in the frame content`
//! (segments below 2^16, frames start below 2^32, a chunk starts below 2^16 in its frame).
//! zstd's content checksum covers every chunk; every read checks bounds, limits the
//! decompressed size to [`MAX_FRAME_CONTENT`] and verifies the checksum.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::Encoding;
use crate::encoding::varint::{Decbuf, put_uvarint};
use crate::error::{Error, Result};
use crate::fs::layout::chunk_segment_name;
use crate::fs::mmap::Mmap;
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Magic number at the start of every chunk segment.
pub(crate) const MAGIC: u32 = 0xA4C0_C4A1;
/// Segment format version (2: zstd frames of chunks).
pub(crate) const VERSION: u8 = 2;
/// Segment header: magic, version, padding.
pub(crate) const HEADER_LEN: usize = 4 + 1 + 3;
/// Segments are cut before a frame could take them past this size (below 2^32).
pub(crate) const MAX_SEGMENT_SIZE: u64 = 512 << 20;
/// A frame is closed once its content reaches this many bytes, so every chunk starts below it.
pub(crate) const FRAME_TARGET: usize = 16 << 10;
/// Largest frame content a reader accepts: the target plus one chunk of at most 65 535
/// samples (< 10 bytes each in any encoding), rounded up.
pub(crate) const MAX_FRAME_CONTENT: usize = 1 << 20;
/// zstd level for chunk frames (3: the default; higher levels gained < 1 % on scrape data).
const ZSTD_LEVEL: i32 = 3;
/// Room kept for one frame when deciding to cut a segment.
const FRAME_RESERVE: u64 = 2 * MAX_FRAME_CONTENT as u64;
const MAX_SEGMENTS: u32 = u16::MAX as u32;

/// Builds a chunk ref.
fn chunk_ref(seg: u32, frame_off: u64, in_frame: usize) -> u64 {
    u64::from(seg) << 48 | frame_off << 16 | in_frame as u64
}

/// Writes chunk segments into a block's `chunks/` directory.
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    seg: u32,
    file: Option<BufWriter<File>>,
    /// File offset of the next frame in the current segment.
    offset: u64,
    /// Content of the frame being filled.
    pending: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    /// Total bytes written over all segments.
    pub(crate) bytes: u64,
}

impl ChunkWriter {
    /// Creates `dir` (the `chunks/` directory).
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|e| Error::io("cannot create a zstd compressor", e))?;
        compressor
            .include_checksum(true)
            .and_then(|()| compressor.include_contentsize(true))
            .map_err(|e| Error::io("cannot configure the zstd compressor", e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            seg: 0,
            file: None,
            offset: 0,
            pending: Vec::with_capacity(FRAME_TARGET * 2),
            compressor,
            bytes: 0,
        })
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        Error::io(format!("cannot write chunks in {}", self.dir.display()), e)
    }

    fn finish_segment(&mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            let path = self.dir.join(chunk_segment_name(self.seg));
            f.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Opens the next segment when there is none or the current one has no room for a frame.
    fn ensure_segment(&mut self) -> Result<()> {
        if self.file.is_some() && self.offset + FRAME_RESERVE <= MAX_SEGMENT_SIZE {
            return Ok(());
        }
        self.finish_segment()?;
        if self.seg >= MAX_SEGMENTS {
            return Err(Error::io(
                format!("too many chunk segments in {}", self.dir.display()),
                std::io::Error::other("segment limit reached"),
            ));
        }
        self.seg += 1;
        let path = self.dir.join(chunk_segment_name(self.seg));
        let mut f = BufWriter::with_capacity(
            1 << 16,
            File::create(&path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?,
        );
        let mut header = [0u8; HEADER_LEN];
        for (dst, src) in header
            .iter_mut()
            .zip(MAGIC.to_le_bytes().into_iter().chain([VERSION]))
        {
            *dst = src;
        }
        f.write_all(&header)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        self.file = Some(f);
        self.offset = HEADER_LEN as u64;
        self.bytes += HEADER_LEN as u64;
        Ok(())
    }

    /// Compresses and writes the pending frame, if any.
    fn flush_frame(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let z = self
            .compressor
            .compress(&self.pending)
            .map_err(|e| self.io_err(e))?;
        let Some(f) = self.file.as_mut() else {
            unreachable!("BUG: a frame is pending only after its segment was opened")
        };
        let res = f
            .write_all(&(z.len() as u32).to_le_bytes())
            .and_then(|_| f.write_all(&z));
        res.map_err(|e| self.io_err(e))?;
        let need = 4 + z.len() as u64;
        self.offset += need;
        self.bytes += need;
        self.pending.clear();
        Ok(())
    }

    /// Appends one chunk, returning its ref.
    pub(crate) fn write(&mut self, enc: Encoding, data: &[u8]) -> Result<u64> {
        if self.pending.is_empty() {
            self.ensure_segment()?;
        }
        let r = chunk_ref(self.seg, self.offset, self.pending.len());
        put_uvarint(&mut self.pending, data.len() as u64);
        self.pending.push(enc as u8);
        self.pending.extend_from_slice(data);
        if self.pending.len() >= FRAME_TARGET {
            self.flush_frame()?;
        }
        Ok(r)
    }

    /// Writes the last frame, flushes and fsyncs the last segment and the directory.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.flush_frame()?;
        self.finish_segment()?;
        crate::fs::fsync_dir(&self.dir)?;
        Ok(self.bytes)
    }
}

/// The last decompressed frame, reused while consecutive chunks come from it. Callers keep one
/// per reading thread or cursor.
#[derive(Default)]
pub(crate) struct FrameCache {
    /// The [`ChunkReader`] the cached frame came from (0 = none, or read without a reader).
    reader: u64,
    /// `segment << 32 | frame offset` of the cached frame; 0 = none (no frame starts at 0).
    key: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCache")
            .field("reader", &self.reader)
            .field("key", &self.key)
            .field("len", &self.buf.len())
            .finish()
    }
}

thread_local! {
    /// One zstd decompression context per thread (they cost ~100 KiB to create).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses `src` into `dst` (replacing its content), at most `MAX_FRAME_CONTENT` bytes.
fn decompress(src: &[u8], dst: &mut Vec<u8>) -> std::io::Result<()> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        dst.clear();
        // Our writer always records the content size; it is untrusted, so it only sizes the
        // buffer up to the limit, and `Decompressor` refuses to write past the capacity.
        let declared = zstd::zstd_safe::get_frame_content_size(src)
            .ok()
            .flatten()
            .ok_or_else(|| std::io::Error::other("zstd frame without a valid content size"))?;
        if declared > MAX_FRAME_CONTENT as u64 {
            return Err(std::io::Error::other(format!(
                "zstd frame claims {declared} bytes, more than {MAX_FRAME_CONTENT}"
            )));
        }
        dst.reserve(declared as usize);
        d.decompress_to_buffer(src, dst).map(|_| ())
    })
}

/// Finds chunk `r` in `segment` (the bytes of segment `r >> 48`, `None` if missing),
/// decompressing (and checksumming) its frame unless `cache` already holds it. Errors are
/// (file offset, reason).
fn locate_in(
    segment: Option<&[u8]>,
    r: u64,
    cache: &mut FrameCache,
) -> std::result::Result<(Encoding, Range<usize>), (u64, String)> {
    let seg = r >> 48;
    let frame_off = ((r >> 16) & 0xffff_ffff) as usize;
    let in_frame = (r & 0xffff) as usize;
    let bad = |why: &str| (frame_off as u64, why.to_string());
    let key = seg << 32 | frame_off as u64;
    if cache.key != key {
        cache.key = 0;
        let b = segment.ok_or_else(|| bad("chunk ref to a missing segment"))?;
        if frame_off < HEADER_LEN {
            return Err(bad("chunk ref inside the segment header"));
        }
        let clen =
            b.get(frame_off..frame_off + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| bad("chunk ref past the end of the segment"))? as usize;
        let z = b
            .get(frame_off + 4..frame_off + 4 + clen)
            .ok_or_else(|| bad("chunk frame past the end of the segment"))?;
        decompress(z, &mut cache.buf)
            .map_err(|e| bad(&format!("cannot decompress chunk frame: {e}")))?;
        cache.key = key;
    }
    let content = cache.buf.get(in_frame..).unwrap_or(&[]);
    let mut d = Decbuf::new(content);
    let len = d
        .uvarint()
        .ok_or_else(|| bad("chunk ref past the end of its frame"))?;
    let enc = d.u8().ok_or_else(|| bad("truncated chunk header"))?;
    let enc = Encoding::from_u8(enc).ok_or_else(|| bad("unknown chunk encoding"))?;
    let start = in_frame + (content.len() - d.remaining());
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= cache.buf.len())
        .ok_or_else(|| bad("chunk length past the end of its frame"))?;
    Ok((enc, start..end))
}

/// Reads chunk `r` from untrusted segment bytes (for the fuzz targets): the encoding byte and
/// the chunk's data.
#[cfg(feature = "fuzzing")]
pub(crate) fn read_from_segment(
    segment: &[u8],
    r: u64,
    cache: &mut FrameCache,
) -> std::result::Result<(u8, Vec<u8>), String> {
    if segment.get(..4) != Some(&MAGIC.to_le_bytes()[..]) || segment.get(4) != Some(&VERSION) {
        return Err("bad chunk segment header".into());
    }
    let (enc, range) = locate_in(Some(segment), r, cache).map_err(|(_, why)| why)?;
    Ok((enc as u8, cache.buf.get(range).unwrap_or(&[]).to_vec()))
}

/// Source of [`ChunkReader::id`]s.
static NEXT_READER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Reads chunks from a block's mapped segment files.
pub(crate) struct ChunkReader {
    /// Unique per opened reader, so a [`FrameCache`] shared between readers never serves one
    /// block's frame for another's ref.
    id: u64,
    dir: PathBuf,
    /// Segment `n` is at index `n - 1`.
    segments: Vec<Mmap>,
}

impl ChunkReader {
    /// Maps every segment in `dir` and checks their headers.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let mut names: Vec<(u32, PathBuf)> = Vec::new();
        let rd = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
            if let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                names.push((n, e.path()));
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for (i, (n, path)) in names.iter().enumerate() {
            if *n as usize != i + 1 {
                return Err(Error::corruption(
                    dir,
                    0,
                    format!("missing chunk segment {}", i + 1),
                ));
            }
            let m = Mmap::open(path)?;
            let b = m.bytes();
            if b.get(..4) != Some(&MAGIC.to_le_bytes()[..]) {
                return Err(Error::corruption(path, 0, "bad chunk segment magic"));
            }
            if b.get(4) != Some(&VERSION) {
                return Err(Error::corruption(
                    path,
                    4,
                    "unsupported chunk segment version",
                ));
            }
            segments.push(m);
        }
        Ok(Self {
            id: NEXT_READER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            dir: dir.to_path_buf(),
            segments,
        })
    }

    /// The encoding of chunk `r` and where its data sits in `cache`'s frame.
    fn locate(&self, r: u64, cache: &mut FrameCache) -> Result<(Encoding, Range<usize>)> {
        if cache.reader != self.id {
            cache.reader = self.id;
            cache.key = 0;
        }
        let seg = (r >> 48) as usize;
        let bytes = seg
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map(Mmap::bytes);
        locate_in(bytes, r, cache).map_err(|(off, why)| {
            Error::corruption(self.dir.join(chunk_segment_name(seg as u32)), off, why)
        })
    }

    /// The encoding and data of chunk `r`, read through `cache`.
    pub(crate) fn chunk<'c>(
        &self,
        r: u64,
        cache: &'c mut FrameCache,
    ) -> Result<(Encoding, &'c [u8])> {
        let (enc, range) = self.locate(r, cache)?;
        Ok((enc, cache.buf.get(range).unwrap_or(&[])))
    }

    /// Total mapped bytes.
    pub(crate) fn size(&self) -> u64 {
        self.segments.iter().map(|m| m.bytes().len() as u64).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment_with(body: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[VERSION, 0, 0, 0]);
        bytes.extend_from_slice(body);
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Arbitrary segment bytes behind a valid header and arbitrary refs: errors, no panic.
        #[test]
        fn random_segments_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            refs in proptest::collection::vec((0u64..3, 0u64..400, 0u64..400), 1..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(chunk_segment_name(1)), segment_with(&body)).unwrap();
            let r = ChunkReader::open(dir.path()).unwrap();
            let mut cache = FrameCache::default();
            for (seg, off, inner) in refs {
                let _ = r.chunk(seg << 48 | off << 16 | inner, &mut cache);
            }
        }

        /// Whatever chunks are written come back exactly, read in any order through one cache.
        #[test]
        fn written_chunks_read_back(
            chunks in proptest::collection::vec(
                (prop_oneof![Just(Encoding::Xor), Just(Encoding::Packed)],
                 proptest::collection::vec(any::<u8>(), 0..3000)),
                0..60,
            ),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 0..60),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = ChunkWriter::create(dir.path()).unwrap();
            let refs: Vec<u64> = chunks.iter().map(|(e, d)| w.write(*e, d).unwrap()).collect();
            w.finish().unwrap();
            let r = ChunkReader::open(dir.path()).unwrap();
            let mut cache = FrameCache::default();
            let picks = (0..chunks.len()).chain(order.iter().map(|i| i.index(chunks.len().max(1))));
            for i in picks.filter(|&i| i < chunks.len()) {
                let (enc, data) = r.chunk(refs[i], &mut cache).unwrap();
                prop_assert_eq!(enc, chunks[i].0);
                prop_assert_eq!(data, &chunks[i].1[..]);
            }
        }

        /// A valid zstd frame of arbitrary content: chunk parsing inside it fails cleanly.
        #[test]
        fn random_frame_content_never_panics(
            content in proptest::collection::vec(any::<u8>(), 0..300),
            inner in proptest::collection::vec(0u64..310, 1..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let z = zstd::bulk::compress(&content, 1).unwrap();
            let mut body = (z.len() as u32).to_le_bytes().to_vec();
            body.extend_from_slice(&z);
            std::fs::write(dir.path().join(chunk_segment_name(1)), segment_with(&body)).unwrap();
            let r = ChunkReader::open(dir.path()).unwrap();
            let mut cache = FrameCache::default();
            for i in inner {
                if let Ok((_, data)) = r.chunk(1 << 48 | (HEADER_LEN as u64) << 16 | i, &mut cache) {
                    prop_assert!(data.len() <= content.len());
                }
            }
        }
    }

    #[test]
    fn one_cache_shared_by_two_readers_never_mixes_them_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut readers = Vec::new();
        let mut refs = Vec::new();
        for fill in [1u8, 2] {
            let cdir = dir.path().join(format!("b{fill}"));
            let mut w = ChunkWriter::create(&cdir).unwrap();
            refs.push(w.write(Encoding::Xor, &[fill; 40]).unwrap());
            w.finish().unwrap();
            readers.push(ChunkReader::open(&cdir).unwrap());
        }
        assert_eq!(refs[0], refs[1], "same layout, same refs");
        let mut cache = FrameCache::default();
        for round in 0..4 {
            let i = round % 2;
            let (_, data) = readers[i].chunk(refs[i], &mut cache).unwrap();
            assert_eq!(data, &[i as u8 + 1; 40][..], "round {round}");
        }
    }

    #[test]
    fn write_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("chunks");
        let mut w = ChunkWriter::create(&cdir).unwrap();
        // Enough chunks for several frames, some larger than a frame on their own.
        let datas: Vec<Vec<u8>> = (0..400u32)
            .map(|i| {
                let len = if i % 97 == 5 {
                    FRAME_TARGET + 3
                } else {
                    i as usize % 300 + 1
                };
                (0..len).map(|j| (i as usize * 31 + j * j) as u8).collect()
            })
            .collect();
        let refs: Vec<u64> = datas
            .iter()
            .map(|d| w.write(Encoding::Xor, d).unwrap())
            .collect();
        let written = w.finish().unwrap();
        let frames: std::collections::BTreeSet<u64> = refs.iter().map(|r| r >> 16).collect();
        assert!(frames.len() > 5, "{} frames", frames.len());
        let r = ChunkReader::open(&cdir).unwrap();
        assert_eq!(r.size(), written);
        assert!(written < datas.iter().map(|d| d.len() as u64).sum::<u64>());
        // In order (cache hits) and in reverse (a frame per read).
        let mut cache = FrameCache::default();
        for (d, &rf) in datas.iter().zip(&refs).chain(datas.iter().zip(&refs).rev()) {
            let (enc, got) = r.chunk(rf, &mut cache).unwrap();
            assert_eq!(enc, Encoding::Xor);
            assert_eq!(got, &d[..]);
        }
        let mut cache = FrameCache::default();
        assert!(
            r.chunk(refs[1] + 1, &mut cache).is_err(),
            "not a chunk start"
        );
        assert!(
            r.chunk(7 << 48 | 8 << 16, &mut cache).is_err(),
            "missing segment"
        );
        assert!(r.chunk(1 << 48, &mut cache).is_err(), "inside the header");
        assert!(
            r.chunk(refs[3] + (1 << 16), &mut cache).is_err(),
            "not a frame start"
        );
        drop(r);
        // Flip one byte in the middle of the frame holding chunk 3: its chunks fail, others
        // do not.
        let seg = cdir.join(chunk_segment_name(1));
        let mut b = std::fs::read(&seg).unwrap();
        let frame_off = ((refs[3] >> 16) & 0xffff_ffff) as usize;
        let clen = u32::from_le_bytes(b[frame_off..frame_off + 4].try_into().unwrap()) as usize;
        b[frame_off + 4 + clen / 2] ^= 0x40;
        std::fs::write(&seg, &b).unwrap();
        let r = ChunkReader::open(&cdir).unwrap();
        let mut cache = FrameCache::default();
        assert!(matches!(
            r.chunk(refs[3], &mut cache),
            Err(Error::Corruption { .. })
        ));
        let other = refs.iter().find(|&&x| x >> 16 != refs[3] >> 16).unwrap();
        assert!(r.chunk(*other, &mut cache).is_ok());
    }
}
