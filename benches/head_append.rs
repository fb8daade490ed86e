//! Head append throughput: one scrape-like round (one sample for each of 100k series, cached
//! refs, commits of 1000 samples, WAL in `SyncMode::Buffer`) with 1 and 2 appending threads,
//! beside a `memcpy` of the same (t, v) bytes.
//!
//! Also prints head bytes per active series (the `head_bytes` estimate of `Db::metrics`):
//! fresh (one sample per series), after the throughput runs, and after 2 h of 15 s data
//! (480 samples of counter- and gauge-like values per series, 10k series); then the process's
//! peak RSS (`VmHWM`).
//!
//! Run: `cargo bench -p argus --bench head_append -- --quick`. With `ARGUS_BENCH_1M=1` the
//! throughput runs also use 1M series (a few more minutes, and a few GiB of memory).

use argus_storage::{Appendable, Db, Labels, Options, SeriesRef, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const SERIES: usize = 100_000;
const BATCH: usize = 1000;
const STEP_MS: i64 = 15_000;
const START_MS: i64 = 1_700_000_000_000;

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

/// Value of series `n` at scrape `i`, like a node exporter's: counters with irregular
/// increments (half the series), byte gauges moving in pages, and gauges with fractions
/// (every fifth series).
fn value(n: usize, i: i64) -> f64 {
    let x = (n as i64 * 7919 + i * 104_729) % 1000;
    if n % 5 == 4 {
        ((n as i64 * 31 + i) as f64 / 7.0).sin() * 100.0
    } else if n.is_multiple_of(2) {
        (i * 37 + (i * x) / 100) as f64
    } else {
        ((n as i64 % 64 + 1) * (1 << 30) + (x - 500) * 4096) as f64
    }
}

fn open(dir: &std::path::Path) -> Db {
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        ..Options::default()
    };
    Db::open(dir, opts).expect("open")
}

/// Appends scrape `i` (time `START_MS + i * STEP_MS`) of `series`, whose first index is
/// `first`, filling/using `refs`.
fn scrape(db: &Db, series: &[Labels], first: usize, refs: &mut [Option<SeriesRef>], i: i64) {
    let mut app = db.appender();
    let t = START_MS + i * STEP_MS;
    for (n, (l, r)) in series.iter().zip(refs.iter_mut()).enumerate() {
        *r = Some(app.append(*r, l, t, value(first + n, i)).expect("append"));
        if n % BATCH == BATCH - 1 {
            app.commit().expect("commit");
        }
    }
    app.commit().expect("commit");
}

fn per_series(db: &Db) -> (f64, u64, u64) {
    let m = db.metrics();
    let n = m.head_series.max(1);
    (m.head_bytes as f64 / n as f64, n, m.samples_appended / n)
}

/// Peak resident set size of this process in KiB (`VmHWM`), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn throughput(c: &mut Criterion, n_series: usize, measure: Duration) {
    let series: Vec<Labels> = (0..n_series).map(labels).collect();
    let name = if n_series >= 1_000_000 {
        format!("{}M", n_series / 1_000_000)
    } else {
        format!("{}k", n_series / 1000)
    };
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(n_series as u64));
    g.sample_size(10).measurement_time(measure);

    for threads in [1usize, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        let part = n_series.div_ceil(threads);
        let mut refs: Vec<Vec<Option<SeriesRef>>> =
            series.chunks(part).map(|c| vec![None; c.len()]).collect();
        let scrapes = AtomicI64::new(0);
        // First round creates the series (not measured).
        let i0 = scrapes.fetch_add(1, Ordering::Relaxed);
        for (k, (p, r)) in series.chunks(part).zip(refs.iter_mut()).enumerate() {
            scrape(&db, p, k * part, r, i0);
        }
        if threads == 1 {
            let (b, n, _) = per_series(&db);
            eprintln!("head bytes per active series, fresh: {b:.0} ({n} series, 1 sample each)");
        }
        g.bench_function(format!("{threads}_threads_{name}_series"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let i = scrapes.fetch_add(1, Ordering::Relaxed);
                    std::thread::scope(|s| {
                        for (k, (p, r)) in series.chunks(part).zip(refs.iter_mut()).enumerate() {
                            let db = &db;
                            s.spawn(move || scrape(db, p, k * part, r, i));
                        }
                    });
                }
                start.elapsed()
            })
        });
        let (b, n, samples) = per_series(&db);
        let chunks = db.metrics().head_chunks;
        eprintln!(
            "head bytes per active series: {b:.0} ({n} series, {samples} samples each, {chunks} \
             chunks)"
        );
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    throughput(c, SERIES, Duration::from_secs(5));
    if std::env::var_os("ARGUS_BENCH_1M").is_some() {
        throughput(c, 1_000_000, Duration::from_secs(20));
    }

    let src: Vec<(i64, f64)> = (0..SERIES).map(|i| (i as i64, i as f64)).collect();
    let mut dst = vec![(0i64, 0f64); SERIES];
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(SERIES as u64));
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
    let few: Vec<Labels> = (0..10_000).map(labels).collect();
    let mut refs = vec![None; few.len()];
    for i in 0..480 {
        scrape(&db, &few, 0, &mut refs, i);
    }
    let (b, n, _) = per_series(&db);
    eprintln!("head bytes per active series after 480 samples (2 h at 15 s): {b:.0} ({n} series)");
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak RSS of the bench process (VmHWM): {} MiB", kib / 1024);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
