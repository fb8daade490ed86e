//! WAL record compression: snappy (Prometheus's WAL codec) against zstd levels 1–3, record by
//! record (segment version 2 compressed each record alone with zstd level 1), and the WAL's
//! own framing (version 4, and version 3 before it: samples records as delta bodies against
//! the segment's earlier samples, then zstd level 2 when smaller), beside a `memcpy` of the
//! same bytes. Prints the bytes per sample of each codec.
//!
//! Records come from the WAL segments in `$ARGUS_WAL_DIR` (for instance a `wal/` directory left
//! by `harness.py measure --keep`: every segment version is read), else from a generated
//! workload shaped like the harness's remote-write data (2,000-sample records of counters,
//! gauges and histogram buckets).
//!
//! `ARGUS_WAL_SHUFFLE_REFS=1` renumbers the series refs first (see [`shuffle_refs`]).
//!
//! Run: `ARGUS_WAL_DIR=/tmp/hm/argus/data/wal cargo bench -p argus-storage --features fuzzing --bench wal_codec -- --quick`.

use argus_storage::internals::{WalRecord, WalRecordCodec, wal_scan_segment};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Records and the number of samples in them.
fn load() -> (Vec<Vec<u8>>, u64) {
    let mut records = Vec::new();
    if let Some(dir) = std::env::var_os("ARGUS_WAL_DIR") {
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("read ARGUS_WAL_DIR")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p).expect("read segment");
            records.extend(wal_scan_segment(&bytes).records);
        }
    } else {
        records = synthetic();
    }
    if std::env::var_os("ARGUS_WAL_SHUFFLE_REFS").is_some() {
        shuffle_refs(&mut records);
    }
    let samples = records
        .iter()
        .map(|r| match WalRecord::decode(r) {
            Ok(WalRecord::Samples(s)) => s.len() as u64,
            _ => 0,
        })
        .sum();
    (records, samples)
}

