//! Instant queries at the end of 1 h of 15 s data in a `Db` head (2,000 series of 6 labels,
//! 240 samples each: one completed head chunk and the open one), the shape of most of the
//! harness's `measure` queries: a plain selector, a function of one, an aggregation, and
//! `avg_over_time` (a range read, for comparison). Throughput: series selected. A `memcpy` of
//! as many `(i64, f64)` samples as one hour of the series is the floor.
//!
//! Run: `cargo bench --profile profiling -p argus --bench instant_query -- --quick`.

use argus_query::{Engine, EngineOptions, Value};
use argus_storage::{Appendable, Db, Labels, Options, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const SERIES: usize = 2_000;
const SAMPLES: i64 = 240;
const STEP_MS: i64 = 15_000;
const START: i64 = 1_700_000_000_000;
const END: i64 = START + (SAMPLES - 1) * STEP_MS;

fn fill(db: &Db) {
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            let pod = format!("pod-{}", i / 10);
            let inst = format!("10.0.{}.{}:8080", i / 250, i % 250);
            let ns = ["prod", "staging", "dev"][i % 3];
            let job = ["api-server", "frontend", "worker", "db"][i % 4];
            Labels::from_pairs(&[
                ("__name__", "temperature_celsius"),
                ("instance", &inst),
                ("job", job),
                ("namespace", ns),
                ("pod", &pod),
                ("zone", "eu-west-1a"),
            ])
        })
        .collect();
    let mut refs = vec![None; SERIES];
    for k in 0..SAMPLES {
        let mut app = db.appender();
        for (i, (l, r)) in labels.iter().zip(refs.iter_mut()).enumerate() {
            let v = 40.0 + ((k as f64) / 20.0 + i as f64).sin() * 5.0 + (k % 7) as f64 * 0.01;
            *r = Some(app.append(*r, l, START + k * STEP_MS, v).expect("append"));
        }
        app.commit().expect("commit");
    }
}

const QUERIES: [(&str, &str); 4] = [
    ("selector", "temperature_celsius"),
    ("floor", "floor(temperature_celsius)"),
    ("sum_by_job", "sum by (job) (temperature_celsius)"),
    (
        "avg_over_time_10m",
        "avg_over_time(temperature_celsius[10m])",
    ),
];

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        retention_ms: None,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    fill(&db);
    let engine = Engine::new(EngineOptions::default());
    let mut g = c.benchmark_group("instant_query_2000_series");
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(SERIES as u64));
    let floor_src: Vec<(i64, f64)> = (0..SERIES as i64 * SAMPLES)
        .map(|i| (i, i as f64))
        .collect();
    g.bench_function("memcpy_floor", |b| b.iter(|| black_box(floor_src.clone())));
    for (name, q) in QUERIES {
        match engine.instant_query(&db, q, END).expect("query") {
            Value::Vector(v) => assert!(!v.is_empty(), "{q}: empty"),
            other => panic!("{q}: {other:?}"),
        }
        g.bench_function(name, |b| {
            b.iter(|| engine.instant_query(&db, q, END).expect("query"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
