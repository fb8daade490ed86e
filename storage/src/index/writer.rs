//! Index writer (layout in `index/mod.rs`). OWNER: codec helper.

use super::{
    CRC_LEN, ChunkMeta, INDEX_MAGIC, INDEX_VERSION, SEC_LABEL_INDEX, SEC_POSTINGS, SEC_SERIES,
    SEC_SERIES_OFFSETS, SEC_SYMBOLS, TOC_SECTIONS,
};
use crate::encoding::crc::crc32;
use crate::encoding::varint::put_str;
use crate::encoding::{put_uvarint, put_varint};
use crate::error::{Error, Result};
use crate::model::Labels;
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes an index file. Series must be added in ascending label order; the i-th series added
/// gets id `i` (so postings in id order are also in label order).
///
/// Series entries stream to the file; symbols, series offsets and postings are kept in memory
/// until [`IndexWriter::finish`] (about 8 bytes per series plus the postings bitmaps).
pub(crate) struct IndexWriter {
    path: PathBuf,
    w: std::io::BufWriter<std::fs::File>,
    /// Bytes written so far.
    pos: u64,
    sym_ids: HashMap<String, u32>,
    syms: Vec<String>,
    series_offsets: Vec<u64>,
    postings: HashMap<(u32, u32), RoaringBitmap>,
    last: Option<Labels>,
    scratch: Vec<u8>,
    toc: [(u64, u64); TOC_SECTIONS],
}

