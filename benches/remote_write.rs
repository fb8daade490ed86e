//! Remote-write receiver throughput: snappy + protobuf decode of a realistic batch (2,000
//! samples: 400 node-exporter-like series × 5 samples), and decode + append + commit into
//! `MemStorage`. A `memcpy` of the same compressed bytes is the floor.
//!
//! `db/*`: the receiver's whole path into a real `Db` (head + WAL, `SyncMode::Buffer` so the
//! disk does not set the pace) in live remote write's shape, one sample for each of 2,000
//! already known series per request, each request one scrape round later than the one before:
//! `append_body` (in-place scan, series cache, append by handle) against the prost path
//! (`decode_into` + `append_request`, labels built and looked up per series), and
//! `append_body_of_20000_series`: the same requests cycling through 20,000 series (10 requests
//! a round, as the harness's `measure` sends them), so each series' memory is out of the core's
//! cache when it is appended again. Only decoding, appending and committing are timed, not
//! building the next body.

mod common;

use argus::ingest::prompb::{Label, Sample, TimeSeries, WriteRequest};
use argus::ingest::remote_write::{
    Decoder, LabelLimits, MAX_DECOMPRESSED_BYTES, append_body, append_request, encode,
};
use argus::ingest::remote_write_scan::Scan;
use argus::ingest::series_cache::{Lookups, SeriesCache};
use argus_storage::testing::MemStorage;
use argus_storage::{Appendable, Db, Options, SyncMode};
use common::{DB_SERIES, bench_cpu, bench_rounds, bench_rounds_cpu, db_request};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const SERIES: usize = 400;
const SAMPLES: usize = 5;

