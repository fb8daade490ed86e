#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use proptest::prelude::*;

fn hist(count: f64, buckets: Vec<f64>) -> FloatHistogram {
    let n = buckets.len() as u32;
    FloatHistogram {
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 1.0,
        count,
        sum: count * 1.5,
        positive_spans: vec![Span::new(-2, n.div_ceil(2)), Span::new(3, n / 2)],
        positive_buckets: buckets,
        ..Default::default()
    }
}

/// Decodes every chunk and checks the hints the codec promises; returns the samples with the
/// hints reset to what was appended for comparison.
fn decode_all(chunks: &[Vec<u8>]) -> Vec<(Timestamp, FloatHistogram)> {
    let mut out = Vec::new();
    for c in chunks {
        let start = out.len();
        decode_into(&mut out, c).unwrap();
        for (_, h) in out.iter().skip(start + 1) {
            assert!(matches!(
                h.counter_reset_hint,
                CounterResetHint::NotCounterReset | CounterResetHint::Gauge
            ));
        }
    }
    out
}

#[test]
fn integer_round_trip_and_hints() {
    let samples: Vec<_> = (0..200)
        .map(|i| {
            let b = vec![i as f64, 2.0 * i as f64, 5.0, 7.0 + i as f64];
            (1000 + i * 15_000, hist(b.iter().sum::<f64>() + 1.0, b))
        })
        .collect();
    let chunks = encode_all(&samples);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0][2] & FLAG_FLOAT, 0, "integer chunk");
    let got = decode_all(&chunks);
    assert_eq!(got.len(), samples.len());
    for ((t, h), (wt, wh)) in got.iter().zip(&samples) {
        assert_eq!(t, wt);
        let mut h = h.clone();
        h.counter_reset_hint = CounterResetHint::Unknown;
        assert_eq!(&h, wh);
    }
    // Regular series: a few bits per slot per sample.
    let per_sample = chunks[0].len() as f64 / samples.len() as f64;
    assert!(per_sample < 12.0, "{per_sample} bytes/sample");
}

#[test]
fn cuts_on_layout_reset_gauge_and_fraction() {
    let a = hist(10.0, vec![1.0, 2.0, 3.0, 4.0]);
    let mut c = HistogramChunk::new(0, &a, CounterResetHint::Unknown);
    // Counts going down: a counter reset.
    let down = hist(5.0, vec![1.0, 1.0, 1.0, 1.0]);
    assert_eq!(
        c.append(10, &down),
        Err(CutChunk {
            hint: CounterResetHint::CounterReset
        })
    );
    // Another schema; brought to schema 0, the old buckets' counts exceed the new ones (one
    // definition of a reset: `ops::counts_decreased`).
    let mut coarser = hist(20.0, vec![1.0, 2.0, 3.0, 4.0]);
    coarser.schema = 0;
    assert_eq!(
        c.append(10, &coarser),
        Err(CutChunk {
            hint: CounterResetHint::CounterReset
        })
    );
    // A fractional count in an integer chunk.
    let frac = hist(10.5, vec![1.0, 2.0, 3.0, 4.0]);
    assert!(c.append(10, &frac).is_err());
    // A gauge histogram.
    let mut g = a.clone();
    g.counter_reset_hint = CounterResetHint::Gauge;
    assert!(c.append(10, &g).is_err());
    let mut gc = HistogramChunk::new(0, &g, CounterResetHint::Unknown);
    assert_eq!(
        gc.append(10, &down),
        Err(CutChunk {
            hint: CounterResetHint::Unknown
        })
    );
    let mut g2 = down.clone();
    g2.counter_reset_hint = CounterResetHint::Gauge;
    assert_eq!(gc.append(10, &g2), Ok(()), "gauges go down freely");
    let mut out = Vec::new();
    decode_into(&mut out, gc.bytes()).unwrap();
    assert_eq!(out[0].1.counter_reset_hint, CounterResetHint::Gauge);
    assert_eq!(out[1].1, g2);
    // Same layout, counts up: appended.
    let up = hist(11.0, vec![1.0, 2.0, 3.0, 5.0]);
    assert_eq!(c.append(10, &up), Ok(()));
    assert_eq!(c.num_samples(), 2);
    assert_eq!(c.last_t(), 10);
    assert_eq!(c.last(), &up);
}

