//! Selecting head series: matchers → postings → series sorted by labels → each series' labels
//! and chunks, for 10,000 and 100,000 series of one metric (labels shaped like scraped series),
//! reading labels only (no sample decoding), beside a `memcpy` of the packed label bytes.
//!
//! Run: `cargo bench --profile profiling -p argus-storage --bench head_select -- --quick`.

use argus_storage::{Appendable, Db, Labels, MatchType, Matcher, Options, Queryable, SyncMode};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const START: i64 = 1_700_000_000_000;

/// Series `i` of `n`: `http_requests_total` with job, instance, method, code, handler.
fn labels(i: usize) -> Labels {
    let inst = format!("10.0.{}.{}:9100", i / 250 % 256, i % 250);
    let job = format!("job-{}", i % 7);
    let handler = format!("/api/v1/h{}", i / 7 % 97);
    let code = ["200", "404", "500", "503"][i % 4];
    let method = ["GET", "POST"][i / 4 % 2];
    Labels::from_pairs(&[
        ("__name__", "http_requests_total"),
        ("job", job.as_str()),
        ("instance", inst.as_str()),
        ("handler", handler.as_str()),
        ("code", code),
        ("method", method),
    ])
}

/// Selects every series of the metric and reads each one's labels; returns the label bytes.
fn select_labels(db: &Db) -> usize {
    let q = db.querier(i64::MIN, i64::MAX).expect("querier");
    let m = Matcher::new(MatchType::Equal, "__name__", "http_requests_total").expect("matcher");
    let mut set = q.select(&[m]);
    let mut bytes = 0;
    while set.next() {
        bytes += set
            .labels()
            .iter()
            .map(|l| l.name.len() + l.value.len())
            .sum::<usize>();
    }
    assert!(set.err().is_none());
    bytes
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_select");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    for n in [10_000usize, 100_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            background: false,
            sync: SyncMode::Buffer,
            retention_ms: None,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).expect("open");
        let mut app = db.appender();
        for i in 0..n {
            app.append(None, &labels(i), START, i as f64)
                .expect("append");
        }
        app.commit().expect("commit");
        let total = select_labels(&db);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("labels", n), &db, |b, db| {
            b.iter(|| black_box(select_labels(db)))
        });
        let flat: Vec<u8> = vec![7; total];
        let mut dst = vec![0u8; total];
        g.bench_with_input(BenchmarkId::new("memcpy", n), &flat, |b, flat| {
            b.iter(|| {
                dst.copy_from_slice(flat);
                black_box(&dst);
            })
        });
        db.close().expect("close");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
