//! A head snapshot's capture: what `head::snapshot::take` does while it holds the WAL's lock
//! (every append waits meanwhile), on a head of `series` series × 30 samples, each iteration
//! one capture of every series.
//!
//! Run: `cargo bench --profile profiling -p argus-storage --features fuzzing --bench
//! snapshot_capture -- --quick` (400,000 series, scrape-bench's size; `ARGUS_CAPTURE_SERIES`
//! to change it).

use argus_storage::internals::CaptureHead;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let series: u64 = std::env::var("ARGUS_CAPTURE_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let head = CaptureHead::new(series as usize, 30).expect("head");
    let mut g = c.benchmark_group("snapshot_capture");
    g.sample_size(10);
    g.throughput(Throughput::Elements(series));
    g.bench_function(format!("{series}_series_x30"), |b| {
        b.iter(|| assert_eq!(head.capture(), series as usize));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
