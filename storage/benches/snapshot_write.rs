//! Writing a head snapshot of a head of `series` × 130 samples (15 s apart: one completed chunk
//! and an open one of 10 samples per series), each iteration a whole snapshot
//! (`Db::snapshot_head_whole`: capture under the WAL lock, packing, zstd, fsync, read-back
//! verify and the series-only checkpoint; `_fast`: as the size trigger writes it, completed
//! chunks copied rather than re-encoded packed), or a delta on top of one after one or five more
//! samples per series (`Db::snapshot_head` after a whole snapshot and the appends, which are
//! not timed).
//!
//! Run: `cargo bench --profile profiling -p argus-storage --bench snapshot_write -- --quick`
//! (20,000 series; `ARGUS_SNAPSHOT_SERIES=200000` for the bigger head).

mod common;

use argus_storage::{Appendable, Db, Labels, Options, SeriesRef, SyncMode};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const START: i64 = 1_700_000_000_000;

/// One sample per series at `START + 15 s × k`.
fn append_round(db: &Db, labels: &[Labels], refs: &mut [Option<SeriesRef>], k: u64) {
    let t = START + 15_000 * k as i64;
    for start in (0..labels.len()).step_by(2000) {
        let mut app = db.appender();
        for i in start..(start + 2000).min(labels.len()) {
            let v = (k * 7 + i as u64 % 13) as f64;
            refs[i] = Some(app.append(refs[i], &labels[i], t, v).expect("append"));
        }
        app.commit().expect("commit");
    }
}

fn bench(c: &mut Criterion) {
    let series = common::env_or("ARGUS_SNAPSHOT_SERIES", 20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options {
            background: false,
            sync: SyncMode::Buffer,
            ..Options::default()
        },
    )
    .expect("open");
    let labels = common::metric_host_labels(series);
    let mut refs = vec![None; labels.len()];
    for k in 0..130u64 {
        append_round(&db, &labels, &mut refs, k);
    }
    let mut g = c.benchmark_group("snapshot_write");
    g.sample_size(10);
    g.throughput(Throughput::Elements(series));
    g.bench_function(format!("{series}_series_x130"), |b| {
        b.iter(|| db.snapshot_head_whole().expect("snapshot"));
    });
    // As the size trigger writes them: completed chunks copied, not re-encoded packed.
    g.bench_function(format!("{series}_series_x130_fast"), |b| {
        b.iter(|| db.snapshot_head_with(true, false).expect("snapshot"));
    });
    let mut k = 130u64;
    // 1 sample per series since the last link, and 5 (scrape-bench's every-series-changes case:
    // a 5 s scrape interval, a delta every ~25 s).
    for rounds in [1, 5] {
        g.bench_function(format!("{series}_series_x130_delta_after_{rounds}"), |b| {
            b.iter_batched(
                || {
                    db.snapshot_head_whole().expect("snapshot");
                    for _ in 0..rounds {
                        append_round(&db, &labels, &mut refs, k);
                        k += 1;
                    }
                },
                |()| db.snapshot_head().expect("delta"),
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