impl IndexWriter {
    /// Creates (truncating) the index file at `path`.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let f = std::fs::File::create(path)
            .map_err(|e| Error::io(format!("cannot create index {}", path.display()), e))?;
        let mut w = IndexWriter {
            path: path.to_path_buf(),
            w: std::io::BufWriter::with_capacity(1 << 16, f),
            pos: 0,
            sym_ids: HashMap::new(),
            syms: Vec::new(),
            series_offsets: Vec::new(),
            postings: HashMap::new(),
            last: None,
            scratch: Vec::new(),
            toc: [(0, 0); TOC_SECTIONS],
        };
        let mut header = INDEX_MAGIC.to_vec();
        header.extend_from_slice(&[INDEX_VERSION, 0, 0, 0]);
        w.write(&header)?;
        w.toc[SEC_SERIES].0 = w.pos;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w
            .write_all(b)
            .map_err(|e| Error::io(format!("cannot write index {}", self.path.display()), e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn symbol(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.sym_ids.get(s) {
            return id;
        }
        let id = self.syms.len() as u32;
        self.sym_ids.insert(s.to_string(), id);
        self.syms.push(s.to_string());
        id
    }

    /// Adds the next series (labels strictly greater than the previous series'). Fails with
    /// `InvalidArgument` on out-of-order labels or more than `u32::MAX` series.
    pub(crate) fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<()> {
        if let Some(last) = &self.last
            && labels <= last
        {
            return Err(Error::InvalidArgument(format!(
                "index series {labels} added after {last}"
            )));
        }
        let id = u32::try_from(self.series_offsets.len())
            .map_err(|_| Error::InvalidArgument("more than 2^32 series in one index".into()))?;
        let mut payload = std::mem::take(&mut self.scratch);
        payload.clear();
        put_uvarint(&mut payload, labels.len() as u64);
        for l in labels {
            let n = self.symbol(&l.name);
            let v = self.symbol(&l.value);
            put_uvarint(&mut payload, u64::from(n));
            put_uvarint(&mut payload, u64::from(v));
            self.postings.entry((n, v)).or_default().insert(id);
        }
        put_uvarint(&mut payload, chunks.len() as u64);
        let mut prev: Option<&ChunkMeta> = None;
        for c in chunks {
            match prev {
                None => {
                    put_varint(&mut payload, c.min_time);
                    put_varint(&mut payload, c.max_time.wrapping_sub(c.min_time));
                    put_uvarint(&mut payload, c.chunk_ref);
                }
                Some(p) => {
                    put_varint(&mut payload, c.min_time.wrapping_sub(p.max_time));
                    put_varint(&mut payload, c.max_time.wrapping_sub(c.min_time));
                    put_varint(&mut payload, c.chunk_ref.wrapping_sub(p.chunk_ref) as i64);
                }
            }
            prev = Some(c);
        }
        let mut entry = Vec::with_capacity(payload.len() + 8);
        put_uvarint(&mut entry, payload.len() as u64);
        entry.extend_from_slice(&payload);
        entry.extend_from_slice(&crc32(&payload).to_le_bytes());
        self.series_offsets.push(self.pos);
        self.write(&entry)?;
        self.scratch = payload;
        self.last = Some(labels.clone());
        Ok(())
    }

    /// Writes `body` as a CRC-checked section and records it in the TOC.
    fn section(&mut self, sec: usize, body: &[u8]) -> Result<()> {
        self.toc[sec] = (self.pos, body.len() as u64);
        self.write(body)?;
        self.write(&crc32(body).to_le_bytes())
    }

    /// Writes symbols, postings, label-value lists and the table of contents; fsyncs. Returns
    /// the file size in bytes.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.toc[SEC_SERIES].1 = self.pos - self.toc[SEC_SERIES].0;

        let mut body = Vec::with_capacity(self.series_offsets.len() * 8);
        for o in &self.series_offsets {
            body.extend_from_slice(&o.to_le_bytes());
        }
        self.section(SEC_SERIES_OFFSETS, &body)?;

        body.clear();
        put_uvarint(&mut body, self.syms.len() as u64);
        for s in &self.syms {
            put_str(&mut body, s);
        }
        self.section(SEC_SYMBOLS, &body)?;

        // Postings in (name, value) string order; the label index points at them.
        let mut keys: Vec<(u32, u32)> = self.postings.keys().copied().collect();
        let syms = &self.syms;
        let name_of = |id: u32| syms.get(id as usize).map_or("", String::as_str);
        keys.sort_unstable_by(|a, b| {
            (name_of(a.0), name_of(a.1)).cmp(&(name_of(b.0), name_of(b.1)))
        });
        let mut postings = Vec::new();
        let mut offsets = Vec::with_capacity(keys.len());
        let mut bm = Vec::new();
        for k in &keys {
            offsets.push(postings.len() as u64);
            bm.clear();
            if let Some(p) = self.postings.get(k) {
                p.serialize_into(&mut bm).map_err(|e| {
                    Error::io(
                        format!("cannot serialize postings for {}", self.path.display()),
                        e,
                    )
                })?;
            }
            put_uvarint(&mut postings, bm.len() as u64);
            postings.extend_from_slice(&bm);
            postings.extend_from_slice(&crc32(&bm).to_le_bytes());
        }

        body.clear();
        let mut i = 0;
        let mut names = 0u64;
        let mut li = Vec::new();
        while let Some(&(name, _)) = keys.get(i) {
            let run = keys
                .get(i..)
                .map_or(0, |rest| rest.iter().take_while(|k| k.0 == name).count());
            put_uvarint(&mut li, u64::from(name));
            put_uvarint(&mut li, run as u64);
            for (k, off) in keys.iter().zip(&offsets).skip(i).take(run) {
                put_uvarint(&mut li, u64::from(k.1));
                put_uvarint(&mut li, *off);
            }
            names += 1;
            i += run;
        }
        put_uvarint(&mut body, names);
        body.extend_from_slice(&li);
        self.section(SEC_LABEL_INDEX, &body)?;

        self.toc[SEC_POSTINGS] = (self.pos, postings.len() as u64);
        self.write(&postings)?;

        let mut toc = Vec::with_capacity(super::TOC_LEN);
        for (off, len) in self.toc {
            toc.extend_from_slice(&off.to_le_bytes());
            toc.extend_from_slice(&len.to_le_bytes());
        }
        let crc = crc32(&toc);
        toc.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(toc.len(), super::TOC_LEN);
        debug_assert_eq!(CRC_LEN, 4);
        self.write(&toc)?;

        let path = self.path.clone();
        let f = self.w.into_inner().map_err(|e| {
            Error::io(
                format!("cannot write index {}", path.display()),
                e.into_error(),
            )
        })?;
        f.sync_all()
            .map_err(|e| Error::io(format!("cannot fsync index {}", path.display()), e))?;
        Ok(self.pos)
    }
}
