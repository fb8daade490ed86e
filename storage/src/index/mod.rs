//! Block index: symbols, series with chunk refs, postings, label-value lists, CRC-checked
//! sections. OWNER: codec helper. (API stub: signatures are the contract.)
#![allow(
    dead_code,
    unused_imports,
    reason = "the engine helper's head/block code (a separate branch) is the user; remove after merge"
)]

use crate::error::Result;
use crate::model::Labels;
use roaring::RoaringBitmap;
use std::path::Path;

/// Where a chunk lives and what time it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct ChunkMeta {
    /// First sample's timestamp, ms.
    pub(crate) min_time: i64,
    /// Last sample's timestamp, ms.
    pub(crate) max_time: i64,
    /// Opaque reference into the block's chunk segment files (segment << 32 | offset).
    pub(crate) chunk_ref: u64,
}

/// Writes an index file. Series must be added in ascending label order; the i-th series added
/// gets id `i` (so postings in id order are also in label order).
pub(crate) struct IndexWriter {}

impl IndexWriter {
    /// Creates the index file at `path`.
    pub(crate) fn create(_path: &Path) -> Result<Self> {
        todo!()
    }

    /// Adds the next series (labels strictly greater than the previous series').
    pub(crate) fn add_series(&mut self, _labels: &Labels, _chunks: &[ChunkMeta]) -> Result<()> {
        todo!()
    }

    /// Writes symbols, postings, label-value lists and the table of contents; fsyncs. Returns
    /// the file size in bytes.
    pub(crate) fn finish(self) -> Result<u64> {
        todo!()
    }
}

/// Reads an index from bytes (usually an mmap). Every section is CRC-checked on open or on
/// first use; corrupt bytes give `Error::Corruption`, never a panic.
pub(crate) struct IndexReader<B: AsRef<[u8]>> {
    _data: B,
}

impl<B: AsRef<[u8]>> IndexReader<B> {
    /// Parses the table of contents and checks the format version.
    pub(crate) fn new(_data: B) -> Result<Self> {
        todo!()
    }

    /// Number of series (ids are `0..num_series`).
    pub(crate) fn num_series(&self) -> u32 {
        todo!()
    }

    /// Sorted label names in the block.
    pub(crate) fn label_names(&self) -> Result<Vec<String>> {
        todo!()
    }

    /// Sorted values of label `name` (empty when absent).
    pub(crate) fn label_values(&self, _name: &str) -> Result<Vec<String>> {
        todo!()
    }

    /// Ids of series with `name="value"` (empty when none).
    pub(crate) fn postings(&self, _name: &str, _value: &str) -> Result<RoaringBitmap> {
        todo!()
    }

    /// Ids of all series.
    pub(crate) fn all_postings(&self) -> RoaringBitmap {
        todo!()
    }

    /// Labels and chunk metas of series `id`, written into the caller's buffers (cleared first).
    pub(crate) fn series(
        &self,
        _id: u32,
        _labels: &mut Labels,
        _chunks: &mut Vec<ChunkMeta>,
    ) -> Result<()> {
        todo!()
    }
}
