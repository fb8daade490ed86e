//! Segment-delta samples (segment version 4, frame codecs 4 and 5): a samples record encoded
//! against what the same segment wrote before it, with each series ref *predicted* rather than
//! stored.
//!
//! In remote-write and scrape batches a record rarely holds two samples of one series, so
//! compressing each record alone cannot see that timestamps advance by the same step and that
//! a value XOR its predecessor has few bits. A writer therefore keeps, per segment, the last
//! timestamp, step and value bits of every series it wrote, and a samples record is stored as
//! columns of differences against them (then zstd, see `compress.rs`). Senders send the same
//! series in the same order batch after batch, but the head hands out refs in whatever order
//! concurrent requests created the series, so the difference between neighbouring refs is
//! irregular; the ref that *followed* a series last time is not:
//!
//! ```text
//! body (n >= 1 samples, in record order)
//! ┌────────┬──────────────────────┬────────────────────┬────────────────┬─────────────┐
//! │ n uvar │ ref residuals (runs) │ t residuals (runs) │ n × control u8 │ value bytes │
//! └────────┴──────────────────────┴────────────────────┴────────────────┴─────────────┘
//! runs          a column of n signed integers, as runs of zeros: zeros before the next
//!               nonzero value (uvarint), that value (varint), ...; a column ending in zeros
//!               ends with their count and no value (all zeros: just n)
//! ref residual  ref - predicted ref, where the prediction is the ref that followed the
//!               previous sample's ref the last time that ref was written in the segment
//!               ("previous sample": the segment's, across records), else the previous ref + 1
//!               (the first sample of a segment: 1)
//! t residual    t - (last t + last step) for a series seen in the segment, else
//!               t - the previous sample's t in the segment (0 before the first)
//! last value    the series' last value bits (0 for a series not seen yet)
//! control       either XOR: tz << 4 | len (bit 7 clear): x = value bits XOR last value bits
//!               is x >> (8 × tz) in `len` little-endian bytes (tz + len <= 8; len 0: x = 0)
//!               or integer delta: value - last value as a zig-zag integer z is either
//!               0x80 | len (len 1..=8) with z in `len` little-endian bytes, or 0xc0 | z (z < 64,
//!               no bytes); value = (last value as an integer, 0 if it is not one) + delta,
//!               wrapping, as f64 (the writer uses it only when both values are integers of at
//!               most 2^53 in magnitude, where it is exact)
//!               the bytes of all samples follow the controls in order
//! ```
//! The writer takes whichever value form is shorter (counters move by small integers, whose
//! XOR spans the mantissa bits of the integer part; gauges and sums XOR well). After each
//! sample the series' state becomes (t, t - last t or 0 when new, value bits), and the previous
//! sample's series records this one as its successor.
//!
//! The state starts empty at every segment start, so a segment decodes from its start without
//! anything else, and a reader that starts mid-segment must read (and may drop) the frames
//! before. Writers start a new segment after every open and after every failed write, so a
//! torn tail never leaves state behind that the next frame depends on. Every check of a body
//! comes before it changes the state, so a body that fails leaves the state as it was.
//!
//! Version 3 (`delta/v3.rs`, still read) stored `ref - previous ref` instead of the residual,
//! and its integer delta after a value that is not an integer was an error.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod pages;
pub(crate) mod v3;

use super::record::RefSample;
use crate::encoding::varint::{Decbuf, put_uvarint, put_varint, unzigzag, zigzag};
use hashbrown::HashTable;
use pages::Pages;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Control bit of an integer-delta value.
const INT_DELTA: u8 = 0x80;
/// Control bits of an integer delta held in the control byte itself (zig-zag below 64).
const SMALL_INT: u8 = 0xc0;
/// Largest integer magnitude of the integer-delta mode (every integer up to it is an f64).
const MAX_INT: i64 = 1 << 53;
/// No slot (no previous sample, no successor known).
const NONE: u32 = u32::MAX;
/// Most series one segment's state holds; a record that would pass it is not delta-encoded
/// (the writer), or is corrupt (a reader). Far above what a 128 MiB segment holds.
pub(crate) const MAX_SERIES: usize = 1 << 30;

/// [`Slot::step`] of a step that does not fit: the step is in [`SegmentState::big_steps`].
const BIG_STEP: i32 = i32::MIN;

