//! Segment-delta samples of segment version 3 (frame codecs 2 and 3), still read: a samples
//! record encoded against the previous sample of each series *earlier in the same segment*.
//! Version 4 (`delta.rs`) predicts refs instead of storing their differences; the writer uses
//! this encoder only in tests, fuzzing and the codec bench.
//!
//! In remote-write and scrape batches a record rarely holds two samples of one series, so
//! compressing each record alone cannot see that timestamps advance by the same step and that
//! a value XOR its predecessor has few bits. A writer therefore keeps, per segment, the last
//! timestamp, step and value bits of every series it wrote, and a samples record is stored as
//! columns of differences against them (then zstd, see `compress.rs`):
//!
//! ```text
//! body (n >= 1 samples, in record order)
//! ┌─────────┬────────────────────┬─────────────────────┬───────────────┬──────────────────┐
//! │ n uvar  │ n × ref delta var  │ n × t residual var  │ n × control u8│ value bytes      │
//! └─────────┴────────────────────┴─────────────────────┴───────────────┴──────────────────┘
//! ref delta    ref - previous ref of the record (the first against 0)
//! t residual   t - (last t + last step) for a series seen in the segment, else
//!              t - the previous sample's t in the segment (0 before the first)
//! last value   the series' last value (0.0 for a series not seen yet)
//! control      either XOR: tz << 4 | len (bit 7 clear): x = value bits XOR last value bits
//!              is x >> (8 × tz) in `len` little-endian bytes (tz + len <= 8; len 0: x = 0)
//!              or integer delta: both values are integers of at most 2^53 in magnitude and
//!              value - last value as a zig-zag integer z is either 0x80 | len (len 1..=8)
//!              with z in `len` little-endian bytes, or 0xc0 | z (z < 64, no bytes)
//!              the bytes of all samples follow the controls in order
//! ```
//! The writer takes whichever of the two is shorter (counters move by small integers, whose
//! XOR spans the mantissa bits of the integer part; gauges and sums XOR well).
//! After each sample the series' state becomes (t, t - last t or 0 when new, value bits).
//! The state starts empty at every segment start, so a segment decodes from its start without
//! anything else, and a reader that starts mid-segment must read (and may drop) the frames
//! before. Writers start a new segment after every open and after every failed write, so a
//! torn tail never leaves state behind that the next frame depends on.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

#[cfg(any(test, feature = "fuzzing"))]
use super::put_value;
use super::{INT_DELTA, MAX_INT, as_int, control_bits, control_len};
use crate::encoding::varint::Decbuf;
#[cfg(any(test, feature = "fuzzing"))]
use crate::encoding::varint::{put_uvarint, put_varint};
use crate::wal::record::RefSample;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// The last sample of a series in the segment.
#[derive(Clone, Copy, Debug, Default)]
struct Last {
    t: i64,
    step: i64,
    bits: u64,
}

/// Per-segment delta state; the encoder and the decoder keep identical copies.
#[derive(Default)]
pub(crate) struct SegmentState {
    /// Last sample per series ref seen in the segment (bounded by the segment's series).
    series: HashMap<u64, Last, foldhash::fast::FixedState>,
    /// Timestamp of the previous sample in the segment (0 before the first).
    last_t: i64,
    /// Decoder scratch: refs and timestamps of the record being decoded, and the state entries
    /// it replaced (to undo a record that fails).
    refs: Vec<u64>,
    ts: Vec<i64>,
    undo: Vec<(u64, Option<Last>)>,
    /// Encoder scratch columns.
    #[cfg(any(test, feature = "fuzzing"))]
    col_t: Vec<u8>,
    #[cfg(any(test, feature = "fuzzing"))]
    col_ctl: Vec<u8>,
    #[cfg(any(test, feature = "fuzzing"))]
    col_val: Vec<u8>,
}

impl SegmentState {
    /// Forgets every series: call at each segment start.
    pub(crate) fn reset(&mut self) {
        self.series.clear();
        self.last_t = 0;
    }

