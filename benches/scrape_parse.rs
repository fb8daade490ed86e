//! Scrape hot path: exposition parsing throughput (bytes/s and samples/s) beside a memcpy floor,
//! on a real node_exporter body and on generated 10k-series bodies (text and OpenMetrics); and
//! the per-scrape cost of the append path with a warm series cache versus a cold one (into an
//! appender that stores nothing), and with a warm cache into a real head (`warm_cache_head`:
//! handles, WAL record, commit; with a new appender per scrape, and with one kept across
//! scrapes, `warm_cache_head_kept_appender`).
//!
//! Run: `cargo bench -p argus --bench scrape_parse`.

use argus::scrape::cache::{AppendOptions, SeriesCache};
use argus::scrape::expfmt::{Entry, Format, Parser};
use argus_storage::{
    Appendable, Appender, Db, Label, Labels, Options, SeriesRef, SyncMode, Timestamp,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// An appender that stores nothing: isolates the scrape side's cost.
struct NopAppender {
    n: u64,
}

impl Appender for NopAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        _labels: &Labels,
        _t: Timestamp,
        v: f64,
    ) -> argus_storage::Result<SeriesRef> {
        self.n += 1;
        black_box(v);
        Ok(series.unwrap_or(SeriesRef(self.n)))
    }
    /// Knows every ref it handed out (the head's by-ref path, which the cache takes for known
    /// text series).
    fn append_ref(
        &mut self,
        series: SeriesRef,
        _t: Timestamp,
        v: f64,
    ) -> argus_storage::Result<Option<SeriesRef>> {
        self.n += 1;
        black_box(v);
        Ok(Some(series))
    }
    fn commit(&mut self) -> argus_storage::Result<()> {
        Ok(())
    }
    fn rollback(&mut self) {}
}

fn node_body() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/expfmt/node_exporter.prom"
    ))
    .expect("testdata/expfmt/node_exporter.prom")
}

/// 10k series in 100 families of 100, two labels each, in text or OpenMetrics.
fn generated(om: bool) -> Vec<u8> {
    let mut s = String::new();
    for f in 0..100 {
        s.push_str(&format!("# HELP gen_metric_{f} Generated family {f}.\n"));
        s.push_str(&format!("# TYPE gen_metric_{f} gauge\n"));
        for i in 0..100 {
            s.push_str(&format!(
                "gen_metric_{f}{{instance=\"host-{i}.example.org:9100\",path=\"/api/v1/items/{i}\"}} {}.{}\n",
                i * 37 + f,
                i % 7
            ));
        }
    }
    if om {
        s.push_str("# EOF\n");
    }
    s.into_bytes()
}

fn count_samples(body: &[u8], format: Format) -> u64 {
    let mut p = Parser::new(body, format);
    let mut n = 0;
    while let Some(e) = p.next() {
        if e == Entry::Series {
            n += 1;
        }
    }
    assert!(p.err().is_none(), "bench body must parse: {:?}", p.err());
    n
}

fn parse_all(body: &[u8], format: Format) -> f64 {
    let mut p = Parser::new(body, format);
    let mut acc = 0.0;
    while let Some(e) = p.next() {
        if e == Entry::Series {
            acc += p.value();
            black_box(p.series());
        }
    }
    acc
}

/// [`parse_all`] told each line's series text in advance (`Parser::next_expecting` with the
/// series texts of the previous body, here the same body: a steady target).
fn parse_all_expecting(body: &[u8], format: Format, keys: &[Vec<u8>]) -> f64 {
    let mut p = Parser::new(body, format);
    let mut acc = 0.0;
    let mut n = 0;
    while let Some(e) = p.next_expecting(keys.get(n).map_or(&[][..], |k| &k[..])) {
        if e == Entry::Series {
            n += 1;
            acc += p.value();
            black_box(p.series());
        }
    }
    acc
}