#[test]
fn layout_changes_recode_to_the_union() {
    let a = hist(10.0, vec![1.0, 2.0, 3.0, 4.0]); // indexes -2, -1, 2, 3
    let mut c = HistogramChunk::new(0, &a, CounterResetHint::Unknown);
    c.append(10, &hist(11.0, vec![1.0, 2.0, 3.0, 5.0])).unwrap();
    // A new bucket at index 5: the chunk is re-encoded with a zero there for older samples.
    let mut wider = hist(20.0, vec![1.0, 2.0, 3.0, 5.0, 9.0]);
    wider.positive_spans = vec![Span::new(-2, 2), Span::new(3, 2), Span::new(1, 1)];
    assert_eq!(c.append(20, &wider), Ok(()));
    // A sample without bucket -1 (it counts 0 there: a reset)…
    let mut missing = wider.clone();
    missing.positive_spans = vec![Span::new(-2, 1), Span::new(4, 2), Span::new(1, 1)];
    missing.positive_buckets = vec![1.0, 3.0, 5.0, 9.0];
    assert_eq!(
        c.append(30, &missing),
        Err(CutChunk {
            hint: CounterResetHint::CounterReset
        })
    );
    // …but with the counts kept it is laid out on the chunk's layout.
    let mut sparse = wider.clone();
    sparse.positive_spans = vec![Span::new(-2, 2), Span::new(5, 1)];
    sparse.positive_buckets = vec![1.0, 2.0, 9.0];
    sparse.count = 12.0;
    // (buckets 2 and 3 went to 0: a reset too)
    assert!(c.append(30, &sparse).is_err());
    let mut out = Vec::new();
    decode_into(&mut out, c.bytes()).unwrap();
    assert_eq!(out.len(), 3);
    let spans = vec![Span::new(-2, 2), Span::new(3, 2), Span::new(1, 1)];
    assert!(out.iter().all(|(_, h)| h.positive_spans == spans));
    assert_eq!(out[0].1.positive_buckets, vec![1.0, 2.0, 3.0, 4.0, 0.0]);
    assert_eq!(out[2].1.positive_buckets, wider.positive_buckets);
    assert_eq!(out[0].1.counter_reset_hint, CounterResetHint::Unknown);
}

#[test]
fn float_and_custom_buckets_round_trip() {
    let mut h = FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: 3.25,
        sum: f64::NAN,
        positive_spans: vec![Span::new(0, 3)],
        positive_buckets: vec![0.25, 1.0, 2.0],
        custom_values: vec![0.1, 1.0, 10.0],
        ..Default::default()
    };
    let mut c = HistogramChunk::new(5, &h, CounterResetHint::CounterReset);
    assert_ne!(c.bytes()[2] & FLAG_FLOAT, 0, "float chunk");
    h.count = 4.5;
    h.positive_buckets[2] = 3.25;
    h.sum = crate::stale_nan();
    c.append(6, &h).unwrap();
    let mut out = Vec::new();
    decode_into(&mut out, c.bytes()).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1.counter_reset_hint, CounterResetHint::CounterReset);
    assert_eq!(out[1].1.positive_buckets, h.positive_buckets);
    assert_eq!(out[1].1.custom_values, h.custom_values);
    assert!(out[1].1.is_stale(), "stale-marker bits kept");
    assert!(out[0].1.sum.is_nan() && !out[0].1.is_stale());
}

fn nhcb(bounds: &[f64], counts: &[f64]) -> FloatHistogram {
    FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: counts.iter().sum(),
        sum: 12.5,
        positive_spans: vec![Span::new(0, counts.len() as u32)],
        positive_buckets: counts.to_vec(),
        custom_values: bounds.to_vec(),
        ..Default::default()
    }
}

