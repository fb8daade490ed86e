//! WAL record type 4: native-histogram samples (see the layout in `record.rs`).
//!
//! ```text
//! type 4 │ version u8 = 1 │ per sample: ref uvarint │ t varint │ histogram
//! histogram: flags u8 (bits 0-1 counter-reset hint: 0 unknown, 1 reset, 2 not reset, 3 gauge;
//!            bit 2 set = float counts) │ schema varint │ zero_threshold u64 LE │ sum u64 LE
//!            │ count │ zero_count │ positive spans │ negative spans
//!            │ positive buckets │ negative buckets │ custom bounds
//! count, zero_count, each bucket: integer histograms uvarint, float ones f64 bits u64 LE
//! spans:     n uvarint │ n × (offset varint │ length uvarint)
//! buckets:   n uvarint │ n counts        custom bounds: n uvarint │ n × u64 LE
//! ```
//! Counts are absolute (as in [`FloatHistogram`]); "integer" means every count is a whole
//! number, which is what most histograms are, so most records carry small varints.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::chunk::histogram::is_integral;
use crate::encoding::{Decbuf, put_uvarint, put_varint};
use crate::histogram::{CounterResetHint, FloatHistogram, Span};

/// Version byte after the record type.
pub(crate) const VERSION: u8 = 1;
const FLAG_FLOAT: u8 = 0b100;

/// One histogram sample for a series ref.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RefHistogram {
    /// Head series ref.
    pub(crate) series: u64,
    /// Timestamp, ms.
    pub(crate) t: i64,
    /// The histogram (absolute counts).
    pub(crate) h: FloatHistogram,
}

fn hint_bits(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn put_spans(dst: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(dst, spans.len() as u64);
    for s in spans {
        put_varint(dst, i64::from(s.offset));
        put_uvarint(dst, u64::from(s.length));
    }
}

/// Encodes the body of a histogram-samples record (after the type byte) into `dst`.
pub(crate) fn encode_body(samples: &[RefHistogram], dst: &mut Vec<u8>) {
    dst.push(VERSION);
    for s in samples {
        put_uvarint(dst, s.series);
        put_varint(dst, s.t);
        let h = &s.h;
        let float = !is_integral(h);
        dst.push(hint_bits(h.counter_reset_hint) | if float { FLAG_FLOAT } else { 0 });
        put_varint(dst, i64::from(h.schema));
        dst.extend_from_slice(&h.zero_threshold.to_bits().to_le_bytes());
        dst.extend_from_slice(&h.sum.to_bits().to_le_bytes());
        let put_count = |dst: &mut Vec<u8>, v: f64| {
            if float {
                dst.extend_from_slice(&v.to_bits().to_le_bytes());
            } else {
                put_uvarint(dst, v as u64);
            }
        };
        put_count(dst, h.count);
        put_count(dst, h.zero_count);
        put_spans(dst, &h.positive_spans);
        put_spans(dst, &h.negative_spans);
        for b in [&h.positive_buckets, &h.negative_buckets] {
            put_uvarint(dst, b.len() as u64);
            for &v in b.iter() {
                put_count(dst, v);
            }
        }
        put_uvarint(dst, h.custom_values.len() as u64);
        for v in &h.custom_values {
            dst.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
}

fn get_spans(d: &mut Decbuf<'_>, out: &mut Vec<Span>) -> Option<()> {
    // Each span takes at least two bytes.
    let n = d.uvarint_len(d.remaining() / 2)?;
    out.reserve_exact(n);
    for _ in 0..n {
        let offset = i32::try_from(d.varint()?).ok()?;
        let length = u32::try_from(d.uvarint()?).ok()?;
        out.push(Span { offset, length });
    }
    Some(())
}

fn get_one(d: &mut Decbuf<'_>) -> Option<RefHistogram> {
    let series = d.uvarint()?;
    let t = d.varint()?;
    let flags = d.u8()?;
    let float = flags & FLAG_FLOAT != 0;
    let get_count = |d: &mut Decbuf<'_>| -> Option<f64> {
        if float {
            Some(f64::from_bits(d.u64_le()?))
        } else {
            Some(d.uvarint()? as f64)
        }
    };
    let mut h = FloatHistogram {
        counter_reset_hint: match flags & 0b11 {
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        },
        schema: i32::try_from(d.varint()?).ok()?,
        zero_threshold: f64::from_bits(d.u64_le()?),
        sum: f64::from_bits(d.u64_le()?),
        ..Default::default()
    };
    h.count = get_count(d)?;
    h.zero_count = get_count(d)?;
    get_spans(d, &mut h.positive_spans)?;
    get_spans(d, &mut h.negative_spans)?;
    for b in [&mut h.positive_buckets, &mut h.negative_buckets] {
        // Each count takes at least one byte.
        let n = d.uvarint_len(d.remaining())?;
        b.reserve_exact(n);
        for _ in 0..n {
            b.push(get_count(d)?);
        }
    }
    let n = d.uvarint_len(d.remaining() / 8)?;
    h.custom_values.reserve_exact(n);
    for _ in 0..n {
        h.custom_values.push(f64::from_bits(d.u64_le()?));
    }
    Some(RefHistogram { series, t, h })
}

/// Decodes the body of a histogram-samples record (after the type byte). `Err` carries a
/// reason; the caller adds the position.
pub(crate) fn decode_body(
    d: &mut Decbuf<'_>,
    out: &mut Vec<RefHistogram>,
) -> std::result::Result<(), &'static str> {
    match d.u8() {
        Some(VERSION) => {}
        Some(_) => return Err("unknown histogram record version"),
        None => return Err("short histogram record"),
    }
    while !d.is_empty() {
        out.push(get_one(d).ok_or("bad histogram sample")?);
    }
    Ok(())
}
