//! Native-histogram chunk codec (encoding byte [`super::Encoding::Histogram`]).
//!
//! The model is Prometheus's `tsdb/chunkenc/histogram.go` and `float_histogram.go`: one chunk
//! holds histograms of one bucket layout (schema, zero threshold, spans, custom bounds), which
//! is written once in the chunk header; samples then carry only counts. Integer-valued
//! histograms (every count a whole number, the common case) store counts as delta-of-delta
//! integers, others as Gorilla XOR of the float bits. The sum is always XOR.
//!
//! ```text
//! ┌────────────────────┬──────────┬─────────────────────────────────────────────────────┐
//! │ num_samples u16 LE │ flags u8 │ bit stream, MSB first, zero-padded to a whole byte    │
//! └────────────────────┴──────────┴─────────────────────────────────────────────────────┘
//! flags:  bits 0-1 counter-reset hint of the first sample (0 unknown, 1 counter reset,
//!         2 not a counter reset, 3 gauge); bit 2 set = float counts (XOR), clear = integer;
//!         bit 3 set = custom bounds in the compact form below (every chunk written now;
//!         clear: each bound as 64 bits, as the first version wrote them)
//! layout: schema varint │ zero_threshold 64 bits │ positive spans │ negative spans
//!         │ custom bounds (schema -53 only: count uvarint, then each bound)
//! bound:  compact, as Prometheus's `putCustomBound` (`histogram_meta.go`): a bound b with
//!         b·1000 a whole number in 0..=33_554_430 is uvarint(b·1000 + 1) (1 to 4 bytes for
//!         the usual 0.005 … 10 bounds); any other is uvarint 0 then its 64 bits
//! spans:  count uvarint, then per span offset varint │ length uvarint
//! sample: timestamp as in the XOR chunk (t0 varint, t1-t0 uvarint, then dod buckets)
//!         then the slots count, zero_count, positive buckets…, negative buckets… and the sum:
//!         integer chunk: each slot sample 0 value, sample 1 delta, later delta of delta, as
//!                        varbit; the sum as XOR
//!         float chunk:   each slot and the sum as XOR (own leading/trailing window each)
//! varbit: '0' = 0 │ '10'+4 bits │ '110'+8 │ '1110'+12 │ '11110'+18 │ '111110'+25
//!         │ '1111110'+36 │ '1111111'+64 (two's complement, range -(2^(n-1)-1)..=2^(n-1))
//! ```
//! Samples after the first carry the hint "not a counter reset" (or "gauge" in a gauge
//! chunk): the encoder refuses a sample whose counts went down, a sample with another layout,
//! a counter-reset or gauge hint change, and a fractional count in an integer chunk
//! ([`HistogramChunk::append`] returns the hint for the new chunk the caller then cuts).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::encoding::bstream::{XorState, fits_bits};
use crate::encoding::{BitReader, BitWriter};
use crate::error::Error;
use crate::histogram::ops::counts_decreased;
use crate::histogram::{CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, Span};
use crate::interface::SampleIterator;
use crate::model::Timestamp;

/// Bytes before the bit stream: sample count and flags.
pub(crate) const HEADER_LEN: usize = 3;
/// Most samples one chunk can hold (the count is a u16).
pub(crate) const MAX_SAMPLES: usize = u16::MAX as usize;
/// Most buckets (positive plus negative), spans or custom bounds a decoded chunk may declare.
pub(crate) use crate::histogram::MAX_BUCKETS;
/// Flag bit: counts are XOR-encoded floats.
const FLAG_FLOAT: u8 = 0b100;
/// Flag bit: custom bounds in the compact form (see the module docs).
const FLAG_COMPACT_BOUNDS: u8 = 0b1000;
/// Largest `bound × 1000` the compact form stores as an integer (Prometheus's limit).
const MAX_COMPACT_BOUND: f64 = 33_554_430.0;
/// Name used in corruption errors for chunk bytes.
const CHUNK_PATH: &str = "<histogram chunk>";
/// Largest integer an `f64` count holds exactly.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Varbit payload widths after 1..=6 one-bits and a zero (7 ones: 64 bits).
const VARBIT_WIDTHS: [u32; 6] = [4, 8, 12, 18, 25, 36];

