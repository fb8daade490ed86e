//! Gorilla XOR chunk codec. OWNER: codec helper.
//!
//! Byte layout (the model is Prometheus's `tsdb/chunkenc/xor.go`; the count is little-endian):
//!
//! ```text
//! ┌──────────────────────┬─────────────────────────────────────────────────────────────────┐
//! │ num_samples u16 LE   │ bit stream, MSB first, zero-padded to a whole byte               │
//! └──────────────────────┴─────────────────────────────────────────────────────────────────┘
//! bit stream:
//!   sample 0:  t0 varint (zig-zag)       │ v0 raw 64 bits
//!   sample 1:  t1 - t0 uvarint           │ xor(v1, v0)
//!   sample n:  dod = (tn - tn-1) - (tn-1 - tn-2) │ xor(vn, vn-1)
//! dod:  '0'                      dod == 0
//!       '10'   + 14 bits         -8191   ..= 8192
//!       '110'  + 17 bits         -65535  ..= 65536
//!       '1110' + 20 bits         -524287 ..= 524288
//!       '1111' + 64 bits         anything else
//! xor:  '0'                                     same bits as the previous value
//!       '10' + meaningful bits                  fits the previous leading/trailing window
//!       '11' + leading (5 bits, capped at 31) + significant bits (6 bits, 0 means 64)
//!            + the significant bits             new window
//! ```
//! Timestamp arithmetic wraps (two's complement), so every strictly increasing `i64` sequence
//! round-trips; values are compared as bit patterns, so every `f64` (NaN payloads, the stale
//! marker, ±0, ±Inf, subnormals) round-trips exactly.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::encoding::{BitReader, BitWriter};
use crate::error::Error;
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Bytes of the sample-count header.
pub(crate) const HEADER_LEN: usize = 2;
/// Most samples one chunk can hold (the count is a u16).
pub(crate) const MAX_SAMPLES: usize = u16::MAX as usize;
/// Initial buffer capacity of a new chunk.
const INITIAL_CAPACITY: usize = 16;
/// Name used in corruption errors for chunk bytes.
const CHUNK_PATH: &str = "<xor chunk>";

/// Delta-of-delta buckets: (prefix bits, prefix length, payload bits).
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

#[inline]
fn fits_bits(dod: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= dod && dod <= half
}

