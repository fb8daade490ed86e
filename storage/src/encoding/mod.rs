//! Byte-level building blocks shared by the on-disk codecs. OWNER: codec helper.
//!
//! - [`varint`]: LEB128 unsigned varints, zig-zag signed varints, and [`Decbuf`], a bounds-checked
//!   read cursor for untrusted bytes.
//! - [`bstream`]: MSB-first bit writer and reader for the Gorilla chunk codec.
//! - [`crc`]: CRC32 (IEEE, via `crc32fast`) helpers.
//!
//! All multi-byte integers are little-endian; bit streams are assembled with shifts.
pub(crate) mod bstream;
pub(crate) mod crc;
pub(crate) mod varint;

pub(crate) use bstream::{BitReader, BitWriter};
pub(crate) use varint::{Decbuf, put_uvarint, put_varint};
