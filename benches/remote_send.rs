//! Remote-write sender, CPU only: WAL records of scrape-shaped data (2,000 node-exporter-like
//! series, one sample each per commit, 50 commits) read back by a queue's reader (frames,
//! decompression, record decoding, series resolved to their request bytes) and written as
//! snappy-compressed 1.0 requests of 2,000 samples, as a queue's shard writes them. Throughput is
//! in samples; one request is 2,000 of them. `encode_only` times the request writing and
//! compression of the same samples without the WAL (`..._whole_bytes_order`: with the series
//! of each request sorted by their whole label bytes, the order before `wire::request_order`);
//! a `memcpy` of the raw request bytes is the floor.
//!
//! Run: `cargo bench -p argus --bench remote_send`.

use argus::remote::bench_support::SendPath;
use argus_storage::{Appendable, Db, Labels, Options, SyncMode, WalPosition};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const SERIES: usize = 2_000;
const ROUNDS: usize = 50;
const PER_REQUEST: usize = 2_000;

fn labels(i: usize) -> Labels {
    let modes = [
        "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
    ];
    Labels::from_pairs(&[
        (
            "__name__",
            format!("node_cpu_seconds_total_{}", i % 25).as_str(),
        ),
        ("cpu", (i / 8 % 16).to_string().as_str()),
        ("instance", format!("127.77.0.{}:9100", i / 200).as_str()),
        ("job", "node"),
        ("mode", modes[i % 8]),
    ])
}

/// A `Db` whose WAL holds the series and `ROUNDS` commits of one sample per series, values
/// moving as counters do (a few distinct increments, so the WAL's compression sees real data).
fn wal(dir: &std::path::Path) -> Db {
    let db = Db::open(
        dir,
        Options {
            background: false,
            sync: SyncMode::Buffer,
            retention_ms: None,
            ..Options::default()
        },
    )
    .expect("open db");
    let series: Vec<Labels> = (0..SERIES).map(labels).collect();
    let mut refs = vec![None; SERIES];
    for r in 0..ROUNDS {
        let mut app = db.appender();
        let t = 1_700_000_000_000 + r as i64 * 5_000;
        for (i, l) in series.iter().enumerate() {
            let v = (i * 1_000 + r * (i % 7)) as f64 * 0.01;
            refs[i] = Some(app.append(refs[i], l, t, v).expect("append"));
        }
        app.commit().expect("commit");
    }
    db
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = wal(dir.path());
    let external = Labels::from_pairs(&[("replica", "a")]);
    let start = WalPosition::default();
    let total = (SERIES * ROUNDS) as u64;
    let mut probe = SendPath::new(&db, start, external.clone()).expect("reader");
    let t = probe.run(PER_REQUEST, PER_REQUEST).expect("read");
    assert_eq!(t.samples, total, "BUG: the reader must see every sample");
    eprintln!(
        "remote_send: {} requests, {:.2} compressed bytes per sample",
        t.requests,
        t.bytes as f64 / t.samples as f64
    );

    let mut g = c.benchmark_group("remote_send");
    g.throughput(Throughput::Elements(total));
    g.bench_function("wal_to_requests", |b| {
        b.iter(|| {
            let mut p = SendPath::new(&db, start, external.clone()).expect("reader");
            black_box(p.run(PER_REQUEST, PER_REQUEST).expect("read"))
        })
    });
    let mut p = SendPath::new(&db, start, external.clone()).expect("reader");
    let raw = p.read_all().expect("read");
    g.bench_function("encode_only", |b| {
        b.iter(|| black_box(p.encode_all(PER_REQUEST)))
    });
    p.set_whole_bytes_order(true);
    let whole = p.encode_all(PER_REQUEST);
    eprintln!(
        "remote_send: whole-bytes order {:.2} compressed bytes per sample",
        whole.bytes as f64 / whole.samples as f64
    );
    g.bench_function("encode_only_whole_bytes_order", |b| {
        b.iter(|| black_box(p.encode_all(PER_REQUEST)))
    });
    p.set_whole_bytes_order(false);
    let mut dst = vec![0u8; raw.len()];
    g.bench_function("memcpy_floor", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&raw));
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