fn hint_bits(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn hint_from_bits(b: u8) -> CounterResetHint {
    match b & 0b11 {
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    }
}

/// True when every count of `h` is a whole, non-negative number an `f64` holds exactly.
pub(crate) fn is_integral(h: &FloatHistogram) -> bool {
    let ok = |v: f64| (0.0..=MAX_EXACT).contains(&v) && v.fract() == 0.0;
    ok(h.count)
        && ok(h.zero_count)
        && h.positive_buckets.iter().all(|&v| ok(v))
        && h.negative_buckets.iter().all(|&v| ok(v))
}

/// True when `a` and `b` have the same bucket layout.
fn same_layout(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.schema == b.schema
        && a.zero_threshold.to_bits() == b.zero_threshold.to_bits()
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && same_bounds(a, b)
}

/// True when `a` and `b` have the same custom bounds (bit for bit; none for exponential ones).
fn same_bounds(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.custom_values.len() == b.custom_values.len()
        && a.custom_values
            .iter()
            .zip(&b.custom_values)
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

/// `(bucket index, count)` of the populated buckets of one side.
fn indexed<'a>(spans: &'a [Span], buckets: &'a [f64]) -> impl Iterator<Item = (i64, f64)> + 'a {
    let mut idx: i64 = 0;
    spans
        .iter()
        .flat_map(move |s| {
            idx += i64::from(s.offset);
            let start = idx;
            idx += i64::from(s.length);
            start..start + i64::from(s.length)
        })
        .zip(buckets.iter().copied())
}

/// Bucket indexes covered by `spans`, ascending.
fn span_indexes(spans: &[Span]) -> impl Iterator<Item = i64> + '_ {
    let mut idx: i64 = 0;
    spans.iter().flat_map(move |s| {
        idx += i64::from(s.offset);
        let start = idx;
        idx += i64::from(s.length);
        start..start + i64::from(s.length)
    })
}

/// The sorted union of the bucket indexes of two layouts.
fn union(a: &[Span], b: &[Span]) -> Vec<i64> {
    let mut out: Vec<i64> = span_indexes(a).chain(span_indexes(b)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Spans covering exactly the sorted indexes `idx`.
fn spans_of(idx: &[i64]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut prev: Option<i64> = None;
    for &i in idx {
        match (prev, out.last_mut()) {
            (Some(p), Some(last)) if i == p + 1 => last.length += 1,
            (Some(p), _) => out.push(Span::new((i - p - 1) as i32, 1)),
            (None, _) => out.push(Span::new(i as i32, 1)),
        }
        prev = Some(i);
    }
    out
}

/// `h` laid out on the bucket indexes `pos`/`neg` (supersets of its own), zeros where it has no
/// bucket.
fn expand(h: &FloatHistogram, pos: &[i64], neg: &[i64]) -> FloatHistogram {
    let side = |spans: &[Span], buckets: &[f64], to: &[i64]| -> Vec<f64> {
        let have: Vec<(i64, f64)> = indexed(spans, buckets).collect();
        let mut k = 0;
        to.iter()
            .map(|&i| {
                while have.get(k).is_some_and(|x| x.0 < i) {
                    k += 1;
                }
                match have.get(k) {
                    Some(&(j, v)) if j == i => v,
                    _ => 0.0,
                }
            })
            .collect()
    };
    FloatHistogram {
        positive_buckets: side(&h.positive_spans, &h.positive_buckets, pos),
        negative_buckets: side(&h.negative_spans, &h.negative_buckets, neg),
        positive_spans: spans_of(pos),
        negative_spans: spans_of(neg),
        ..h.clone()
    }
}

fn write_varbit(bw: &mut BitWriter, v: i64) {
    if v == 0 {
        bw.write_bit(false);
        return;
    }
    for (i, &n) in VARBIT_WIDTHS.iter().enumerate() {
        if fits_bits(v, n) {
            let ones = i as u32 + 1;
            // `ones` one-bits then a zero.
            bw.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
            bw.write_bits(v as u64 & ((1u64 << n) - 1), n);
            return;
        }
    }
    bw.write_bits(0b111_1111, 7);
    bw.write_bits(v as u64, 64);
}

fn read_varbit(br: &mut BitReader<'_>) -> Option<i64> {
    let ones = br.read_ones(7)?;
    let n = match ones {
        0 => return Some(0),
        7 => return Some(br.read_bits(64)? as i64),
        k => *VARBIT_WIDTHS.get(k as usize - 1)?,
    };
    let raw = br.read_bits(n)?;
    Some(if raw > 1 << (n - 1) {
        raw as i64 - (1i64 << n)
    } else {
        raw as i64
    })
}

/// Writes one custom bound in the compact form.
fn write_bound(bw: &mut BitWriter, b: f64) {
    let scaled = b * 1000.0;
    if (0.0..=MAX_COMPACT_BOUND).contains(&scaled) && scaled.round() / 1000.0 == b {
        bw.write_uvarint(scaled.round() as u64 + 1);
    } else {
        bw.write_uvarint(0);
        bw.write_bits(b.to_bits(), 64);
    }
}

/// Reads one custom bound written by [`write_bound`].
fn read_bound(br: &mut BitReader<'_>) -> Option<f64> {
    match br.read_uvarint()? {
        0 => Some(f64::from_bits(br.read_bits(64)?)),
        v => Some((v - 1) as f64 / 1000.0),
    }
}

fn write_spans(bw: &mut BitWriter, spans: &[Span]) {
    bw.write_uvarint(spans.len() as u64);
    for s in spans {
        bw.write_varint(i64::from(s.offset));
        bw.write_uvarint(u64::from(s.length));
    }
}

/// The header (sample count 0, `flags`) and layout of a chunk of `h`'s schema, zero threshold
/// and custom bounds with spans `pos`/`neg`.
fn start(flags: u8, h: &FloatHistogram, pos: &[Span], neg: &[Span]) -> BitWriter {
    let mut bw = BitWriter::with_capacity(64);
    bw.push_byte(0);
    bw.push_byte(0);
    bw.push_byte(flags);
    bw.write_varint(i64::from(h.schema));
    bw.write_bits(h.zero_threshold.to_bits(), 64);
    write_spans(&mut bw, pos);
    write_spans(&mut bw, neg);
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        bw.write_uvarint(h.custom_values.len() as u64);
        for &v in &h.custom_values {
            write_bound(&mut bw, v);
        }
    }
    bw
}

/// For each bucket index of `to` (ascending), its position among the buckets of `from` (a
/// subset of `to`), if it has one.
fn slot_map(from: &[Span], to: &[i64]) -> Vec<Option<usize>> {
    let mut old = span_indexes(from).enumerate().peekable();
    to.iter()
        .map(|&i| {
            while old.peek().is_some_and(|&(_, j)| j < i) {
                old.next();
            }
            match old.peek() {
                Some(&(k, j)) if j == i => Some(k),
                _ => None,
            }
        })
        .collect()
}

/// Why [`HistogramChunk::append`] refused a sample; the caller cuts a new chunk whose first
/// sample carries `hint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CutChunk {
    /// Counter-reset hint for the new chunk's header.
    pub(crate) hint: CounterResetHint,
}

/// An appendable histogram chunk.
#[derive(Clone, Debug)]
pub(crate) struct HistogramChunk {
    bw: BitWriter,
    num: u16,
    float: bool,
    gauge: bool,
    t: i64,
    t_delta: u64,
    /// The last appended histogram (layout and counts, for checks against the next one).
    last: FloatHistogram,
    /// Integer chunks: last value and last delta per slot.
    ints: Vec<(i64, i64)>,
    /// Float chunks: XOR state per slot.
    floats: Vec<XorState>,
    sum: XorState,
}

impl HistogramChunk {
    /// A chunk whose first sample is `h` at `t`; `hint` goes in the header (a gauge histogram's
    /// own hint wins). Float counts are chosen when any count of `h` is fractional.
    pub(crate) fn new(t: Timestamp, h: &FloatHistogram, hint: CounterResetHint) -> Self {
        Self::with_kind(t, h, hint, !is_integral(h))
    }

    /// As [`HistogramChunk::new`] with the count encoding chosen by the caller.
    fn with_kind(t: Timestamp, h: &FloatHistogram, hint: CounterResetHint, float: bool) -> Self {
        let gauge = h.is_gauge();
        let hint = if gauge { CounterResetHint::Gauge } else { hint };
        let flags = hint_bits(hint) | FLAG_COMPACT_BOUNDS | if float { FLAG_FLOAT } else { 0 };
        let bw = start(flags, h, &h.positive_spans, &h.negative_spans);
        let mut c = Self {
            bw,
            num: 0,
            float,
            gauge,
            t: 0,
            t_delta: 0,
            last: h.clone(),
            ints: Vec::new(),
            floats: Vec::new(),
            sum: XorState::default(),
        };
        c.write_sample(t, h);
        c
    }

    /// Appends `h` at `t` when it fits this chunk; otherwise returns the header hint for the
    /// new chunk to cut. BUG if `t` is not after the last sample.
    pub(crate) fn append(&mut self, t: Timestamp, h: &FloatHistogram) -> Result<(), CutChunk> {
        assert!(
            t > self.t,
            "BUG: histogram chunk append at {t} not after {}",
            self.t
        );
        if h.is_gauge() != self.gauge {
            return Err(CutChunk {
                hint: h.counter_reset_hint,
            });
        }
        // Other custom bounds are a counter reset, as in Prometheus's appender.
        let reset = !self.gauge
            && (h.counter_reset_hint == CounterResetHint::CounterReset
                || (h.uses_custom_buckets() && !same_bounds(&self.last, h))
                || counts_decreased(h, &self.last));
        let next_hint = if self.gauge {
            CounterResetHint::Gauge
        } else if reset {
            CounterResetHint::CounterReset
        } else {
            CounterResetHint::NotCounterReset
        };
        if reset || self.num as usize >= MAX_SAMPLES || (!self.float && !is_integral(h)) {
            return Err(CutChunk { hint: next_hint });
        }
        if same_layout(&self.last, h) {
            self.write_sample(t, h);
            return Ok(());
        }
        // Another layout of the same schema and zero bucket: both go to the union of the two
        // layouts (buckets missing on one side count 0), re-encoding the chunk when it grows,
        // as Prometheus's appender recodes to a superset layout. Anything else cuts.
        let last = &self.last;
        if last.schema != h.schema
            || last.zero_threshold.to_bits() != h.zero_threshold.to_bits()
            || !same_bounds(last, h)
        {
            return Err(CutChunk { hint: next_hint });
        }
        let pos = union(&last.positive_spans, &h.positive_spans);
        let neg = union(&last.negative_spans, &h.negative_spans);
        if pos.len() + neg.len() > MAX_BUCKETS {
            return Err(CutChunk { hint: next_hint });
        }
        let grown =
            pos.len() != last.positive_buckets.len() || neg.len() != last.negative_buckets.len();
        if grown && !self.recode(&pos, &neg) {
            return Err(CutChunk { hint: next_hint });
        }
        let expanded = expand(h, &pos, &neg);
        self.write_sample(t, &expanded);
        Ok(())
    }

    /// Re-encodes the chunk with every sample expanded to the layout of bucket indexes
    /// `pos`/`neg` (a superset of the current one; new buckets count 0), as Prometheus's
    /// appender recodes to a superset layout. Counts move slot by slot into a reused buffer (no
    /// histogram is built per sample). False (chunk unchanged) if the bytes do not decode,
    /// which cannot happen for the chunk's own bytes.
    fn recode(&mut self, pos: &[i64], neg: &[i64]) -> bool {
        let pmap = slot_map(&self.last.positive_spans, pos);
        let nmap = slot_map(&self.last.negative_spans, neg);
        let flags = self.bw.bytes().get(2).copied().unwrap_or(0);
        let mut c = Self {
            bw: start(flags, &self.last, &spans_of(pos), &spans_of(neg)),
            num: 0,
            float: self.float,
            gauge: self.gauge,
            t: 0,
            t_delta: 0,
            last: FloatHistogram::default(),
            ints: Vec::new(),
            floats: Vec::new(),
            sum: XorState::default(),
        };
        let mut vals: Vec<f64> = Vec::with_capacity(2 + pos.len() + neg.len());
        let mut it = HistogramIterator::new(self.bw.bytes());
        while it.next() {
            let h = &it.h;
            let slot = |m: &Option<usize>, b: &[f64]| m.and_then(|k| b.get(k).copied());
            vals.clear();
            vals.extend([h.count, h.zero_count]);
            vals.extend(
                pmap.iter()
                    .map(|m| slot(m, &h.positive_buckets).unwrap_or(0.0)),
            );
            vals.extend(
                nmap.iter()
                    .map(|m| slot(m, &h.negative_buckets).unwrap_or(0.0)),
            );
            c.write_values(it.t, h.sum, vals.len(), vals.iter().copied());
        }
        if it.err.is_some() || c.num != self.num {
            return false;
        }
        // `last` keeps the old layout until the caller writes the sample that grew it.
        c.last = std::mem::take(&mut self.last);
        *self = c;
        true
    }

    fn write_sample(&mut self, t: Timestamp, h: &FloatHistogram) {
        let first = self.num == 0;
        let slots = 2 + h.positive_buckets.len() + h.negative_buckets.len();
        let values = [h.count, h.zero_count]
            .into_iter()
            .chain(h.positive_buckets.iter().copied())
            .chain(h.negative_buckets.iter().copied());
        self.write_values(t, h.sum, slots, values);
        if !first {
            self.last.clone_from(h);
        }
    }

    /// Writes one sample: `slots` counts (count, zero count, positive then negative buckets)
    /// from `values` in the chunk's layout, and the sum.
    fn write_values(
        &mut self,
        t: Timestamp,
        sum: f64,
        slots: usize,
        values: impl Iterator<Item = f64>,
    ) {
        match self.num {
            0 => {
                self.bw.write_varint(t);
                self.sum = XorState::first(sum.to_bits());
                self.bw.write_bits(sum.to_bits(), 64);
                if self.float {
                    self.floats.reserve_exact(slots);
                    for v in values {
                        self.bw.write_bits(v.to_bits(), 64);
                        self.floats.push(XorState::first(v.to_bits()));
                    }
                } else {
                    self.ints.reserve_exact(slots);
                    for v in values {
                        let v = v as i64;
                        write_varbit(&mut self.bw, v);
                        self.ints.push((v, 0));
                    }
                }
            }
            n => {
                let d = (t as u64).wrapping_sub(self.t as u64);
                if n == 1 {
                    self.bw.write_uvarint(d);
                } else {
                    self.bw.write_dod(d.wrapping_sub(self.t_delta) as i64);
                }
                self.t_delta = d;
                self.bw.write_xor(&mut self.sum, sum.to_bits());
                if self.float {
                    for (st, v) in self.floats.iter_mut().zip(values) {
                        self.bw.write_xor(st, v.to_bits());
                    }
                } else {
                    for (st, v) in self.ints.iter_mut().zip(values) {
                        let v = v as i64;
                        let delta = v.wrapping_sub(st.0);
                        let out = if n == 1 {
                            delta
                        } else {
                            delta.wrapping_sub(st.1)
                        };
                        write_varbit(&mut self.bw, out);
                        *st = (v, delta);
                    }
                }
            }
        }
        self.t = t;
        self.num += 1;
        let n = self.num.to_le_bytes();
        if let [a, b, ..] = self.bw.bytes_mut() {
            *a = n[0];
            *b = n[1];
        }
    }

    /// Number of samples.
    pub(crate) fn num_samples(&self) -> usize {
        self.num as usize
    }

    /// The encoded bytes (decodable at any point between appends).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.bw.bytes()
    }

    /// Timestamp of the last sample.
    #[cfg(test)]
    pub(crate) fn last_t(&self) -> Timestamp {
        self.t
    }

    /// The last sample.
    pub(crate) fn last(&self) -> &FloatHistogram {
        &self.last
    }

    /// Heap bytes of the encoder.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bw.capacity()
            + self.ints.capacity() * 16
            + self.floats.capacity() * std::mem::size_of::<XorState>()
            + (self.last.positive_buckets.capacity() + self.last.negative_buckets.capacity()) * 8
    }
}