fn batch() -> WriteRequest {
    let label = |n: &str, v: String| Label {
        name: n.into(),
        value: v,
    };
    let timeseries = (0..SERIES)
        .map(|i| TimeSeries {
            labels: vec![
                label("__name__", format!("node_cpu_seconds_total_{}", i % 20)),
                label("cpu", (i % 8).to_string()),
                label("instance", format!("10.0.{}.{}:9100", i / 100, i % 100)),
                label("job", "node".into()),
                label(
                    "mode",
                    ["idle", "user", "system", "iowait", "irq"][i % 5].into(),
                ),
            ],
            samples: (0..SAMPLES)
                .map(|j| Sample {
                    value: 1234.5 + (i * j) as f64 * 0.25,
                    timestamp: 1_700_000_000_000 + j as i64 * 15_000,
                })
                .collect(),
            exemplars: vec![],
            histograms: vec![],
        })
        .collect();
    WriteRequest {
        timeseries,
        metadata: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let body = encode(&batch());
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("memcpy_floor", |b| b.iter(|| black_box(body.clone())));
    let mut dec = Decoder::new();
    let mut req = WriteRequest::default();
    g.bench_function("decode", |b| {
        b.iter(|| {
            dec.decode_into(black_box(&body), MAX_DECOMPRESSED_BYTES, &mut req)
                .unwrap()
        })
    });
    g.throughput(Throughput::Elements((SERIES * SAMPLES) as u64));
    g.bench_function("decode_append_commit", |b| {
        b.iter_batched(
            MemStorage::new,
            |storage| {
                dec.decode_into(&body, MAX_DECOMPRESSED_BYTES, &mut req)
                    .unwrap();
                let mut app = storage.appender();
                let out = append_request(app.as_mut(), &mut req, 1_700_000_000_000).unwrap();
                app.commit().unwrap();
                assert_eq!(out.samples_written, (SERIES * SAMPLES) as u64);
                storage
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A database in `dir` without background work, its WAL written to the page cache only.
fn open_buffered(dir: &std::path::Path) -> Db {
    let opts = Options {
        background: false,
        sync: SyncMode::Buffer,
        ..Options::default()
    };
    Db::open(dir, opts).expect("open")
}

/// The receiver's per-series steps on their own, over live remote write's requests (one
/// sample for each of 2,000 series, cycling through 20,000 known series as `measure` sends
/// them; the bodies decompressed beforehand): `scan` is [`Scan::scan`] of a request,
/// `get_all_20000` the series cache's keyed hash and probe of its 2,000 label byte strings
/// and the holding of their series ([`SeriesCache::get_all`]). Timed in thread CPU time
/// ([`common::thread_cpu`]), as the machine these run on is shared.
fn bench_lookup(c: &mut Criterion) {
    const PARTS: usize = 10;
    let mut g = c.benchmark_group("remote_write/lookup");
    g.throughput(Throughput::Elements(DB_SERIES as u64));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_buffered(dir.path());
    let cache = SeriesCache::new(LabelLimits::default());
    let mut dec = Decoder::new();
    for part in 0..PARTS {
        let mut app = db.appender();
        append_body(
            &mut dec,
            &cache,
            &db_request(0, part),
            app.as_mut(),
            1_700_000_000_000,
        )
        .expect("append");
        app.commit().expect("commit");
    }
    let raw: Vec<Vec<u8>> = (0..PARTS)
        .map(|p| {
            snap::raw::Decoder::new()
                .decompress_vec(&db_request(1, p))
                .expect("snappy")
        })
        .collect();
    let mut scan = Scan::default();
    let mut i = 0;
    bench_cpu(&mut g, "scan", || {
        assert!(scan.scan(black_box(&raw[i % PARTS])));
        i += 1;
    });
    let scans: Vec<Scan> = raw
        .iter()
        .map(|r| {
            let mut s = Scan::default();
            assert!(s.scan(r));
            s
        })
        .collect();
    let (mut lookups, mut out) = (Lookups::default(), Vec::new());
    bench_cpu(&mut g, "get_all_20000", || {
        let p = i % PARTS;
        i += 1;
        let keys = scans[p].series.iter().map(|s| &raw[p][s.labels.clone()]);
        cache.get_all(keys, &mut lookups, &mut out);
        assert!(out.iter().all(Option::is_some));
        out.clear();
    });
    g.finish();
}

/// `append_body`, then commit, into a `Db`: requests of [`DB_SERIES`] series each, cycling
/// through `parts` such requests per round (so a series' memory was last touched `parts - 1`
/// requests before: with 10, 20,000 series, far more than a core's cache, as in the harness's
/// `measure`, whose requests carry 2,000 of 20,000 series).
fn bench_db(c: &mut Criterion) {
    let mut g = c.benchmark_group("remote_write/db");
    g.throughput(Throughput::Elements(DB_SERIES as u64));
    // (prost path, requests per round, timed in thread CPU time): the last is the one before
    // in CPU time, which a shared machine moves far less than wall time.
    for (prost_path, parts, cpu) in [
        (false, 1, false),
        (true, 1, false),
        (false, 10, false),
        (false, 10, true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_buffered(dir.path());
        let cache = SeriesCache::new(LabelLimits::default());
        let mut dec = Decoder::new();
        let mut req = WriteRequest::default();
        let mut run = |body: &[u8], now: i64| {
            let mut app = db.appender();
            let written = if prost_path {
                dec.decode_into(body, MAX_DECOMPRESSED_BYTES, &mut req)
                    .expect("decode");
                append_request(app.as_mut(), &mut req, now)
                    .expect("append")
                    .samples_written
            } else {
                append_body(&mut dec, &cache, body, app.as_mut(), now)
                    .expect("append")
                    .outcome
                    .samples_written
            };
            app.commit().expect("commit");
            assert_eq!(written, DB_SERIES as u64);
        };
        let name = match (prost_path, parts, cpu) {
            (true, _, _) => "prost_path".to_string(),
            (false, 1, _) => "append_body".to_string(),
            (false, n, false) => format!("append_body_of_{}_series", n * DB_SERIES),
            (false, n, true) => format!("append_body_of_{}_series_cpu", n * DB_SERIES),
        };
        if cpu {
            bench_rounds_cpu(&mut g, &name, parts, &mut run);
        } else {
            bench_rounds(&mut g, &name, parts, &mut run);
        }
    }
    g.finish();
}

criterion_group!(benches, bench, bench_lookup, bench_db);
criterion_main!(benches);
