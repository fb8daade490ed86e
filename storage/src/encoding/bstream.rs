//! MSB-first bit streams: the first bit written is the high bit of the first byte.
//!
//! [`BitWriter`] appends to a `Vec<u8>` it owns (callers may put a byte-aligned header in front
//! with [`BitWriter::push_byte`]); [`BitReader`] reads untrusted bytes and returns `None` when
//! they run out.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

/// Appends bits to a byte vector. Unused low bits of the last byte are zero.
///
/// The buffer grows by a quarter of its length (at least [`MIN_GROWTH`] bytes) rather than
/// doubling: head chunks live in memory for hours, so slack costs more than the extra copies
/// of buffers this small.
///
/// The writing itself is [`BitWriterMut`]'s, a view of the buffer and the free-bit count that
/// may live apart: the XOR chunk keeps its count in a byte beside its other small fields, which
/// makes it 8 bytes smaller (every head series holds one).
#[derive(Clone, Debug, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Free (not yet written) low bits in the last byte, `0..=7`; 0 = byte-aligned.
    free: u8,
}

impl BitWriter {
    /// An empty writer with room for `cap` bytes.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(cap),
            free: 0,
        }
    }

    /// The writing view of this writer.
    #[inline(always)]
    pub(crate) fn as_mut(&mut self) -> BitWriterMut<'_> {
        BitWriterMut::new(&mut self.bytes, &mut self.free)
    }

    /// Everything written so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Allocated bytes of the buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Mutable access to the written bytes (for in-place header updates).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Free low bits in the last byte.
    #[cfg(test)]
    pub(crate) fn free_bits(&self) -> u32 {
        u32::from(self.free)
    }

    /// [`BitWriterMut::write_bit`].
    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.as_mut().write_bit(bit);
    }

    /// [`BitWriterMut::push_byte`].
    #[inline]
    pub(crate) fn push_byte(&mut self, b: u8) {
        self.as_mut().push_byte(b);
    }

    /// [`BitWriterMut::write_bits`].
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        self.as_mut().write_bits(v, n);
    }

    /// [`BitWriterMut::write_uvarint`].
    pub(crate) fn write_uvarint(&mut self, v: u64) {
        self.as_mut().write_uvarint(v);
    }

    /// [`BitWriterMut::write_varint`].
    pub(crate) fn write_varint(&mut self, v: i64) {
        self.as_mut().write_varint(v);
    }

    /// [`BitWriterMut::write_dod`].
    #[inline]
    pub(crate) fn write_dod(&mut self, dod: i64) {
        self.as_mut().write_dod(dod);
    }

    /// [`BitWriterMut::write_xor`].
    #[inline]
    pub(crate) fn write_xor(&mut self, st: &mut XorState, vb: u64) {
        self.as_mut().write_xor(st, vb);
    }
}

/// Appends bits to a byte vector whose last byte has `free` unused low bits (zero), `0..=7`.
/// Borrowed from a [`BitWriter`] or from a struct that keeps the two apart
/// (`chunk::XorChunk`).
pub(crate) struct BitWriterMut<'a> {
    bytes: &'a mut Vec<u8>,
    free: &'a mut u8,
}

impl<'a> BitWriterMut<'a> {
    /// A writer appending to `bytes`, whose last byte has `free` unused low bits.
    #[inline(always)]
    pub(crate) fn new(bytes: &'a mut Vec<u8>, free: &'a mut u8) -> Self {
        debug_assert!(*free < 8, "BUG: free bits {free} not in 0..8");
        Self { bytes, free }
    }

