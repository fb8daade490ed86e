//! Native-histogram chunk codec throughput: append (encode) and iterate (decode) ns/sample of
//! 120-sample histogram chunks of cumulative latency histograms (schema 3, about 80 buckets):
//! "growing" has buckets appearing over time (the encoder recodes the chunk to the wider layout
//! each time), "steady" has its layout from the start. Beside a `memcpy` of the same bytes; also
//! prints bytes/sample.
//!
//! Run: `cargo bench -p argus --bench histogram_chunk -- --quick`.

use argus_storage::internals::{histogram_chunk_encode, histogram_chunk_iterate};
use argus_storage::{FloatHistogram, Span};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::hint::black_box;

const SAMPLES: usize = 120;
const SERIES: usize = 100;

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 10_000) as f64 / 10_000.0 + 0.01
    }
}

/// `steady`: every bucket the series will use is there (count 0) from the first sample, as a
/// long-running process's histogram is; otherwise buckets appear as observations reach them.
fn series(rng: &mut Rng, steady: bool) -> Vec<(i64, FloatHistogram)> {
    let mut counts: BTreeMap<i64, f64> = BTreeMap::new();
    if steady {
        counts.extend((-120..=20).map(|i| (i, 0.0)));
    }
    let (mut count, mut sum) = (0.0, 0.0);
    (0..SAMPLES as i64)
        .map(|i| {
            for _ in 0..20 + rng.next() % 60 {
                let v = 0.05 * (rng.unit() * 4.0) * (rng.unit() * 2.0);
                *counts.entry((v.log2() * 8.0).ceil() as i64).or_default() += 1.0;
                count += 1.0;
                sum += v;
            }
            let mut spans: Vec<Span> = Vec::new();
            let mut prev: Option<i64> = None;
            for &idx in counts.keys() {
                match (prev, spans.last_mut()) {
                    (Some(p), Some(last)) if idx == p + 1 => last.length += 1,
                    (Some(p), _) => spans.push(Span::new((idx - p - 1) as i32, 1)),
                    (None, _) => spans.push(Span::new(idx as i32, 1)),
                }
                prev = Some(idx);
            }
            let h = FloatHistogram {
                schema: 3,
                zero_threshold: 1e-128,
                count,
                sum,
                positive_spans: spans,
                positive_buckets: counts.values().copied().collect(),
                ..Default::default()
            };
            (1_700_000_000_000 + i * 15_000, h)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for kind in ["growing", "steady"] {
        bench_kind(c, kind);
    }
}

fn bench_kind(c: &mut Criterion, kind: &str) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<Vec<(i64, FloatHistogram)>> = (0..SERIES)
        .map(|_| series(&mut rng, kind == "steady"))
        .collect();
    let chunks: Vec<Vec<Vec<u8>>> = data.iter().map(|s| histogram_chunk_encode(s)).collect();
    let bytes: usize = chunks.iter().flatten().map(Vec::len).sum();
    let buckets: usize = data
        .iter()
        .map(|s| s[SAMPLES - 1].1.positive_buckets.len())
        .sum();
    eprintln!(
        "histogram_chunk/{kind}: {:.2} bytes/sample, {:.1} buckets per histogram at the end, {} \
         chunks for {SERIES} series of {SAMPLES} samples",
        bytes as f64 / (SERIES * SAMPLES) as f64,
        buckets as f64 / SERIES as f64,
        chunks.iter().map(Vec::len).sum::<usize>(),
    );
    let mut g = c.benchmark_group(format!("histogram_chunk/{kind}"));
    g.throughput(Throughput::Elements(SAMPLES as u64));
    let mut n = 0usize;
    g.bench_function("append", |b| {
        b.iter(|| {
            n = (n + 1) % SERIES;
            black_box(histogram_chunk_encode(black_box(&data[n])).len())
        })
    });
    g.bench_function("iterate", |b| {
        b.iter(|| {
            n = (n + 1) % SERIES;
            let mut total = 0.0;
            for c in &chunks[n] {
                histogram_chunk_iterate(black_box(c), |_, h| total += h.count).expect("decodes");
            }
            black_box(total)
        })
    });
    let mut dst = vec![0u8; 1 << 16];
    g.bench_function("memcpy_same_bytes", |b| {
        b.iter(|| {
            n = (n + 1) % SERIES;
            for c in &chunks[n] {
                dst[..c.len()].copy_from_slice(black_box(c));
            }
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
