//! Dense chunk codec for compacted blocks (encoding byte 2). OWNER: codec helper.
//!
//! Scrape data is mostly regular timestamps and values that are exact decimals (integer
//! counters, gauges with a few decimal places). This codec stores them as bit-packed integers
//! with one width per chunk; chunks it cannot represent exactly stay XOR
//! ([`encode_best`] picks the smaller).
//!
//! ```text
//! ┌───────────────────┬──────────────────────────────────────────────────────────────┐
//! │ num_samples u16   │ bit stream (MSB first, zero-padded)                          │
//! └───────────────────┴──────────────────────────────────────────────────────────────┘
//! bit stream (n = num_samples, n >= 1):
//!   t0 varint │ if n >= 2: t1 - t0 uvarint │ if n >= 3: packed(zigzag(dod_i), n - 2)
//!   scale u8 (k, 0..=MAX_SCALE) │ mode u8 (0 delta, 1 delta of delta) │ m0 varint
//!   │ if n >= 2: packed(zigzag(delta or dod of m), n - 1)
//! value i = m_i / 10^k as f64 (exactly m_i as f64 when k = 0); the encoder only uses this
//! form when it reproduces every value's bits.
//! packed(x, count): width w u8 (0..=64) │ count codes of w bits; with w >= 1 the all-ones
//!   code escapes to a raw 64-bit value; with w = 0 every x is 0.
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::xor::{MAX_SAMPLES, XorChunk};
use crate::encoding::varint::{unzigzag, zigzag};
use crate::encoding::{BitReader, BitWriter};
use crate::error::{Error, Result};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Largest decimal scale tried (values with up to this many decimal places).
pub(crate) const MAX_SCALE: u8 = 9;
const CHUNK_PATH: &str = "<dense chunk>";
/// Powers of ten up to `MAX_SCALE` (all exact in f64).
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

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

/// Writes `xs` bit-packed at the cheapest width (see the module doc).
fn pack(bw: &mut BitWriter, xs: &[u64]) {
    let cost = |w: u32| -> Option<u64> {
        if w == 0 {
            return xs.iter().all(|&x| x == 0).then_some(0);
        }
        let esc = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
        Some(
            xs.iter()
                .map(|&x| {
                    if x >= esc && w < 64 {
                        u64::from(w) + 64
                    } else {
                        u64::from(w)
                    }
                })
                .sum(),
        )
    };
    let max_w = xs
        .iter()
        .map(|&x| 64 - x.leading_zeros())
        .max()
        .unwrap_or(0);
    let w = (0..=max_w)
        .filter_map(|w| cost(w).map(|c| (c, w)))
        .min()
        .map_or(64, |(_, w)| w);
    bw.push_byte(w as u8);
    if w == 0 {
        return;
    }
    let esc = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    for &x in xs {
        if w < 64 && x >= esc {
            bw.write_bits(esc, w);
            bw.write_bits(x, 64);
        } else {
            bw.write_bits(x, w);
        }
    }
}

/// Reads `count` codes written by [`pack`], calling `f` per value.
fn unpack(br: &mut BitReader<'_>, count: usize, mut f: impl FnMut(u64)) -> Option<()> {
    let w = u32::from(br.read_byte()?);
    if w > 64 {
        return None;
    }
    if w == 0 {
        (0..count).for_each(|_| f(0));
        return Some(());
    }
    let esc = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    for _ in 0..count {
        let x = br.read_bits(w)?;
        if w < 64 && x == esc {
            f(br.read_bits(64)?);
        } else {
            f(x);
        }
    }
    Some(())
}

