//! Chunk segment files of a block: `chunks/000001`, `chunks/000002`, …
//!
//! ```text
//! segment: ┌──────────────┬────────────┬─────────┐
//!          │ magic u32 LE │ version u8 │ pad [3] │  then chunks back to back:
//!          └──────────────┴────────────┴─────────┘
//! chunk:   ┌─────────────┬──────────────┬────────────┬───────────────────────────┐
//!          │ len u32 LE  │ encoding u8  │ data [len] │ CRC32 LE of encoding+data │
//!          └─────────────┴──────────────┴────────────┴───────────────────────────┘
//! ```
//! A chunk ref is `segment number << 32 | byte offset of the chunk's len field`. Segments are
//! cut before they would exceed [`MAX_SEGMENT_SIZE`]. Every read checks bounds and the CRC.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::Encoding;
use crate::error::{Error, Result};
use crate::fs::layout::chunk_segment_name;
use crate::fs::mmap::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Magic number at the start of every chunk segment.
pub(crate) const MAGIC: u32 = 0xA4C0_C4A1;
/// Segment format version.
pub(crate) const VERSION: u8 = 1;
/// Segment header: magic, version, padding.
pub(crate) const HEADER_LEN: usize = 4 + 1 + 3;
/// Bytes around each chunk's data: length, encoding, CRC.
const CHUNK_OVERHEAD: usize = 4 + 1 + 4;
/// Segments are cut before reaching this size.
pub(crate) const MAX_SEGMENT_SIZE: u64 = 512 << 20;

/// Writes chunk segments into a block's `chunks/` directory.
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    seg: u32,
    file: Option<BufWriter<File>>,
    offset: u64,
    /// Total bytes written over all segments.
    pub(crate) bytes: u64,
}

impl ChunkWriter {
    /// Creates `dir` (the `chunks/` directory).
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            seg: 0,
            file: None,
            offset: 0,
            bytes: 0,
        })
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

    /// Appends one chunk, returning its ref.
    pub(crate) fn write(&mut self, enc: Encoding, data: &[u8]) -> Result<u64> {
        let need = (data.len() + CHUNK_OVERHEAD) as u64;
        if self.file.is_none() || self.offset + need > MAX_SEGMENT_SIZE {
            self.finish_segment()?;
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
        }
        let r = u64::from(self.seg) << 32 | self.offset;
        let Some(f) = self.file.as_mut() else {
            unreachable!("BUG: segment file opened above")
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[enc as u8]);
        crc.update(data);
        let res = f
            .write_all(&(data.len() as u32).to_le_bytes())
            .and_then(|_| f.write_all(&[enc as u8]))
            .and_then(|_| f.write_all(data))
            .and_then(|_| f.write_all(&crc.finalize().to_le_bytes()));
        res.map_err(|e| Error::io(format!("cannot write chunks in {}", self.dir.display()), e))?;
        self.offset += need;
        self.bytes += need;
        Ok(r)
    }

    /// Flushes and fsyncs the last segment and the directory.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.finish_segment()?;
        crate::fs::fsync_dir(&self.dir)?;
        Ok(self.bytes)
    }
}

/// Reads chunks from a block's mapped segment files.
pub(crate) struct ChunkReader {
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
            dir: dir.to_path_buf(),
            segments,
        })
    }

    /// The encoding and data of chunk `r`, CRC-checked.
    pub(crate) fn chunk(&self, r: u64) -> Result<(Encoding, &[u8])> {
        let seg = (r >> 32) as usize;
        let off = (r & 0xffff_ffff) as usize;
        let path = || self.dir.join(chunk_segment_name(seg as u32));
        let bad = |why: &str| Error::corruption(path(), off as u64, why.to_string());
        let b = seg
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .ok_or_else(|| bad("chunk ref to a missing segment"))?
            .bytes();
        if off < HEADER_LEN {
            return Err(bad("chunk ref inside the segment header"));
        }
        let len =
            b.get(off..off + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| bad("chunk ref past the end of the segment"))? as usize;
        let body = b
            .get(off + 4..off + 5 + len)
            .ok_or_else(|| bad("chunk length past the end of the segment"))?;
        let crc = b
            .get(off + 5 + len..off + 9 + len)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("chunk CRC past the end of the segment"))?;
        if crc32fast::hash(body) != crc {
            return Err(bad("chunk CRC mismatch"));
        }
        let (&enc, data) = body.split_first().ok_or_else(|| bad("empty chunk"))?;
        let enc = Encoding::from_u8(enc).ok_or_else(|| bad("unknown chunk encoding"))?;
        Ok((enc, data))
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Arbitrary segment bytes behind a valid header and arbitrary refs: errors, no panic.
        #[test]
        fn random_segments_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            refs in proptest::collection::vec((0u64..3, 0u64..400), 1..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes = MAGIC.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[VERSION, 0, 0, 0]);
            bytes.extend_from_slice(&body);
            std::fs::write(dir.path().join(chunk_segment_name(1)), &bytes).unwrap();
            let r = ChunkReader::open(dir.path()).unwrap();
            for (seg, off) in refs {
                let _ = r.chunk(seg << 32 | off);
            }
        }
    }

    #[test]
    fn write_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("chunks");
        let mut w = ChunkWriter::create(&cdir).unwrap();
        let datas: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; i as usize + 1]).collect();
        let refs: Vec<u64> = datas
            .iter()
            .map(|d| w.write(Encoding::Xor, d).unwrap())
            .collect();
        w.finish().unwrap();
        let r = ChunkReader::open(&cdir).unwrap();
        for (d, &rf) in datas.iter().zip(&refs) {
            let (enc, got) = r.chunk(rf).unwrap();
            assert_eq!(enc, Encoding::Xor);
            assert_eq!(got, &d[..]);
        }
        assert!(r.chunk(refs[1] + 1).is_err());
        assert!(r.chunk(7 << 32 | 8).is_err());
        assert!(r.chunk(1 << 32).is_err());
        drop(r);
        // Flip one data byte of chunk 3: only that chunk fails.
        let seg = cdir.join(chunk_segment_name(1));
        let mut b = std::fs::read(&seg).unwrap();
        let off = (refs[3] & 0xffff_ffff) as usize + 6;
        b[off] ^= 1;
        std::fs::write(&seg, &b).unwrap();
        let r = ChunkReader::open(&cdir).unwrap();
        assert!(matches!(r.chunk(refs[3]), Err(Error::Corruption { .. })));
        assert!(r.chunk(refs[4]).is_ok());
    }
}
