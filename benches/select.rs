//! Select + full decode of 10k series (120 samples each) from the head and from a block,
//! beside a `memcpy` of the same (t, v) bytes.
//!
//! Run: `cargo bench -p argus --bench select -- --quick`.

use argus_storage::{Appendable, Db, Labels, MatchType, Matcher, Options, Queryable, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const SERIES: usize = 10_000;
const SAMPLES: i64 = 120;
const STEP_MS: i64 = 15_000;
const START: i64 = 1_700_000_000_000;

fn fill(db: &Db, start: i64) {
    let mut app = db.appender();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            let inst = format!("host-{}", i / 10);
            let dev = format!("dev{}", i % 10);
            Labels::from_pairs(&[("__name__", "disk_io"), ("instance", &inst), ("dev", &dev)])
        })
        .collect();
    let mut refs = vec![None; SERIES];
    for k in 0..SAMPLES {
        for (i, (l, r)) in labels.iter().zip(refs.iter_mut()).enumerate() {
            let v = (k * 100 + i as i64 % 13) as f64;
            *r = Some(app.append(*r, l, start + k * STEP_MS, v).expect("append"));
        }
        app.commit().expect("commit");
    }
}

fn decode_all(db: &Db) -> usize {
    let q = db.querier(i64::MIN, i64::MAX).expect("querier");
    let m = Matcher::new(MatchType::Regex, "__name__", "disk_.*").expect("matcher");
    let mut set = q.select(&[m]);
    let mut n = 0;
    let mut sum = 0.0;
    while set.next() {
        let mut it = set.samples();
        while it.next() {
            sum += it.at().1;
            n += 1;
        }
    }
    assert!(set.err().is_none());
    black_box(sum);
    n
}

/// [`decode_all`] through `append_floats` into one reused buffer (the query engine's read).
fn decode_all_batched(db: &Db, buf: &mut Vec<(i64, f64)>) -> usize {
    let q = db.querier(i64::MIN, i64::MAX).expect("querier");
    let m = Matcher::new(MatchType::Regex, "__name__", "disk_.*").expect("matcher");
    let mut set = q.select(&[m]);
    let mut n = 0;
    let mut sum = 0.0;
    while set.next() {
        let mut it = set.samples();
        buf.clear();
        if it.seek(i64::MIN) {
            let stopped = it.append_floats(i64::MAX, buf);
            assert!(!stopped && it.err().is_none());
        }
        sum += buf.iter().map(|s| s.1).sum::<f64>();
        n += buf.len();
    }
    assert!(set.err().is_none());
    black_box(sum);
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("select");
    let total = (SERIES as i64 * SAMPLES) as u64;
    g.throughput(Throughput::Elements(total));
    g.sample_size(10).measurement_time(Duration::from_secs(5));

    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        block_range_ms: 3_600_000,
        retention_ms: None,
        ..Options::default()
    };
    let head_dir = tempfile::tempdir().expect("tempdir");
    let head_db = Db::open(head_dir.path(), opts.clone()).expect("open");
    fill(&head_db, START);
    assert_eq!(decode_all(&head_db), total as usize);
    g.bench_function("head_10k_series_full_decode", |b| {
        b.iter(|| decode_all(&head_db))
    });
    let mut buf = Vec::new();
    assert_eq!(decode_all_batched(&head_db, &mut buf), total as usize);
    g.bench_function("head_10k_series_append_floats", |b| {
        b.iter(|| decode_all_batched(&head_db, &mut buf))
    });

    // Block: data in [0, 30 min) of an hour range, then a later sample pushes the head past
    // 1.5 ranges so compact() cuts the first hour into a block.
    let block_dir = tempfile::tempdir().expect("tempdir");
    let block_db = Db::open(block_dir.path(), opts).expect("open");
    let start = 0;
    fill(&block_db, start);
    let mut app = block_db.appender();
    app.append(
        None,
        &Labels::from_pairs(&[("__name__", "tick")]),
        2 * 3_600_000,
        1.0,
    )
    .expect("append");
    app.commit().expect("commit");
    block_db.compact().expect("compact");
    assert!(block_db.metrics().blocks >= 1);
    assert_eq!(decode_all(&block_db), total as usize);
    g.bench_function("block_10k_series_full_decode", |b| {
        b.iter(|| decode_all(&block_db))
    });
    assert_eq!(decode_all_batched(&block_db, &mut buf), total as usize);
    g.bench_function("block_10k_series_append_floats", |b| {
        b.iter(|| decode_all_batched(&block_db, &mut buf))
    });

    let src: Vec<(i64, f64)> = (0..total as i64).map(|i| (i, i as f64)).collect();
    let mut dst = vec![(0i64, 0f64); src.len()];
    g.bench_function("memcpy_floor_same_samples", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
