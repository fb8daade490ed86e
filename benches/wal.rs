//! WAL hot path: encoding a 1,000-sample batch as a samples record and logging it with
//! `SyncMode::Buffer` (write(2) only), beside a `memcpy` of the same bytes; and durable commits
//! (`SyncMode::Data`, one `fdatasync` per acknowledged batch unless concurrent commits share
//! one) from 1 and 8 threads into a real `Db`.
//!
//! Run: `cargo bench -p argus --bench wal -- --quick`.

use argus_storage::internals::{SampleEncoder, Wal};
use argus_storage::{Appendable, Db, Labels, Options, SyncMode};
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

/// Samples per commit in the durable-commit bench (a small remote-write request).
const COMMIT_SAMPLES: usize = 100;

/// `threads` threads commit `COMMIT_SAMPLES`-sample batches (distinct series per thread) into a
/// `Db` with `SyncMode::Data`; throughput is in samples over all threads.
fn commit_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_commit");
    g.throughput(Throughput::Elements(COMMIT_SAMPLES as u64));
    g.sample_size(10);
    for threads in [1usize, 8] {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            sync: SyncMode::Data,
            background: false,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).expect("open Db");
        let labels: Vec<Vec<Labels>> = (0..threads)
            .map(|th| {
                (0..COMMIT_SAMPLES)
                    .map(|i| {
                        Labels::from_pairs(&[
                            ("__name__", "bench_commit"),
                            ("thread", &th.to_string()),
                            ("i", &i.to_string()),
                        ])
                    })
                    .collect()
            })
            .collect();
        let clock = std::sync::atomic::AtomicI64::new(1_700_000_000_000);
        let (mut commits, fsyncs_before) = (0u64, db.metrics().wal_fsyncs);
        g.bench_function(
            format!("data_{threads}_threads_{COMMIT_SAMPLES}_samples"),
            |b| {
                b.iter_custom(|iters| {
                    // `iters` commits in all, split over the threads.
                    let per = iters.div_ceil(threads as u64);
                    commits += per * threads as u64;
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for ls in &labels {
                            let (db, clock) = (&db, &clock);
                            s.spawn(move || {
                                let mut app = db.appender();
                                let mut refs = vec![None; ls.len()];
                                for _ in 0..per {
                                    let t =
                                        clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    for (l, r) in ls.iter().zip(refs.iter_mut()) {
                                        *r = Some(app.append(*r, l, t, 1.0).expect("append"));
                                    }
                                    app.commit().expect("commit");
                                }
                            });
                        }
                    });
                    // Per-thread time for `per` commits, scaled to `iters` commits.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * threads as u64) as f64)
                })
            },
        );
        let fsyncs = db.metrics().wal_fsyncs - fsyncs_before;
        eprintln!(
            "wal_commit {threads} threads: {commits} commits, {fsyncs} fsyncs ({:.2} per commit)",
            fsyncs as f64 / commits.max(1) as f64
        );
        db.close().expect("close");
    }
    g.finish();
}

criterion_group!(benches, bench, commit_bench);
criterion_main!(benches);
