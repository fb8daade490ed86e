//! Gorilla XOR chunk codec. OWNER: codec helper. (API stub: signatures are the contract.)

use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// An appendable XOR chunk. Its bytes are self-describing (they start with the sample count).
#[derive(Clone, Debug, Default)]
pub(crate) struct XorChunk {
    buf: Vec<u8>,
}

impl XorChunk {
    /// An empty chunk.
    pub(crate) fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Appends a sample. BUG if `t` is not greater than the last appended timestamp.
    pub(crate) fn append(&mut self, _t: Timestamp, _v: f64) {
        todo!()
    }

    /// Number of samples in the chunk.
    pub(crate) fn num_samples(&self) -> usize {
        todo!()
    }

    /// The encoded bytes (complete and decodable at any point between appends).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// A cursor over the chunk's samples.
    pub(crate) fn iter(&self) -> XorIterator<'_> {
        XorIterator::new(&self.buf)
    }
}

/// Cursor over an encoded XOR chunk. Corrupt bytes end iteration with `err()` set.
pub(crate) struct XorIterator<'a> {
    _bytes: &'a [u8],
}

impl<'a> XorIterator<'a> {
    /// A cursor over `bytes` (as returned by [`XorChunk::bytes`] or read from disk).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { _bytes: bytes }
    }

    /// Restarts the cursor over other bytes, reusing its state.
    pub(crate) fn reset(&mut self, bytes: &'a [u8]) {
        self._bytes = bytes;
    }
}

impl SampleIterator for XorIterator<'_> {
    fn next(&mut self) -> bool {
        todo!()
    }
    fn seek(&mut self, _t: Timestamp) -> bool {
        todo!()
    }
    fn at(&self) -> (Timestamp, f64) {
        todo!()
    }
    fn err(&self) -> Option<&Error> {
        todo!()
    }
}

/// Decodes every sample of `bytes` into `dst` (appending). Fails on corrupt input.
#[allow(dead_code)]
pub(crate) fn decode_into(_dst: &mut Vec<(Timestamp, f64)>, _bytes: &[u8]) -> Result<()> {
    todo!()
}