    /// Makes room for `n` more bytes.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.bytes.capacity() - self.bytes.len() < n {
            self.grow(n);
        }
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        let step = (self.bytes.len() / 4).max(MIN_GROWTH).max(n);
        self.bytes.reserve_exact(step);
    }

    /// Appends one bit.
    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        if *self.free == 0 {
            self.reserve(1);
            self.bytes.push(0);
            *self.free = 8;
        }
        *self.free -= 1;
        if bit && let Some(last) = self.bytes.last_mut() {
            *last |= 1 << *self.free;
        }
    }

    /// Appends a whole byte (8 bits), aligned or not.
    #[inline]
    pub(crate) fn push_byte(&mut self, b: u8) {
        self.reserve(1);
        if *self.free == 0 {
            self.bytes.push(b);
            return;
        }
        if let Some(last) = self.bytes.last_mut() {
            *last |= b >> (8 - *self.free);
        }
        self.bytes.push(b << *self.free);
    }

    /// Appends the low `n` bits of `v`, high bit first. `n <= 64`.
    ///
    /// Up to 56 bits go in with one 8-byte store: the partial last byte and the new bits are
    /// built as one big-endian word, which replaces the last byte, and the vector is cut back
    /// to the bytes used. Only when the buffer has no room for that word (or for longer
    /// writes) are the bits written byte by byte ([`BitWriterMut::write_bits_bytewise`]), so the
    /// buffer grows exactly as before.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64, "BUG: write_bits of {n} bits");
        if n == 0 {
            return;
        }
        let len = self.bytes.len();
        // The partial last byte: its start, its used (high) bits and its value.
        let (start, used, carry) = match self.bytes.last() {
            Some(&b) if *self.free > 0 => (len - 1, 8 - u32::from(*self.free), b),
            _ => (len, 0, 0),
        };
        if n > 56 || self.bytes.capacity() - start < 8 {
            self.write_bits_bytewise(v, n);
            return;
        }
        // `used + n <= 63`: the word holds all of them; its low bits past them are zero.
        let total = used + n;
        let w = (u64::from(carry) << 56) | ((v << (64 - n)) >> used);
        self.bytes.truncate(start);
        // MSB first, by shifts (the compiler makes this one byte swap and store).
        let word: [u8; 8] = std::array::from_fn(|i| (w >> (56 - 8 * i)) as u8);
        self.bytes.extend_from_slice(&word);
        let nbytes = total.div_ceil(8);
        self.bytes.truncate(start + nbytes as usize);
        *self.free = (nbytes * 8 - total) as u8;
    }

    /// [`BitWriterMut::write_bits`] a byte at a time.
    #[inline(never)]
    fn write_bits_bytewise(&mut self, v: u64, n: u32) {
        self.reserve(n.div_ceil(8) as usize);
        let mut v = v << (64 - n);
        let mut n = n;
        // Fill the partial last byte first.
        if *self.free > 0 {
            let take = u32::from(*self.free).min(n);
            let top = (v >> (64 - take)) as u8;
            *self.free -= take as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= top << *self.free;
            }
            v = if take == 64 { 0 } else { v << take };
            n -= take;
        }
        while n >= 8 {
            self.bytes.push((v >> 56) as u8);
            v <<= 8;
            n -= 8;
        }
        if n > 0 {
            self.bytes.push((v >> 56) as u8);
            *self.free = (8 - n) as u8;
        }
    }

    /// Appends `v` as an unsigned varint (8-bit groups, possibly unaligned).
    pub(crate) fn write_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push_byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.push_byte(v as u8);
    }

    /// Appends `v` as a zig-zag varint.
    pub(crate) fn write_varint(&mut self, v: i64) {
        self.write_uvarint(super::varint::zigzag(v));
    }
}

/// Smallest growth step of a [`BitWriter`]'s buffer, bytes.
const MIN_GROWTH: usize = 16;

