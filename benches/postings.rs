//! Postings intersection and subtraction over roaring bitmaps for 1M series ids, beside a
//! `memcpy` of the same ids as plain `u32`s.
//!
//! Run: `cargo bench -p argus --bench postings -- --quick`.

use argus_storage::postings_bench::Sets;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const IDS: u32 = 1_000_000;

fn bench(c: &mut Criterion) {
    // job="node": half of all series; __name__="x": a contiguous tenth (ids follow creation
    // order, so one metric's series cluster); instance="i": every 100th series.
    let job: Vec<u32> = (0..IDS).filter(|i| i % 2 == 0).collect();
    let name: Vec<u32> = (IDS / 10 * 3..IDS / 10 * 4).collect();
    let inst: Vec<u32> = (0..IDS).step_by(100).collect();
    let cases = [
        ("name_and_job", vec![name.clone(), job.clone()]),
        (
            "name_job_instance",
            vec![name.clone(), job.clone(), inst.clone()],
        ),
    ];
    let mut g = c.benchmark_group("postings");
    for (what, lists) in &cases {
        let ids: u64 = lists.iter().map(|l| l.len() as u64).sum();
        g.throughput(Throughput::Elements(ids));
        let sets = Sets::new(lists);
        assert!(sets.intersect() > 0);
        g.bench_function(format!("intersect_{what}"), |b| {
            b.iter(|| black_box(sets.intersect()))
        });
        g.bench_function(format!("subtract_{what}"), |b| {
            b.iter(|| black_box(sets.subtract()))
        });
        let src: Vec<u32> = lists.concat();
        let mut dst = vec![0u32; src.len()];
        g.bench_function(format!("memcpy_floor_{what}"), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&dst);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