/// A series written in the segment: its last sample and the series written after it. 32
/// bytes: one per series of a segment (400,000 scraped series at 40 bytes were 21 MiB with
/// the vector's slack).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    series: u64,
    t: i64,
    bits: u64,
    /// Last `t` minus the one before (0 for a series seen once); [`BIG_STEP`] when it does
    /// not fit 31 bits (24 days in ms): the step is then in [`SegmentState::big_steps`].
    step: i32,
    /// Slot of the series that followed this one the last time it was written (`NONE` yet).
    next: u32,
}

/// The step of `l` (at `slot`).
#[inline]
fn step_of(l: &Slot, slot: u32, big: &HashMap<u32, i64, foldhash::fast::FixedState>) -> i64 {
    if l.step == BIG_STEP {
        big.get(&slot).copied().unwrap_or(0)
    } else {
        i64::from(l.step)
    }
}

/// Sets the step of `l` (at `slot`) to `step`.
#[inline]
fn set_step(
    l: &mut Slot,
    slot: u32,
    big: &mut HashMap<u32, i64, foldhash::fast::FixedState>,
    step: i64,
) {
    if l.step == BIG_STEP {
        big.remove(&slot);
    }
    match i32::try_from(step) {
        Ok(s) if s != BIG_STEP => l.step = s,
        _ => {
            l.step = BIG_STEP;
            big.insert(slot, step);
        }
    }
}

/// Per-segment delta state; the encoder and the decoder keep identical copies.
///
/// Series live in a dense slot table; the ref → slot map is consulted only when a ref is not
/// the predicted one, so a steady stream of batches decodes and encodes without hashing.
pub(crate) struct SegmentState {
    /// Ref → slot, for every series written in the segment: slots only, hashed and compared
    /// through their `series` (5 bytes a series instead of a map's 17).
    index: HashTable<u32>,
    /// Hashes `index`'s refs.
    hasher: foldhash::fast::FixedState,
    /// Series written in the segment, in order of first appearance (in pages: see
    /// `delta/pages.rs`).
    slots: Pages<Slot>,
    /// Slot → step, for the slots whose [`Slot::step`] is [`BIG_STEP`].
    big_steps: HashMap<u32, i64, foldhash::fast::FixedState>,
    /// Slot of the segment's previous sample (`NONE` before the first).
    prev: u32,
    /// Timestamp of the segment's previous sample (0 before the first).
    last_t: i64,
    /// Decoder scratch: ref and t residuals of the record being decoded.
    res: Vec<i64>,
    ts: Vec<i64>,
    /// Encoder scratch columns.
    col_t: Vec<u8>,
    col_ctl: Vec<u8>,
    col_val: Vec<u8>,
}

impl Default for SegmentState {
    fn default() -> Self {
        Self {
            index: HashTable::new(),
            hasher: foldhash::fast::FixedState::default(),
            slots: Pages::default(),
            big_steps: HashMap::default(),
            prev: NONE,
            last_t: 0,
            res: Vec::new(),
            ts: Vec::new(),
            col_t: Vec::new(),
            col_ctl: Vec::new(),
            col_val: Vec::new(),
        }
    }
}

impl SegmentState {
    /// Forgets every series: call at each segment start.
    pub(crate) fn reset(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.big_steps.clear();
        self.prev = NONE;
        self.last_t = 0;
    }

    /// Series known in the segment so far.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The predicted next ref and its slot (`NONE` when no successor is known).
    #[inline]
    fn predict(&self) -> (u64, u32) {
        match self.slots.get(self.prev) {
            Some(p) => match self.slots.get(p.next) {
                Some(n) => (n.series, p.next),
                None => (p.series.wrapping_add(1), NONE),
            },
            None => (1, NONE),
        }
    }

    /// The slot of `series`, creating an empty one when new: `(slot, new)`.
    #[inline]
    fn slot_of(&mut self, series: u64) -> (u32, bool) {
        let slots = &self.slots;
        let hasher = &self.hasher;
        let found = self.index.find(hasher.hash_one(series), |&i| {
            slots.get(i).is_some_and(|l| l.series == series)
        });
        if let Some(&slot) = found {
            return (slot, false);
        }
        let slot = self.slots.len() as u32;
        self.slots.push(Slot {
            series,
            t: 0,
            bits: 0,
            step: 0,
            next: NONE,
        });
        let slots = &self.slots;
        self.index
            .insert_unique(hasher.hash_one(series), slot, |&i| {
                hasher.hash_one(slots.get(i).map_or(0, |l| l.series))
            });
        (slot, true)
    }

