//! WAL record meaning: series, samples, tombstones. OWNER: codec helper.
//!
//! A record is the payload of one segment frame (see `segment.rs`). Layout (model: Prometheus
//! `tsdb/record`; integers little-endian, varints zig-zag, uvarints LEB128):
//!
//! ```text
//! ┌──────────┬──────────────────────────────────────────────────────────────────────┐
//! │ type u8  │ entries until the end of the record                                  │
//! └──────────┴──────────────────────────────────────────────────────────────────────┘
//! type 1, series:     ref uvarint │ n uvarint │ n × (name len uvarint, name, value len, value)
//! type 2, samples:    base_ref u64 │ base_t i64 │ then per sample:
//!                     ref - base_ref varint │ t - base_t varint │ value bits u64
//!                     (base = the first sample; an empty record has no base)
//! type 3, tombstones: ref uvarint │ mint varint │ maxt varint
//! type 4, histograms: version u8 │ per sample: ref uvarint │ t varint │ histogram
//!                     (layout in `record_histogram.rs`)
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::encoding::varint::{put_str, zigzag};
use crate::encoding::{Decbuf, put_uvarint, put_varint};
use crate::error::{Error, Result};
use crate::model::{Label, Labels};

/// Record type byte: series.
pub(crate) const TYPE_SERIES: u8 = 1;
/// Record type byte: samples.
pub(crate) const TYPE_SAMPLES: u8 = 2;
/// Record type byte: tombstones.
pub(crate) const TYPE_TOMBSTONES: u8 = 3;
/// Record type byte: native-histogram samples (versioned).
pub(crate) const TYPE_HISTOGRAMS: u8 = 4;

pub(crate) use super::record_histogram::RefHistogram;

/// Name used in corruption errors (replay rewrites it with the segment's path).
const RECORD_PATH: &str = "<wal record>";

/// A series definition: its head ref and labels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RefSeries {
    /// Head series ref.
    pub(crate) series: u64,
    /// Its labels.
    pub(crate) labels: Labels,
}

/// One sample for a series ref.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RefSample {
    /// Head series ref.
    pub(crate) series: u64,
    /// Timestamp, ms.
    pub(crate) t: i64,
    /// Value (any bit pattern).
    pub(crate) v: f64,
}

/// A deletion interval for a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RefTombstone {
    /// Head series ref.
    pub(crate) series: u64,
    /// First deleted ms (inclusive).
    pub(crate) mint: i64,
    /// Last deleted ms (inclusive).
    pub(crate) maxt: i64,
}

/// A decoded WAL record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Record {
    /// New series.
    Series(Vec<RefSeries>),
    /// Samples.
    Samples(Vec<RefSample>),
    /// Deletions.
    Tombstones(Vec<RefTombstone>),
    /// Native-histogram samples.
    Histograms(Vec<RefHistogram>),
}

impl Record {
    /// Encodes the record into `dst` (appends).
    pub(crate) fn encode(&self, dst: &mut Vec<u8>) {
        match self {
            Record::Series(s) => encode_series(s, dst),
            Record::Samples(s) => encode_samples(s, dst),
            Record::Tombstones(t) => encode_tombstones(t, dst),
            Record::Histograms(h) => encode_histograms(h, dst),
        }
    }
}

/// Encodes a series record into `dst` (appends).
pub(crate) fn encode_series(series: &[RefSeries], dst: &mut Vec<u8>) {
    dst.push(TYPE_SERIES);
    for s in series {
        put_uvarint(dst, s.series);
        put_uvarint(dst, s.labels.len() as u64);
        for l in &s.labels {
            put_str(dst, &l.name);
            put_str(dst, &l.value);
        }
    }
}

/// Encodes a samples record into `dst` (appends).
pub(crate) fn encode_samples(samples: &[RefSample], dst: &mut Vec<u8>) {
    dst.push(TYPE_SAMPLES);
    let Some(first) = samples.first() else {
        return;
    };
    dst.reserve(16 + samples.len() * 12);
    dst.extend_from_slice(&first.series.to_le_bytes());
    dst.extend_from_slice(&first.t.to_le_bytes());
    for s in samples {
        put_varint(dst, s.series.wrapping_sub(first.series) as i64);
        put_varint(dst, s.t.wrapping_sub(first.t));
        dst.extend_from_slice(&s.v.to_bits().to_le_bytes());
    }
}

