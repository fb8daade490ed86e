//! Chunk codec throughput: encode and decode ns/sample of 120-sample XOR chunks on realistic
//! counter and gauge data and on random floats, each beside a `memcpy` of the same bytes (the
//! physical floor). Also prints bytes/sample per data set.
//!
//! Run: `cargo bench -p argus --bench chunk -- --quick`. The `chunk_cpu/*` groups decode all
//! 500 chunks of a data set per iteration in thread CPU time (`common::bench_cpu`), for A/Bs on
//! a loaded machine: `-- chunk_cpu --sample-size 10 --measurement-time 8`.

mod common;

use argus_storage::SampleIterator;
use argus_storage::internals::{XorChunk, XorIterator, chunk_decode_into, chunk_encode_best};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const SAMPLES: usize = 120;
const SERIES: usize = 500;
const STEP_MS: i64 = 15_000;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Scrape timestamps: 15 s apart with a few ms of jitter, as real scrapes have.
fn timestamps(rng: &mut Rng) -> Vec<i64> {
    let start = 1_700_000_000_000 + rng.below(STEP_MS as u64) as i64;
    (0..SAMPLES as i64)
        .map(|i| start + i * STEP_MS + rng.below(5) as i64)
        .collect()
}

/// Data sets: one Vec of samples per series.
fn data_set(kind: &str, seed: u64) -> Vec<Vec<(i64, f64)>> {
    let mut rng = Rng(seed | 1);
    (0..SERIES)
        .map(|s| {
            let ts = timestamps(&mut rng);
            let mut v: f64 = match kind {
                "counter" => rng.below(1_000_000) as f64,
                _ => 100.0 + rng.below(1000) as f64 / 10.0,
            };
            let rate = 1 + rng.below(50);
            ts.into_iter()
                .map(|t| {
                    let out = v;
                    v = match kind {
                        // Counters: integer increments; a third of series idle (constant).
                        "counter" if s % 3 == 0 => v,
                        "counter" => v + rng.below(rate * 15) as f64,
                        // Gauges: a random walk at one decimal place (temperatures, %, load).
                        "gauge" => ((v * 10.0).round() + rng.below(21) as f64 - 10.0) / 10.0,
                        // Random doubles: the worst case.
                        _ => f64::from_bits(rng.next() >> 12 | 0x3ff0_0000_0000_0000) - 1.0,
                    };
                    (t, out)
                })
                .collect()
        })
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    c
}

fn bench(c: &mut Criterion) {
    for (i, kind) in ["counter", "gauge", "random"].into_iter().enumerate() {
        let data = data_set(kind, 0x9e37_79b9 + i as u64);
        let chunks: Vec<XorChunk> = data.iter().map(|s| encode(s)).collect();
        let bytes: usize = chunks.iter().map(|c| c.bytes().len()).sum();
        let mut best: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut packed_chunks = 0;
        for s in &data {
            let mut b = Vec::new();
            let enc = chunk_encode_best(s, &mut b);
            packed_chunks += usize::from(enc == 3);
            best.push((enc, b));
        }
        let best_bytes: usize = best.iter().map(|b| b.1.len()).sum();
        eprintln!(
            "chunk/{kind}: XOR {:.3} bytes/sample; packed-or-XOR {:.3} bytes/sample \
             ({packed_chunks}/{SERIES} chunks packed; {} samples)",
            bytes as f64 / (SERIES * SAMPLES) as f64,
            best_bytes as f64 / (SERIES * SAMPLES) as f64,
            SERIES * SAMPLES,
        );
        let mut g = c.benchmark_group(format!("chunk/{kind}"));
        g.throughput(Throughput::Elements(SAMPLES as u64));
        let mut n = 0usize;
        g.bench_function("xor_encode", |b| {
            b.iter(|| {
                n = (n + 1) % SERIES;
                black_box(encode(black_box(&data[n])).bytes().len())
            })
        });
        let mut it = XorIterator::new(chunks[0].bytes());
        g.bench_function("xor_decode", |b| {
            b.iter(|| {
                n = (n + 1) % SERIES;
                it.reset(black_box(chunks[n].bytes()));
                let mut sum = 0.0;
                while it.next() {
                    sum += it.at().1;
                }
                black_box(sum)
            })
        });
        let mut out = Vec::with_capacity(SAMPLES);
        g.bench_function("best_encode", |b| {
            b.iter(|| {
                n = (n + 1) % SERIES;
                out.clear();
                let mut buf = Vec::with_capacity(256);
                black_box(chunk_encode_best(black_box(&data[n]), &mut buf));
                black_box(buf.len())
            })
        });
        g.bench_function("best_decode", |b| {
            b.iter(|| {
                n = (n + 1) % SERIES;
                out.clear();
                let (enc, bytes) = &best[n];
                chunk_decode_into(*enc, &mut out, black_box(bytes)).expect("decodes");
                black_box(out.len())
            })
        });
        let mut dst = vec![0u8; 4096];
        g.bench_function("memcpy_same_bytes", |b| {
            b.iter(|| {
                n = (n + 1) % SERIES;
                let src = black_box(chunks[n].bytes());
                dst[..src.len()].copy_from_slice(src);
                black_box(&dst);
            })
        });
        g.finish();
        let mut g = c.benchmark_group(format!("chunk_cpu/{kind}"));
        g.throughput(Throughput::Elements((SAMPLES * SERIES) as u64));
        let mut it = XorIterator::new(chunks[0].bytes());
        common::bench_cpu(&mut g, "xor_decode", || {
            let mut sum = 0.0;
            for c in &chunks {
                it.reset(black_box(c.bytes()));
                while it.next() {
                    sum += it.at().1;
                }
            }
            black_box(sum);
        });
        let mut out = Vec::with_capacity(SAMPLES);
        common::bench_cpu(&mut g, "best_decode", || {
            for (enc, bytes) in &best {
                out.clear();
                chunk_decode_into(*enc, &mut out, black_box(bytes)).expect("decodes");
                black_box(out.len());
            }
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
