//! WAL hot path: encoding a 1,000-sample batch as a samples record and logging it with
//! `SyncMode::Buffer` (write(2) only), beside a `memcpy` of the same bytes.
//!
//! Run: `cargo bench -p argus --bench wal -- --quick`.

use argus_storage::SyncMode;
use argus_storage::internals::{SampleEncoder, Wal};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal = Wal::open(dir.path(), 32 << 20, SyncMode::Buffer).expect("open WAL");
    let mut enc = SampleEncoder::default();
    let mut batch: Vec<(u64, i64, f64)> = (0..BATCH as u64)
        .map(|r| (r * 7, 1_700_000_000_000 + (r % 13) as i64, r as f64 * 1.5))
        .collect();
    let mut buf = Vec::with_capacity(BATCH * 12 + 32);

    let mut g = c.benchmark_group("wal");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("encode_samples_1000", |b| {
        b.iter(|| {
            buf.clear();
            enc.encode(black_box(&batch), &mut buf);
            black_box(buf.len())
        })
    });
    eprintln!(
        "wal: samples record of {BATCH} samples = {} bytes",
        buf.len()
    );
    g.bench_function("encode_and_log_1000_buffer", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(2000);
                let start = Instant::now();
                for _ in 0..n {
                    for s in batch.iter_mut() {
                        s.1 += 15_000;
                    }
                    buf.clear();
                    enc.encode(&batch, &mut buf);
                    wal.log(&[&buf]).expect("log");
                }
                total += start.elapsed();
                done += n;
                // Keep the disk footprint bounded (untimed): drop closed segments.
                wal.checkpoint(&|_| false, i64::MAX).expect("checkpoint");
            }
            total
        })
    });
    let src = buf.clone();
    let mut dst = vec![0u8; src.len()];
    g.bench_function("memcpy_same_bytes", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