/// Cursor over an encoded histogram chunk. Corrupt bytes end iteration with `err()` set.
#[derive(Debug, Default)]
pub(crate) struct HistogramIterator<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    float: bool,
    compact_bounds: bool,
    first_hint: CounterResetHint,
    t: i64,
    t_delta: u64,
    h: FloatHistogram,
    ints: Vec<(i64, i64)>,
    floats: Vec<XorState>,
    sum: XorState,
    err: Option<Error>,
}

impl<'a> HistogramIterator<'a> {
    /// A cursor over `bytes` (as returned by [`HistogramChunk::bytes`] or read from disk).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let mut it = Self::default();
        it.reset(bytes);
        it
    }

    /// Takes the sticky error (after the cursor stopped).
    pub(crate) fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }

    /// Restarts over other bytes, reusing buffers.
    pub(crate) fn reset(&mut self, bytes: &'a [u8]) {
        self.read = 0;
        self.t = 0;
        self.t_delta = 0;
        self.err = None;
        self.ints.clear();
        self.floats.clear();
        let [a, b, flags, rest @ ..] = bytes else {
            self.total = 0;
            self.br = BitReader::new(&[]);
            self.err = Some(Error::corruption(
                CHUNK_PATH,
                0,
                format!("chunk of {} bytes is shorter than its header", bytes.len()),
            ));
            return;
        };
        self.total = u16::from_le_bytes([*a, *b]);
        self.float = flags & FLAG_FLOAT != 0;
        self.compact_bounds = flags & FLAG_COMPACT_BOUNDS != 0;
        self.first_hint = hint_from_bits(*flags);
        self.br = BitReader::new(rest);
        if self.read_layout().is_none() {
            self.total = 0;
            self.fail("layout");
        }
    }

    fn read_spans(&mut self, out_spans: &mut Vec<Span>) -> Option<usize> {
        out_spans.clear();
        let n = usize::try_from(self.br.read_uvarint()?).ok()?;
        if n > MAX_BUCKETS {
            return None;
        }
        let mut total = 0usize;
        for _ in 0..n {
            let offset = i32::try_from(self.br.read_varint()?).ok()?;
            let length = u32::try_from(self.br.read_uvarint()?).ok()?;
            total = total.checked_add(length as usize)?;
            if total > MAX_BUCKETS {
                return None;
            }
            out_spans.push(Span { offset, length });
        }
        Some(total)
    }

    fn read_layout(&mut self) -> Option<()> {
        let h = &mut self.h;
        h.schema = i32::try_from(self.br.read_varint()?).ok()?;
        let zt = self.br.read_bits(64)?;
        let mut pos = std::mem::take(&mut self.h.positive_spans);
        let mut neg = std::mem::take(&mut self.h.negative_spans);
        let np = self.read_spans(&mut pos);
        let nn = self.read_spans(&mut neg);
        self.h.positive_spans = pos;
        self.h.negative_spans = neg;
        let (np, nn) = (np?, nn?);
        if np + nn > MAX_BUCKETS {
            return None;
        }
        self.h.zero_threshold = f64::from_bits(zt);
        self.h.positive_buckets.resize(np, 0.0);
        self.h.negative_buckets.resize(nn, 0.0);
        self.h.custom_values.clear();
        if self.h.schema == CUSTOM_BUCKETS_SCHEMA {
            let n = usize::try_from(self.br.read_uvarint()?).ok()?;
            if n > MAX_BUCKETS {
                return None;
            }
            for _ in 0..n {
                let v = if self.compact_bounds {
                    read_bound(&mut self.br)?
                } else {
                    f64::from_bits(self.br.read_bits(64)?)
                };
                self.h.custom_values.push(v);
            }
        }
        // Each slot takes at least one bit per sample: a header declaring more buckets than
        // the bytes can hold is corrupt (bounds the buffers below).
        if self.total > 0 && np + nn > self.br.remaining_bits() {
            return None;
        }
        Some(())
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

    fn read_sample(&mut self) -> Option<()> {
        let slots = 2 + self.h.positive_buckets.len() + self.h.negative_buckets.len();
        if self.read == 0 {
            self.t = self.br.read_varint()?;
            self.sum = XorState::first(self.br.read_bits(64)?);
            if self.float {
                for _ in 0..slots {
                    self.floats.push(XorState::first(self.br.read_bits(64)?));
                }
            } else {
                for _ in 0..slots {
                    self.ints.push((read_varbit(&mut self.br)?, 0));
                }
            }
        } else {
            if self.read == 1 {
                self.t_delta = self.br.read_uvarint()?;
            } else {
                let dod = self.br.read_dod()?;
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
            }
            self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
            self.br.read_xor(&mut self.sum)?;
            if self.float {
                for st in &mut self.floats {
                    self.br.read_xor(st)?;
                }
            } else {
                let first_delta = self.read == 1;
                for st in &mut self.ints {
                    let x = read_varbit(&mut self.br)?;
                    let delta = if first_delta { x } else { st.1.wrapping_add(x) };
                    *st = (st.0.wrapping_add(delta), delta);
                }
            }
        }
        // Publish the counts.
        let h = &mut self.h;
        h.sum = f64::from_bits(self.sum.v);
        h.counter_reset_hint = match (self.read, self.first_hint) {
            (0, hint) => hint,
            (_, CounterResetHint::Gauge) => CounterResetHint::Gauge,
            _ => CounterResetHint::NotCounterReset,
        };
        let pos = h.positive_buckets.len();
        if self.float {
            let [c, z, rest @ ..] = self.floats.as_slice() else {
                return None;
            };
            h.count = f64::from_bits(c.v);
            h.zero_count = f64::from_bits(z.v);
            for (b, st) in h.positive_buckets.iter_mut().zip(rest) {
                *b = f64::from_bits(st.v);
            }
            for (b, st) in h.negative_buckets.iter_mut().zip(rest.get(pos..)?) {
                *b = f64::from_bits(st.v);
            }
        } else {
            let [c, z, rest @ ..] = self.ints.as_slice() else {
                return None;
            };
            h.count = c.0 as f64;
            h.zero_count = z.0 as f64;
            for (b, st) in h.positive_buckets.iter_mut().zip(rest) {
                *b = st.0 as f64;
            }
            for (b, st) in h.negative_buckets.iter_mut().zip(rest.get(pos..)?) {
                *b = st.0 as f64;
            }
        }
        Some(())
    }
}