    /// Series known in the segment so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    /// Appends the body of `samples` (at least one) to `dst` and advances the state.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode(&mut self, samples: &[RefSample], dst: &mut Vec<u8>) {
        assert!(!samples.is_empty(), "BUG: empty delta samples record");
        self.col_t.clear();
        self.col_ctl.clear();
        self.col_val.clear();
        put_uvarint(dst, samples.len() as u64);
        let mut prev_ref = 0u64;
        for s in samples {
            put_varint(dst, s.series.wrapping_sub(prev_ref) as i64);
            prev_ref = s.series;
            let bits = s.v.to_bits();
            let prev = match self.series.get_mut(&s.series) {
                Some(l) => {
                    let pred = l.t.wrapping_add(l.step);
                    put_varint(&mut self.col_t, s.t.wrapping_sub(pred));
                    let prev = l.bits;
                    *l = Last {
                        t: s.t,
                        step: s.t.wrapping_sub(l.t),
                        bits,
                    };
                    prev
                }
                None => {
                    put_varint(&mut self.col_t, s.t.wrapping_sub(self.last_t));
                    self.series.insert(
                        s.series,
                        Last {
                            t: s.t,
                            step: 0,
                            bits,
                        },
                    );
                    0
                }
            };
            self.last_t = s.t;
            put_value(&mut self.col_ctl, &mut self.col_val, prev, bits);
        }
        dst.extend_from_slice(&self.col_t);
        dst.extend_from_slice(&self.col_ctl);
        dst.extend_from_slice(&self.col_val);
    }

    /// Decodes a body (untrusted) into `out` (appending) and advances the state. A body that
    /// does not decode leaves the state and `out` as they were.
    pub(crate) fn decode(&mut self, body: &[u8], out: &mut Vec<RefSample>) -> Result<(), String> {
        let mut d = Decbuf::new(body);
        // Each sample takes at least 3 bytes: a ref delta, a t residual and a control.
        let n = d
            .uvarint_len(d.remaining() / 3)
            .filter(|n| *n > 0)
            .ok_or("bad delta samples count")?;
        self.refs.clear();
        self.ts.clear();
        let mut r = 0u64;
        for _ in 0..n {
            r = r.wrapping_add(d.varint().ok_or("bad delta sample ref")? as u64);
            self.refs.push(r);
        }
        for _ in 0..n {
            self.ts.push(d.varint().ok_or("bad delta sample time")?);
        }
        let ctl = d.bytes(n).ok_or("short delta sample controls")?;
        let mut want = 0usize;
        for &c in ctl {
            want += control_len(c).ok_or_else(|| format!("bad delta value control {c:#04x}"))?;
        }
        let vals = d.bytes(want).ok_or("short delta sample values")?;
        if !d.is_empty() {
            return Err(format!("{} bytes after delta samples", d.remaining()));
        }
        // Integer deltas need integer predecessors: a value that fails undoes the record's
        // changes to the state (the old entries, newest first).
        self.undo.clear();
        let (last_t, out_len) = (self.last_t, out.len());
        out.reserve(n);
        let mut vals = vals;
        for ((&series, &res), &c) in self.refs.iter().zip(&self.ts).zip(ctl) {
            let len = control_len(c).unwrap_or(0);
            let (head, rest) = vals.split_at(len.min(vals.len()));
            vals = rest;
            let (t, bits) = match self.series.entry(series) {
                Entry::Occupied(mut e) => {
                    let l = *e.get();
                    let t = l.t.wrapping_add(l.step).wrapping_add(res);
                    let bits = value(c, head, l.bits);
                    if let Some(bits) = bits {
                        e.insert(Last {
                            t,
                            step: t.wrapping_sub(l.t),
                            bits,
                        });
                        self.undo.push((series, Some(l)));
                    }
                    (t, bits)
                }
                Entry::Vacant(e) => {
                    let t = self.last_t.wrapping_add(res);
                    let bits = value(c, head, 0);
                    if let Some(bits) = bits {
                        e.insert(Last { t, step: 0, bits });
                        self.undo.push((series, None));
                    }
                    (t, bits)
                }
            };
            let Some(bits) = bits else {
                for (series, old) in self.undo.drain(..).rev() {
                    match old {
                        Some(l) => self.series.insert(series, l),
                        None => self.series.remove(&series),
                    };
                }
                self.last_t = last_t;
                out.truncate(out_len);
                return Err("integer delta on a value that is not one".to_string());
            };
            self.last_t = t;
            out.push(RefSample {
                series,
                t,
                v: f64::from_bits(bits),
            });
        }
        Ok(())
    }
}