    /// Applies sample (`slot`, t = prediction + `t_res`, value bits `bits(last bits)`) to the
    /// state and returns its t and value bits (the series' last value bits before it are 0
    /// when `new`). `predicted`: `slot` is the previous sample's recorded successor, so the
    /// link is already in place. One slot lookup for the series, none for the previous one
    /// when predicted: the decoder runs this for every sample.
    #[inline]
    fn advance(
        &mut self,
        slot: u32,
        new: bool,
        predicted: bool,
        t_res: i64,
        bits: impl FnOnce(u64) -> u64,
    ) -> (i64, u64) {
        if !predicted {
            self.follow(slot);
        }
        self.prev = slot;
        let last_t = self.last_t;
        let Some(l) = self.slots.get_mut(slot) else {
            unreachable!("BUG: delta slot {slot} out of range");
        };
        let big = &mut self.big_steps;
        let (t, prev_bits) = if new {
            let t = last_t.wrapping_add(t_res);
            set_step(l, slot, big, 0);
            (t, 0)
        } else {
            let t = l.t.wrapping_add(step_of(l, slot, big)).wrapping_add(t_res);
            set_step(l, slot, big, t.wrapping_sub(l.t));
            (t, l.bits)
        };
        let bits = bits(prev_bits);
        l.t = t;
        l.bits = bits;
        self.last_t = t;
        (t, bits)
    }

    /// Records `slot` as the successor of the previous sample's series and as the previous one.
    #[inline]
    fn follow(&mut self, slot: u32) {
        if let Some(p) = self.slots.get_mut(self.prev) {
            p.next = slot;
        }
        self.prev = slot;
    }

    /// Appends the body of `samples` (at least one) to `dst` and advances the state. BUG if the
    /// state would hold more than [`MAX_SERIES`] series (the caller checks [`Self::len`]).
    pub(crate) fn encode(&mut self, samples: &[RefSample], dst: &mut Vec<u8>) {
        assert!(!samples.is_empty(), "BUG: empty delta samples record");
        assert!(
            self.slots.len() + samples.len() <= MAX_SERIES,
            "BUG: delta state over {MAX_SERIES} series"
        );
        self.col_t.clear();
        self.col_ctl.clear();
        self.col_val.clear();
        // (`put_value` writes 8 bytes and keeps the ones it needs)
        self.col_val.reserve(samples.len() * 8 + 8);
        self.col_ctl.reserve(samples.len());
        put_uvarint(dst, samples.len() as u64);
        let (mut ref_zeros, mut t_zeros) = (0u64, 0u64);
        for s in samples {
            let (pred, pred_slot) = self.predict();
            put_run(dst, &mut ref_zeros, s.series.wrapping_sub(pred) as i64);
            let predicted = s.series == pred && pred_slot != NONE;
            let (slot, new) = if predicted {
                (pred_slot, false)
            } else {
                self.slot_of(s.series)
            };
            // (`follow` before the slot's update, as `advance`: it touches only the previous
            // slot's link, which a predicted sample already has.)
            if predicted {
                self.prev = slot;
            } else {
                self.follow(slot);
            }
            let bits = s.v.to_bits();
            let last_t = self.last_t;
            let Some(l) = self.slots.get_mut(slot) else {
                unreachable!("BUG: delta slot {slot} out of range");
            };
            // As `advance`, with the residual worked out from `s.t`.
            let big = &mut self.big_steps;
            let (res, prev_bits) = if new {
                set_step(l, slot, big, 0);
                (s.t.wrapping_sub(last_t), 0)
            } else {
                let res = s.t.wrapping_sub(l.t.wrapping_add(step_of(l, slot, big)));
                set_step(l, slot, big, s.t.wrapping_sub(l.t));
                (res, l.bits)
            };
            l.t = s.t;
            l.bits = bits;
            self.last_t = s.t;
            put_run(&mut self.col_t, &mut t_zeros, res);
            put_value(&mut self.col_ctl, &mut self.col_val, prev_bits, bits);
        }
        end_runs(dst, ref_zeros);
        end_runs(&mut self.col_t, t_zeros);
        dst.extend_from_slice(&self.col_t);
        dst.extend_from_slice(&self.col_ctl);
        dst.extend_from_slice(&self.col_val);
    }