fn series_texts(body: &[u8], format: Format) -> Vec<Vec<u8>> {
    let mut p = Parser::new(body, format);
    let mut out = Vec::new();
    while let Some(e) = p.next() {
        if e == Entry::Series {
            out.push(p.series().to_vec());
        }
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let bodies = [
        ("node_exporter", node_body(), Format::Text),
        ("gen10k_text", generated(false), Format::Text),
        ("gen10k_openmetrics", generated(true), Format::OpenMetrics),
    ];
    for (name, body, format) in &bodies {
        let samples = count_samples(body, *format);
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        let mut dst = vec![0u8; body.len()];
        g.bench_function("memcpy_floor", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(body));
                black_box(&dst);
            })
        });
        g.bench_function("parse_bytes", |b| {
            b.iter(|| parse_all(black_box(body), *format))
        });
        g.throughput(Throughput::Elements(samples));
        g.bench_function("parse_samples", |b| {
            b.iter(|| parse_all(black_box(body), *format))
        });
        let keys = series_texts(body, *format);
        g.bench_function("parse_samples_expecting", |b| {
            b.iter(|| parse_all_expecting(black_box(body), *format, &keys))
        });
        g.finish();
    }
}

fn bench_append(c: &mut Criterion) {
    let opts = AppendOptions {
        target_labels: vec![
            Label::new("instance", "127.0.0.1:9100"),
            Label::new("job", "node"),
        ],
        honor_timestamps: true,
        ..Default::default()
    };
    for (name, body, format) in [
        ("node_exporter", node_body(), Format::Text),
        ("gen10k_text", generated(false), Format::Text),
    ] {
        let samples = count_samples(&body, format);
        let mut g = c.benchmark_group(format!("scrape_append/{name}"));
        g.throughput(Throughput::Elements(samples));
        // Steady state: every series is a cache hit (bytes → ref, no label work).
        let mut cache = SeriesCache::new();
        let mut app = NopAppender { n: 0 };
        let mut ts = 0;
        cache
            .append_body(&body, format, ts, &mut app, &opts)
            .expect("warm-up scrape");
        ts += 1;
        let st = cache
            .append_body(&body, format, ts, &mut app, &opts)
            .expect("second scrape");
        assert_eq!(
            (st.added, st.stale),
            (0, 0),
            "BUG: a warm scrape must be all cache hits"
        );
        let t0 = std::time::Instant::now();
        for _ in 0..20 {
            ts += 1;
            cache
                .append_body(&body, format, ts, &mut app, &opts)
                .expect("scrape");
        }
        eprintln!(
            "{name}: warm scrape {:?} per scrape (plain loop)",
            t0.elapsed() / 20
        );
        g.bench_function("warm_cache", |b| {
            b.iter(|| {
                ts += 1;
                cache
                    .append_body(black_box(&body), format, ts, &mut app, &opts)
                    .expect("scrape")
            })
        });
        // First scrape of a target: decode labels, add target labels, hash, insert.
        g.bench_function("cold_cache", |b| {
            b.iter(|| {
                let mut cache = SeriesCache::new();
                cache
                    .append_body(black_box(&body), format, 1, &mut app, &opts)
                    .expect("scrape")
            })
        });
        // The server's path: a warm cache appending through the head's handles into a real
        // `Db` (WAL in `SyncMode::Buffer`, scrapes 15 s apart so chunks fill and are cut), the
        // unsynced appender and its commit, as `scrape_loop` does per scrape.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            dir.path(),
            Options {
                background: false,
                sync: SyncMode::Buffer,
                ..Options::default()
            },
        )
        .expect("open db");
        let mut cache = SeriesCache::new();
        let mut ts: Timestamp = 1_700_000_000_000;
        let scrape = |cache: &mut SeriesCache, ts: Timestamp| {
            let mut app = db.appender_unsynced();
            let st = cache
                .append_body(black_box(&body), format, ts, app.as_mut(), &opts)
                .expect("scrape");
            app.commit().expect("commit");
            st
        };
        scrape(&mut cache, ts);
        ts += 15_000;
        let st = scrape(&mut cache, ts);
        assert_eq!(
            (st.added, st.stale),
            (0, 0),
            "BUG: a warm scrape must be all cache hits"
        );
        g.bench_function("warm_cache_head", |b| {
            b.iter(|| {
                ts += 15_000;
                scrape(&mut cache, ts)
            })
        });
        // The same with one appender kept from scrape to scrape, as `scrape_loop` does since
        // session 14 (`CommitSlots::appender`): its batch map and WAL buffers keep their size.
        let mut kept = db.appender_unsynced();
        g.bench_function("warm_cache_head_kept_appender", |b| {
            b.iter(|| {
                ts += 15_000;
                let st = cache
                    .append_body(black_box(&body), format, ts, kept.as_mut(), &opts)
                    .expect("scrape");
                kept.commit().expect("commit");
                st
            })
        });
        g.finish();
    }
}