/// The value bits that control `c` and its bytes `b` give after `prev` (None: an integer delta
/// whose predecessor or result is not an integer of at most 2^53).
fn value(c: u8, b: &[u8], prev: u64) -> Option<u64> {
    let n = control_bits(c, b);
    if c & INT_DELTA != 0 {
        let d = crate::encoding::varint::unzigzag(n);
        let v = as_int(f64::from_bits(prev))?.checked_add(d)?;
        return (-MAX_INT..=MAX_INT)
            .contains(&v)
            .then(|| (v as f64).to_bits());
    }
    Some(prev ^ n.checked_shl(8 * u32::from(c >> 4)).unwrap_or(0))
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

    #[test]
    fn regular_series_cost_about_a_byte_and_a_half() {
        let records: Vec<Vec<RefSample>> = (0..10i64)
            .map(|round| {
                (0..100u64)
                    .map(|i| {
                        s(
                            i + 1,
                            1_000_000 + round * 15_000,
                            (i as i64 * 7 + round) as f64,
                        )
                    })
                    .collect()
            })
            .collect();
        let (bodies, got) = round_trip(&records);
        for (want, got) in records.iter().zip(&got) {
            assert_eq!(bits(want), bits(got));
        }
        // From the third record on: ref delta 1, t residual 0, value XOR of 1–2 bytes.
        let later = bodies[5].len() as f64 / 100.0;
        assert!(later < 5.0, "{later} B/sample before zstd");
    }

    #[test]
    fn repeated_series_and_odd_values_round_trip() {
        let records = vec![
            vec![
                s(5, 10, 1.0),
                s(5, 20, 2.0),
                s(5, 25, f64::NAN),
                s(3, -7, -0.0),
            ],
            vec![s(u64::MAX, i64::MIN, f64::INFINITY), s(0, i64::MAX, 0.0)],
            vec![
                s(5, 30, f64::from_bits(0x7ff0_0000_0000_0002)),
                s(u64::MAX, 0, 1e300),
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
            assert_eq!(dec.len(), 0);
        };
        check(&[], "bad delta samples count");
        check(&[0], "bad delta samples count");
        check(&good[..good.len() - 1], "short delta sample values");
        check(
            &[good.clone(), vec![0]].concat(),
            "1 bytes after delta samples",
        );
        check(&[1, 0, 0, 0x90], "bad delta value control 0x90");
        check(&[1, 0, 0, 0x10], "bad delta value control 0x10");
        check(&[2, 0, 0], "bad delta samples count");
    }

    #[test]
    fn an_integer_delta_after_a_fraction_undoes_the_record() {
        let (mut enc, mut dec) = (SegmentState::default(), SegmentState::default());
        let first = [s(1, 100, 1.5)];
        let mut b = Vec::new();
        enc.encode(&first, &mut b);
        let mut out = Vec::new();
        dec.decode(&b, &mut out).unwrap();
        // Series 2 is new (an integer delta from 0 is fine), then series 1 again with an
        // integer delta (+1) after 1.5: corrupt.
        let bad = [2, 4, 1, 0, 0, INT_DELTA | 1, INT_DELTA | 1, 14, 2];
        let err = dec.decode(&bad, &mut out).unwrap_err();
        assert!(
            err.contains("integer delta on a value that is not one"),
            "{err}"
        );
        assert_eq!((out.len(), dec.len()), (1, 1));
        // The state is the one before the bad record: the writer's next record decodes.
        let next = [s(2, 115, 7.0), s(1, 115, 2.5)];
        b.clear();
        enc.encode(&next, &mut b);
        dec.decode(&b, &mut out).unwrap();
        assert_eq!(bits(&out[1..]), bits(&next));
    }

    proptest! {
        #[test]
        fn round_trips(records in proptest::collection::vec(
            proptest::collection::vec(
                (0u64..6, prop_oneof![0i64..100, any::<i64>()], prop_oneof![
                    (0u64..4).prop_map(|v| v as f64),
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
        fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut dec = SegmentState::default();
            let mut out = Vec::new();
            if dec.decode(&bytes, &mut out).is_ok() {
                prop_assert!(!out.is_empty() && out.len() <= bytes.len() / 3);
            }
        }
    }
}