/// Reads bits from untrusted bytes, high bit first.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    /// Next byte of `buf` to load into `acc`.
    pos: usize,
    /// Buffered bits, left-aligned (the next bit is bit 63).
    acc: u64,
    /// Valid bits in `acc`.
    nbits: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            acc: 0,
            nbits: 0,
        }
    }

    /// Skips the next `bits` bits (to the end of the input if it holds fewer).
    pub(crate) fn skip(&mut self, bits: usize) {
        let buffered = self.nbits as usize;
        if bits < buffered {
            self.consume(bits as u32);
            return;
        }
        let rest = bits - buffered;
        self.acc = 0;
        self.nbits = 0;
        self.pos = (self.pos + rest / 8).min(self.buf.len());
        // The remaining 0..=7 bits (none left to read at the end: `read_bits` is None there).
        let _ = self.read_bits((rest % 8) as u32);
    }

    /// Byte offset of the next unread bit (for error messages).
    pub(crate) fn byte_offset(&self) -> usize {
        self.pos - (self.nbits as usize).div_ceil(8)
    }

    #[inline]
    fn refill(&mut self) {
        // Fast path: load 8 bytes and keep the whole bytes that fit.
        if let Some(b) = self
            .buf
            .get(self.pos..self.pos + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
        {
            let w = b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
            let take = (64 - self.nbits) / 8; // 1..=8 since nbits <= 56 here
            let w = if take == 8 {
                w
            } else {
                w & !(u64::MAX >> (take * 8))
            };
            self.acc |= w >> self.nbits;
            self.nbits += take * 8;
            self.pos += take as usize;
            return;
        }
        while self.nbits <= 56 {
            match self.buf.get(self.pos) {
                Some(&b) => {
                    self.acc |= u64::from(b) << (56 - self.nbits);
                    self.nbits += 8;
                    self.pos += 1;
                }
                None => break,
            }
        }
    }

    /// Loads bytes until at least 56 bits are buffered or the input ends (then fewer).
    #[inline(always)]
    pub(crate) fn fill(&mut self) {
        if self.nbits < 56 {
            self.refill();
        }
    }

    /// The buffered bits, left-aligned, and how many are valid; the bits past them are zero.
    /// For decoders that parse several fields from one word and then [`BitReader::consume`]
    /// what they used.
    #[inline(always)]
    pub(crate) fn peek(&self) -> (u64, u32) {
        (self.acc, self.nbits)
    }

    /// Drops `n` buffered bits (`n <= ` the valid bits of [`BitReader::peek`], `n < 64`).
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        debug_assert!(
            n <= self.nbits && n < 64,
            "BUG: consume({n}) of {} bits",
            self.nbits
        );
        self.acc <<= n;
        self.nbits -= n;
    }

    /// Bits not yet read.
    pub(crate) fn remaining_bits(&self) -> usize {
        (self.buf.len() - self.pos) * 8 + self.nbits as usize
    }

    /// Bits consumed from the start of the buffer.
    pub(crate) fn bits_consumed(&self) -> usize {
        self.pos * 8 - self.nbits as usize
    }

    /// The next bit, `None` at the end.
    #[inline]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        if self.nbits == 0 {
            self.refill();
            if self.nbits == 0 {
                return None;
            }
        }
        let bit = self.acc >> 63 == 1;
        self.acc <<= 1;
        self.nbits -= 1;
        Some(bit)
    }

    /// The next `n` bits (`n <= 64`) as the low bits of the result.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > 56 {
            return self.read_bits_wide(n);
        }
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return None;
            }
        }
        let v = self.acc >> (64 - n);
        self.acc <<= n;
        self.nbits -= n;
        Some(v)
    }

    /// Counts 1 bits up to the first 0 (consumed) or up to `max` ones (`max <= 56`): the
    /// unary prefixes of the Gorilla codec.
    #[inline(always)]
    pub(crate) fn read_ones(&mut self, max: u32) -> Option<u32> {
        if self.nbits < max {
            self.refill();
        }
        if self.nbits >= max {
            let ones = (!self.acc).leading_zeros().min(max);
            let consume = if ones < max { ones + 1 } else { max };
            self.acc <<= consume;
            self.nbits -= consume;
            return Some(ones);
        }
        let mut ones = 0;
        while ones < max {
            if !self.read_bit()? {
                break;
            }
            ones += 1;
        }
        Some(ones)
    }

    /// `read_bits` for 57..=64 bits, in two reads (kept out of line so `read_bits` inlines).
    #[cold]
    #[inline(never)]
    fn read_bits_wide(&mut self, n: u32) -> Option<u64> {
        let hi = self.read_bits(n - 32)?;
        let lo = self.read_bits(32)?;
        Some((hi << 32) | lo)
    }

    /// The next 8 bits.
    #[inline]
    pub(crate) fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|b| b as u8)
    }

    /// An unsigned varint written by [`BitWriter::write_uvarint`].
    pub(crate) fn read_uvarint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..super::varint::MAX_VARINT_LEN {
            let b = self.read_byte()?;
            if i == super::varint::MAX_VARINT_LEN - 1 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A zig-zag varint written by [`BitWriter::write_varint`].
    pub(crate) fn read_varint(&mut self) -> Option<i64> {
        self.read_uvarint().map(super::varint::unzigzag)
    }
}