#[test]
fn custom_bounds_compact_and_exact() {
    // Bounds the compact form stores as integers, and ones it must store as 64 bits.
    let bounds = [
        0.005,
        0.01,
        0.1,
        0.25,
        1.0,
        2.5,
        33_554.43,
        33_554.431,
        1e9,
        f64::MAX,
    ];
    let mut with_neg = vec![-1.5, 1.0 / 3.0];
    with_neg.extend_from_slice(&bounds);
    for b in [&bounds[..], &with_neg[..]] {
        let h = nhcb(b, &vec![1.0; b.len() + 1]);
        let c = HistogramChunk::new(1, &h, CounterResetHint::Unknown);
        assert_ne!(c.bytes()[2] & FLAG_COMPACT_BOUNDS, 0);
        let mut out = Vec::new();
        decode_into(&mut out, c.bytes()).unwrap();
        let got: Vec<u64> = out[0].1.custom_values.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u64> = b.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
    }
    // The default client buckets (0.005 … 10) take at most 4 bytes each, not 8.
    let default = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let c = HistogramChunk::new(1, &nhcb(&default, &[0.0; 12]), CounterResetHint::Unknown);
    let mut bw = BitWriter::default();
    for &b in &default {
        write_bound(&mut bw, b);
    }
    assert!(bw.bytes().len() <= 22, "{} bytes", bw.bytes().len());
    assert!(
        c.bytes().len() < 3 + 2 + 8 + 4 + 1 + 11 * 8,
        "{} bytes",
        c.bytes().len()
    );
}

