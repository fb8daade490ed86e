//! WAL segment framing: segment files, record frames, CRC32, torn-tail detection.
//! OWNER: codec helper.
//!
//! A WAL directory holds segment files named by an 8-digit decimal index (`00000000`,
//! `00000001`, …) and checkpoint directories `checkpoint.NNNNNNNN` (see `checkpoint.rs`).
//!
//! ```text
//! segment file:
//! ┌──────────────┬────────────┬───────────────┬─────────┬─────────┬─────┐
//! │ magic "AWAL" │ version u8 │ reserved 3 B  │ frame 0 │ frame 1 │ ... │
//! └──────────────┴────────────┴───────────────┴─────────┴─────────┴─────┘
//! frame:
//! ┌──────────────┬──────────────────────────────────────┬─────────────────────┐
//! │ word u32 LE  │ crc32(word bytes ‖ payload) u32 LE   │ payload (len bytes) │
//! └──────────────┴──────────────────────────────────────┴─────────────────────┘
//! word = codec << 28 | len   (bits 0..=27: payload length; bits 28..=31: codec)
//! codec 0: the payload is the record; codec 1: the payload is one zstd frame of the record
//! (versions 2 to 4); codecs 2 and 3 (version 3 only) and 4 and 5 (version 4 only): a samples
//! record encoded against the segment's earlier samples, plain or in a zstd frame (see
//! `compress.rs`, `delta.rs`). Version 1 segments have codec 0 throughout.
//! ```
//! A frame holds exactly one record (records never span frames or segments) and
//! `1 <= len <= MAX_RECORD_LEN`. An empty file is a valid empty segment. The first frame that is
//! short, has a bad length or codec, or fails its CRC ends the valid part of a segment:
//! everything from its offset on is a torn or corrupt tail. The CRC covers the payload as
//! stored (compressed), so torn and corrupt tails are found without decompressing anything; a
//! frame whose CRC holds but whose payload does not decompress is a corrupt record, like one
//! that does not decode. A plain frame is byte for byte a version 1 frame.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::compress::{Decompressor, Payload};
use crate::encoding::crc::crc32_parts;
use crate::error::{Error, Result};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// First four bytes of every segment.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"AWAL";
/// Current segment format version (4: samples records encoded against the segment's earlier
/// samples with predicted refs, codecs 4 and 5).
pub(crate) const SEGMENT_VERSION: u8 = 4;
/// The third version, still read: codecs 2 and 3 (refs stored as differences).
#[cfg(test)]
pub(crate) const SEGMENT_VERSION_3: u8 = 3;
/// The second version, still read: codecs 0 and 1 (records compressed one by one).
#[cfg(test)]
pub(crate) const SEGMENT_VERSION_2: u8 = 2;
/// The first version, still read: payloads are plain records.
pub(crate) const SEGMENT_VERSION_1: u8 = 1;
/// Offset of the version byte.
const VERSION_OFFSET: usize = SEGMENT_MAGIC.len();
/// Bytes before the first frame: magic, version, 3 reserved zero bytes.
pub(crate) const SEGMENT_HEADER_LEN: usize = VERSION_OFFSET + 1 + 3;
/// Bytes of a frame header: length and CRC.
pub(crate) const FRAME_HEADER_LEN: usize = 4 + 4;
/// Largest record and largest frame payload (a bigger batch must be split by the caller).
pub(crate) const MAX_RECORD_LEN: usize = 64 << 20;
/// Bit position of the codec in a frame's first word.
const CODEC_SHIFT: u32 = 28;
/// The length bits of a frame's first word.
const LEN_MASK: u32 = (1 << CODEC_SHIFT) - 1;
const _: () = assert!(MAX_RECORD_LEN <= LEN_MASK as usize);

/// Name of segment `index`.
pub(crate) fn segment_name(index: u32) -> String {
    format!("{index:08}")
}

/// Segment files in `dir`, sorted by index.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    crate::fs::numbered_entries(dir, "")
}

/// Appends a segment header to `dst`.
pub(crate) fn put_segment_header(dst: &mut Vec<u8>) {
    dst.extend_from_slice(&SEGMENT_MAGIC);
    dst.push(SEGMENT_VERSION);
    dst.extend_from_slice(&[0; 3]);
}

