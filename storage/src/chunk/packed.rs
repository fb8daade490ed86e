//! Packed chunk codec for compacted blocks (encoding byte 3).
//!
//! Scrape data is mostly regular timestamps and values that are exact decimals (integer
//! counters, gauges with a few decimal places); the rest are floats whose low mantissa bits are
//! noise. This codec stores every column as differences bit-packed in groups of [`GROUP`]
//! values, each group at its own width, so one outlier (a counter reset, a NaN) widens only
//! its group. [`encode_best`] keeps whichever of this and XOR is smaller.
//!
//! ```text
//! ┌───────────────────┬──────────────────────────────────────────────────────────────┐
//! │ num_samples u16   │ bit stream (MSB first, zero-padded)                          │
//! └───────────────────┴──────────────────────────────────────────────────────────────┘
//! bit stream (n = num_samples, n >= 1):
//!   t0 varint │ if n >= 2: t1 - t0 uvarint │ if n >= 3: groups(zigzag(dod_i), n - 2)
//!   kind 2 bits
//!     0, 1  decimal: scale k 4 bits (0..=MAX_SCALE) │ m0 varint │ mult uvarint (>= 1)
//!           │ groups(zigzag(x_i / mult), n - 1), x = deltas of m (kind 0) or the first delta
//!           then deltas of deltas (kind 1); value i = m_i / 10^k (exactly m_i when k = 0)
//!     2, 3  float: v0 64 bits │ groups(x_i, n - 1), x = zigzag(bits_i - bits_i-1) as
//!           integers (kind 2) or bits_i xor bits_i-1 (kind 3)
//! groups(x, count): per run of up to GROUP values: width code 6 bits (w, 63 means 64)
//!   │ run length × w bits
//! ```
//! All integer arithmetic wraps, so any input decodes without overflow; the encoder uses the
//! decimal kinds only when they reproduce every value's bits.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::xor::{MAX_SAMPLES, XorChunk};
use crate::encoding::varint::{unzigzag, zigzag};
use crate::encoding::{BitReader, BitWriter};
use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Largest decimal scale tried (values with up to this many decimal places).
pub(crate) const MAX_SCALE: u8 = 9;
/// Values per bit-packing group.
pub(crate) const GROUP: usize = 16;
const CHUNK_PATH: &str = "<packed chunk>";
/// Powers of ten up to `MAX_SCALE` (all exact in f64).
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

const KIND_DELTA: u64 = 0;
const KIND_DOD: u64 = 1;
const KIND_FLOAT_SUB: u64 = 2;
const KIND_FLOAT_XOR: u64 = 3;

fn pow10(k: u8) -> f64 {
    POW10.get(k as usize).copied().unwrap_or(1.0)
}

/// The value a decoder produces for integer `m` at scale `k`.
#[inline]
fn scaled(m: i64, k: u8) -> f64 {
    if k == 0 {
        m as f64
    } else {
        m as f64 / pow10(k)
    }
}

/// The smallest scale at which every value is an exact scaled integer, with those integers.
fn decimal_form(samples: &[(Timestamp, f64)], ms: &mut Vec<i64>) -> Option<u8> {
    'scale: for k in 0..=MAX_SCALE {
        ms.clear();
        let p = pow10(k);
        for &(_, v) in samples {
            let m = (v * p).round();
            if m.is_nan() || m.abs() >= 9.0e15 {
                continue 'scale; // NaN, Inf or beyond exact integers
            }
            let m = m as i64;
            if scaled(m, k).to_bits() != v.to_bits() {
                continue 'scale;
            }
            ms.push(m);
        }
        return Some(k);
    }
    None
}