impl SampleIterator for HistogramIterator<'_> {
    fn next(&mut self) -> bool {
        if self.err.is_some() || self.read >= self.total {
            return false;
        }
        if self.read_sample().is_none() {
            return self.fail("histogram");
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
        (self.t, 0.0)
    }

    fn at_histogram(&self) -> Option<&FloatHistogram> {
        Some(&self.h)
    }

    fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }
}

/// Re-encodes the samples of histogram chunk `bytes` whose time passes `keep`, handing each
/// resulting chunk to `out(min_t, max_t, bytes)` (usually one; none when nothing is kept).
pub(crate) fn reencode_kept(
    bytes: &[u8],
    keep: impl Fn(Timestamp) -> bool,
    mut out: impl FnMut(Timestamp, Timestamp, &[u8]),
) -> crate::error::Result<()> {
    let mut it = HistogramIterator::new(bytes);
    let mut cur: Option<(HistogramChunk, Timestamp, Timestamp)> = None;
    while it.next() {
        let t = it.t;
        if !keep(t) {
            continue;
        }
        let cut = match cur.as_mut() {
            Some((c, _, max_t)) => match c.append(t, &it.h) {
                Ok(()) => {
                    *max_t = t;
                    continue;
                }
                Err(cut) => cut.hint,
            },
            None => it.h.counter_reset_hint,
        };
        if let Some((c, lo, hi)) = cur.take() {
            out(lo, hi, c.bytes());
        }
        cur = Some((HistogramChunk::new(t, &it.h, cut), t, t));
    }
    if let Some(e) = it.err.take() {
        return Err(e);
    }
    if let Some((c, lo, hi)) = cur {
        out(lo, hi, c.bytes());
    }
    Ok(())
}

/// Decodes every sample of `bytes` into `dst` (appending). Fails on corrupt input.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_into(
    dst: &mut Vec<(Timestamp, FloatHistogram)>,
    bytes: &[u8],
) -> crate::error::Result<()> {
    let mut it = HistogramIterator::new(bytes);
    while it.next() {
        dst.push((it.t, it.h.clone()));
    }
    match it.err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Encodes `samples` into chunks as the head does (cutting where [`HistogramChunk::append`]
/// refuses); returns every chunk's bytes.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn encode_all(samples: &[(Timestamp, FloatHistogram)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<HistogramChunk> = None;
    for (t, h) in samples {
        match cur.as_mut().map(|c| c.append(*t, h)) {
            Some(Ok(())) => {}
            Some(Err(cut)) => {
                if let Some(c) = cur.take() {
                    out.push(c.bytes().to_vec());
                }
                cur = Some(HistogramChunk::new(*t, h, cut.hint));
            }
            None => cur = Some(HistogramChunk::new(*t, h, h.counter_reset_hint)),
        }
    }
    if let Some(c) = cur {
        out.push(c.bytes().to_vec());
    }
    out
}

#[cfg(test)]
#[path = "histogram_tests.rs"]
mod tests;