/// Encodes `samples` (strictly increasing timestamps, at most [`MAX_SAMPLES`]) densely into
/// `dst` (appending). Returns `false`, leaving `dst` as it was, when some value is not an exact
/// decimal. BUG if timestamps are not increasing or there are too many samples.
pub(crate) fn encode_into(samples: &[(Timestamp, f64)], dst: &mut Vec<u8>) -> bool {
    assert!(
        samples.len() <= MAX_SAMPLES,
        "BUG: {} samples in one chunk",
        samples.len()
    );
    assert!(
        samples.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)),
        "BUG: dense chunk timestamps not strictly increasing"
    );
    let mut ms = Vec::with_capacity(samples.len());
    let Some(k) = decimal_form(samples, &mut ms) else {
        return false;
    };
    let mut bw = BitWriter::with_capacity(16 + samples.len());
    for b in (samples.len() as u16).to_le_bytes() {
        bw.push_byte(b);
    }
    let mut xs: Vec<u64> = Vec::with_capacity(samples.len());
    if let Some(&(t0, _)) = samples.first() {
        bw.write_varint(t0);
    }
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
        pack(&mut bw, &xs);
    }
    // Values: deltas or deltas of deltas, whichever packs narrower.
    let deltas: Vec<i64> = ms
        .windows(2)
        .map(|w| match w {
            [a, b] => b.wrapping_sub(*a),
            _ => 0,
        })
        .collect();
    let dods: Vec<i64> = std::iter::once(deltas.first().copied().unwrap_or(0))
        .chain(deltas.windows(2).map(|w| match w {
            [a, b] => b.wrapping_sub(*a),
            _ => 0,
        }))
        .collect();
    let width = |v: &[i64]| {
        v.iter()
            .map(|&d| 64 - zigzag(d).leading_zeros())
            .max()
            .unwrap_or(0)
    };
    let mode = u8::from(width(&dods) < width(&deltas));
    bw.push_byte(k);
    bw.push_byte(mode);
    bw.write_varint(ms.first().copied().unwrap_or(0));
    if ms.len() >= 2 {
        xs.clear();
        let src = if mode == 1 { &dods } else { &deltas };
        xs.extend(src.iter().map(|&d| zigzag(d)));
        pack(&mut bw, &xs);
    }
    dst.extend_from_slice(bw.bytes());
    true
}

/// Decodes a dense chunk into `dst` (appending). Fails on corrupt input; `dst` is then left as
/// it was.
pub(crate) fn decode_into(dst: &mut Vec<(Timestamp, f64)>, bytes: &[u8]) -> Result<()> {
    let start = dst.len();
    let r = decode_inner(dst, bytes);
    if r.is_none() {
        dst.truncate(start);
        return Err(Error::corruption(
            CHUNK_PATH,
            0,
            "truncated or invalid dense chunk",
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
    // Width-0 packing needs no bits per sample, so only the u16 count bounds this.
    dst.reserve(n);
    let mut t = br.read_varint()?;
    dst.push((t, 0.0));
    if n >= 2 {
        let mut d = br.read_uvarint()?;
        t = (t as u64).wrapping_add(d) as i64;
        dst.push((t, 0.0));
        if n >= 3 {
            unpack(&mut br, n - 2, |x| {
                d = d.wrapping_add(unzigzag(x) as u64);
                t = (t as u64).wrapping_add(d) as i64;
                dst.push((t, 0.0));
            })?;
        }
    }
    let k = br.read_byte()?;
    let mode = br.read_byte()?;
    if k > MAX_SCALE || mode > 1 {
        return None;
    }
    let mut m = br.read_varint()?;
    let out = dst.get_mut(start..)?;
    let mut slots = out.iter_mut();
    slots.next()?.1 = scaled(m, k);
    if n >= 2 {
        let mut delta: i64 = 0;
        let mut first = true;
        let mut ok = true;
        unpack(&mut br, n - 1, |x| {
            let z = unzigzag(x);
            if mode == 0 || first {
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
        if !ok {
            return None;
        }
    }
    Some(())
}

/// Encodes `samples` with whichever of XOR and dense is smaller; returns the encoding used.
pub(crate) fn encode_best(samples: &[(Timestamp, f64)], dst: &mut Vec<u8>) -> super::Encoding {
    let mut xor = XorChunk::new();
    for &(t, v) in samples {
        xor.append(t, v);
    }
    let mark = dst.len();
    if encode_into(samples, dst) && dst.len() - mark < xor.bytes().len() {
        return super::Encoding::Dense;
    }
    dst.truncate(mark);
    dst.extend_from_slice(xor.bytes());
    super::Encoding::Xor
}

/// Cursor over a dense chunk: decodes it whole into a reused buffer on `reset`.
#[derive(Debug, Default)]
pub(crate) struct DenseIterator {
    buf: Vec<(Timestamp, f64)>,
    /// Index of the current sample + 1 (0 = before the first).
    pos: usize,
    err: Option<Error>,
}

impl DenseIterator {
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

impl SampleIterator for DenseIterator {
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

    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }
}

#[cfg(test)]
mod tests;