/// An appendable XOR chunk. Its bytes are self-describing (they start with the sample count).
#[derive(Clone, Debug)]
pub(crate) struct XorChunk {
    /// Header + bit stream.
    bw: BitWriter,
    num: u16,
    t: i64,
    t_delta: u64,
    v: u64,
    /// XOR window of the last written value; `leading == 0xff` before the first XOR.
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub(crate) fn new() -> Self {
        // Room for the header and a first sample (6-byte varint time, raw value); the buffer
        // then grows in small steps (see `BitWriter`), so head chunks carry little slack.
        let mut bw = BitWriter::with_capacity(INITIAL_CAPACITY);
        bw.push_byte(0);
        bw.push_byte(0);
        Self {
            bw,
            num: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Re-opens encoded chunk bytes for appending (e.g. a head chunk read back from disk).
    /// Decodes the whole chunk once to recover the encoder state.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn from_bytes(bytes: &[u8]) -> crate::error::Result<Self> {
        let mut it = XorIterator::new(bytes);
        while it.next() {}
        if let Some(e) = it.err.take() {
            return Err(e);
        }
        let consumed_bits = HEADER_LEN * 8 + it.bits_read();
        let len = consumed_bits.div_ceil(8);
        let free = (len * 8 - consumed_bits) as u32;
        let mut buf = bytes.get(..len).unwrap_or(bytes).to_vec();
        // Clear stray padding bits so later writes OR into zeros.
        if free > 0
            && let Some(last) = buf.last_mut()
        {
            *last &= !((1u8 << free) - 1);
        }
        Ok(Self {
            bw: BitWriter::from_parts(buf, free),
            num: it.total,
            t: it.t,
            t_delta: it.t_delta,
            v: it.v,
            leading: it.leading,
            trailing: it.trailing,
        })
    }

    /// Appends a sample. BUG if `t` is not greater than the last appended timestamp or the chunk
    /// already holds [`MAX_SAMPLES`].
    pub(crate) fn append(&mut self, t: Timestamp, v: f64) {
        assert!(
            (self.num as usize) < MAX_SAMPLES,
            "BUG: XOR chunk capacity of {MAX_SAMPLES} samples exceeded"
        );
        assert!(
            self.num == 0 || t > self.t,
            "BUG: XOR chunk append at {t} not after {}",
            self.t
        );
        let vb = v.to_bits();
        match self.num {
            0 => {
                self.bw.write_varint(t);
                self.bw.write_bits(vb, 64);
            }
            1 => {
                let d = (t as u64).wrapping_sub(self.t as u64);
                self.bw.write_uvarint(d);
                self.t_delta = d;
                self.write_xor(vb);
            }
            _ => {
                let d = (t as u64).wrapping_sub(self.t as u64);
                let dod = d.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.bw.write_bit(false);
                } else if let Some(&(prefix, plen, nbits)) =
                    DOD_BUCKETS.iter().find(|b| fits_bits(dod, b.2))
                {
                    // Prefix and payload in one write (at most 4 + 20 bits).
                    let payload = dod as u64 & ((1u64 << nbits) - 1);
                    self.bw
                        .write_bits((prefix << nbits) | payload, plen + nbits);
                } else {
                    self.bw.write_bits(0b1111, 4);
                    self.bw.write_bits(dod as u64, 64);
                }
                self.t_delta = d;
                self.write_xor(vb);
            }
        }
        self.t = t;
        self.v = vb;
        self.num += 1;
        let n = self.num.to_le_bytes();
        if let [a, b, ..] = self.bw.bytes_mut() {
            *a = n[0];
            *b = n[1];
        }
    }

    #[inline]
    fn write_xor(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.bw.write_bit(false);
            return;
        }
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            // '10' and the meaningful bits in one write when they fit.
            if sig <= 54 {
                self.bw
                    .write_bits((0b10 << sig) | (x >> self.trailing), sig + 2);
            } else {
                self.bw.write_bits(0b10, 2);
                self.bw.write_bits(x >> self.trailing, sig);
            }
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // '11', leading (5 bits), significant bits (6 bits; 64 is stored as 0) in one write.
        let head = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
        self.bw.write_bits(head, 13);
        self.bw.write_bits(x >> trailing, sig);
    }

    /// Number of samples in the chunk.
    pub(crate) fn num_samples(&self) -> usize {
        self.num as usize
    }

    /// The encoded bytes (complete and decodable at any point between appends).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.bw.bytes()
    }

    /// Heap bytes of the encoder (its buffer's capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bw.capacity()
    }

    /// A cursor over the chunk's samples.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> XorIterator<'_> {
        XorIterator::new(self.bytes())
    }
}

/// Cursor over an encoded XOR chunk. Corrupt bytes end iteration with `err()` set.
#[derive(Debug)]
pub(crate) struct XorIterator<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
    err: Option<Error>,
}

