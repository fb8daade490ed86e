//! Opening a database from a head snapshot after a crash: `series` × 480 samples (15 s apart,
//! 2 h: the harness's medium set at 20,000 series) in a whole snapshot, and the same with 60
//! more samples per series in the WAL after it (the tail a restart replays). Each iteration
//! opens a fresh copy of the crashed directory (the copy is not timed); the floor is a
//! `memcpy` of the snapshot file's bytes. `chain` holds the same 480 samples per series as a
//! whole snapshot after 360 and a delta after the other 120, to compare a chain's load with a
//! whole snapshot's of the same head; in `chain_tail` the delta after 440 holds the next 30
//! samples, which grow each series' open chunk (what a kill during a burst of writes finds: the
//! size trigger's links are a fraction of a second apart; the head cuts chunks at 2 h block
//! boundaries, which for `START` falls at sample 427).
//!
//! Run: `cargo bench --profile profiling -p argus-storage --bench snapshot_load -- --quick`
//! (`ARGUS_SNAPSHOT_SERIES=200000` for a bigger head).

mod common;

use argus_storage::{Appendable, Db, Labels, Options, SeriesRef, SyncMode};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

const START: i64 = 1_700_000_000_000;

fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Buffer,
        ..Options::default()
    }
}

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

/// A crashed directory: `rounds` samples per series in a whole snapshot (the first `base` of
/// them, when given, in a whole snapshot and the rest in a delta on it), then `tail` more in
/// the WAL; the Db is dropped without `close` (which would write another snapshot).
fn crashed(dir: &Path, labels: &[Labels], base: Option<u64>, rounds: u64, tail: u64) {
    let db = Db::open(dir, opts()).expect("open");
    let mut refs = vec![None; labels.len()];
    for k in 0..base.unwrap_or(rounds) {
        append_round(&db, labels, &mut refs, k);
    }
    db.snapshot_head_whole().expect("snapshot");
    if let Some(b) = base {
        for k in b..rounds {
            append_round(&db, labels, &mut refs, k);
        }
        db.snapshot_head().expect("delta");
        let delta = std::fs::read_dir(dir).expect("read_dir").any(|e| {
            let e = e.expect("entry");
            e.file_name().to_string_lossy().starts_with("head_delta.")
        });
        assert!(delta, "the chain case wrote no delta");
    }
    for k in rounds..rounds + tail {
        append_round(&db, labels, &mut refs, k);
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

fn snapshot_bytes(dir: &Path) -> Vec<u8> {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        if e.file_name()
            .to_string_lossy()
            .starts_with("head_snapshot.")
        {
            return std::fs::read(e.path()).expect("read");
        }
    }
    panic!("no head snapshot in {}", dir.display());
}

fn bench(c: &mut Criterion) {
    let series = common::env_or("ARGUS_SNAPSHOT_SERIES", 20_000);
    let labels = common::metric_host_labels(series);
    let root = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("snapshot_load");
    g.sample_size(10);
    for (name, base, rounds, tail) in [
        ("x480_whole", None, 480, 0),
        ("x480_whole_plus_wal_60", None, 480, 60),
        ("x480_chain", Some(360), 480, 0),
        ("x470_chain_tail", Some(440), 470, 0),
    ] {
        let src = root.path().join(name);
        crashed(&src, &labels, base, rounds, tail);
        let bytes = snapshot_bytes(&src);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        if name == "x480_whole" {
            g.bench_function(format!("{series}_series_x480_memcpy_floor"), |b| {
                let mut dst = vec![0u8; bytes.len()];
                b.iter(|| dst.copy_from_slice(std::hint::black_box(&bytes)));
            });
        }
        let to = root.path().join("copy");
        g.bench_function(format!("{series}_series_{name}"), |b| {
            b.iter_batched(
                || {
                    // The copy the last iteration opened (its Db is dropped by now).
                    let _ = std::fs::remove_dir_all(&to);
                    copy_dir(&src, &to);
                    to.clone()
                },
                |to| (Db::open(&to, opts()).expect("open"), to),
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
