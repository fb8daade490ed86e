//! Push body decoding (delimited protobuf `MetricFamily` messages) at the body limit: 16 MiB of
//! ~2 M tiny families (a name only), the worst case for the per-name replacement rule. Linear
//! in the body since names go through a hash map; the old linear search per family was
//! quadratic (2 M families: ~2·10¹² name comparisons). A `memcpy` of the same bytes is the
//! floor, and a 1/16 body shows the per-byte cost stays flat. The text group decodes a 1 MiB
//! text body of counters, a summary and a histogram per label set (Pushgateway's parser rules).

use argus::expose::proto::MetricFamily;
use argus::push::body::{decode_body, decode_delimited, encode_delimited};
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
    let mut g = c.benchmark_group("push_decode_text");
    g.sample_size(10);
    let text = text_body(1 << 20);
    let families = decode_body(None, &text).expect("valid").len();
    eprintln!(
        "push_decode_text/1MiB: {families} families in {} bytes",
        text.len()
    );
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("memcpy_floor/1MiB", |b| b.iter(|| black_box(text.clone())));
    g.bench_function("decode_text/1MiB", |b| {
        b.iter(|| decode_body(None, black_box(&text)).expect("valid"))
    });
    g.finish();
}

/// A text body of about `bytes`: per index, a counter with HELP/TYPE, a summary and a
/// histogram (lines Pushgateway folds into one metric each).
fn text_body(bytes: usize) -> Vec<u8> {
    use std::fmt::Write;
    let mut s = String::new();
    let mut i = 0;
    while s.len() < bytes {
        let _ = write!(
            s,
            "# HELP req_{i}_total Requests handled.\n# TYPE req_{i}_total counter\n\
             req_{i}_total{{code=\"200\",path=\"/api/v1/q\\\"x\\\"\"}} 1027 1700000000000\n\
             req_{i}_total{{code=\"500\",path=\"/\"}} 3\n\
             # TYPE lat_{i} summary\nlat_{i}{{quantile=\"0.5\"}} 0.25\nlat_{i}{{quantile=\"0.99\"}} 1.5e-3\n\
             lat_{i}_sum 12.5\nlat_{i}_count 100\n\
             # TYPE h_{i} histogram\nh_{i}_bucket{{le=\"0.1\"}} 1\nh_{i}_bucket{{le=\"1\"}} 3\n\
             h_{i}_bucket{{le=\"+Inf\"}} 4\nh_{i}_sum 2.5\nh_{i}_count 4\n"
        );
        i += 1;
    }
    s.into_bytes()
}

criterion_group!(benches, bench);
criterion_main!(benches);
