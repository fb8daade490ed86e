//! WAL replay: `Db::open` of a data directory whose head is all in the WAL, shaped like
//! `harness.py ingest --window 1` (each commit, hence each WAL samples record, carries one sample
//! for each of 2,000 series), beside a `memcpy` of the WAL's bytes; and `open_snapshot`, the same
//! data with a head snapshot written after the last sample (`Db::snapshot_head`), so the open
//! loads the snapshot and replays an empty WAL tail.
//!
//! Run: `cargo bench -p argus-storage --bench replay -- --quick`
//! (`ARGUS_REPLAY_SERIES` / `ARGUS_REPLAY_SAMPLES` change the default 10,000 series × 240).
//!
//! `ARGUS_REPLAY_DIR=<data dir>` (say a copy of the one `benches/replay_vs_prometheus.py` keeps
//! as `argus/data.killed`: a real remote-write WAL, SIGKILLed) opens that directory instead,
//! `ARGUS_REPLAY_OPENS` times (default 5, out-of-order window 1 d as the script's server), and
//! prints each open's wall and process CPU time (user + system, from `/proc/self/stat`, so the
//! CPU a loaded machine does not inflate) and the median; criterion does not run then. Each
//! open adds an empty WAL segment to the directory. A directory that does not exist is first
//! written with the synthetic data above (`ARGUS_REPLAY_SERIES` × `ARGUS_REPLAY_SAMPLES`), so
//! two builds can be compared on the same samples each in its own WAL format. With
//! `ARGUS_REPLAY_SNAPSHOT=1` the first open then writes a head snapshot (`Db::snapshot_head`)
//! and prints its size per sample, taking `ARGUS_REPLAY_SERIES` × `ARGUS_REPLAY_SAMPLES` as the
//! sample count (the later opens load it).

mod common;

use argus_storage::{Appendable, Db, Options, SyncMode};
use common::env_or;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

fn opts() -> Options {
    Options {
        background: false,
        sync: SyncMode::Buffer,
        // Opens and closes leave the directory as it is (no snapshot at close).
        head_snapshot_interval_ms: None,
        ..Options::default()
    }
}

/// Writes `series × samples` (15 s apart; counters, gauges and a staleness-free random walk)
/// through the public appender, 2,000 series per commit, then closes the Db (after a head
/// snapshot when `snapshot`).
fn write(dir: &Path, series: u64, samples: u64, snapshot: bool) {
    let db = Db::open(dir, opts()).expect("open");
    let labels = common::metric_host_labels(series);
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
    if snapshot {
        db.snapshot_head().expect("snapshot");
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

/// User + system CPU seconds of this process so far (Linux: `/proc/self/stat`, in clock ticks
/// of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after = stat.rsplit_once(')').expect("stat comm").1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// Opens `dir` `n` times, printing wall and CPU seconds per open and their medians.
fn open_dir(dir: &Path, n: usize) {
    let opts = Options {
        out_of_order_window_ms: 86_400_000,
        ..opts()
    };
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (t0, c0) = (std::time::Instant::now(), cpu_seconds());
        let db = Db::open(dir, opts.clone()).expect("open");
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        let m = db.metrics();
        println!(
            "open {}: {wall:.3} s wall, {cpu:.2} s CPU, {} series",
            dir.display(),
            m.head_series
        );
        if walls.is_empty() && std::env::var_os("ARGUS_REPLAY_SNAPSHOT").is_some() {
            let t0 = std::time::Instant::now();
            db.snapshot_head().expect("snapshot");
            let size: u64 = std::fs::read_dir(dir)
                .expect("read dir")
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("head_snapshot.")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum();
            let samples =
                env_or("ARGUS_REPLAY_SERIES", 10_000) * env_or("ARGUS_REPLAY_SAMPLES", 240);
            println!(
                "snapshot: {size} B, {:.3} B/sample ({samples} samples), written in {:.3} s",
                size as f64 / samples as f64,
                t0.elapsed().as_secs_f64()
            );
        }
        db.close().expect("close");
        drop(db);
        walls.push(wall);
        cpus.push(cpu);
    }
    walls.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    println!(
        "median of {n}: {:.3} s wall, {:.2} s CPU",
        walls[n / 2],
        cpus[n / 2]
    );
}

fn bench(c: &mut Criterion) {
    let (series, samples) = (
        env_or("ARGUS_REPLAY_SERIES", 10_000),
        env_or("ARGUS_REPLAY_SAMPLES", 240),
    );
    if let Ok(dir) = std::env::var("ARGUS_REPLAY_DIR") {
        let dir = Path::new(&dir);
        if !dir.exists() {
            write(dir, series, samples, false);
        }
        open_dir(dir, env_or("ARGUS_REPLAY_OPENS", 5) as usize);
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), series, samples, false);
    let wal = dir_bytes(&tmp.path().join("wal"));
    let snap = tempfile::tempdir().expect("tempdir");
    write(snap.path(), series, samples, true);
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
    g.bench_function(format!("open_snapshot/{series}x{samples}"), |b| {
        b.iter(|| {
            let db = Db::open(snap.path(), opts()).expect("reopen");
            assert_eq!(
                db.metrics().head_series,
                series,
                "BUG: snapshot lost series"
            );
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
