//! Chunk encodings. OWNER: codec helper. Head chunks are Gorilla XOR ([`xor`]); a compacted block
//! may use a denser encoding, told apart by the encoding byte stored beside each chunk.
#![allow(
    dead_code,
    unused_imports,
    reason = "the engine helper's head/block code (a separate branch) is the user; remove after merge"
)]

pub(crate) mod xor;

pub(crate) use xor::{XorChunk, XorIterator};

/// Target number of samples per head chunk before a new one is cut.
pub(crate) const TARGET_SAMPLES_PER_CHUNK: usize = 120;

/// The encoding byte stored with every chunk on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Encoding {
    /// Gorilla: delta-of-delta timestamps, XOR values.
    Xor = 1,
}

impl Encoding {
    /// Parses an encoding byte.
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Encoding::Xor),
            _ => None,
        }
    }
}