    /// Decodes a body (untrusted) into `out` (appending) and advances the state. A body that
    /// does not decode leaves the state and `out` as they were.
    pub(crate) fn decode(&mut self, body: &[u8], out: &mut Vec<RefSample>) -> Result<(), String> {
        let mut d = Decbuf::new(body);
        // Each sample takes at least its control byte.
        let n = d
            .uvarint_len(d.remaining())
            .filter(|n| *n > 0)
            .ok_or("bad delta samples count")?;
        if self.slots.len() + n > MAX_SERIES {
            return Err(format!(
                "delta samples over {MAX_SERIES} series in a segment"
            ));
        }
        read_runs(&mut d, n, &mut self.res).ok_or("bad delta sample refs")?;
        read_runs(&mut d, n, &mut self.ts).ok_or("bad delta sample times")?;
        let ctl = d.bytes(n).ok_or("short delta sample controls")?;
        let mut want = 0usize;
        for &c in ctl {
            want += control_len(c).ok_or_else(|| format!("bad delta value control {c:#04x}"))?;
        }
        let mut vals = d.bytes(want).ok_or("short delta sample values")?;
        if !d.is_empty() {
            return Err(format!("{} bytes after delta samples", d.remaining()));
        }
        // Checked: from here on every sample decodes.
        out.reserve(n);
        let (res, ts) = (std::mem::take(&mut self.res), std::mem::take(&mut self.ts));
        for ((&r, &t_res), &c) in res.iter().zip(&ts).zip(ctl) {
            let (pred, pred_slot) = self.predict();
            let series = pred.wrapping_add(r as u64);
            let predicted = r == 0 && pred_slot != NONE;
            let (slot, new) = if predicted {
                (pred_slot, false)
            } else {
                self.slot_of(series)
            };
            let (head, rest) = vals.split_at(control_len(c).unwrap_or(0).min(vals.len()));
            vals = rest;
            let (t, bits) = self.advance(slot, new, predicted, t_res, |prev| value(c, head, prev));
            out.push(RefSample {
                series,
                t,
                v: f64::from_bits(bits),
            });
        }
        (self.res, self.ts) = (res, ts);
        Ok(())
    }
}

/// Appends `v` to a zero-run column whose pending zeros are `zeros`: a nonzero value as the
/// zeros before it (uvarint) and itself (varint); zeros are only counted.
#[inline]
fn put_run(dst: &mut Vec<u8>, zeros: &mut u64, v: i64) {
    if v == 0 {
        *zeros += 1;
    } else {
        put_uvarint(dst, *zeros);
        put_varint(dst, v);
        *zeros = 0;
    }
}

/// Ends a zero-run column: its trailing zeros, if any.
fn end_runs(dst: &mut Vec<u8>, zeros: u64) {
    if zeros > 0 {
        put_uvarint(dst, zeros);
    }
}

/// Reads a zero-run column of `n` values into `out` (cleared first): runs of zeros (uvarint,
/// at most the values left), each but the last that completes the column followed by one value
/// (varint). `None` when it is short or a run overshoots.
fn read_runs(d: &mut Decbuf<'_>, n: usize, out: &mut Vec<i64>) -> Option<()> {
    out.clear();
    while out.len() < n {
        let zeros = d.uvarint_len(n - out.len())?;
        out.resize(out.len() + zeros, 0);
        if out.len() < n {
            out.push(d.varint()?);
        }
    }
    Some(())
}

/// `v` as an integer when it is one of at most 2^53 in magnitude (and not -0.0).
fn as_int(v: f64) -> Option<i64> {
    let i = v as i64;
    ((-MAX_INT..=MAX_INT).contains(&i) && (i as f64).to_bits() == v.to_bits()).then_some(i)
}

/// The number of value bytes after control `c`, `None` for a control no writer makes.
fn control_len(c: u8) -> Option<usize> {
    let (tz, len) = (usize::from(c >> 4 & 7), usize::from(c & 15));
    if c & SMALL_INT == SMALL_INT {
        Some(0)
    } else if c & INT_DELTA != 0 {
        (tz == 0 && (1..=8).contains(&len)).then_some(len)
    } else {
        (tz + len <= 8 && (len != 0 || tz == 0)).then_some(len)
    }
}

/// The integer control `c` and its value bytes `b` hold (XOR bits before the shift, or the
/// zig-zag integer delta).
fn control_bits(c: u8, b: &[u8]) -> u64 {
    if c & SMALL_INT == SMALL_INT {
        u64::from(c & !SMALL_INT)
    } else {
        b.iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
    }
}

