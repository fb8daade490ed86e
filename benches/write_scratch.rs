//! The remote-write handler's per-request state: a new `Decoder` and appender for every
//! request (as `api::write` did until session 15) against this thread's kept ones
//! (`ingest::scratch`), on the receiver's whole path into a real `Db` (`SyncMode::Buffer`):
//! requests of 2,000 known series with one sample each, cycling through 20,000 series as the
//! harness's `measure` sends them: `remote_write/db/append_body_of_20000_series`'s requests
//! (`benches/common`; before session 16's review this bench built simpler label sets).
//!
//! Runs under mimalloc, as the server does; run it with `MIMALLOC_PURGE_DELAY=0` (the
//! server's setting, `main.rs`) to see what a request's freed buffers cost it: pages given back
//! at once and faulted in and zeroed again by the next request. A `memcpy` of a request's
//! compressed bytes is the floor. Only decoding, appending and committing are timed.

mod common;

use argus::ingest::remote_write::{Decoder, LabelLimits, append_body};
use argus::ingest::scratch;
use argus::ingest::series_cache::SeriesCache;
use argus_storage::{Appendable, Db, Options, SyncMode};
use common::{DB_SERIES, bench_rounds, db_request};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Requests per round: 20,000 series.
const PARTS: usize = 10;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_scratch");
    g.throughput(Throughput::Elements(DB_SERIES as u64));
    let body = db_request(0, 0);
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
            assert_eq!(written, DB_SERIES as u64);
        };
        let name = if kept {
            "thread_scratch"
        } else {
            "fresh_per_request"
        };
        bench_rounds(&mut g, name, PARTS, run);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