/// Inflating a gzip body (what every scrape of a compressing exporter starts with): flate2's
/// backend (zlib-rs) beside miniz_oxide (flate2's default backend, which Argus used before),
/// on the same raw deflate stream. Throughput in decompressed bytes.
fn bench_inflate(c: &mut Criterion) {
    use std::io::Write;
    for (name, body) in [
        ("node_exporter", node_body()),
        ("gen10k_text", generated(false)),
    ] {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).expect("deflate");
        let deflated = enc.finish().expect("deflate");
        let mut g = c.benchmark_group(format!("inflate/{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        let mut out = vec![0u8; body.len() + 64];
        let mut d = flate2::Decompress::new(false);
        g.bench_function("flate2_zlib_rs", |b| {
            b.iter(|| {
                d.reset(false);
                let st = d
                    .decompress(
                        black_box(&deflated),
                        &mut out,
                        flate2::FlushDecompress::Finish,
                    )
                    .expect("inflate");
                assert_eq!(st, flate2::Status::StreamEnd);
                black_box(d.total_out())
            })
        });
        let mut r = miniz_oxide::inflate::core::DecompressorOxide::new();
        g.bench_function("miniz_oxide", |b| {
            b.iter(|| {
                r.init();
                let (st, _, n) = miniz_oxide::inflate::core::decompress(
                    &mut r,
                    black_box(&deflated),
                    &mut out,
                    0,
                    miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
                );
                assert_eq!((st, n), (miniz_oxide::inflate::TINFLStatus::Done, body.len()));
                black_box(n)
            })
        });
        g.finish();
    }
}

/// `util::gzip::gunzip` as a scrape calls it (`client::Fetched::into_body`): a gzip body
/// (flate2's default level, as exporters send) into a reused buffer, bounded. Throughput in
/// decompressed bytes; `memcpy` of the same bytes is the floor.
fn bench_gunzip(c: &mut Criterion) {
    use std::io::Write;
    for (name, body) in [
        ("node_exporter", node_body()),
        ("gen10k_text", generated(false)),
    ] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).expect("gzip");
        let gz = enc.finish().expect("gzip");
        let mut g = c.benchmark_group(format!("gunzip/{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        let mut out = Vec::new();
        g.bench_function("gunzip", |b| {
            b.iter(|| {
                // Cleared as the scrape's buffer pool gives it.
                out.clear();
                argus::util::gzip::gunzip(black_box(&gz), 512 << 20, &mut out).expect("gunzip");
                assert_eq!(out.len(), body.len());
                black_box(out.len())
            })
        });
        // Tried in session 17 (scrape6) and not kept: flate2's `bufread` decoder on the slice,
        // without the `read` decoder's 32 KiB copy buffer; within the noise of `gunzip` here.
        g.bench_function("flate2_bufread_decoder", |b| {
            b.iter(|| {
                use std::io::Read;
                out.clear();
                out.reserve(body.len());
                let mut r =
                    flate2::bufread::MultiGzDecoder::new(black_box(&gz[..])).take(512 << 20);
                r.read_to_end(&mut out).expect("gunzip");
                assert_eq!(out.len(), body.len());
                black_box(out.len())
            })
        });
        // `main`'s `gunzip` before session 18 (inflate8), now its fallback: the streaming
        // reader with the trailer's size as a reserve hint. `gunzip` above is libdeflate's one
        // call for a single member.
        g.bench_function("flate2_read_decoder", |b| {
            b.iter(|| {
                use std::io::Read;
                out.clear();
                out.reserve(body.len());
                let mut r = flate2::read::MultiGzDecoder::new(black_box(&gz[..])).take(512 << 20);
                r.read_to_end(&mut out).expect("gunzip");
                assert_eq!(out.len(), body.len());
                black_box(out.len())
            })
        });
        let mut copy = Vec::with_capacity(body.len());
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.clear();
                copy.extend_from_slice(black_box(&body));
                black_box(copy.len())
            })
        });
        g.finish();
    }
}

criterion_group!(
    benches,
    bench_parse,
    bench_append,
    bench_inflate,
    bench_gunzip
);
criterion_main!(benches);