/// Delta-of-delta buckets of Gorilla timestamps: (prefix bits, prefix length, payload bits).
/// A value fits `n` payload bits when it is in `-(2^(n-1) - 1) ..= 2^(n-1)`; anything else is
/// `'1111'` and 64 bits.
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// True when `v` fits an `nbits`-bit payload of the dod and varbit encodings.
#[inline]
pub(crate) fn fits_bits(v: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= v && v <= half
}

/// The Gorilla XOR state of one float field: the last value's bits and the window of
/// meaningful bits (`leading == 0xff` before the first XOR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct XorState {
    /// Bits of the last value.
    pub(crate) v: u64,
    /// Leading zero bits of the window (capped at 31), `0xff` before any window.
    pub(crate) leading: u8,
    /// Trailing zero bits of the window.
    pub(crate) trailing: u8,
}

impl Default for XorState {
    fn default() -> Self {
        Self::first(0)
    }
}

impl XorState {
    /// The state after a first value written in full.
    pub(crate) fn first(v: u64) -> Self {
        Self {
            v,
            leading: 0xff,
            trailing: 0,
        }
    }
}

impl BitWriterMut<'_> {
    /// Writes a timestamp delta of delta: `'0'` for 0, `'10'`/`'110'`/`'1110'` and 14/17/20
    /// bits, or `'1111'` and 64 bits (the XOR chunk's and the histogram chunk's timestamps).
    #[inline(always)]
    pub(crate) fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.write_bit(false);
        } else if let Some(&(prefix, plen, nbits)) =
            DOD_BUCKETS.iter().find(|b| fits_bits(dod, b.2))
        {
            // Prefix and payload in one write (at most 4 + 20 bits).
            let payload = dod as u64 & ((1u64 << nbits) - 1);
            self.write_bits((prefix << nbits) | payload, plen + nbits);
        } else {
            self.write_bits(0b1111, 4);
            self.write_bits(dod as u64, 64);
        }
    }

    /// Writes `vb` XORed with the last value of `st`: `'0'` when equal, `'10'` and the
    /// meaningful bits when they fit the window, else `'11'`, leading (5 bits, capped at 31),
    /// significant bits (6 bits, 64 stored as 0) and those bits. Updates `st`.
    #[inline(always)]
    pub(crate) fn write_xor(&mut self, st: &mut XorState, vb: u64) {
        let x = vb ^ st.v;
        st.v = vb;
        if x == 0 {
            self.write_bit(false);
            return;
        }
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if st.leading != 0xff && leading >= st.leading && trailing >= st.trailing {
            let sig = 64 - u32::from(st.leading) - u32::from(st.trailing);
            // '10' and the meaningful bits in one write when they fit.
            if sig <= 54 {
                self.write_bits((0b10 << sig) | (x >> st.trailing), sig + 2);
            } else {
                self.write_bits(0b10, 2);
                self.write_bits(x >> st.trailing, sig);
            }
            return;
        }
        st.leading = leading;
        st.trailing = trailing;
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // '11', leading (5 bits), significant bits (6 bits; 64 is stored as 0) in one write.
        let head = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
        self.write_bits(head, 13);
        self.write_bits(x >> trailing, sig);
    }
}

