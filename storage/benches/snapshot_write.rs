//! Writing a head snapshot (`Db::snapshot_head`) of a head of `series` × 130 samples (15 s
//! apart: one completed chunk and an open one of 10 samples per series), each iteration a whole
//! snapshot: capture under the WAL lock, packing, zstd, fsync, read-back verify and the
//! series-only checkpoint.
//!
//! Run: `cargo bench --profile profiling -p argus-storage --bench snapshot_write -- --quick`
//! (20,000 series; `ARGUS_SNAPSHOT_SERIES=200000` for the bigger head).

use argus_storage::{Appendable, Db, Labels, Options, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn head(dir: &std::path::Path, series: u64) -> Db {
    let db = Db::open(
        dir,
        Options {
            background: false,
            sync: SyncMode::Buffer,
            ..Options::default()
        },
    )
    .expect("open");
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            let name = format!("metric_{}", i % 100);
            let inst = format!("host-{}", i / 100);
            Labels::from_pairs(&[("__name__", name.as_str()), ("instance", inst.as_str())])
        })
        .collect();
    let mut refs = vec![None; labels.len()];
    for k in 0..130u64 {
        let t = 1_700_000_000_000 + 15_000 * k as i64;
        for chunk in (0..labels.len()).collect::<Vec<_>>().chunks(2000) {
            let mut app = db.appender();
            for &i in chunk {
                let v = (k * 7 + i as u64 % 13) as f64;
                refs[i] = Some(app.append(refs[i], &labels[i], t, v).expect("append"));
            }
            app.commit().expect("commit");
        }
    }
    db
}

fn bench(c: &mut Criterion) {
    let series = std::env::var("ARGUS_SNAPSHOT_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000u64);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = head(dir.path(), series);
    let mut g = c.benchmark_group("snapshot_write");
    g.sample_size(10);
    g.throughput(Throughput::Elements(series));
    g.bench_function(format!("{series}_series_x130"), |b| {
        b.iter(|| db.snapshot_head().expect("snapshot"));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
