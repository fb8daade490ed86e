//! Fuzz the native-histogram chunk decoder: arbitrary bytes must never panic, hang or allocate
//! without bound, and decode(encode(histograms)) must reproduce every sample (hints aside, which
//! the codec sets itself).
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::internals::{histogram_chunk_decode_into, histogram_chunk_encode};
use argus_storage::{CounterResetHint, FloatHistogram, Span};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Untrusted chunk bytes.
    Bytes(Vec<u8>),
    /// A series: schema (below -4: custom buckets, schema -53), spans (offset, length ≤ 8) and
    /// per sample a time step, counts and sum bits.
    Series(i8, Vec<(i8, u8)>, Vec<(u32, bool, Vec<u16>, u64)>),
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(bytes) => {
        let mut out = Vec::new();
        let _ = histogram_chunk_decode_into(&mut out, &bytes);
        assert!(out.len() <= usize::from(u16::MAX));
    }
    Input::Series(schema, spans, steps) => {
        let custom = schema < -4;
        let mut spans: Vec<Span> = spans
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, &(o, l))| {
                let o = i32::from(o);
                Span::new(if i == 0 { o } else { o.abs() }, u32::from(l % 8))
            })
            .collect();
        let mut n: usize = spans.iter().map(|s| s.length as usize).sum();
        let mut custom_values = Vec::new();
        if custom {
            // One span from bucket 0; bounds both forms of the compact encoding take.
            n = n.max(1);
            spans = vec![Span::new(0, n as u32)];
            custom_values = (1..n).map(|i| i as f64 * 0.125 + f64::from(schema) / 3.0).collect();
            custom_values.sort_by(f64::total_cmp);
        }
        let mut t = 0i64;
        let mut samples = Vec::new();
        for (dt, frac, counts, sum) in steps.into_iter().take(500) {
            t += i64::from(dt) + 1;
            let add = if frac { 0.5 } else { 0.0 };
            let buckets: Vec<f64> = (0..n)
                .map(|i| f64::from(counts.get(i).copied().unwrap_or(0)) + add)
                .collect();
            samples.push((
                t,
                FloatHistogram {
                    counter_reset_hint: CounterResetHint::Unknown,
                    schema: if custom { -53 } else { i32::from(schema).clamp(-4, 8) },
                    zero_threshold: 1e-128,
                    zero_count: add,
                    count: buckets.iter().sum::<f64>() + add,
                    sum: f64::from_bits(sum),
                    positive_spans: spans.clone(),
                    positive_buckets: buckets,
                    custom_values: custom_values.clone(),
                    ..Default::default()
                },
            ));
        }
        let chunks = histogram_chunk_encode(&samples);
        let mut got = Vec::new();
        for c in &chunks {
            histogram_chunk_decode_into(&mut got, c).expect("own encoding decodes");
        }
        assert_eq!(got.len(), samples.len());
        for ((gt, gh), (wt, wh)) in got.iter().zip(&samples) {
            assert_eq!(gt, wt);
            assert_eq!(gh.sum.to_bits(), wh.sum.to_bits());
            assert_eq!(gh.positive_buckets, wh.positive_buckets);
            assert_eq!((gh.count, gh.zero_count), (wh.count, wh.zero_count));
            assert_eq!(gh.positive_spans, wh.positive_spans);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&gh.custom_values), bits(&wh.custom_values));
        }
    }
});
