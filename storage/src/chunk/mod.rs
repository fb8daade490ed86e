//! Chunk encodings. OWNER: codec helper. Head chunks are Gorilla XOR ([`xor`]); a compacted block
//! may use the denser [`dense`] encoding, told apart by the encoding byte stored beside each
//! chunk. [`ChunkIterator`] reads either.
#![allow(
    dead_code,
    unused_imports,
    reason = "the engine helper's head/block code (a separate branch) is the user; remove after merge"
)]

pub(crate) mod dense;
pub(crate) mod xor;

pub(crate) use dense::{DenseIterator, encode_best};
pub(crate) use xor::{XorChunk, XorIterator};

use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Target number of samples per head chunk before a new one is cut.
pub(crate) const TARGET_SAMPLES_PER_CHUNK: usize = 120;

/// The encoding byte stored with every chunk on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Encoding {
    /// Gorilla: delta-of-delta timestamps, XOR values.
    Xor = 1,
    /// Bit-packed delta-of-delta timestamps and scaled-decimal values (compacted blocks).
    Dense = 2,
}

impl Encoding {
    /// Parses an encoding byte.
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Dense),
            _ => None,
        }
    }
}

/// Decodes a chunk of either encoding into `dst` (appending).
pub(crate) fn decode_into(
    enc: Encoding,
    dst: &mut Vec<(Timestamp, f64)>,
    bytes: &[u8],
) -> Result<()> {
    match enc {
        Encoding::Xor => xor::decode_into(dst, bytes),
        Encoding::Dense => dense::decode_into(dst, bytes),
    }
}

/// A reusable cursor over a chunk of any encoding.
pub(crate) enum ChunkIterator<'a> {
    /// Over an XOR chunk.
    Xor(XorIterator<'a>),
    /// Over a dense chunk.
    Dense(DenseIterator),
}

impl<'a> ChunkIterator<'a> {
    /// A cursor over `bytes` in encoding `enc`.
    pub(crate) fn new(enc: Encoding, bytes: &'a [u8]) -> Self {
        match enc {
            Encoding::Xor => ChunkIterator::Xor(XorIterator::new(bytes)),
            Encoding::Dense => ChunkIterator::Dense(DenseIterator::new(bytes)),
        }
    }

    /// Restarts over other bytes, reusing buffers when the encoding is unchanged.
    pub(crate) fn reset(&mut self, enc: Encoding, bytes: &'a [u8]) {
        match (self, enc) {
            (ChunkIterator::Xor(it), Encoding::Xor) => it.reset(bytes),
            (ChunkIterator::Dense(it), Encoding::Dense) => it.reset(bytes),
            (this, enc) => *this = ChunkIterator::new(enc, bytes),
        }
    }
}

impl SampleIterator for ChunkIterator<'_> {
    fn next(&mut self) -> bool {
        match self {
            ChunkIterator::Xor(it) => it.next(),
            ChunkIterator::Dense(it) => it.next(),
        }
    }
    fn seek(&mut self, t: Timestamp) -> bool {
        match self {
            ChunkIterator::Xor(it) => it.seek(t),
            ChunkIterator::Dense(it) => it.seek(t),
        }
    }
    fn at(&self) -> (Timestamp, f64) {
        match self {
            ChunkIterator::Xor(it) => it.at(),
            ChunkIterator::Dense(it) => it.at(),
        }
    }
    fn err(&self) -> Option<&Error> {
        match self {
            ChunkIterator::Xor(it) => it.err(),
            ChunkIterator::Dense(it) => it.err(),
        }
    }
}