/// The payload length in a frame's first word.
pub(crate) fn payload_len(word: u32) -> usize {
    (word & LEN_MASK) as usize
}

/// Appends one frame holding `record` uncompressed (codec 0) to `dst` (tests: the WAL's writers
/// frame through [`super::compress::Compressor`]). BUG if the record is empty or too large.
#[cfg(test)]
pub(crate) fn put_frame(dst: &mut Vec<u8>, record: &[u8]) {
    put_frame_codec(dst, super::compress::CODEC_PLAIN, record);
}

/// Appends one frame with `codec` and `payload` to `dst`. BUG if the payload is empty or longer
/// than [`MAX_RECORD_LEN`], or the codec does not fit its 4 bits.
pub(crate) fn put_frame_codec(dst: &mut Vec<u8>, codec: u8, payload: &[u8]) {
    assert!(
        !payload.is_empty() && payload.len() <= MAX_RECORD_LEN && codec < 16,
        "BUG: WAL frame of {} bytes (codec {codec}) not in 1..={MAX_RECORD_LEN}",
        payload.len()
    );
    let word = (u32::from(codec) << CODEC_SHIFT | payload.len() as u32).to_le_bytes();
    let crc = crc32_parts(&[&word, payload]);
    dst.reserve(FRAME_HEADER_LEN + payload.len());
    dst.extend_from_slice(&word);
    dst.extend_from_slice(&crc.to_le_bytes());
    dst.extend_from_slice(payload);
}

/// Cursor over the frames of one segment's bytes (untrusted).
///
/// Call `next()` until it returns `false`; `record()` is the current payload. Afterwards
/// `err()` tells a clean end from a torn/corrupt tail, which starts at `valid_len()`.
pub(crate) struct SegmentReader<'a> {
    buf: &'a [u8],
    path: &'a Path,
    /// Offset just past the last valid frame (or the header).
    pos: usize,
    /// Payload of the current frame.
    cur: &'a [u8],
    /// Offset of the current frame.
    cur_off: usize,
    /// Codec of the current frame.
    cur_codec: u8,
    /// The segment's format version (read from its header; current when empty).
    version: u8,
    /// Offset in the segment of `buf[0]` (0 unless the reader continues a segment,
    /// [`SegmentReader::frames`]); added to every offset reported.
    base: usize,
    err: Option<Error>,
}

impl<'a> SegmentReader<'a> {
    /// A reader over the bytes of the segment at `path` (used in errors only).
    pub(crate) fn new(buf: &'a [u8], path: &'a Path) -> Self {
        let mut r = Self::frames(buf, path, SEGMENT_VERSION, 0);
        if buf.is_empty() {
            return r;
        }
        match buf.get(..SEGMENT_HEADER_LEN) {
            None => {
                r.err = Some(Error::corruption(
                    path,
                    0,
                    "segment shorter than its header",
                ))
            }
            Some(h) if h.get(..VERSION_OFFSET) != Some(&SEGMENT_MAGIC[..]) => {
                r.err = Some(Error::corruption(path, 0, "bad segment magic"));
            }
            Some(h) => match h.get(VERSION_OFFSET) {
                Some(&v) if (SEGMENT_VERSION_1..=SEGMENT_VERSION).contains(&v) => {
                    r.version = v;
                    r.pos = SEGMENT_HEADER_LEN;
                }
                v => {
                    r.err = Some(Error::corruption(
                        path,
                        VERSION_OFFSET as u64,
                        format!("unsupported segment version {v:?}"),
                    ));
                }
            },
        }
        r
    }

    /// A reader over `buf`, frames (no header) of a segment of format `version` that start at
    /// offset `base` of the segment at `path`: how [`stream_segment`] continues a segment.
    pub(crate) fn frames(buf: &'a [u8], path: &'a Path, version: u8, base: usize) -> Self {
        Self {
            buf,
            path,
            pos: 0,
            cur: &[],
            cur_off: 0,
            cur_codec: 0,
            version,
            base,
            err: None,
        }
    }