impl BitReader<'_> {
    /// A delta of delta written by [`BitWriterMut::write_dod`].
    #[inline(always)]
    pub(crate) fn read_dod(&mut self) -> Option<i64> {
        let nbits = match self.read_ones(4)? {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Some(self.read_bits(64)? as i64),
        };
        let raw = self.read_bits(nbits)?;
        // Values above 2^(n-1) are negative (see `fits_bits`).
        Some(if raw > 1 << (nbits - 1) {
            raw as i64 - (1i64 << nbits)
        } else {
            raw as i64
        })
    }

    /// A value written by [`BitWriterMut::write_xor`] into `st.v`. `None` on truncated or
    /// invalid bits (a window wider than 64 bits, or reused before one was set).
    #[inline(always)]
    pub(crate) fn read_xor(&mut self, st: &mut XorState) -> Option<()> {
        let ctrl = self.read_ones(2)?;
        if ctrl == 0 {
            return Some(());
        }
        if ctrl == 2 {
            let leading = self.read_bits(5)? as u32;
            let mut sig = self.read_bits(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if leading + sig > 64 {
                return None;
            }
            st.leading = leading as u8;
            st.trailing = (64 - leading - sig) as u8;
        } else if st.leading == 0xff {
            return None; // window reuse before any window was set
        }
        let sig = 64 - u32::from(st.leading) - u32::from(st.trailing);
        let x = self.read_bits(sig)?;
        st.v ^= x << st.trailing;
        Some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn msb_first_layout() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        w.write_bits(0b01, 2);
        w.push_byte(0xff);
        assert_eq!(w.bytes(), &[0b1011_1111, 0b1110_0000]);
        assert_eq!(w.free_bits(), 5);
        let mut r = BitReader::new(w.bytes());
        assert_eq!(r.read_bit(), Some(true));
        assert_eq!(r.read_bits(2), Some(1));
        assert_eq!(r.read_byte(), Some(0xff));
        assert_eq!(r.read_bits(5), Some(0));
        assert_eq!(r.read_bit(), None);

        let mut w = BitWriter::default();
        w.write_bits(0b1101_1110, 8);
        w.write_bits(0b11, 2);
        let mut r = BitReader::new(w.bytes());
        assert_eq!(r.read_ones(4), Some(2));
        assert_eq!(r.read_ones(4), Some(4));
        assert_eq!(r.read_ones(4), Some(0));
        assert_eq!(r.read_ones(2), Some(2), "near the end: slow path");
        assert_eq!(r.read_ones(2), Some(0), "padding zeros");
    }

    proptest! {
        #[test]
        fn gorilla_dod_and_xor_round_trip(
            items in proptest::collection::vec((any::<i64>(), 0u32..4, any::<u64>()), 0..200),
        ) {
            // Delta-of-deltas of every bucket size, and values that repeat, reuse the window
            // or open a new one.
            let mut w = BitWriter::with_capacity(0);
            let mut st = XorState::first(0);
            let vals: Vec<(i64, u64)> = items
                .iter()
                .map(|&(d, k, v)| (d >> (k * 16), if k == 0 { st.v } else { v >> k }))
                .collect();
            for &(d, v) in &vals {
                w.write_dod(d);
                w.write_xor(&mut st, v);
            }
            let mut r = BitReader::new(w.bytes());
            let mut rs = XorState::first(0);
            for &(d, v) in &vals {
                prop_assert_eq!(r.read_dod(), Some(d));
                prop_assert_eq!(r.read_xor(&mut rs), Some(()));
                prop_assert_eq!(rs.v, v);
            }
        }

        /// `write_bits` lays down the same bytes as writing the bits one at a time, from any
        /// starting capacity (the word store near the capacity and the byte-wise path).
        #[test]
        fn write_bits_equals_bit_by_bit(
            cap in 0usize..24,
            items in proptest::collection::vec((any::<u64>(), 0u32..=64, any::<bool>()), 0..100),
        ) {
            let mut fast = BitWriter::with_capacity(cap);
            let mut slow = BitWriter::with_capacity(cap);
            for &(v, n, byte) in &items {
                if byte {
                    fast.push_byte(v as u8);
                    slow.push_byte(v as u8);
                }
                fast.write_bits(v, n);
                for i in (0..n).rev() {
                    slow.write_bit(v >> i & 1 == 1);
                }
                prop_assert_eq!(fast.bytes(), slow.bytes());
                prop_assert_eq!(fast.free_bits(), slow.free_bits());
            }
        }

        #[test]
        fn round_trip(items in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..100)) {
            let mut w = BitWriter::with_capacity(0);
            for &(v, n) in &items {
                let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                w.write_bits(v, n);
                w.write_uvarint(v);
            }
            let mut r = BitReader::new(w.bytes());
            for &(v, n) in &items {
                let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                prop_assert_eq!(r.read_bits(n), Some(v));
                prop_assert_eq!(r.read_uvarint(), Some(v));
            }
            // Only padding (fewer than 8 bits) remains.
            prop_assert!(r.read_bits(8).is_none());
        }
    }
}