/// Encodes a tombstones record into `dst` (appends).
pub(crate) fn encode_tombstones(tombstones: &[RefTombstone], dst: &mut Vec<u8>) {
    dst.push(TYPE_TOMBSTONES);
    for t in tombstones {
        put_uvarint(dst, t.series);
        put_varint(dst, t.mint);
        put_varint(dst, t.maxt);
    }
}

/// Encodes a histogram-samples record into `dst` (appends).
pub(crate) fn encode_histograms(samples: &[RefHistogram], dst: &mut Vec<u8>) {
    dst.push(TYPE_HISTOGRAMS);
    super::record_histogram::encode_body(samples, dst);
}

fn corrupt(d: &Decbuf<'_>, reason: &str) -> Error {
    Error::corruption(RECORD_PATH, d.pos() as u64, reason)
}

/// Decodes one record. Untrusted input: errors, never panics.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record> {
    let mut d = Decbuf::new(bytes);
    let typ = d.u8().ok_or_else(|| corrupt(&d, "empty record"))?;
    match typ {
        TYPE_SERIES => {
            let mut out = Vec::new();
            while !d.is_empty() {
                out.push(decode_one_series(&mut d)?);
            }
            Ok(Record::Series(out))
        }
        TYPE_SAMPLES => {
            let mut out = Vec::new();
            decode_samples_into(&mut d, &mut out)?;
            Ok(Record::Samples(out))
        }
        TYPE_TOMBSTONES => {
            let mut out = Vec::new();
            while !d.is_empty() {
                let series = d
                    .uvarint()
                    .ok_or_else(|| corrupt(&d, "bad tombstone ref"))?;
                let mint = d
                    .varint()
                    .ok_or_else(|| corrupt(&d, "bad tombstone mint"))?;
                let maxt = d
                    .varint()
                    .ok_or_else(|| corrupt(&d, "bad tombstone maxt"))?;
                out.push(RefTombstone { series, mint, maxt });
            }
            Ok(Record::Tombstones(out))
        }
        TYPE_HISTOGRAMS => {
            let mut out = Vec::new();
            super::record_histogram::decode_body(&mut d, &mut out)
                .map_err(|reason| corrupt(&d, reason))?;
            Ok(Record::Histograms(out))
        }
        other => Err(Error::corruption(
            RECORD_PATH,
            0,
            format!("unknown record type {other}"),
        )),
    }
}

fn decode_one_series(d: &mut Decbuf<'_>) -> Result<RefSeries> {
    let series = d.uvarint().ok_or_else(|| corrupt(d, "bad series ref"))?;
    // Each label takes at least two bytes.
    let n = d
        .uvarint_len(d.remaining() / 2)
        .ok_or_else(|| corrupt(d, "bad label count"))?;
    let mut labels: Vec<Label> = Vec::with_capacity(n);
    for _ in 0..n {
        let name = d.str().ok_or_else(|| corrupt(d, "bad label name"))?;
        let value = d.str().ok_or_else(|| corrupt(d, "bad label value"))?;
        if name.is_empty() || value.is_empty() {
            return Err(corrupt(d, "empty label name or value"));
        }
        if labels.last().is_some_and(|l| l.name.as_str() >= name) {
            return Err(corrupt(d, "labels not sorted or not unique"));
        }
        labels.push(Label::new(name, value));
    }
    Ok(RefSeries {
        series,
        labels: Labels::from_sorted(labels),
    })
}

fn decode_samples_into(d: &mut Decbuf<'_>, out: &mut Vec<RefSample>) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    let base_ref = d.u64_le().ok_or_else(|| corrupt(d, "short samples base"))?;
    let base_t = d.u64_le().ok_or_else(|| corrupt(d, "short samples base"))? as i64;
    // Each sample takes at least 10 bytes.
    out.reserve(d.remaining() / 10);
    while !d.is_empty() {
        let dref = d.varint().ok_or_else(|| corrupt(d, "bad sample ref"))?;
        let dt = d.varint().ok_or_else(|| corrupt(d, "bad sample time"))?;
        let v = d.u64_le().ok_or_else(|| corrupt(d, "short sample value"))?;
        out.push(RefSample {
            series: base_ref.wrapping_add(dref as u64),
            t: base_t.wrapping_add(dt),
            v: f64::from_bits(v),
        });
    }
    Ok(())
}