impl<'a> XorIterator<'a> {
    /// Takes the sticky error (after the cursor stopped).
    pub(crate) fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }

    /// A cursor over `bytes` (as returned by [`XorChunk::bytes`] or read from disk).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let mut it = Self {
            br: BitReader::default(),
            total: 0,
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
            err: None,
        };
        it.reset(bytes);
        it
    }

    /// Restarts the cursor over other bytes, reusing its state.
    pub(crate) fn reset(&mut self, bytes: &'a [u8]) {
        self.read = 0;
        self.t = 0;
        self.t_delta = 0;
        self.v = 0;
        self.leading = 0xff;
        self.trailing = 0;
        self.err = None;
        match bytes {
            [a, b, rest @ ..] => {
                self.total = u16::from_le_bytes([*a, *b]);
                self.br = BitReader::new(rest);
            }
            _ => {
                self.total = 0;
                self.br = BitReader::new(&[]);
                self.err = Some(Error::corruption(
                    CHUNK_PATH,
                    0,
                    format!("chunk of {} bytes is shorter than its header", bytes.len()),
                ));
            }
        }
    }

    /// Samples announced by the header.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn num_samples(&self) -> usize {
        self.total as usize
    }

    #[cfg(any(test, feature = "fuzzing"))]
    fn bits_read(&self) -> usize {
        self.br.bits_consumed()
    }

    fn fail(&mut self, what: &str) -> bool {
        let offset = (HEADER_LEN + self.br.byte_offset()) as u64;
        self.err = Some(Error::corruption(
            CHUNK_PATH,
            offset,
            format!("truncated or invalid {what} of sample {}", self.read),
        ));
        false
    }

    #[inline]
    fn bits(&mut self, n: u32) -> Option<u64> {
        self.br.read_bits(n)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.bits(8)?;
            if i == 9 && b > 1 {
                return None;
            }
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn read_xor(&mut self) -> Option<()> {
        let ctrl = self.br.read_ones(2)?;
        if ctrl == 0 {
            return Some(());
        }
        if ctrl == 2 {
            let leading = self.bits(5)? as u32;
            let mut sig = self.bits(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if leading + sig > 64 {
                return None;
            }
            self.leading = leading as u8;
            self.trailing = (64 - leading - sig) as u8;
        } else if self.leading == 0xff {
            return None; // window reuse before any window was set
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let x = self.bits(sig)?;
        self.v ^= x << self.trailing;
        Some(())
    }

    fn read_dod(&mut self) -> Option<i64> {
        let nbits = match self.br.read_ones(4)? {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Some(self.bits(64)? as i64),
        };
        let raw = self.bits(nbits)?;
        // Values above 2^(n-1) are negative (see `fits_bits`).
        Some(if raw > 1 << (nbits - 1) {
            raw as i64 - (1i64 << nbits)
        } else {
            raw as i64
        })
    }
}

impl SampleIterator for XorIterator<'_> {
    fn next(&mut self) -> bool {
        if self.err.is_some() || self.read >= self.total {
            return false;
        }
        match self.read {
            0 => {
                let Some(t) = self.uvarint().map(crate::encoding::varint::unzigzag) else {
                    return self.fail("first timestamp");
                };
                let Some(v) = self.bits(64) else {
                    return self.fail("first value");
                };
                self.t = t;
                self.v = v;
            }
            1 => {
                let Some(d) = self.uvarint() else {
                    return self.fail("timestamp delta");
                };
                self.t_delta = d;
                self.t = (self.t as u64).wrapping_add(d) as i64;
                if self.read_xor().is_none() {
                    return self.fail("value");
                }
            }
            _ => {
                let Some(dod) = self.read_dod() else {
                    return self.fail("timestamp delta of delta");
                };
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
                if self.read_xor().is_none() {
                    return self.fail("value");
                }
            }
        }
        self.read += 1;
        true
    }

    fn seek(&mut self, t: Timestamp) -> bool {
        if self.err.is_some() {
            return false;
        }
        if self.read > 0 && self.t >= t {
            return true;
        }
        while self.next() {
            if self.t >= t {
                return true;
            }
        }
        false
    }

    fn at(&self) -> (Timestamp, f64) {
        (self.t, f64::from_bits(self.v))
    }

    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }
}

/// Decodes every sample of `bytes` into `dst` (appending). Fails on corrupt input; `dst` then
/// holds the samples decoded before the corruption.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_into(
    dst: &mut Vec<(Timestamp, f64)>,
    bytes: &[u8],
) -> crate::error::Result<()> {
    let mut it = XorIterator::new(bytes);
    // The header is untrusted: reserve no more than the bytes could possibly hold (>= 2 bits
    // per sample after the first).
    dst.reserve(it.num_samples().min(bytes.len() * 4 + 1));
    while it.next() {
        dst.push(it.at());
    }
    match it.err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
