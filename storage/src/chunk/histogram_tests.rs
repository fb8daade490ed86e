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
    // Another layout.
    let mut wider = hist(20.0, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    wider.positive_spans = vec![Span::new(-2, 2), Span::new(3, 2), Span::new(1, 2)];
    assert_eq!(
        c.append(10, &wider),
        Err(CutChunk {
            hint: CounterResetHint::NotCounterReset
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
        -4i32..=8,
    )
        .prop_map(|(nb, steps, schema)| {
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