/// Decodes a samples record into the caller's buffer (appending). Fails if `bytes` is not a
/// samples record.
pub(crate) fn decode_samples(bytes: &[u8], out: &mut Vec<RefSample>) -> Result<()> {
    let mut d = Decbuf::new(bytes);
    match d.u8() {
        Some(TYPE_SAMPLES) => decode_samples_into(&mut d, out),
        _ => Err(corrupt(&d, "not a samples record")),
    }
}

/// Decodes a samples record into `out` (appending) when its bytes are exactly what
/// [`encode_samples`] writes for those samples (the base is the first sample, every varint is
/// as short as it can be, at least one sample); `false` otherwise, with `out` holding any part.
/// One pass: the WAL writer uses it to check that a record can be stored in another form and
/// given back byte for byte.
pub(crate) fn decode_samples_exact(bytes: &[u8], out: &mut Vec<RefSample>) -> bool {
    /// Bytes of the shortest varint of `v` zig-zagged.
    fn varint_len(v: i64) -> usize {
        (64 - (zigzag(v) | 1).leading_zeros() as usize).div_ceil(7)
    }
    let mut d = Decbuf::new(bytes);
    if d.u8() != Some(TYPE_SAMPLES) {
        return false;
    }
    let (Some(base_ref), Some(base_t)) = (d.u64_le(), d.u64_le()) else {
        return false;
    };
    let base_t = base_t as i64;
    let first = out.len();
    // Each sample takes at least 10 bytes.
    out.reserve(d.remaining() / 10);
    let mut want = 1 + 8 + 8;
    while !d.is_empty() {
        let (Some(dref), Some(dt), Some(v)) = (d.varint(), d.varint(), d.u64_le()) else {
            return false;
        };
        want += varint_len(dref) + varint_len(dt) + 8;
        out.push(RefSample {
            series: base_ref.wrapping_add(dref as u64),
            t: base_t.wrapping_add(dt),
            v: f64::from_bits(v),
        });
    }
    want == bytes.len()
        && out
            .get(first)
            .is_some_and(|f| f.series == base_ref && f.t == base_t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,10}", 0..6).prop_map(|m| {
            Labels::from_sorted(m.into_iter().map(|(n, v)| Label::new(n, v)).collect())
        })
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            proptest::collection::vec(
                (any::<u64>(), labels()).prop_map(|(series, labels)| RefSeries { series, labels }),
                0..20
            )
            .prop_map(Record::Series),
            proptest::collection::vec(
                (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(series, t, v)| RefSample {
                    series,
                    t,
                    v: f64::from_bits(v)
                }),
                0..50
            )
            .prop_map(Record::Samples),
            proptest::collection::vec(
                (any::<u64>(), any::<i64>(), any::<i64>())
                    .prop_map(|(series, mint, maxt)| RefTombstone { series, mint, maxt }),
                0..20
            )
            .prop_map(Record::Tombstones),
            proptest::collection::vec(
                (any::<u64>(), any::<i64>(), histogram())
                    .prop_map(|(series, t, h)| { RefHistogram { series, t, h } }),
                0..10
            )
            .prop_map(Record::Histograms),
        ]
    }

    fn histogram() -> impl Strategy<Value = crate::histogram::FloatHistogram> {
        use crate::histogram::{CounterResetHint, FloatHistogram, Span};
        (
            -53i32..9,
            any::<bool>(),
            proptest::collection::vec(0u32..1000, 0..8),
            proptest::collection::vec((-5i32..5, 0u32..4), 0..4),
            0u8..4,
        )
            .prop_map(|(schema, frac, counts, spans, hint)| {
                let add = if frac { 0.25 } else { 0.0 };
                let buckets: Vec<f64> = counts.iter().map(|&c| f64::from(c) + add).collect();
                FloatHistogram {
                    counter_reset_hint: [
                        CounterResetHint::Unknown,
                        CounterResetHint::CounterReset,
                        CounterResetHint::NotCounterReset,
                        CounterResetHint::Gauge,
                    ][hint as usize],
                    schema,
                    zero_threshold: 1e-128,
                    zero_count: 3.0 + add,
                    count: buckets.iter().sum::<f64>() + 3.0,
                    sum: -1.5,
                    positive_spans: spans.iter().map(|&(o, l)| Span::new(o, l)).collect(),
                    negative_spans: vec![Span::new(1, 1)],
                    positive_buckets: buckets.clone(),
                    negative_buckets: buckets.into_iter().take(1).collect(),
                    custom_values: if schema == -53 {
                        vec![1.0, 2.5]
                    } else {
                        Vec::new()
                    },
                }
            })
    }

    /// Compares with NaN-safe sample values.
    fn same(a: &Record, b: &Record) -> bool {
        match (a, b) {
            (Record::Samples(x), Record::Samples(y)) => {
                x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| {
                        p.series == q.series && p.t == q.t && p.v.to_bits() == q.v.to_bits()
                    })
            }
            _ => a == b,
        }
    }

    #[test]
    fn samples_are_delta_encoded() {
        let samples: Vec<RefSample> = (0..100)
            .map(|i| RefSample {
                series: 1000 + i,
                t: 1_700_000_000_000 + i as i64,
                v: 1.0,
            })
            .collect();
        let mut b = Vec::new();
        encode_samples(&samples, &mut b);
        // type + base (16) + per sample: 1-byte ref delta, 1-2 byte t delta, 8-byte value.
        assert!(b.len() <= 1 + 16 + 100 * 11, "{} bytes", b.len());
        assert_eq!(decode(&b).unwrap(), Record::Samples(samples.clone()));
        let mut out = Vec::new();
        decode_samples(&b, &mut out).unwrap();
        assert_eq!(out, samples);
    }

    #[test]
    fn invalid_records_rejected() {
        let check = |bytes: &[u8], want: &str| {
            let err = decode(bytes).unwrap_err();
            assert!(
                matches!(err, Error::Corruption { ref reason, .. } if reason.contains(want)),
                "{bytes:?}: want {want:?}, got {err}"
            );
        };
        check(&[], "empty record");
        check(&[9], "unknown record type 9");
        check(
            &[TYPE_SERIES, 1, 2, 1, b'b', 1, b'x', 1, b'a', 1, b'y'],
            "not sorted",
        );
        check(&[TYPE_SERIES, 1, 1, 0, 1, b'x'], "empty label");
        check(&[TYPE_SERIES, 1, 200], "bad label count");
        check(&[TYPE_SAMPLES, 1, 2, 3], "short samples base");
        check(&[TYPE_TOMBSTONES, 1, 2], "bad tombstone maxt");
        check(&[TYPE_HISTOGRAMS], "short histogram record");
        check(&[TYPE_HISTOGRAMS, 2], "unknown histogram record version");
        check(&[TYPE_HISTOGRAMS, 1, 1, 2, 0, 0], "bad histogram sample");
    }

    proptest! {
        #[test]
        fn round_trip(rec in record()) {
            let mut b = vec![0xaa]; // encoders append
            rec.encode(&mut b);
            let got = decode(&b[1..]).unwrap();
            prop_assert!(same(&got, &rec), "got {:?}\nwant {:?}", got, rec);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(&bytes);
        }

        /// `decode_samples_exact` accepts a record exactly when encoding its samples gives the
        /// same bytes back.
        #[test]
        fn exact_samples_are_those_that_encode_back(
            samples in proptest::collection::vec(
                (prop_oneof![0u64..4, any::<u64>()], prop_oneof![0i64..4, any::<i64>()],
                 any::<u64>()).prop_map(|(series, t, v)| RefSample { series, t, v: f64::from_bits(v) }),
                0..6),
            edit in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let mut b = Vec::new();
            encode_samples(&samples, &mut b);
            if let Some((i, byte)) = edit {
                let i = i.index(b.len());
                b[i] = byte;
                // A longer varint or a base other than the first sample.
                if byte == 0x80 {
                    b.insert(i, 0x80);
                }
            }
            let mut out = Vec::new();
            let exact = decode_samples_exact(&b, &mut out);
            let mut again = Vec::new();
            let mut dec = Vec::new();
            let decodes = decode_samples(&b, &mut dec).is_ok();
            encode_samples(&dec, &mut again);
            prop_assert_eq!(exact, decodes && !dec.is_empty() && again == b);
            if exact {
                prop_assert_eq!(out.len(), dec.len());
            }
        }
    }
}
