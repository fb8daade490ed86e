//! Immutable blocks and the [`BlockReader`] seam that the head range and blocks both implement,
//! so one querier and one compactor path serve both.
//!
//! A block directory holds `meta.json` ([`meta`]), chunk segments ([`chunks`]), the codec's
//! `index` and `tombstones` ([`tombstones`]); [`writer`] builds one in `<id>.tmp/` and renames it,
//! [`reader`] maps it.

pub(crate) mod chunks;
pub(crate) mod meta;
pub(crate) mod reader;
pub(crate) mod tombstones;
pub(crate) mod ulid;
pub(crate) mod writer;

use crate::error::Result;
use crate::model::{Labels, Timestamp};
use roaring::RoaringBitmap;

/// Where one chunk's bytes sit inside [`SeriesChunks::bytes`], and the time it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkSpan {
    /// First sample's timestamp, ms.
    pub(crate) min_t: Timestamp,
    /// Last sample's timestamp, ms.
    pub(crate) max_t: Timestamp,
    /// Byte range of the encoded XOR chunk in [`SeriesChunks::bytes`].
    pub(crate) start: usize,
    /// End of the byte range (exclusive).
    pub(crate) end: usize,
    /// How the chunk's bytes are encoded.
    pub(crate) enc: crate::chunk::Encoding,
    /// Value bits of the sample at `max_t` when the reader knows them without decoding (the
    /// head's open chunk: its encoder state); lets [`SampleIterator::newest`] skip the decode.
    ///
    /// [`SampleIterator::newest`]: crate::interface::SampleIterator::newest
    pub(crate) last_v: Option<u64>,
}

/// One series read from a [`BlockReader`]: labels and copies of its chunks overlapping the
/// requested range, with deleted samples already removed. A caller-owned buffer, reused.
#[derive(Default, Debug)]
pub(crate) struct SeriesChunks {
    /// Labels of the series.
    pub(crate) labels: Labels,
    /// Chunks sorted by `min_t`; they may overlap (out-of-order data).
    pub(crate) spans: Vec<ChunkSpan>,
    /// Encoded chunk bytes the spans point into.
    pub(crate) bytes: Vec<u8>,
    /// The block chunk frame last decompressed for this buffer (kept across `clear`).
    pub(crate) frames: chunks::FrameCache,
}

impl SeriesChunks {
    /// Clears everything, keeping capacity.
    pub(crate) fn clear(&mut self) {
        self.spans.clear();
        self.bytes.clear();
    }

    /// Appends one XOR-encoded chunk.
    pub(crate) fn push(&mut self, min_t: Timestamp, max_t: Timestamp, chunk: &[u8]) {
        self.push_enc(min_t, max_t, crate::chunk::Encoding::Xor, chunk);
    }

    /// Appends the head's open XOR chunk with its last sample `(max_t, value)`, known from the
    /// encoder state.
    pub(crate) fn push_open(&mut self, min_t: Timestamp, last: (Timestamp, f64), chunk: &[u8]) {
        self.push(min_t, last.0, chunk);
        if let Some(s) = self.spans.last_mut() {
            s.last_v = Some(last.1.to_bits());
        }
    }

    /// Appends one chunk in encoding `enc`.
    pub(crate) fn push_enc(
        &mut self,
        min_t: Timestamp,
        max_t: Timestamp,
        enc: crate::chunk::Encoding,
        chunk: &[u8],
    ) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(chunk);
        self.close_span(min_t, max_t, enc, start);
    }

    /// Appends chunk `r` of a block read through this buffer's frame cache.
    pub(crate) fn push_block_chunk(
        &mut self,
        reader: &chunks::ChunkReader,
        r: u64,
        min_t: Timestamp,
        max_t: Timestamp,
    ) -> Result<()> {
        let (enc, data) = reader.chunk(r, &mut self.frames)?;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.close_span(min_t, max_t, enc, start);
        Ok(())
    }

    /// Appends one chunk whose bytes `fill` appends to the byte buffer (nothing is kept when
    /// it fails).
    pub(crate) fn push_with(
        &mut self,
        min_t: Timestamp,
        max_t: Timestamp,
        enc: crate::chunk::Encoding,
        fill: impl FnOnce(&mut Vec<u8>) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        let start = self.bytes.len();
        if let Err(e) = fill(&mut self.bytes) {
            self.bytes.truncate(start);
            return Err(e);
        }
        self.close_span(min_t, max_t, enc, start);
        Ok(())
    }

    /// Records the chunk whose bytes were appended from `start` to the end of the buffer.
    fn close_span(
        &mut self,
        min_t: Timestamp,
        max_t: Timestamp,
        enc: crate::chunk::Encoding,
        start: usize,
    ) {
        self.spans.push(ChunkSpan {
            min_t,
            max_t,
            start,
            end: self.bytes.len(),
            enc,
            last_v: None,
        });
    }

    /// Bytes of span `i`.
    pub(crate) fn chunk(&self, span: &ChunkSpan) -> &[u8] {
        self.bytes.get(span.start..span.end).unwrap_or(&[])
    }
}

/// Read access to a set of series over a time range: a block, or the head (or a range of it).
///
/// Series ids are `u32`. Implementations may be called from many threads at once.
pub(crate) trait BlockReader: Send + Sync {
    /// Smallest timestamp that may be present, ms (inclusive).
    fn min_time(&self) -> Timestamp;
    /// Largest timestamp that may be present, ms (inclusive).
    fn max_time(&self) -> Timestamp;
    /// Ids of series with `name="value"`.
    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap>;
    /// Ids of all series.
    fn all_postings(&self) -> Result<RoaringBitmap>;
    /// Sorted label names.
    fn label_names(&self) -> Result<Vec<String>>;
    /// Sorted values of label `name`.
    fn label_values(&self, name: &str) -> Result<Vec<String>>;
    /// The first `limit` sorted values of label `name` whose postings intersect `filter` (all
    /// values when `None`), without materialising the rest.
    fn label_values_limited(
        &self,
        name: &str,
        filter: Option<&RoaringBitmap>,
        limit: usize,
    ) -> Result<Vec<String>>;
    /// Number of distinct values of label `name`.
    fn label_value_count(&self, name: &str) -> Result<usize>;
    /// `ids` ordered by the series' labels (blocks: ids are already in label order).
    fn sorted_ids(&self, ids: &RoaringBitmap) -> Result<Vec<u32>>;
    /// Labels of series `id` into `out`; `false` when the series is gone.
    fn labels(&self, id: u32, out: &mut Labels) -> Result<bool>;
    /// Labels and the chunks overlapping `[mint, maxt]` of series `id` into `out` (cleared
    /// first), with tombstoned samples removed. `false` when the series is gone.
    fn series(
        &self,
        id: u32,
        mint: Timestamp,
        maxt: Timestamp,
        out: &mut SeriesChunks,
    ) -> Result<bool>;
}

/// True when the closed intervals `[a0, a1]` and `[b0, b1]` overlap.
pub(crate) fn overlaps(a0: Timestamp, a1: Timestamp, b0: Timestamp, b1: Timestamp) -> bool {
    a0 <= b1 && b0 <= a1
}