/// Renumbers the series refs of every samples record by one fixed permutation (multiplications
/// by odd constants and xor-shifts modulo the power of two above the largest ref), so that
/// neighbouring series
/// get unrelated refs, as when concurrent senders create series at the same time (the worst case
/// of it). Series records are left as they are.
fn shuffle_refs(records: &mut [Vec<u8>]) {
    let max = records
        .iter()
        .filter_map(|r| match WalRecord::decode(r) {
            Ok(WalRecord::Samples(s)) => s.iter().map(|s| s.0).max(),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mask = (max + 1).next_power_of_two() - 1;
    for r in records.iter_mut() {
        if let Ok(WalRecord::Samples(mut s)) = WalRecord::decode(r) {
            for x in &mut s {
                // Each step is a bijection of 0..=mask.
                let mut r = x.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask;
                r ^= r >> 7;
                r = r.wrapping_mul(0xbf58_476d_1ce4_e5b9) & mask;
                r ^= r >> 5;
                x.0 = r;
            }
            r.clear();
            WalRecord::Samples(s).encode(r);
        }
    }
}

/// 240 rounds of 20,000 series in 2,000-sample records, like `harness.py ingest --window 1`.
fn synthetic() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut vals = vec![0f64; 20_000];
    for round in 0..240i64 {
        for chunk in 0..10u64 {
            let mut s = Vec::with_capacity(2000);
            for i in 0..2000u64 {
                let id = chunk * 2000 + i;
                let v = &mut vals[id as usize];
                *v = match id % 4 {
                    0 => *v + (rnd() % 100) as f64,   // counter
                    1 => (rnd() % 1000) as f64 / 7.0, // gauge
                    2 => *v + (rnd() % 3) as f64,     // bucket
                    _ => {
                        if rnd() % 8 == 0 {
                            *v + 1.0
                        } else {
                            *v
                        }
                    } // slow gauge
                };
                let t = 1_700_000_000_000 + round * 15_000 + (id % 50) as i64 * 300;
                s.push((id + 1, t, v.to_bits()));
            }
            let mut b = Vec::new();
            WalRecord::Samples(s).encode(&mut b);
            out.push(b);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let (records, samples) = load();
    let raw: usize = records.iter().map(Vec::len).sum();
    let per = |n: usize| n as f64 / samples.max(1) as f64;
    eprintln!(
        "wal_codec: {} records, {samples} samples, plain {raw} bytes = {:.3} B/sample",
        records.len(),
        per(raw)
    );

    let mut g = c.benchmark_group("wal_codec");
    g.throughput(Throughput::Elements(samples.max(1)));
    g.sample_size(10);

    // snappy, raw block format (what Prometheus's WAL uses per record).
    let mut snap_enc = snap::raw::Encoder::new();
    let mut snap_dec = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let size = |out: &mut Vec<u8>, enc: &mut snap::raw::Encoder| {
        records
            .iter()
            .map(|r| {
                out.resize(snap::raw::max_compress_len(r.len()), 0);
                enc.compress(r, out).expect("snappy")
            })
            .sum::<usize>()
    };
    let n = size(&mut out, &mut snap_enc);
    eprintln!("wal_codec: snappy {n} bytes = {:.3} B/sample", per(n));
    g.bench_function("snappy_compress", |b| {
        b.iter(|| black_box(size(&mut out, &mut snap_enc)))
    });
    let snapped: Vec<Vec<u8>> = records
        .iter()
        .map(|r| snap_enc.compress_vec(r).expect("snappy"))
        .collect();
    g.bench_function("snappy_decompress", |b| {
        b.iter(|| {
            snapped
                .iter()
                .map(|z| {
                    let n = snap::raw::decompress_len(z).expect("len");
                    out.resize(n, 0);
                    snap_dec.decompress(z, &mut out).expect("snappy")
                })
                .sum::<usize>()
        })
    });

    for level in 1..=3 {
        let mut z = zstd::bulk::Compressor::new(level).expect("zstd");
        z.include_checksum(false).expect("zstd option");
        let mut size = |out: &mut Vec<u8>| {
            records
                .iter()
                .map(|r| {
                    out.clear();
                    out.reserve(zstd::zstd_safe::compress_bound(r.len()));
                    z.compress_to_buffer(r, out).expect("zstd")
                })
                .sum::<usize>()
        };
        let n = size(&mut out);
        eprintln!(
            "wal_codec: zstd level {level} {n} bytes = {:.3} B/sample",
            per(n)
        );
        g.bench_function(format!("zstd{level}_compress"), |b| {
            b.iter(|| black_box(size(&mut out)))
        });
    }

    // The WAL's framing, version 4 (the writer's) and version 3 (before): frames with CRC;
    // samples records as delta bodies against the segment's earlier samples (one segment here:
    // the state is never reset mid-pass), zstd level 2 when smaller; and decoding them back
    // from the segment's start.
    for (name, mut codec) in [
        ("v4", WalRecordCodec::default()),
        ("v3", WalRecordCodec::v3()),
    ] {
        let mut frames = Vec::new();
        let frame = |codec: &mut WalRecordCodec, frames: &mut Vec<u8>| {
            codec.reset();
            frames.clear();
            for r in &records {
                codec.put_frame(frames, r);
            }
            frames.len()
        };
        let n = frame(&mut codec, &mut frames);
        eprintln!(
            "wal_codec: WAL frames {name} (segment delta + zstd, 8-byte frame headers) {n} bytes = {:.3} B/sample",
            per(n)
        );
        g.bench_function(format!("wal_frame_{name}_compress"), |b| {
            b.iter(|| black_box(frame(&mut codec, &mut frames)))
        });
        // (codec from the top 4 bits of the frame's first word, payload after the 8-byte header)
        codec.reset();
        let payloads: Vec<(u8, Vec<u8>)> = records
            .iter()
            .map(|r| {
                let mut f = Vec::new();
                codec.put_frame(&mut f, r);
                (f[3] >> 4, f[8..].to_vec())
            })
            .collect();
        let series_bytes: usize = payloads
            .iter()
            .zip(&records)
            .filter(|(_, r)| r.first() == Some(&1))
            .map(|((_, p), _)| p.len() + 8)
            .sum();
        eprintln!(
            "wal_codec: of which series records {series_bytes} bytes = {:.3} B/sample",
            per(series_bytes)
        );
        codec.reset();
        for ((c, p), r) in payloads.iter().zip(&records) {
            assert_eq!(codec.decode_payload(*c, p).expect("decode"), &r[..]);
        }
        g.bench_function(format!("wal_frame_{name}_decompress"), |b| {
            b.iter(|| {
                codec.reset();
                payloads
                    .iter()
                    .map(|(c, p)| codec.decode_payload(*c, p).expect("decode").len())
                    .sum::<usize>()
            })
        });
    }

    let src: Vec<u8> = records.concat();
    let mut dst = vec![0u8; src.len()];
    g.bench_function("memcpy_same_bytes", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
