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

use crate::encoding::BitReader;
use crate::encoding::bstream::{BitWriterMut, XorState};
use crate::error::Error;
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Bytes of the sample-count header.
pub(crate) const HEADER_LEN: usize = 2;
/// Most samples one chunk can hold (the count is a u16).
pub(crate) const MAX_SAMPLES: usize = u16::MAX as usize;
/// Initial buffer capacity of a new chunk.
const INITIAL_CAPACITY: usize = 16;
/// Samples a chunk holds before [`XorChunk::reserve_samples`] trusts its bytes per sample.
const RESERVE_AFTER: usize = 8;
/// Name used in corruption errors for chunk bytes.
const CHUNK_PATH: &str = "<xor chunk>";

/// An appendable XOR chunk. Its bytes are self-describing (they start with the sample count).
///
/// 56 bytes: the sample count is read from the header bytes rather than kept beside them, and
/// the bit writer's free-bit count and the XOR window share one word with each other instead
/// of a [`crate::encoding::BitWriter`] and an [`XorState`] padded to 8 bytes each (an open
/// chunk sits in every head series; see `head::series`'s `series_fits_its_allocation_class`).
#[derive(Clone, Debug)]
pub(crate) struct XorChunk {
    /// Header + bit stream; the header always holds the sample count.
    bytes: Vec<u8>,
    /// Last appended timestamp (0 before the first sample).
    t: i64,
    t_delta: u64,
    /// Bits of the last value (the Gorilla pieces are shared with the histogram chunk in
    /// `encoding::bstream`: this, `leading` and `trailing` are an [`XorState`]).
    v: u64,
    /// The XOR window's leading zero bits, `0xff` before any window.
    leading: u8,
    /// The XOR window's trailing zero bits.
    trailing: u8,
    /// Free (not yet written) low bits in the last byte of `bytes`, `0..=7`.
    free: u8,
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
        let xs = XorState::default();
        let mut c = Self {
            bytes: Vec::with_capacity(INITIAL_CAPACITY),
            t: 0,
            t_delta: 0,
            v: xs.v,
            leading: xs.leading,
            trailing: xs.trailing,
            free: 0,
        };
        c.clear();
        c
    }

    /// Empties the chunk (an empty chunk is its 2-byte header), keeping its buffer: replay cuts a
    /// series' chunks back to back, and the next chunk of a series is about as large as the
    /// one before, so it is written without growing (or allocating) a buffer.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.bytes.extend_from_slice(&[0, 0]);
        self.free = 0;
        self.t = 0;
        self.t_delta = 0;
        self.set_xor_state(XorState::default());
    }

    /// The XOR state kept in the chunk's fields.
    #[inline(always)]
    fn xor_state(&self) -> XorState {
        XorState {
            v: self.v,
            leading: self.leading,
            trailing: self.trailing,
        }
    }

    #[inline(always)]
    fn set_xor_state(&mut self, xs: XorState) {
        self.v = xs.v;
        self.leading = xs.leading;
        self.trailing = xs.trailing;
    }

    /// Re-opens encoded chunk bytes for appending (e.g. a head chunk read back from disk).
    /// Decodes the whole chunk once to recover the encoder state.
    pub(crate) fn from_bytes(bytes: &[u8]) -> crate::error::Result<Self> {
        let mut it = XorIterator::new(bytes);
        while it.next() {}
        Self::reopened(bytes, it)
    }

    /// [`XorChunk::from_bytes`] of `bytes` that start with this chunk's samples (this chunk's
    /// bits, then more samples, the header counting them all: a head snapshot delta's grown
    /// open chunk): decodes only the samples after this chunk's, from its encoder state. Bytes
    /// that do not start with this chunk's bits, or count fewer samples, are decoded whole.
    pub(crate) fn reopen_grown(&self, bytes: &[u8]) -> crate::error::Result<Self> {
        let num = self.num();
        let own = &self.bytes;
        // Bits of this chunk, header included; `whole` bytes of them, then `part` bits.
        let bits = own.len() * 8 - usize::from(self.free);
        let (whole, part) = (bits / 8, bits % 8);
        let mask = !(0xffu8 >> part);
        let total = match bytes {
            [a, b, ..] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        };
        let starts_with_own = num >= 2
            && total >= num
            && bytes.get(HEADER_LEN..whole) == own.get(HEADER_LEN..whole)
            && (part == 0
                || matches!((bytes.get(whole), own.get(whole)), (Some(a), Some(b)) if (a ^ b) & mask == 0));
        if !starts_with_own {
            return Self::from_bytes(bytes);
        }
        let mut it = XorIterator::new(bytes);
        it.resume_at(
            bits - HEADER_LEN * 8,
            num,
            self.t,
            self.t_delta,
            self.xor_state(),
        );
        while it.next() {}
        Self::reopened(bytes, it)
    }

    /// The chunk of `bytes`, read to its end by `it`, open for appending.
    fn reopened(bytes: &[u8], mut it: XorIterator<'_>) -> crate::error::Result<Self> {
        if let Some(e) = it.err.take() {
            return Err(e);
        }
        let consumed_bits = HEADER_LEN * 8 + it.bits_read();
        let len = consumed_bits.div_ceil(8);
        let free = (len * 8 - consumed_bits) as u8;
        let mut buf = bytes.get(..len).unwrap_or(bytes).to_vec();
        // Clear stray padding bits so later writes OR into zeros.
        if free > 0
            && let Some(last) = buf.last_mut()
        {
            *last &= !((1u8 << free) - 1);
        }
        Ok(Self {
            bytes: buf,
            t: it.t,
            t_delta: it.t_delta,
            v: it.xs.v,
            leading: it.xs.leading,
            trailing: it.xs.trailing,
            free,
        })
    }

    /// Appends a sample. BUG if `t` is not greater than the last appended timestamp or the chunk
    /// already holds [`MAX_SAMPLES`].
    pub(crate) fn append(&mut self, t: Timestamp, v: f64) {
        let num = self.num();
        assert!(
            num == 0 || t > self.t,
            "BUG: XOR chunk append at {t} not after {}",
            self.t
        );
        self.append_any(num, t, v);
    }

    /// [`XorChunk::append`] without the order check: the bytes of a corrupt chunk, whose
    /// samples decode out of time order (tests of what reads such a chunk).
    #[cfg(test)]
    pub(crate) fn append_unordered(&mut self, t: Timestamp, v: f64) {
        self.append_any(self.num(), t, v);
    }

    /// Appends a sample to a chunk of `num` samples.
    #[inline]
    fn append_any(&mut self, num: u16, t: Timestamp, v: f64) {
        assert!(
            (num as usize) < MAX_SAMPLES,
            "BUG: XOR chunk capacity of {MAX_SAMPLES} samples exceeded"
        );
        let vb = v.to_bits();
        let mut xs = self.xor_state();
        let mut bw = BitWriterMut::new(&mut self.bytes, &mut self.free);
        match num {
            0 => {
                bw.write_varint(t);
                bw.write_bits(vb, 64);
                xs.v = vb;
            }
            1 => {
                let d = (t as u64).wrapping_sub(self.t as u64);
                bw.write_uvarint(d);
                self.t_delta = d;
                bw.write_xor(&mut xs, vb);
            }
            _ => {
                let d = (t as u64).wrapping_sub(self.t as u64);
                bw.write_dod(d.wrapping_sub(self.t_delta) as i64);
                self.t_delta = d;
                bw.write_xor(&mut xs, vb);
            }
        }
        self.set_xor_state(xs);
        self.t = t;
        let n = (num + 1).to_le_bytes();
        if let [a, b, ..] = self.bytes.as_mut_slice() {
            *a = n[0];
            *b = n[1];
        }
    }

    /// The sample count, from the header.
    #[inline]
    fn num(&self) -> u16 {
        match self.bytes.as_slice() {
            [a, b, ..] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        }
    }

    /// Number of samples in the chunk.
    pub(crate) fn num_samples(&self) -> usize {
        usize::from(self.num())
    }

    /// Timestamp of the first sample, ms (None when empty). Decoded from the bytes: the first
    /// sample's zig-zag varint time starts byte-aligned after the header.
    pub(crate) fn first_t(&self) -> Option<Timestamp> {
        if self.num() == 0 {
            return None;
        }
        let mut it = XorIterator::new(self.bytes());
        it.next().then(|| it.at().0)
    }

    /// Timestamp of the last sample, ms (None when empty).
    #[inline]
    pub(crate) fn last_t(&self) -> Option<Timestamp> {
        (self.num() > 0).then_some(self.t)
    }

    /// The last sample `(t ms, value)` from the encoder state, without decoding (None when
    /// empty).
    #[inline]
    pub(crate) fn last(&self) -> Option<(Timestamp, f64)> {
        (self.num() > 0).then(|| (self.t, f64::from_bits(self.v)))
    }

    /// The encoded bytes (complete and decodable at any point between appends).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Unused low bits of the last byte of [`XorChunk::bytes`], `0..=7`: later appends fill
    /// them and change none of the other bits before the header's count. Read from the chunk
    /// itself, not its buffer.
    pub(crate) fn free_bits(&self) -> u32 {
        u32::from(self.free)
    }

    /// Makes room for about `more` samples beyond those written, at the chunk's bytes per
    /// sample so far, in one allocation (the buffer otherwise grows by a quarter at a time).
    /// Does nothing before [`RESERVE_AFTER`] samples, when the rate says little. For replay,
    /// which knows the samples ahead and gives the slack back with [`XorChunk::shrink_to_fit`].
    pub(crate) fn reserve_samples(&mut self, more: usize) {
        let (num, len) = (self.num_samples(), self.bytes.len());
        if num >= RESERVE_AFTER {
            // (at most MAX_SAMPLES × a few bytes: no overflow)
            let want = len + (len * more).div_ceil(num) + 8;
            if want > self.bytes.capacity() {
                self.bytes.reserve_exact(want - len);
            }
        }
    }

    /// Gives back the buffer's room past the written bytes.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// Heap bytes of the encoder (its buffer's capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
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
    xs: XorState,
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
            xs: XorState::default(),
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
        self.xs = XorState::default();
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

    /// Moves a fresh cursor past its first `read` samples, which end `bit` bits into the
    /// stream, with the decoder state they leave (the encoder state of a chunk of them).
    fn resume_at(&mut self, bit: usize, read: u16, t: i64, t_delta: u64, xs: XorState) {
        if self.err.is_some() {
            return;
        }
        self.br.skip(bit);
        self.read = read;
        self.t = t;
        self.t_delta = t_delta;
        self.xs = xs;
    }

    /// Samples announced by the header.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn num_samples(&self) -> usize {
        self.total as usize
    }

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
}