#[test]
fn custom_bounds_of_the_first_format_still_decode() {
    // Flag bit 3 clear: each bound as 64 bits.
    let mut bw = BitWriter::default();
    for b in [1, 0, 0] {
        bw.push_byte(b);
    }
    bw.write_varint(i64::from(CUSTOM_BUCKETS_SCHEMA));
    bw.write_bits(0, 64);
    write_spans(&mut bw, &[Span::new(0, 2)]);
    write_spans(&mut bw, &[]);
    bw.write_uvarint(1);
    bw.write_bits(2.5f64.to_bits(), 64);
    bw.write_varint(7); // t
    bw.write_bits(4.0f64.to_bits(), 64); // sum
    for v in [3, 0, 1, 2] {
        write_varbit(&mut bw, v); // count, zero count, buckets
    }
    let mut out = Vec::new();
    decode_into(&mut out, bw.bytes()).unwrap();
    assert_eq!(
        out,
        vec![(7, nhcb(&[2.5], &[1.0, 2.0]))]
            .into_iter()
            .map(|(t, mut h)| {
                h.sum = 4.0;
                (t, h)
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn changed_custom_bounds_cut_a_chunk() {
    let a = nhcb(&[1.0, 2.0], &[1.0, 1.0, 1.0]);
    let b = nhcb(&[1.0, 5.0], &[2.0, 2.0, 2.0]);
    let chunks = encode_all(&[
        (1, a.clone()),
        (2, a.clone()),
        (3, b.clone()),
        (4, b.clone()),
    ]);
    assert_eq!(chunks.len(), 2, "a chunk per set of bounds");
    let got = decode_all(&chunks);
    assert_eq!(got[1].1.custom_values, a.custom_values);
    assert_eq!(got[2].1.custom_values, b.custom_values);
    // Other bounds are a counter reset (Prometheus's appender), though every count grew.
    assert_eq!(got[2].1.counter_reset_hint, CounterResetHint::CounterReset);
}

#[test]
fn corrupt_headers_are_errors() {
    let check = |bytes: &[u8]| {
        let mut out = Vec::new();
        assert!(matches!(
            decode_into(&mut out, bytes),
            Err(Error::Corruption { .. })
        ));
    };
    check(&[]);
    check(&[1, 0]);
    // One sample announced, a span of 2^20 buckets declared, no data.
    let mut bw = BitWriter::default();
    for b in [1, 0, 0] {
        bw.push_byte(b);
    }
    bw.write_varint(0);
    bw.write_bits(0, 64);
    bw.write_uvarint(1);
    bw.write_varint(0);
    bw.write_uvarint(1 << 20);
    check(bw.bytes());
}

fn arb_series() -> impl Strategy<Value = Vec<(Timestamp, FloatHistogram)>> {
    (
        1usize..6,
        proptest::collection::vec(
            (
                1i64..100_000,
                any::<bool>(),
                any::<bool>(),
                proptest::collection::vec(0u32..1000, 6),
                0u8..4,
            ),
            1..150,
        ),
        prop_oneof![-4i32..=8, Just(CUSTOM_BUCKETS_SCHEMA)],
    )
        .prop_map(|(nb, steps, schema)| {
            let custom = schema == CUSTOM_BUCKETS_SCHEMA;
            let mut t = 0i64;
            let mut counts = [0f64; 6];
            steps
                .into_iter()
                .map(|(dt, frac, reset, inc, hint)| {
                    t += dt;
                    for (c, i) in counts.iter_mut().zip(&inc) {
                        if reset {
                            *c = 0.0;
                        }
                        *c += f64::from(*i) + if frac { 0.5 } else { 0.0 };
                    }
                    let buckets: Vec<f64> = counts.iter().take(nb).copied().collect();
                    let total: f64 = buckets.iter().sum();
                    let h = FloatHistogram {
                        counter_reset_hint: match hint {
                            0 => CounterResetHint::Unknown,
                            1 => CounterResetHint::CounterReset,
                            2 => CounterResetHint::NotCounterReset,
                            _ => CounterResetHint::Gauge,
                        },
                        schema,
                        zero_threshold: 1e-128,
                        zero_count: 0.0,
                        count: total,
                        sum: total * 0.75 - 3.0,
                        positive_spans: vec![
                            Span::new(-1, (nb as u32).min(2)),
                            Span::new(2, nb.saturating_sub(2) as u32),
                        ],
                        positive_buckets: buckets.clone(),
                        negative_spans: vec![Span::new(0, 1)],
                        negative_buckets: vec![buckets[0]],
                        custom_values: Vec::new(),
                    };
                    // Custom buckets: bounds the compact form stores as integers and as 64
                    // bits (1/3), no negative side.
                    let h = if custom {
                        FloatHistogram {
                            positive_spans: vec![Span::new(0, nb as u32)],
                            negative_spans: Vec::new(),
                            negative_buckets: Vec::new(),
                            custom_values: [0.005, 1.0 / 3.0, 2.5, 10.0, 1e9][..nb - 1].to_vec(),
                            ..h
                        }
                    } else {
                        h
                    };
                    (t, h)
                })
                .collect()
        })
}

proptest! {
    #[test]
    fn round_trip(samples in arb_series()) {
        let chunks = encode_all(&samples);
        let got = decode_all(&chunks);
        prop_assert_eq!(got.len(), samples.len());
        for ((t, h), (wt, wh)) in got.iter().zip(&samples) {
            prop_assert_eq!(t, wt);
            let (mut h, mut wh) = (h.clone(), wh.clone());
            // Hints are the codec's own (checked above); everything else is exact.
            h.counter_reset_hint = CounterResetHint::Unknown;
            wh.counter_reset_hint = CounterResetHint::Unknown;
            prop_assert_eq!(h, wh);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut out = Vec::new();
        let _ = decode_into(&mut out, &bytes);
        let mut it = HistogramIterator::new(&bytes);
        let _ = it.seek(1 << 40);
        prop_assert!(out.len() <= MAX_SAMPLES);
    }
}

/// Non-zero `(index, count)` pairs of both sides: what a histogram means, whatever its layout.
type Indexed = Vec<(i64, f64)>;

fn meaning(h: &FloatHistogram) -> (Indexed, Indexed) {
    let nz = |s: &[Span], b: &[f64]| indexed(s, b).filter(|x| x.1 != 0.0).collect::<Vec<_>>();
    (
        nz(&h.positive_spans, &h.positive_buckets),
        nz(&h.negative_spans, &h.negative_buckets),
    )
}

proptest! {
    #[test]
    fn growing_layouts_round_trip_by_index(
        steps in proptest::collection::vec((1i64..1000, 0usize..6, 0u32..5), 1..100),
    ) {
        // Buckets at indexes 0, 3, 4, 9, 10, 11 appear over time (a layout prefix that grows
        // or shrinks); counts only grow while a bucket is present.
        let all = [0i64, 3, 4, 9, 10, 11];
        let mut t = 0;
        let mut counts = [0f64; 6];
        let mut samples = Vec::new();
        for (dt, n, inc) in steps {
            t += dt;
            for c in counts.iter_mut().take(n + 1) {
                *c += f64::from(inc);
            }
            let idx = &all[..=n];
            let h = FloatHistogram {
                schema: 0,
                count: counts.iter().take(n + 1).sum(),
                sum: t as f64,
                positive_spans: spans_of(idx),
                positive_buckets: counts[..=n].to_vec(),
                ..Default::default()
            };
            samples.push((t, h));
        }
        let got = decode_all(&encode_all(&samples));
        prop_assert_eq!(got.len(), samples.len());
        for ((t, h), (wt, wh)) in got.iter().zip(&samples) {
            prop_assert_eq!(t, wt);
            prop_assert_eq!(meaning(h), meaning(wh));
            prop_assert_eq!((h.count, h.sum), (wh.count, wh.sum));
        }
    }
}