    /// Advances to the next frame. `false` at the end or at the first invalid frame.
    pub(crate) fn next(&mut self) -> bool {
        if self.err.is_some() || self.pos >= self.buf.len() {
            return false;
        }
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let at = (self.base + self.pos) as u64;
        let fail = |reason: String| Some(Error::corruption(self.path, at, reason));
        let (len_b, word, want_crc) =
            match (rest.get(0..4), le32(rest.get(0..4)), le32(rest.get(4..8))) {
                (Some(b), Some(w), Some(c)) => (b, w, c),
                _ => {
                    self.err = fail(format!("torn frame header ({} bytes)", rest.len()));
                    return false;
                }
            };
        let (codec, len) = ((word >> CODEC_SHIFT) as u8, (word & LEN_MASK) as usize);
        let codecs = super::compress::CODECS_OF_VERSION
            .get(usize::from(self.version))
            .copied()
            .unwrap_or(0);
        if len == 0 || len > MAX_RECORD_LEN || codecs >> codec & 1 == 0 {
            self.err = fail(format!("invalid record length {word}"));
            return false;
        }
        let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            self.err = fail(format!(
                "torn record: {len} bytes announced, {} present",
                rest.len() - FRAME_HEADER_LEN
            ));
            return false;
        };
        if crc32_parts(&[len_b, payload]) != want_crc {
            self.err = fail("record checksum mismatch".to_string());
            return false;
        }
        self.cur = payload;
        self.cur_codec = codec;
        self.cur_off = self.pos;
        self.pos += FRAME_HEADER_LEN + len;
        true
    }

    /// Payload of the current frame, as stored (compressed or not), and its codec.
    #[cfg(test)]
    pub(crate) fn payload(&self) -> (u8, &'a [u8]) {
        (self.cur_codec, self.cur)
    }

    /// The current record: the payload decompressed into `dec`'s buffer when needed. A payload
    /// that does not decompress is `Error::Corruption` at the frame's offset.
    pub(crate) fn record<'s>(&self, dec: &'s mut Decompressor) -> Result<&'s [u8]>
    where
        'a: 's,
    {
        dec.record(self.cur_codec, self.cur)
            .map_err(|reason| Error::corruption(self.path, self.record_offset() as u64, reason))
    }

    /// The current frame decoded by `dec`: a delta samples frame as its samples, without
    /// building the record (see [`Decompressor::payload`]).
    pub(crate) fn payload_decoded<'s>(&self, dec: &'s mut Decompressor) -> Result<Payload<'s>>
    where
        'a: 's,
    {
        dec.payload(self.cur_codec, self.cur)
            .map_err(|reason| Error::corruption(self.path, self.record_offset() as u64, reason))
    }

    /// The segment's format version.
    pub(crate) fn version(&self) -> u8 {
        self.version
    }

    /// Offset of the current frame in the segment.
    pub(crate) fn record_offset(&self) -> usize {
        self.base + self.cur_off
    }

    /// Bytes of the segment that are valid so far (header and whole frames).
    pub(crate) fn valid_len(&self) -> usize {
        self.base + self.pos
    }

    /// The torn or corrupt tail that ended reading, if any.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// Takes the error out.
    pub(crate) fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }
}

/// Bytes read from a segment file at a time by [`stream_segment`].
pub(crate) const READ_CHUNK: usize = 1 << 20;

/// How a streamed segment ended.
#[derive(Debug)]
pub(crate) struct StreamEnd {
    /// Bytes of the segment that are valid (header and whole frames).
    pub(crate) valid_len: usize,
    /// The torn or corrupt tail that ended it, if any (it starts at `valid_len`).
    pub(crate) tail: Option<Error>,
}

