//! Remote-write receiver throughput: snappy + protobuf decode of a realistic batch (2,000
//! samples: 400 node-exporter-like series × 5 samples), and decode + append + commit into
//! `MemStorage`. A `memcpy` of the same compressed bytes is the floor.

use argus::ingest::prompb::{Label, Sample, TimeSeries, WriteRequest};
use argus::ingest::remote_write::{Decoder, MAX_DECOMPRESSED_BYTES, append_request, encode};
use argus_storage::Appendable;
use argus_storage::testing::MemStorage;
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

criterion_group!(benches, bench);
criterion_main!(benches);