/// The value bits that control `c` and its bytes `b` give after `prev` (version 4: total).
fn value(c: u8, b: &[u8], prev: u64) -> u64 {
    let n = control_bits(c, b);
    if c & INT_DELTA != 0 {
        let p = as_int(f64::from_bits(prev)).unwrap_or(0);
        return (p.wrapping_add(unzigzag(n)) as f64).to_bits();
    }
    prev ^ n.checked_shl(8 * u32::from(c >> 4)).unwrap_or(0)
}

/// Appends the control byte of `bits` after `prev` to `ctl` and its bytes to `val`: the
/// shorter of the XOR and (when both are integers) the integer delta.
fn put_value(ctl: &mut Vec<u8>, val: &mut Vec<u8>, prev: u64, bits: u64) {
    let x = bits ^ prev;
    if x == 0 {
        ctl.push(0);
        return;
    }
    let tz = x.trailing_zeros() / 8;
    let len = 8 - tz - x.leading_zeros() / 8;
    if let (Some(p), Some(v)) = (as_int(f64::from_bits(prev)), as_int(f64::from_bits(bits))) {
        let z = zigzag(v - p);
        if z < 64 {
            ctl.push(SMALL_INT | z as u8);
            return;
        }
        let zlen = (8 - z.leading_zeros() / 8).max(1);
        if zlen < len {
            ctl.push(INT_DELTA | zlen as u8);
            put_low_bytes(val, z, zlen);
            return;
        }
    }
    ctl.push((tz << 4 | len) as u8);
    put_low_bytes(val, x >> (8 * tz), len);
}