/// Reads the segment at `path` frame by frame, calling `f` with the reader on each valid frame,
/// and returns where the valid part ends. The file is read [`READ_CHUNK`] bytes at a time into
/// `buf` (reused; it grows only to hold a larger frame), so memory does not grow with the
/// segment. Frames are checked exactly as [`SegmentReader`] checks a whole segment's bytes: the
/// same frames are valid and the same tail error is returned, at the same offset. Errors are
/// I/O errors and those of `f`.
pub(crate) fn stream_segment(
    path: &Path,
    buf: &mut Vec<u8>,
    f: &mut dyn FnMut(&SegmentReader<'_>) -> Result<()>,
) -> Result<StreamEnd> {
    stream_segment_by(path, buf, READ_CHUNK, f)
}

/// [`stream_segment`] reading `chunk` bytes at a time (at least 1).
fn stream_segment_by(
    path: &Path,
    buf: &mut Vec<u8>,
    chunk: usize,
    f: &mut dyn FnMut(&SegmentReader<'_>) -> Result<()>,
) -> Result<StreamEnd> {
    let chunk = chunk.max(1);
    let io_err = |e| Error::io(format!("cannot read WAL segment {}", path.display()), e);
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open WAL segment {}", path.display()), e))?;
    buf.clear();
    // `buf` holds the segment's bytes from offset `base`; `version` is known once the header
    // was read.
    let (mut base, mut version, mut eof, mut want) = (0usize, None, false, chunk);
    loop {
        if buf.len() < want && !eof {
            buf.reserve(want - buf.len());
            let n = io::Read::read_to_end(
                &mut io::Read::take(&mut file, (want - buf.len()) as u64),
                buf,
            )
            .map_err(io_err)?;
            eof = buf.len() < want || n == 0;
        }
        if version.is_none() && buf.len() < SEGMENT_HEADER_LEN && !eof {
            want = SEGMENT_HEADER_LEN;
            continue;
        }
        // Hop over the whole frames in `buf`; stop before a partial one (or an invalid length,
        // which the reader then reports).
        let mut pos = if version.is_none() {
            SEGMENT_HEADER_LEN.min(buf.len())
        } else {
            0
        };
        let mut short = None;
        while let Some(word) = le32(buf.get(pos..pos + 4)) {
            let len = payload_len(word);
            if len == 0 || len > MAX_RECORD_LEN {
                break;
            }
            if pos + FRAME_HEADER_LEN + len > buf.len() {
                short = Some(FRAME_HEADER_LEN + len);
                break;
            }
            pos += FRAME_HEADER_LEN + len;
        }
        if short.is_none() && pos < buf.len() && buf.len() - pos < 4 {
            short = Some(FRAME_HEADER_LEN);
        }
        // Continue after these frames unless the file ended or the next frame is invalid.
        let last = eof || (short.is_none() && pos < buf.len());
        let end = if last { buf.len() } else { pos };
        let part = buf.get(..end).unwrap_or(&[]);
        let mut r = match version {
            None => SegmentReader::new(part, path),
            Some(v) => SegmentReader::frames(part, path, v, base),
        };
        version = Some(r.version());
        while r.next() {
            f(&r)?;
        }
        let valid_len = r.valid_len();
        if let Some(tail) = r.take_err() {
            return Ok(StreamEnd {
                valid_len,
                tail: Some(tail),
            });
        }
        if last {
            return Ok(StreamEnd {
                valid_len,
                tail: None,
            });
        }
        buf.drain(..end);
        base += end;
        want = chunk.max(short.unwrap_or(0));
    }
}

fn le32(b: Option<&[u8]>) -> Option<u32> {
    b?.try_into().ok().map(u32::from_le_bytes)
}

/// The I/O seam under the WAL: what the WAL does to its current segment file. Tests implement it
/// to model torn writes, a full disk, and failed, lost or stalled fsyncs (public only with the
/// `testing` feature, as `argus_storage::testing::WalFile`).
///
/// The WAL writes under its lock and syncs from another thread at the same time (group commit),
/// so the methods take `&self`, as `std::fs::File`'s do.
pub trait SegmentFile: Send + Sync {
    /// Writes all of `buf` at the end of the file (one `write(2)` loop, no user-space buffer).
    /// Only one writer calls it at a time.
    fn write_all(&self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`. May run while another thread writes.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`. May run while another thread writes.
    fn sync_all(&self) -> io::Result<()>;
    /// `ftruncate` to `len` bytes: drops the torn tail of a failed write before the WAL moves
    /// on to a new segment (shrinking needs no free space), and the preallocated zero tail
    /// when a segment is finished.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Writes `len` zero bytes at `offset` (`pwrite`; the position [`SegmentFile::write_all`]
    /// appends at does not move): the WAL preallocates the space its next batches overwrite,
    /// so that their `fdatasync` need not also write the inode for a new file size. The
    /// default does nothing (test files, which model syncs themselves).
    fn zero_fill(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

impl SegmentFile for std::fs::File {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut &*self, buf)
    }
    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
    fn sync_all(&self) -> io::Result<()> {
        std::fs::File::sync_all(self)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
    fn zero_fill(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let (mut at, end) = (offset, offset + len);
        while at < end {
            let n = (end - at).min(ZEROS.len() as u64) as usize;
            self.write_all_at(ZEROS.get(..n).unwrap_or(&[]), at)?;
            at += n as u64;
        }
        Ok(())
    }
}

/// True when the bytes of `path` from `from` to its end are all zero (a preallocated tail that
/// no batch reached; see [`SegmentFile::zero_fill`]). An empty tail is all zero.
pub(crate) fn zero_tail(path: &Path, from: u64) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf.get(..n).is_some_and(|b| b.iter().any(|&x| x != 0)) {
            return Ok(false);
        }
    }
}

/// Creates a new, empty segment file at a path; the WAL writes the header itself.
pub type SegmentOpener = dyn Fn(&Path) -> io::Result<Box<dyn SegmentFile>> + Send + Sync;

/// The default opener: a new regular file (fails if it exists).
pub(crate) fn create_segment_file(path: &Path) -> io::Result<Box<dyn SegmentFile>> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    Ok(Box::new(f))
}

/// Fsyncs a directory so that entries created or renamed in it survive a power cut.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir)
        .map_err(|e| Error::io(format!("cannot open dir {} for fsync", dir.display()), e))?;
    f.sync_all()
        .map_err(|e| Error::io(format!("cannot fsync dir {}", dir.display()), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(records: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        put_segment_header(&mut b);
        for r in records {
            put_frame(&mut b, r);
        }
        b
    }

    fn read_all(buf: &[u8]) -> (Vec<Vec<u8>>, usize, Option<String>) {
        let p = Path::new("seg");
        let mut r = SegmentReader::new(buf, p);
        let mut dec = Decompressor::default();
        let mut out = Vec::new();
        while r.next() {
            out.push(r.record(&mut dec).unwrap().to_vec());
        }
        (out, r.valid_len(), r.err().map(|e| e.to_string()))
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(7), "00000007");
        assert_eq!(crate::fs::parse_index("00000007"), Some(7));
        assert_eq!(crate::fs::parse_index("checkpoint.00000007"), None);
        assert_eq!(crate::fs::parse_index(""), None);
    }

    #[test]
    fn torn_tail_at_every_offset() {
        let recs: Vec<Vec<u8>> = (1..6u8).map(|i| vec![i; i as usize * 7]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let full = segment(&refs);
        let last_start = segment(&refs[..4]).len();
        let (all, valid, err) = read_all(&full);
        assert_eq!((all.len(), valid, err), (5, full.len(), None));
        for cut in last_start..full.len() {
            let (got, valid, err) = read_all(&full[..cut]);
            assert_eq!(got, recs[..4], "cut at {cut}");
            assert_eq!(valid, last_start);
            assert!(err.is_some() == (cut > last_start), "cut at {cut}: {err:?}");
        }
    }

    #[test]
    fn flipped_bits_detected() {
        let full = segment(&[b"hello", b"world", b"!"]);
        for bit in (SEGMENT_HEADER_LEN * 8)..full.len() * 8 {
            let mut b = full.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let (got, _, err) = read_all(&b);
            assert!(err.is_some(), "flip of bit {bit} undetected");
            assert!(got.len() < 3);
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(read_all(&[]).2, None, "empty file is an empty segment");
        assert!(
            read_all(b"AWA")
                .2
                .unwrap()
                .contains("shorter than its header")
        );
        assert!(read_all(b"XWAL\x01\0\0\0").2.unwrap().contains("magic"));
        assert!(read_all(b"AWAL\x09\0\0\0").2.unwrap().contains("version"));
        assert!(read_all(b"AWAL\x00\0\0\0").2.unwrap().contains("version"));
        let mut zeros = segment(&[]);
        zeros.extend_from_slice(&[0; 100]);
        assert!(
            read_all(&zeros)
                .2
                .unwrap()
                .contains("invalid record length 0")
        );
    }

    /// What [`stream_segment_by`] reads from `bytes` (written to a file) with `chunk`-byte reads:
    /// the records, the valid length and the tail error.
    /// Records, valid length and tail error of a read.
    type Read = (Vec<Vec<u8>>, usize, Option<String>);

    fn stream_all(bytes: &[u8], chunk: usize) -> Read {
        stream_all_cap(bytes, chunk).0
    }

    /// [`stream_all`] and the capacity the read buffer reached.
    fn stream_all_cap(bytes: &[u8], chunk: usize) -> (Read, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        std::fs::write(&path, bytes).unwrap();
        let mut dec = Decompressor::default();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let end = stream_segment_by(&path, &mut buf, chunk, &mut |r| {
            out.push(r.record(&mut dec)?.to_vec());
            Ok(())
        })
        .unwrap();
        // Error messages name the file: as `read_all`'s do with "seg".
        let err = end
            .tail
            .map(|e| e.to_string().replace(&path.display().to_string(), "seg"));
        ((out, end.valid_len, err), buf.capacity())
    }

    #[test]
    fn streaming_memory_is_a_chunk_or_a_frame() {
        let recs: Vec<Vec<u8>> = (0..400u32).map(|i| vec![i as u8; 100]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let full = segment(&refs);
        let ((got, _, err), cap) = stream_all_cap(&full, 256);
        assert_eq!((got.len(), err), (400, None));
        assert!(cap <= 1024, "a 256-byte read buffer grew to {cap} bytes");
        // A frame larger than the reads: the buffer grows to hold it, not the segment.
        let big = vec![7u8; 5000];
        let full = segment(&[&big, b"x", &big]);
        let ((got, _, err), cap) = stream_all_cap(&full, 256);
        assert_eq!((got.len(), err), (3, None));
        assert!(cap < 2 * 5008 + 256, "buffer grew to {cap} bytes");
    }

    #[test]
    fn streaming_reads_what_whole_reads_read() {
        let recs: Vec<Vec<u8>> = (1..40u8)
            .map(|i| vec![i; (i as usize * 13) % 61 + 1])
            .collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let full = segment(&refs);
        let mut cases: Vec<Vec<u8>> = vec![full.clone(), Vec::new(), full[..5].to_vec()];
        for cut in [9, 20, full.len() / 2, full.len() - 1] {
            cases.push(full[..cut].to_vec());
        }
        for bit in [70 * 8 + 3, (full.len() / 2) * 8, (full.len() - 2) * 8] {
            let mut b = full.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            cases.push(b);
        }
        let mut bad_len = full.clone();
        bad_len[SEGMENT_HEADER_LEN + 3] = 0x7f; // codec 7, a length past the end
        cases.push(bad_len);
        for (n, bytes) in cases.iter().enumerate() {
            let want = read_all(bytes);
            for chunk in [1, 3, 8, 9, 17, 64, 100, 1 << 20] {
                let got = stream_all(bytes, chunk);
                assert_eq!(got, want, "case {n}, {chunk}-byte reads");
            }
        }
    }

    proptest! {
        #[test]
        fn streaming_matches_whole_reads(
            recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..12),
            cut in any::<prop::sample::Index>(),
            flip in proptest::option::of((any::<prop::sample::Index>(), 1u8..=255)),
            chunk in 1usize..400,
        ) {
            let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
            let mut full = segment(&refs);
            if let Some((at, x)) = flip {
                let i = at.index(full.len());
                full[i] ^= x;
            }
            let bytes = &full[..cut.index(full.len() + 1)];
            let (want, got) = (read_all(bytes), stream_all(bytes, chunk));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read_all(&bytes);
            let mut seg = segment(&[]);
            seg.append(&mut bytes);
            let _ = read_all(&seg);
        }

        #[test]
        fn frames_round_trip(recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..50), 0..20)) {
            let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
            let (got, _, err) = read_all(&segment(&refs));
            prop_assert_eq!(got, recs);
            prop_assert!(err.is_none());
        }
    }
}
