//! Block index: symbols, series with chunk refs, postings, label-value lists, CRC-checked
//! sections. OWNER: codec helper.
//!
//! File layout (model: Prometheus `tsdb/docs/format/index.md`; integers little-endian, varints
//! zig-zag, uvarints LEB128; `sym` is a symbol id, the index of a string in the symbol table):
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────────┐
//! │ magic "AIDX" │ version u8 │ reserved 3 B                                 │ header, 8 B
//! ├──────────────────────────────────────────────────────────────────────────┤
//! │ series entry 0 │ series entry 1 │ ...                                    │ series
//! ├──────────────────────────────────────────────────────────────────────────┤
//! │ file offset of series entry i, u64 × num_series │ crc32                  │ series offsets
//! ├──────────────────────────────────────────────────────────────────────────┤
//! │ count uvarint │ count × (len uvarint │ UTF-8 bytes) │ crc32              │ symbols
//! ├──────────────────────────────────────────────────────────────────────────┤
//! │ names uvarint │ per name (sorted): name sym │ values uvarint │           │ label index
//! │   per value (sorted): value sym │ postings entry offset uvarint │ crc32  │
//! ├──────────────────────────────────────────────────────────────────────────┤
//! │ postings entry │ postings entry │ ...                                    │ postings
//! ├──────────────────────────────────────────────────────────────────────────┤
//! │ 5 × (section offset u64 │ section length u64) │ crc32                    │ TOC, 84 B
//! └──────────────────────────────────────────────────────────────────────────┘
//! series entry:   len uvarint │ payload │ crc32(payload)
//!   payload:      labels uvarint │ labels × (name sym, value sym) uvarints
//!                 chunks uvarint │ chunk 0: min_time varint │ max_time - min_time varint │
//!                                           chunk_ref uvarint
//!                                  chunk i: min_time - prev max_time varint │
//!                                           max_time - min_time varint │
//!                                           chunk_ref - prev chunk_ref varint
//! postings entry: len uvarint │ roaring bitmap (portable serialization) │ crc32
//! ```
//! Section lengths in the TOC exclude the trailing section CRC. Symbols are stored in the order
//! they were first seen; series ids are insertion order (0, 1, …) and series are added sorted by
//! labels. Small sections (symbols, series offsets, label index, TOC) are CRC-checked when the
//! reader opens; series and postings entries carry their own CRC, checked on each read.

pub(crate) mod reader;
pub(crate) mod writer;

#[cfg(test)]
mod tests;

pub(crate) use reader::IndexReader;
pub(crate) use writer::IndexWriter;

/// First four bytes of an index file.
pub(crate) const INDEX_MAGIC: [u8; 4] = *b"AIDX";
/// Current index format version.
pub(crate) const INDEX_VERSION: u8 = 1;
/// Offset of the version byte.
pub(crate) const VERSION_OFFSET: usize = INDEX_MAGIC.len();
/// Bytes before the first section.
pub(crate) const HEADER_LEN: usize = VERSION_OFFSET + 1 + 3;
/// Sections named in the TOC, in TOC order.
pub(crate) const TOC_SECTIONS: usize = 5;
/// TOC index of each section.
pub(crate) const SEC_SERIES: usize = 0;
/// TOC index of the series-offsets section.
pub(crate) const SEC_SERIES_OFFSETS: usize = 1;
/// TOC index of the symbols section.
pub(crate) const SEC_SYMBOLS: usize = 2;
/// TOC index of the label-index section.
pub(crate) const SEC_LABEL_INDEX: usize = 3;
/// TOC index of the postings section.
pub(crate) const SEC_POSTINGS: usize = 4;
/// Bytes of the CRC that follows a section, entry or the TOC.
pub(crate) const CRC_LEN: usize = 4;
/// Bytes of the TOC at the end of the file.
pub(crate) const TOC_LEN: usize = TOC_SECTIONS * 16 + CRC_LEN;
/// Smallest valid index file.
pub(crate) const MIN_INDEX_LEN: usize = HEADER_LEN + TOC_LEN;

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
