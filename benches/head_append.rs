//! Head append throughput: one scrape-like round (one sample for each of 100k series, cached
//! refs, commits of 1000 samples, WAL in `SyncMode::Buffer`) with 1 and 2 appending threads,
//! beside a `memcpy` of the same (t, v) bytes. Prints head bytes per active series.
//!
//! Run: `cargo bench -p argus --bench head_append -- --quick`.

use argus_storage::{Appendable, Db, Labels, Options, SeriesRef, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const SERIES: usize = 100_000;
const BATCH: usize = 1000;
const STEP_MS: i64 = 15_000;

fn labels(i: usize) -> Labels {
    let inst = format!("10.0.{}.{}:9100", i / 250, i % 250);
    let name = format!("node_metric_{}", i % 200);
    Labels::from_pairs(&[
        ("__name__", name.as_str()),
        ("instance", inst.as_str()),
        ("job", "node"),
        ("cpu", &(i % 8).to_string()),
    ])
}

fn open(dir: &std::path::Path) -> Db {
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        ..Options::default()
    };
    Db::open(dir, opts).expect("open")
}

/// Appends one sample at `t` for `series[lo..hi]`, filling/using `refs`.
fn scrape(db: &Db, series: &[Labels], refs: &mut [Option<SeriesRef>], t: i64, v: f64) {
    let mut app = db.appender();
    for (n, (l, r)) in series.iter().zip(refs.iter_mut()).enumerate() {
        *r = Some(app.append(*r, l, t, v + n as f64).expect("append"));
        if n % BATCH == BATCH - 1 {
            app.commit().expect("commit");
        }
    }
    app.commit().expect("commit");
}

fn bench(c: &mut Criterion) {
    let series: Vec<Labels> = (0..SERIES).map(labels).collect();
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(5));

    for threads in [1usize, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        let mut refs: Vec<Vec<Option<SeriesRef>>> = series
            .chunks(SERIES / threads)
            .map(|c| vec![None; c.len()])
            .collect();
        let t = AtomicI64::new(1_700_000_000_000);
        // First round creates the series (not measured).
        let t0 = t.fetch_add(STEP_MS, Ordering::Relaxed);
        for (part, r) in series.chunks(SERIES / threads).zip(refs.iter_mut()) {
            scrape(&db, part, r, t0, 1.0);
        }
        g.bench_function(format!("{threads}_threads_100k_series"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let ts = t.fetch_add(STEP_MS, Ordering::Relaxed);
                    std::thread::scope(|s| {
                        for (part, r) in series.chunks(SERIES / threads).zip(refs.iter_mut()) {
                            let db = &db;
                            s.spawn(move || scrape(db, part, r, ts, ts as f64));
                        }
                    });
                }
                start.elapsed()
            })
        });
        let m = db.metrics();
        let samples_per_series = m.samples_appended / m.head_series.max(1);
        eprintln!(
            "head bytes per active series: {:.0} ({} series, {} samples each, {} chunks)",
            m.head_bytes as f64 / m.head_series as f64,
            m.head_series,
            samples_per_series,
            m.head_chunks
        );
    }

    let src: Vec<(i64, f64)> = (0..SERIES).map(|i| (i as i64, i as f64)).collect();
    let mut dst = vec![(0i64, 0f64); SERIES];
    g.bench_function("memcpy_floor_100k_samples", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();

    // Bytes per active series at Prometheus's usual 2 h head: 480 samples at 15 s (4 chunks).
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let few: Vec<Labels> = series.iter().take(10_000).cloned().collect();
    let mut refs = vec![None; few.len()];
    for i in 0..480 {
        let t = 1_700_000_000_000 + i * STEP_MS;
        scrape(&db, &few, &mut refs, t, (i % 7) as f64);
    }
    let m = db.metrics();
    eprintln!(
        "head bytes per active series after 480 samples (2 h at 15 s): {:.0} ({} series)",
        m.head_bytes as f64 / m.head_series as f64,
        m.head_series
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
