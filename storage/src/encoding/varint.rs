//! Varints and a bounds-checked decode cursor.
//!
//! Unsigned varints are LEB128 (7 bits per byte, low group first, at most 10 bytes); signed
//! varints are zig-zag mapped first (`0, -1, 1, -2, …` → `0, 1, 2, 3, …`), as Go's
//! `binary.PutVarint` does.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

/// Longest encoded u64.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_uvarint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Appends `v` zig-zag encoded as a varint.
#[inline]
pub(crate) fn put_varint(dst: &mut Vec<u8>, v: i64) {
    put_uvarint(dst, zigzag(v));
}

/// Zig-zag maps a signed integer onto an unsigned one.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Decodes an unsigned varint from the front of `src`: `(value, bytes used)`. `None` when `src`
/// ends early or the varint overflows 64 bits.
#[inline]
pub(crate) fn uvarint(src: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in src.iter().enumerate().take(MAX_VARINT_LEN) {
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return None; // more than 64 bits
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A read cursor over untrusted bytes. Every read is bounds-checked and returns `None` on short
/// or malformed input; callers turn that into `Error::Corruption` at [`Decbuf::pos`].
#[derive(Clone, Debug)]
pub(crate) struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    /// A cursor at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A u64, little-endian.
    pub(crate) fn u64_le(&mut self) -> Option<u64> {
        let s = self.bytes(8)?;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }

    /// An unsigned varint.
    #[inline]
    pub(crate) fn uvarint(&mut self) -> Option<u64> {
        // Most varints in the WAL and the index are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Some(u64::from(b));
        }
        let (v, n) = uvarint(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }

    /// A zig-zag signed varint.
    #[inline]
    pub(crate) fn varint(&mut self) -> Option<i64> {
        self.uvarint().map(unzigzag)
    }

    /// An unsigned varint that must fit `usize` and be at most `max`.
    pub(crate) fn uvarint_len(&mut self, max: usize) -> Option<usize> {
        let v = usize::try_from(self.uvarint()?).ok()?;
        (v <= max).then_some(v)
    }

    /// A varint length followed by that many bytes of UTF-8.
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.uvarint_len(self.remaining())?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
}

/// Appends a varint length and the bytes of `s`.
pub(crate) fn put_str(dst: &mut Vec<u8>, s: &str) {
    put_uvarint(dst, s.len() as u64);
    dst.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let check = |v: u64, want: &[u8]| {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b, want, "uvarint({v})");
            assert_eq!(uvarint(&b), Some((v, want.len())));
        };
        check(0, &[0]);
        check(127, &[0x7f]);
        check(128, &[0x80, 0x01]);
        check(300, &[0xac, 0x02]);
        check(
            u64::MAX,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        );
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn malformed_varints_rejected() {
        assert_eq!(uvarint(&[]), None);
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[0xff; 10]), None);
        assert_eq!(
            uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        let mut d = Decbuf::new(&[5, b'a']);
        assert_eq!(d.str(), None, "length beyond the buffer");
    }

    proptest! {
        #[test]
        fn varint_round_trip(vals in proptest::collection::vec(any::<i64>(), 0..50), s in ".{0,20}") {
            let mut b = Vec::new();
            for &v in &vals {
                put_varint(&mut b, v);
                put_uvarint(&mut b, v as u64);
            }
            put_str(&mut b, &s);
            let mut d = Decbuf::new(&b);
            for &v in &vals {
                prop_assert_eq!(d.varint(), Some(v));
                prop_assert_eq!(d.uvarint(), Some(v as u64));
            }
            prop_assert_eq!(d.str(), Some(s.as_str()));
            prop_assert!(d.is_empty());
        }
    }
}