/// Appends the `len` (1..=8) low bytes of `x`, little-endian: a fixed 8-byte copy cut back,
/// cheaper than a copy of variable length.
#[inline]
fn put_low_bytes(dst: &mut Vec<u8>, x: u64, len: u32) {
    let keep = dst.len() + len as usize;
    dst.extend_from_slice(&x.to_le_bytes());
    dst.truncate(keep);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(series: u64, t: i64, v: f64) -> RefSample {
        RefSample { series, t, v }
    }

    /// Encodes `records` with one state and decodes them with another, from the start.
    fn round_trip(records: &[Vec<RefSample>]) -> (Vec<Vec<u8>>, Vec<Vec<RefSample>>) {
        let (mut enc, mut dec) = (SegmentState::default(), SegmentState::default());
        let mut bodies = Vec::new();
        let mut got = Vec::new();
        for r in records {
            let mut b = Vec::new();
            enc.encode(r, &mut b);
            let mut out = Vec::new();
            dec.decode(&b, &mut out).unwrap();
            bodies.push(b);
            got.push(out);
        }
        (bodies, got)
    }

    fn bits(r: &[RefSample]) -> Vec<(u64, i64, u64)> {
        r.iter().map(|s| (s.series, s.t, s.v.to_bits())).collect()
    }

    /// Rounds of `senders` records, each sender sending its series (`refs`, one `Vec` per
    /// sender) in the same order every round; the records of a round arrive in `order`.
    fn rounds(refs: &[Vec<u64>], order: impl Fn(usize) -> Vec<usize>) -> Vec<Vec<RefSample>> {
        (0..8i64)
            .flat_map(|round| {
                order(round as usize).into_iter().map(move |k| {
                    refs[k]
                        .iter()
                        .map(|&r| s(r, 1_000_000 + round * 15_000, (r as i64 + round) as f64))
                        .collect()
                })
            })
            .collect()
    }

    #[test]
    fn regular_series_cost_about_a_byte_and_a_half() {
        let records = rounds(&[(1..=100).collect()], |_| vec![0]);
        let (bodies, got) = round_trip(&records);
        for (want, got) in records.iter().zip(&got) {
            assert_eq!(bits(want), bits(got));
        }
        // From the third record on: ref residuals 0, t residuals 0 (one run of 100 each),
        // value deltas in the controls.
        assert_eq!(bodies[5].len(), 1 + 1 + 1 + 100, "{:?}", &bodies[5][..20]);
        assert_eq!(bodies[5][..3], [100, 100, 100]);
    }

    #[test]
    fn interleaved_refs_cost_what_contiguous_ones_do() {
        // Four senders whose 50 series each got interleaved refs (as concurrent requests
        // creating series get from the head), their records arriving in a different order
        // each round: from the third round on (steps known), only the first ref of a record misses.
        let contiguous: Vec<Vec<u64>> = (0..4u64)
            .map(|k| (k * 50 + 1..=k * 50 + 50).collect())
            .collect();
        let interleaved: Vec<Vec<u64>> = (0..4u64)
            .map(|k| {
                (0..50u64)
                    .map(|i| i * 4 + k + 1 + (i * 7 % 3) * 1000)
                    .collect()
            })
            .collect();
        let order = |round: usize| {
            let mut o = vec![0, 1, 2, 3];
            o.rotate_left(round % 4);
            if round % 2 == 1 {
                o.swap(0, 2);
            }
            o
        };
        let sizes = |refs: &[Vec<u64>]| {
            let records = rounds(refs, order);
            let (bodies, got) = round_trip(&records);
            for (want, got) in records.iter().zip(&got) {
                assert_eq!(bits(want), bits(got));
            }
            bodies[8..].iter().map(Vec::len).collect::<Vec<_>>()
        };
        // n, the ref runs (at most: a run of 0, a missed first ref, a run of 49), the t run,
        // 50 controls (value deltas of +1), no value bytes.
        for (name, refs) in [("contiguous", contiguous), ("interleaved", interleaved)] {
            let got = sizes(&refs);
            assert!(got.iter().all(|&n| n <= 1 + 5 + 1 + 50), "{name}: {got:?}");
        }
    }

    #[test]
    fn repeated_series_and_odd_values_round_trip() {
        let records = vec![
            vec![
                s(5, 10, 1.0),
                s(5, 20, 2.0),
                s(5, 25, f64::NAN),
                s(3, -7, -0.0),
                s(5, 25, 2.0),
            ],
            vec![s(u64::MAX, i64::MIN, f64::INFINITY), s(0, i64::MAX, 0.0)],
            vec![
                s(5, 30, f64::from_bits(0x7ff0_0000_0000_0002)),
                s(u64::MAX, 0, 1e300),
                s(0, 0, (1u64 << 53) as f64),
                s(0, 0, -((1u64 << 53) as f64)),
                s(1, 0, 1.0),
            ],
        ];
        let (_, got) = round_trip(&records);
        for (want, got) in records.iter().zip(&got) {
            assert_eq!(bits(want), bits(got));
        }
    }

    #[test]
    fn bad_bodies_are_errors_and_leave_the_state() {
        let mut enc = SegmentState::default();
        let mut good = Vec::new();
        enc.encode(&[s(1, 100, 1.5), s(2, 100, 2.5)], &mut good);
        let check = |body: &[u8], want: &str| {
            let mut dec = SegmentState::default();
            let mut out = vec![s(9, 9, 9.0)];
            let err = dec.decode(body, &mut out).unwrap_err();
            assert!(err.contains(want), "want {want:?}, got {err:?}");
            assert_eq!(out.len(), 1);
            assert_eq!((dec.len(), dec.prev, dec.last_t), (0, NONE, 0));
        };
        check(&[], "bad delta samples count");
        check(&[0], "bad delta samples count");
        check(&good[..good.len() - 1], "short delta sample values");
        check(
            &[good.clone(), vec![0]].concat(),
            "1 bytes after delta samples",
        );
        check(&[1, 1, 1, 0x90], "bad delta value control 0x90");
        check(&[1, 1, 1, 0x10], "bad delta value control 0x10");
        check(&[4, 0, 0], "bad delta samples count");
        check(&[2, 0, 0], "bad delta sample refs");
        check(&[1, 1, 0x80, 0x80], "bad delta sample times");
        check(&[1, 0x80, 0x80, 0x80], "bad delta sample refs");
        check(&[2, 3, 0], "bad delta sample refs");
        check(&[2, 2, 0, 0], "bad delta sample times");
    }

    #[test]
    fn an_integer_delta_after_a_fraction_counts_from_zero() {
        // No writer makes this (1.5 is not an integer), but it decodes: the state never has
        // to be undone after a body's checks pass.
        let (mut enc, mut dec) = (SegmentState::default(), SegmentState::default());
        let mut b = Vec::new();
        enc.encode(&[s(1, 100, 1.5)], &mut b);
        let mut out = Vec::new();
        dec.decode(&b, &mut out).unwrap();
        // Series 1 again (predicted ref 2: residual -1), t residual 15, delta +3.
        dec.decode(&[1, 0, 1, 0, 30, SMALL_INT | 6], &mut out)
            .unwrap();
        assert_eq!(bits(&out[1..]), bits(&[s(1, 115, 3.0)]));
    }

    proptest! {
        #[test]
        fn round_trips(records in proptest::collection::vec(
            proptest::collection::vec(
                (prop_oneof![0u64..6, any::<u64>()], prop_oneof![0i64..100, any::<i64>()],
                 prop_oneof![
                    (0u64..4).prop_map(|v| v as f64),
                    any::<i64>().prop_map(|v| (v >> 10) as f64),
                    any::<u64>().prop_map(f64::from_bits),
                ]).prop_map(|(r, t, v)| s(r, t, v)),
                1..20),
            1..6)) {
            let (_, got) = round_trip(&records);
            for (want, got) in records.iter().zip(&got) {
                prop_assert_eq!(bits(want), bits(got));
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(bodies in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..200), 1..4)) {
            let mut dec = SegmentState::default();
            for b in &bodies {
                let mut out = Vec::new();
                if dec.decode(b, &mut out).is_ok() {
                    prop_assert!(!out.is_empty() && out.len() <= b.len());
                }
            }
        }

        /// The bytes are those of a plain model of the format (a map of full-width states
        /// per ref, as the writer kept before slots were packed), steps beyond 31 bits
        /// included, and decode back to the samples.
        #[test]
        fn bytes_are_those_of_the_unpacked_model(records in proptest::collection::vec(
            proptest::collection::vec(
                (prop_oneof![0u64..6, any::<u64>()],
                 prop_oneof![
                    0i64..100,
                    (0i64..4).prop_map(|k| k << 31),
                    (-3i64..3).prop_map(|k| k.wrapping_mul(1 << 31) - 1),
                    any::<i64>(),
                 ],
                 any::<u64>().prop_map(f64::from_bits)).prop_map(|(r, t, v)| s(r, t, v)),
                1..20),
            1..6)) {
            let mut model = Model::default();
            let (bodies, got) = round_trip(&records);
            for ((r, body), got) in records.iter().zip(&bodies).zip(&got) {
                prop_assert_eq!(&model.encode(r), body);
                prop_assert_eq!(bits(r), bits(got));
            }
        }
    }

    /// The format's writer state as plainly as it can be kept: per ref, the last t, step
    /// (full width), value bits and successor ref.
    #[derive(Default)]
    struct Model {
        series: HashMap<u64, (i64, i64, u64, Option<u64>)>,
        prev: Option<u64>,
        last_t: i64,
    }

    impl Model {
        fn encode(&mut self, samples: &[RefSample]) -> Vec<u8> {
            let mut dst = Vec::new();
            let (mut col_t, mut ctl, mut val) = (Vec::new(), Vec::new(), Vec::new());
            put_uvarint(&mut dst, samples.len() as u64);
            let (mut ref_zeros, mut t_zeros) = (0, 0);
            for x in samples {
                let pred = match self.prev {
                    None => 1,
                    Some(p) => match self.series[&p].3 {
                        Some(n) => n,
                        None => p.wrapping_add(1),
                    },
                };
                put_run(&mut dst, &mut ref_zeros, x.series.wrapping_sub(pred) as i64);
                let bits = x.v.to_bits();
                let (res, prev_bits, step) = match self.series.get(&x.series) {
                    None => (x.t.wrapping_sub(self.last_t), 0, 0),
                    Some(&(t, step, b, _)) => (
                        x.t.wrapping_sub(t.wrapping_add(step)),
                        b,
                        x.t.wrapping_sub(t),
                    ),
                };
                let next = self.series.get(&x.series).and_then(|e| e.3);
                self.series.insert(x.series, (x.t, step, bits, next));
                if let Some(p) = self.prev {
                    self.series.get_mut(&p).unwrap().3 = Some(x.series);
                }
                self.prev = Some(x.series);
                self.last_t = x.t;
                put_run(&mut col_t, &mut t_zeros, res);
                put_value(&mut ctl, &mut val, prev_bits, bits);
            }
            end_runs(&mut dst, ref_zeros);
            end_runs(&mut col_t, t_zeros);
            [dst, col_t, ctl, val].concat()
        }
    }

    #[test]
    fn a_slot_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }
}
