//! Chunk encodings. Head chunks are Gorilla XOR ([`xor`]); a compacted block may use the denser
//! [`packed`] encoding, told apart by the encoding byte stored beside each chunk.
//! [`ChunkIterator`] reads either.

pub(crate) mod histogram;
pub(crate) mod packed;
pub(crate) mod prometheus;
pub(crate) mod xor;

pub(crate) use histogram::HistogramIterator;
pub(crate) use packed::{PackedIterator, encode_best};
pub(crate) use xor::{XorChunk, XorIterator};

use crate::error::Error;
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Target number of samples per head chunk before a new one is cut.
pub(crate) const TARGET_SAMPLES_PER_CHUNK: usize = 120;
/// Samples per chunk in a written block: larger than the head's, since block chunks are never
/// appended to and per-chunk overhead (headers, first values, index entries) shrinks with
/// fewer chunks; 480 is 2 h of 15 s scrapes. A query decodes at most this many samples more
/// than it needs per series and block.
pub(crate) const BLOCK_SAMPLES_PER_CHUNK: usize = 480;

/// Whether `samples`' times are strictly increasing, as every chunk encoder requires. Samples
/// decoded from a corrupt chunk (bytes that pass its CRC) may not be: whoever re-encodes decoded
/// samples checks this first and reports corruption rather than hitting the encoder's BUG check.
pub(crate) fn increasing(samples: &[(Timestamp, f64)]) -> bool {
    samples.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0))
}

/// The encoding byte stored with every chunk on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Encoding {
    /// Gorilla: delta-of-delta timestamps, XOR values.
    Xor = 1,
    /// Group-wise bit-packed differences of timestamps and values (compacted blocks). Byte 2
    /// was an earlier one-width-per-chunk format that is no longer read.
    Packed = 3,
    /// Native histograms ([`histogram`]): integer or float counts, one bucket layout per chunk.
    Histogram = 4,
}

impl Encoding {
    /// Parses an encoding byte.
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Encoding::Xor),
            3 => Some(Encoding::Packed),
            4 => Some(Encoding::Histogram),
            _ => None,
        }
    }
}

/// Decodes a chunk of either encoding into `dst` (appending).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_into(
    enc: Encoding,
    dst: &mut Vec<(Timestamp, f64)>,
    bytes: &[u8],
) -> crate::error::Result<()> {
    match enc {
        Encoding::Xor => xor::decode_into(dst, bytes),
        Encoding::Packed => packed::decode_into(dst, bytes),
        Encoding::Histogram => {
            let mut hs = Vec::new();
            histogram::decode_into(&mut hs, bytes)?;
            dst.extend(hs.into_iter().map(|(t, _)| (t, 0.0)));
            Ok(())
        }
    }
}

/// A reusable cursor over a chunk of any encoding.
pub(crate) enum ChunkIterator<'a> {
    /// Over an XOR chunk.
    Xor(XorIterator<'a>),
    /// Over a packed chunk.
    Packed(PackedIterator),
    /// Over a histogram chunk.
    Histogram(Box<HistogramIterator<'a>>),
}

impl<'a> ChunkIterator<'a> {
    /// A cursor over `bytes` in encoding `enc`.
    pub(crate) fn new(enc: Encoding, bytes: &'a [u8]) -> Self {
        match enc {
            Encoding::Xor => ChunkIterator::Xor(XorIterator::new(bytes)),
            Encoding::Packed => ChunkIterator::Packed(PackedIterator::new(bytes)),
            Encoding::Histogram => {
                ChunkIterator::Histogram(Box::new(HistogramIterator::new(bytes)))
            }
        }
    }

    /// Restarts over other bytes, reusing buffers when the encoding is unchanged.
    pub(crate) fn reset(&mut self, enc: Encoding, bytes: &'a [u8]) {
        match (self, enc) {
            (ChunkIterator::Xor(it), Encoding::Xor) => it.reset(bytes),
            (ChunkIterator::Packed(it), Encoding::Packed) => it.reset(bytes),
            (ChunkIterator::Histogram(it), Encoding::Histogram) => it.reset(bytes),
            (this, enc) => *this = ChunkIterator::new(enc, bytes),
        }
    }
}

impl SampleIterator for ChunkIterator<'_> {
    fn next(&mut self) -> bool {
        match self {
            ChunkIterator::Xor(it) => it.next(),
            ChunkIterator::Packed(it) => it.next(),
            ChunkIterator::Histogram(it) => it.next(),
        }
    }
    fn seek(&mut self, t: Timestamp) -> bool {
        match self {
            ChunkIterator::Xor(it) => it.seek(t),
            ChunkIterator::Packed(it) => it.seek(t),
            ChunkIterator::Histogram(it) => it.seek(t),
        }
    }
    fn at(&self) -> (Timestamp, f64) {
        match self {
            ChunkIterator::Xor(it) => it.at(),
            ChunkIterator::Packed(it) => it.at(),
            ChunkIterator::Histogram(it) => it.at(),
        }
    }
    fn at_histogram(&self) -> Option<&crate::histogram::FloatHistogram> {
        match self {
            ChunkIterator::Histogram(it) => it.at_histogram(),
            _ => None,
        }
    }
    fn err(&self) -> Option<&Error> {
        match self {
            ChunkIterator::Xor(it) => it.err(),
            ChunkIterator::Packed(it) => it.err(),
            ChunkIterator::Histogram(it) => it.err(),
        }
    }
    fn append_floats(&mut self, maxt: Timestamp, dst: &mut Vec<(Timestamp, f64)>) -> bool {
        match self {
            ChunkIterator::Xor(it) => it.append_floats(maxt, dst),
            ChunkIterator::Packed(it) => it.append_floats(maxt, dst),
            ChunkIterator::Histogram(it) => it.append_floats(maxt, dst),
        }
    }
}