impl XorIterator<'_> {
    /// Decodes a third or later sample from one peeked word of at least 56 buffered bits:
    /// the delta of delta (up to 20 bits) always, the value too when it fits there; a longer
    /// value is read field by field after it. `None` (nothing consumed) for what the word
    /// cannot decide (a 64-bit delta of delta, the end of the chunk): the general path then
    /// reads the sample. `Some` is `next`'s answer; errors are the general path's.
    #[inline(always)]
    fn next_fast(&mut self) -> Option<bool> {
        self.br.fill();
        let (acc, avail) = self.br.peek();
        let ones = (!acc).leading_zeros();
        let (dod, dod_bits) = match ones {
            0 => (0i64, 1u32),
            1..=3 => {
                let nbits = 11 + 3 * ones; // 14, 17, 20
                let raw = (acc << (ones + 1)) >> (64 - nbits);
                let dod = if raw > 1 << (nbits - 1) {
                    raw as i64 - (1i64 << nbits)
                } else {
                    raw as i64
                };
                (dod, ones + 1 + nbits)
            }
            _ => return None,
        };
        if dod_bits > avail {
            return None;
        }
        let mut used = dod_bits;
        let a = acc << used; // used <= 24
        let mut xs = self.xs;
        let fits = if a >> 63 == 0 {
            used += 1;
            used <= avail
        } else {
            let mut ok = true;
            if a >> 62 == 0b11 {
                let leading = (a << 2 >> 59) as u32;
                let sig = match (a << 7 >> 58) as u32 {
                    0 => 64,
                    s => s,
                };
                ok = leading + sig <= 64;
                xs.leading = leading as u8;
                xs.trailing = 64u32.saturating_sub(leading + sig) as u8;
                used += 11;
            } else if xs.leading == 0xff {
                ok = false; // window reuse before any window was set
            }
            let sig = if ok {
                64 - u32::from(xs.leading) - u32::from(xs.trailing)
            } else {
                0
            };
            // used <= 24 + 11 here; the 2 control bits and `sig` value bits follow.
            let body = acc << (used + 2);
            let x = body.checked_shr(64 - sig).unwrap_or(0);
            used += 2 + sig;
            xs.v ^= x.checked_shl(u32::from(xs.trailing)).unwrap_or(0);
            ok && used <= avail && used < 64
        };
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
        if fits {
            self.br.consume(used);
            self.xs = xs;
        } else {
            // The delta of delta is in the word; the value is read from after it.
            self.br.consume(dod_bits);
            if self.br.read_xor(&mut self.xs).is_none() {
                return Some(self.fail("value"));
            }
        }
        self.read += 1;
        Some(true)
    }

    /// [`SampleIterator::next`] for any sample, field by field.
    #[inline(never)]
    fn next_general(&mut self) -> bool {
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
                self.xs.v = v;
            }
            1 => {
                let Some(d) = self.uvarint() else {
                    return self.fail("timestamp delta");
                };
                self.t_delta = d;
                self.t = (self.t as u64).wrapping_add(d) as i64;
                if self.br.read_xor(&mut self.xs).is_none() {
                    return self.fail("value");
                }
            }
            _ => {
                let Some(dod) = self.br.read_dod() else {
                    return self.fail("timestamp delta of delta");
                };
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
                if self.br.read_xor(&mut self.xs).is_none() {
                    return self.fail("value");
                }
            }
        }
        self.read += 1;
        true
    }
}

impl SampleIterator for XorIterator<'_> {
    #[inline]
    fn next(&mut self) -> bool {
        if self.read >= 2
            && self.read < self.total
            && self.err.is_none()
            && let Some(ok) = self.next_fast()
        {
            return ok;
        }
        self.next_general()
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
        (self.t, f64::from_bits(self.xs.v))
    }

    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// The decode loop with `next` inlined (an XOR chunk holds floats only).
    fn append_floats(&mut self, maxt: Timestamp, dst: &mut Vec<(Timestamp, f64)>) -> bool {
        if self.read == 0 || self.err.is_some() {
            return false;
        }
        // The header is untrusted: reserve no more than the bytes left could hold (>= 2 bits
        // per sample).
        let left = usize::from(self.total - self.read);
        dst.reserve(1 + left.min(self.br.remaining_bits() / 2));
        loop {
            if self.t > maxt {
                return true;
            }
            dst.push((self.t, f64::from_bits(self.xs.v)));
            if !self.next() {
                return false;
            }
        }
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
