//! PromQL range-query benchmark, modelled on Prometheus's `BenchmarkRangeQuery`: 1 h at a 15 s
//! step over 15 s data, for 100 / 1,000 / 10,000 series, against the in-memory storage.
//! Throughput is the number of stored samples the query range covers. A `memcpy` of as many
//! `(i64, f64)` samples is the floor. `nh` holds native histograms (`n / 10` series, schema 3,
//! 24 populated buckets, growing like counters) for `histogram_quantile` over native data.

use argus_query::{Engine, EngineOptions};
use argus_storage::{FloatHistogram, Labels, Span, testing::MemStorage};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const STEP_MS: i64 = 15_000;
const RANGE_MS: i64 = 3_600_000;
/// Data starts 10 minutes before the query so that 5 m windows are full at the first step.
const WARMUP_MS: i64 = 600_000;
const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];

/// `x` and `y` with `n` series each, plus `h_bucket` with `n / 10` instances × 10 buckets.
fn storage(n: usize) -> MemStorage {
    let db = MemStorage::new();
    let points = (WARMUP_MS + RANGE_MS) / STEP_MS + 1;
    let add = |labels: Labels, per_step: f64| {
        for k in 0..points {
            db.insert(labels.clone(), k * STEP_MS, k as f64 * per_step);
        }
    };
    for i in 0..n {
        let inst = format!("i{i}");
        add(
            Labels::from_pairs(&[("__name__", "x"), ("instance", &inst)]),
            (i % 7 + 1) as f64,
        );
        add(
            Labels::from_pairs(&[("__name__", "y"), ("instance", &inst)]),
            (i % 5 + 1) as f64,
        );
    }
    for i in 0..n / 10 {
        let inst = format!("i{i}");
        let labels = Labels::from_pairs(&[("__name__", "nh"), ("instance", &inst)]);
        for k in 0..points {
            let buckets: Vec<f64> = (0..24).map(|b| (k * (b % 5 + 1)) as f64).collect();
            let h = FloatHistogram {
                schema: 3,
                count: buckets.iter().sum(),
                sum: k as f64 * 10.0,
                positive_spans: vec![Span::new(-8, 24)],
                positive_buckets: buckets,
                ..Default::default()
            };
            db.insert_histogram(labels.clone(), k * STEP_MS, h);
        }
        for (b, le) in BUCKETS.iter().enumerate() {
            add(
                Labels::from_pairs(&[("__name__", "h_bucket"), ("instance", &inst), ("le", le)]),
                (b + 1) as f64,
            );
        }
    }
    db
}

const QUERIES: [(&str, &str); 6] = [
    ("rate", "rate(x[1m])"),
    ("sum_rate", "sum(rate(x[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    ),
    (
        "histogram_quantile_native",
        "histogram_quantile(0.9, sum(rate(nh[5m])))",
    ),
    ("topk", "topk(5, rate(x[5m]))"),
    ("binary", "x + y"),
];

fn bench(c: &mut Criterion) {
    let engine = Engine::new(EngineOptions::default());
    let sizes: Vec<usize> = std::env::var("ARGUS_BENCH_SERIES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    for n in sizes {
        let db = storage(n);
        let mut g = c.benchmark_group(format!("range_query_{n}_series"));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));
        let samples = (n as u64) * (RANGE_MS / STEP_MS + 1) as u64;
        g.throughput(Throughput::Elements(samples));
        let floor_src: Vec<(i64, f64)> = (0..samples as i64).map(|i| (i, i as f64)).collect();
        g.bench_function("memcpy_floor", |b| {
            b.iter(|| black_box(floor_src.clone()));
        });
        for (name, q) in QUERIES {
            g.bench_with_input(BenchmarkId::new(name, n), &q, |b, q| {
                b.iter(|| {
                    engine
                        .range_query(&db, q, WARMUP_MS, WARMUP_MS + RANGE_MS, STEP_MS)
                        .expect("query failed")
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
