//! WAL replay: `Db::open` of a data directory whose head is all in the WAL, shaped like
//! `harness.py ingest --window 1` (each commit, hence each WAL samples record, carries one sample
//! for each of 2,000 series), beside a `memcpy` of the WAL's bytes.
//!
//! Run: `cargo bench -p argus-storage --bench replay -- --quick`
//! (`ARGUS_REPLAY_SERIES` / `ARGUS_REPLAY_SAMPLES` change the default 10,000 series × 240).

use argus_storage::{Appendable, Db, Labels, Options, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Buffer,
        ..Options::default()
    }
}

/// Writes `series × samples` (15 s apart; counters, gauges and a staleness-free random walk)
/// through the public appender, 2,000 series per commit, then closes the Db.
fn write(dir: &Path, series: u64, samples: u64) {
    let db = Db::open(dir, opts()).expect("open");
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            let name = format!("metric_{}", i % 100);
            let inst = format!("host-{}", i / 100);
            Labels::from_pairs(&[("__name__", name.as_str()), ("instance", inst.as_str())])
        })
        .collect();
    let mut refs = vec![None; labels.len()];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut vals = vec![0f64; labels.len()];
    for k in 0..samples {
        let t = 1_700_000_000_000 + 15_000 * k as i64;
        for (start, end) in (0..series)
            .step_by(2000)
            .map(|s| (s, (s + 2000).min(series)))
        {
            let mut app = db.appender();
            for i in start..end {
                let i = i as usize;
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                vals[i] = match i % 3 {
                    0 => vals[i] + (state % 100) as f64,
                    1 => (state % 1000) as f64 / 10.0,
                    _ => vals[i] + 1.0,
                };
                refs[i] = Some(app.append(refs[i], &labels[i], t, vals[i]).expect("append"));
            }
            app.commit().expect("commit");
        }
    }
    db.close().expect("close");
}

fn dir_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read wal dir") {
        let p = e.expect("entry").path();
        if p.is_file() {
            out.extend(std::fs::read(&p).expect("read segment"));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let (series, samples) = (
        env_or("ARGUS_REPLAY_SERIES", 10_000),
        env_or("ARGUS_REPLAY_SAMPLES", 240),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), series, samples);
    let wal = dir_bytes(&tmp.path().join("wal"));
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(series * samples));
    g.bench_function(format!("open/{series}x{samples}"), |b| {
        b.iter(|| {
            let db = Db::open(tmp.path(), opts()).expect("reopen");
            assert_eq!(db.metrics().head_series, series, "BUG: replay lost series");
            db.close().expect("close");
        })
    });
    g.bench_function(format!("memcpy/{}B", wal.len()), |b| {
        b.iter(|| black_box(wal.clone()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