#[inline]
fn bit_width(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The 6-bit code of a group width: widths 0..=62 as themselves, 63 and 64 as 63 (64 bits).
#[inline]
fn width_code(w: u32) -> u32 {
    w.min(63)
}

#[inline]
fn code_width(c: u32) -> u32 {
    if c == 63 { 64 } else { c }
}

/// Bits [`pack_groups`] needs for `xs`.
fn groups_cost(xs: &[u64]) -> u64 {
    xs.chunks(GROUP)
        .map(|g| {
            let w = code_width(width_code(
                g.iter().map(|&x| bit_width(x)).max().unwrap_or(0),
            ));
            6 + g.len() as u64 * u64::from(w)
        })
        .sum()
}

fn pack_groups(bw: &mut BitWriter, xs: &[u64]) {
    for g in xs.chunks(GROUP) {
        let c = width_code(g.iter().map(|&x| bit_width(x)).max().unwrap_or(0));
        bw.write_bits(u64::from(c), 6);
        let w = code_width(c);
        for &x in g {
            bw.write_bits(x, w);
        }
    }
}

fn unpack_groups(br: &mut BitReader<'_>, count: usize, mut f: impl FnMut(u64)) -> Option<()> {
    let mut left = count;
    while left > 0 {
        let w = code_width(br.read_bits(6)? as u32);
        let len = left.min(GROUP);
        for _ in 0..len {
            f(br.read_bits(w)?);
        }
        left -= len;
    }
    Some(())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `xs` divided by their greatest common divisor `g` (1 when all are zero), zigzagged into
/// `out`; returns `g`. Decoding multiplies back with wrapping arithmetic, which is exact even
/// for `g = 2^63` (stored as `i64::MIN`).
fn divide_common(xs: &[i64], out: &mut Vec<u64>) -> u64 {
    let g = xs
        .iter()
        .fold(0u64, |g, &x| gcd(g, x.unsigned_abs()))
        .max(1);
    out.clear();
    out.extend(xs.iter().map(|&x| zigzag(x.wrapping_div(g as i64))));
    g
}

/// Encodes `samples` (strictly increasing timestamps, at most [`MAX_SAMPLES`]) into `dst`
/// (appending). BUG if timestamps are not increasing or there are too many samples.
pub(crate) fn encode_into(samples: &[(Timestamp, f64)], dst: &mut Vec<u8>) {
    assert!(
        samples.len() <= MAX_SAMPLES,
        "BUG: {} samples in one chunk",
        samples.len()
    );
    assert!(
        super::increasing(samples),
        "BUG: packed chunk timestamps not strictly increasing"
    );
    let mut bw = BitWriter::with_capacity(16 + samples.len() * 2);
    for b in (samples.len() as u16).to_le_bytes() {
        bw.push_byte(b);
    }
    let Some(&(t0, v0)) = samples.first() else {
        dst.extend_from_slice(bw.bytes());
        return;
    };
    bw.write_varint(t0);
    let mut xs: Vec<u64> = Vec::with_capacity(samples.len());
    if let [(t0, _), (t1, _), ..] = samples {
        bw.write_uvarint((*t1 as u64).wrapping_sub(*t0 as u64));
    }
    if samples.len() >= 3 {
        xs.extend(samples.windows(3).map(|w| match w {
            [a, b, c] => {
                let d1 = (b.0 as u64).wrapping_sub(a.0 as u64);
                let d2 = (c.0 as u64).wrapping_sub(b.0 as u64);
                zigzag(d2.wrapping_sub(d1) as i64)
            }
            _ => 0,
        }));
        pack_groups(&mut bw, &xs);
    }

    // Every applicable kind is costed; the cheapest is written.
    let mut ms = Vec::with_capacity(samples.len());
    let mut best: Option<(u64, u64, Vec<u64>, u64)> = None; // (bits, kind, codes, mult)
    let mut consider = |kind: u64, codes: Vec<u64>, mult: u64, header: u64| {
        let bits = header + groups_cost(&codes);
        if best.as_ref().is_none_or(|b| bits < b.0) {
            best = Some((bits, kind, codes, mult));
        }
    };
    let decimal = decimal_form(samples, &mut ms);
    if decimal.is_some() {
        let deltas: Vec<i64> = ms
            .windows(2)
            .map(|w| match w {
                [a, b] => b.wrapping_sub(*a),
                _ => 0,
            })
            .collect();
        let dods: Vec<i64> = deltas
            .first()
            .copied()
            .into_iter()
            .chain(deltas.windows(2).map(|w| match w {
                [a, b] => b.wrapping_sub(*a),
                _ => 0,
            }))
            .collect();
        let mut codes = Vec::new();
        let mult = divide_common(&deltas, &mut codes);
        consider(KIND_DELTA, codes, mult, 0);
        let mut codes = Vec::new();
        let mult = divide_common(&dods, &mut codes);
        consider(KIND_DOD, codes, mult, 0);
    }
    // Float kinds (always applicable); a decimal form of the same chunk usually wins.
    let bits: Vec<u64> = samples.iter().map(|s| s.1.to_bits()).collect();
    let subs: Vec<u64> = bits
        .windows(2)
        .map(|w| match w {
            [a, b] => zigzag(b.wrapping_sub(*a) as i64),
            _ => 0,
        })
        .collect();
    consider(KIND_FLOAT_SUB, subs, 1, 64);
    let xors: Vec<u64> = bits
        .windows(2)
        .map(|w| match w {
            [a, b] => a ^ b,
            _ => 0,
        })
        .collect();
    consider(KIND_FLOAT_XOR, xors, 1, 64);

    let Some((_, kind, codes, mult)) = best else {
        unreachable!("BUG: float kinds are always considered")
    };
    bw.write_bits(kind, 2);
    match (kind, decimal) {
        (KIND_DELTA | KIND_DOD, Some(k)) => {
            bw.write_bits(u64::from(k), 4);
            bw.write_varint(ms.first().copied().unwrap_or(0));
            bw.write_uvarint(mult);
        }
        _ => bw.write_bits(v0.to_bits(), 64),
    }
    if samples.len() >= 2 {
        pack_groups(&mut bw, &codes);
    }
    dst.extend_from_slice(bw.bytes());
}

/// Decodes a packed chunk into `dst` (appending). Fails on corrupt input; `dst` is then left
/// as it was.
pub(crate) fn decode_into(dst: &mut Vec<(Timestamp, f64)>, bytes: &[u8]) -> Result<()> {
    let start = dst.len();
    if decode_inner(dst, bytes).is_none() {
        dst.truncate(start);
        return Err(Error::corruption(
            CHUNK_PATH,
            0,
            "truncated or invalid packed chunk",
        ));
    }
    Ok(())
}

fn decode_inner(dst: &mut Vec<(Timestamp, f64)>, bytes: &[u8]) -> Option<()> {
    let [a, b, rest @ ..] = bytes else {
        return None;
    };
    let n = usize::from(u16::from_le_bytes([*a, *b]));
    if n == 0 {
        return Some(());
    }
    let mut br = BitReader::new(rest);
    let start = dst.len();
    // Width-0 groups need only 6 bits per 16 samples, so the u16 count bounds this.
    dst.reserve(n);
    let mut t = br.read_varint()?;
    dst.push((t, 0.0));
    if n >= 2 {
        let mut d = br.read_uvarint()?;
        t = (t as u64).wrapping_add(d) as i64;
        dst.push((t, 0.0));
        if n >= 3 {
            unpack_groups(&mut br, n - 2, |x| {
                d = d.wrapping_add(unzigzag(x) as u64);
                t = (t as u64).wrapping_add(d) as i64;
                dst.push((t, 0.0));
            })?;
        }
    }
    let out = dst.get_mut(start..)?;
    let mut slots = out.iter_mut();
    let kind = br.read_bits(2)?;
    let mut ok = true;
    match kind {
        KIND_DELTA | KIND_DOD => {
            let k = br.read_bits(4)? as u8;
            if k > MAX_SCALE {
                return None;
            }
            let mut m = br.read_varint()?;
            let mult = br.read_uvarint()?;
            slots.next()?.1 = scaled(m, k);
            let mut delta: i64 = 0;
            let mut first = true;
            unpack_groups(&mut br, n - 1, |x| {
                let z = unzigzag(x).wrapping_mul(mult as i64);
                if kind == KIND_DELTA || first {
                    delta = z;
                    first = false;
                } else {
                    delta = delta.wrapping_add(z);
                }
                m = m.wrapping_add(delta);
                match slots.next() {
                    Some(s) => s.1 = scaled(m, k),
                    None => ok = false,
                }
            })?;
        }
        _ => {
            let mut bits = br.read_bits(64)?;
            slots.next()?.1 = f64::from_bits(bits);
            unpack_groups(&mut br, n - 1, |x| {
                bits = if kind == KIND_FLOAT_SUB {
                    bits.wrapping_add(unzigzag(x) as u64)
                } else {
                    bits ^ x
                };
                match slots.next() {
                    Some(s) => s.1 = f64::from_bits(bits),
                    None => ok = false,
                }
            })?;
        }
    }
    ok.then_some(())
}

/// Encodes `samples` with whichever of XOR and packed is smaller; returns the encoding used.
pub(crate) fn encode_best(samples: &[(Timestamp, f64)], dst: &mut Vec<u8>) -> super::Encoding {
    let mut xor = XorChunk::new();
    for &(t, v) in samples {
        xor.append(t, v);
    }
    let mark = dst.len();
    encode_into(samples, dst);
    if dst.len() - mark < xor.bytes().len() {
        return super::Encoding::Packed;
    }
    dst.truncate(mark);
    dst.extend_from_slice(xor.bytes());
    super::Encoding::Xor
}

/// Cursor over a packed chunk: decodes it whole into a reused buffer on `reset`.
#[derive(Debug, Default)]
pub(crate) struct PackedIterator {
    buf: Vec<(Timestamp, f64)>,
    /// Index of the current sample + 1 (0 = before the first).
    pos: usize,
    err: Option<Error>,
}

impl PackedIterator {
    /// A cursor over `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut it = Self::default();
        it.reset(bytes);
        it
    }

    /// Restarts over other bytes, reusing the sample buffer.
    pub(crate) fn reset(&mut self, bytes: &[u8]) {
        self.buf.clear();
        self.pos = 0;
        self.err = decode_into(&mut self.buf, bytes).err();
    }
}

impl SampleIterator for PackedIterator {
    fn next(&mut self) -> bool {
        if self.err.is_some() || self.pos >= self.buf.len() {
            return false;
        }
        self.pos += 1;
        true
    }

    fn seek(&mut self, t: Timestamp) -> bool {
        if self.err.is_some() {
            return false;
        }
        let cur = self.pos.saturating_sub(1);
        if self.pos > 0 && self.buf.get(cur).is_some_and(|s| s.0 >= t) {
            return true;
        }
        let rest = self.buf.get(cur..).unwrap_or(&[]);
        let i = cur + rest.partition_point(|s| s.0 < t);
        self.pos = i + 1;
        i < self.buf.len()
    }

    fn at(&self) -> (Timestamp, f64) {
        self.buf
            .get(self.pos.wrapping_sub(1))
            .copied()
            .unwrap_or((0, 0.0))
    }

    /// Copies the decoded run up to `maxt` at once.
    fn append_floats(&mut self, maxt: Timestamp, dst: &mut Vec<(Timestamp, f64)>) -> bool {
        if self.err.is_some() || self.pos == 0 {
            return false;
        }
        let cur = self.pos - 1;
        let rest = self.buf.get(cur..).unwrap_or(&[]);
        // A scan, not a binary search: decoded corrupt bytes need not be sorted, and the
        // cursor stops at the first sample past `maxt` whatever follows it.
        let n = rest.iter().position(|s| s.0 > maxt).unwrap_or(rest.len());
        dst.extend_from_slice(rest.get(..n).unwrap_or(&[]));
        if n < rest.len() {
            // On the first sample after `maxt`.
            self.pos = cur + n + 1;
            return true;
        }
        self.pos = self.buf.len();
        false
    }

    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }
}

#[cfg(test)]
mod tests;
