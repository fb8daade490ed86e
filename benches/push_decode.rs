//! Push body decoding (delimited protobuf `MetricFamily` messages) at the body limit: 16 MiB of
//! ~2 M tiny families (a name only), the worst case for the per-name replacement rule. Linear
//! in the body since names go through a hash map; the old linear search per family was
//! quadratic (2 M families: ~2·10¹² name comparisons). A `memcpy` of the same bytes is the
//! floor, and a 1/16 body shows the per-byte cost stays flat.

use argus::expose::proto::MetricFamily;
use argus::push::body::{decode_delimited, encode_delimited};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Delimited families named `a`, `b`, … (base-62 digits) until `bytes` are used.
fn body(bytes: usize) -> (Vec<u8>, usize) {
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = Vec::with_capacity(bytes + 16);
    let mut n = 0usize;
    let mut fam = MetricFamily::default();
    while out.len() < bytes {
        let mut name = Vec::new();
        let mut i = n;
        loop {
            name.push(DIGITS[i % 62]);
            i /= 62;
            if i == 0 {
                break;
            }
        }
        fam.name = Some(String::from_utf8(name).expect("ASCII"));
        encode_delimited(std::slice::from_ref(&fam), &mut out);
        n += 1;
    }
    (out, n)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("push_decode");
    g.sample_size(10);
    for (label, size) in [("1MiB", 1 << 20), ("16MiB", 16 << 20)] {
        let (buf, families) = body(size);
        assert_eq!(decode_delimited(&buf).expect("valid").len(), families);
        eprintln!(
            "push_decode/{label}: {families} families in {} bytes",
            buf.len()
        );
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("memcpy_floor/{label}"), |b| {
            b.iter(|| black_box(buf.clone()))
        });
        g.bench_function(format!("decode_delimited/{label}"), |b| {
            b.iter(|| decode_delimited(black_box(&buf)).expect("valid"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
