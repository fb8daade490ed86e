//! The remote-write handler's per-request state: a new `Decoder` and appender for every
//! request (as `api::write` did until session 15) against this thread's kept ones
//! (`ingest::scratch`), on the receiver's whole path into a real `Db` (`SyncMode::Buffer`):
//! requests of 2,000 known series with one sample each, cycling through 20,000 series as the
//! harness's `measure` sends them (`remote_write/db/append_body_of_20000_series`'s workload).
//!
//! Runs under mimalloc, as the server does; run it with `MIMALLOC_PURGE_DELAY=0` (the
//! server's setting, `main.rs`) to see what a request's freed buffers cost it: pages given back
//! at once and faulted in and zeroed again by the next request. A `memcpy` of a request's
//! compressed bytes is the floor. Only decoding, appending and committing are timed.

use argus::ingest::prompb::{Label, Sample, TimeSeries, WriteRequest};
use argus::ingest::remote_write::{Decoder, LabelLimits, append_body, encode};
use argus::ingest::scratch;
use argus::ingest::series_cache::SeriesCache;
use argus_storage::{Appendable, Db, Options, SyncMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Series per request.
const SERIES: usize = 2000;
/// Requests per round: 20,000 series.
const PARTS: usize = 10;

/// Request `part` of round `round`.
fn request(round: i64, part: usize) -> Vec<u8> {
    let label = |n: &str, v: String| Label {
        name: n.into(),
        value: v,
    };
    let timeseries = (part * SERIES..(part + 1) * SERIES)
        .map(|i| TimeSeries {
            labels: vec![
                label("__name__", format!("app_metric_{}_total", i % 50)),
                label("instance", format!("10.1.{}.{}:8080", i / 10_000, i / 50)),
                label("job", "api-server".into()),
                label("pod", format!("api-server-{:05}", i / 50)),
            ],
            samples: vec![Sample {
                value: (round * 17 + i as i64) as f64,
                timestamp: 1_700_000_000_000 + round * 15_000,
            }],
            exemplars: vec![],
            histograms: vec![],
        })
        .collect();
    encode(&WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_scratch");
    g.throughput(Throughput::Elements(SERIES as u64));
    let body = request(0, 0);
    g.bench_function("memcpy_floor", |b| b.iter(|| black_box(body.clone())));
    for kept in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            background: false,
            sync: SyncMode::Buffer,
            ..Options::default()
        };
        let db: Arc<dyn Appendable> = Arc::new(Db::open(dir.path(), opts).expect("open"));
        let cache = SeriesCache::new(LabelLimits::default());
        let run = |body: &[u8], now: i64| {
            let written = if kept {
                let mut s = scratch::take();
                let mut app = s.appender(&db);
                let n = append_body(&mut s.decoder, &cache, body, app.as_mut(), now)
                    .expect("append")
                    .outcome
                    .samples_written;
                app.commit().expect("commit");
                s.put_back(&db, Some(app), n as usize);
                n
            } else {
                let mut dec = Decoder::new();
                let mut app = db.appender();
                let n = append_body(&mut dec, &cache, body, app.as_mut(), now)
                    .expect("append")
                    .outcome
                    .samples_written;
                app.commit().expect("commit");
                n
            };
            assert_eq!(written, SERIES as u64);
        };
        for part in 0..PARTS {
            run(&request(0, part), 1_700_000_000_000);
        }
        let name = if kept {
            "thread_scratch"
        } else {
            "fresh_per_request"
        };
        let mut sent = PARTS;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let (round, part) = ((sent / PARTS) as i64, sent % PARTS);
                    sent += 1;
                    let body = request(round, part);
                    let now = 1_700_000_000_000 + round * 15_000;
                    let t0 = Instant::now();
                    run(&body, now);
                    spent += t0.elapsed();
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
