#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::chunk::XorChunk;
use crate::head::HeadOptions;
use crate::head::chunk_files::HeadChunkFiles;
use crate::head::series::OpenChunk;
use crate::interface::SampleIterator;
use crate::model::Labels;
use proptest::prelude::*;

/// A small snapshot with every kind of field: pages (one being filled), series with closed
/// and open chunks, out-of-order samples, a newest sample, none of them.
fn sample_image() -> Image {
    let mut chunk = XorChunk::new();
    for t in 0..5 {
        chunk.append(1000 + t, t as f64);
    }
    Image {
        meta: Meta {
            segment: 7,
            next_ref: 42,
            min_time: -5,
            max_time: 1004,
            ..Meta::default()
        },
        pages: vec![
            PageImage {
                seq: 1,
                max_t: 900,
                current: false,
                bytes: vec![3, 1, 2, 3],
            },
            PageImage {
                seq: 3,
                max_t: 950,
                current: true,
                bytes: vec![1, 9],
            },
        ],
        series: vec![
            SeriesImage {
                id: 1,
                labels: vec![("__name__".into(), "up".into()), ("job".into(), "a".into())],
                closed: vec![ClosedChunk {
                    min_t: -5,
                    max_t: 900,
                    r: 1 << 32,
                }],
                open: Some((1000, 1004, chunk.bytes().to_vec())),
                ooo: vec![(950, f64::NAN), (960, -1.5)],
                last: Some((1004, 4f64.to_bits())),
            },
            SeriesImage {
                id: 41,
                labels: vec![("__name__".into(), "x".into())],
                ..SeriesImage::default()
            },
        ],
    }
}

#[test]
fn every_truncation_and_every_flipped_byte_is_rejected() {
    let bytes = sample_image().encode();
    let img = Image::decode(&bytes).unwrap();
    assert_eq!(img.encode(), bytes, "round trip");
    assert_eq!((img.meta.pages, img.meta.series), (2, 2));
    // Torn at every offset: header, section headers, payloads, CRCs, the END section.
    for len in 0..bytes.len() {
        let err = Image::decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "len {len}: {err}");
    }
    // Any single flipped bit: bad magic, version, kind, length, payload or CRC.
    for i in 0..bytes.len() {
        for bit in [0, 3, 7] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let err = Image::decode(&b).unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "byte {i}: {err}");
        }
    }
    // Trailing garbage after END.
    let mut b = bytes.clone();
    b.push(0);
    let err = Image::decode(&b).unwrap_err();
    assert!(
        matches!(err, Error::Corruption { .. }) && err.to_string().contains("after the END"),
        "{err}"
    );
}

#[test]
fn sections_out_of_order_or_miscounted_are_rejected() {
    let check = |img: Image, want: &str| {
        let err = Image::decode(&img.encode()).unwrap_err();
        assert!(
            matches!(&err, Error::Corruption { reason, .. } if reason.contains(want)),
            "want {want:?}, got {err}"
        );
    };
    let mut img = sample_image();
    img.pages.swap(0, 1);
    check(img, "PAGE section out of order");
    let mut img = sample_image();
    img.pages[0].current = true;
    check(img, "PAGE section out of order");
    // Valid framing, a count that does not match: rewrite META by hand.
    let img = sample_image();
    let mut bytes = img.encode();
    let mut meta = img.meta.clone();
    (meta.pages, meta.series) = (2, 3);
    let mut framed = Vec::new();
    write_section(&mut framed, KIND_META, &meta_payload(&meta)).unwrap();
    let old_len = {
        let mut m = img.meta.clone();
        (m.pages, m.series) = (2, 2);
        let mut f = Vec::new();
        write_section(&mut f, KIND_META, &meta_payload(&m)).unwrap();
        f.len()
    };
    bytes.splice(HEADER_LEN..HEADER_LEN + old_len, framed);
    let err = Image::decode(&bytes).unwrap_err();
    assert!(err.to_string().contains("META counts"), "{err}");
}

#[test]
fn a_loaded_snapshot_restores_series_chunks_and_refs() {
    let dir = tempfile::tempdir().unwrap();
    let files = HeadChunkFiles::in_memory();
    let r = files.write(1, 0, 9, b"chunk-bytes");
    let pages = files.export_pages();
    let mut img = sample_image();
    img.pages = pages
        .iter()
        .map(|p| PageImage {
            seq: p.seq,
            // The page being filled, holding the one chunk (0..=9).
            max_t: 9,
            current: true,
            bytes: p.bytes.to_vec(),
        })
        .collect();
    img.series[0].closed = vec![ClosedChunk {
        min_t: 0,
        max_t: 9,
        r,
    }];
    let path = dir.path().join(snapshot_name(7));
    std::fs::write(&path, img.encode()).unwrap();
    let opts = HeadOptions {
        block_range: 1 << 40,
        ooo_window: 100,
    };
    let head = Head::new(opts.clone(), None, HeadChunkFiles::in_memory(), i64::MIN);
    let loaded = load(&head, &path, None).unwrap();
    assert_eq!(loaded.segment, 7);
    assert_eq!(loaded.series.len(), 2);
    assert_eq!(head.next_ref(), 42);
    assert_eq!((head.min_time(), head.max_time()), (-5, 1004));
    let s = head.series.get(1).unwrap();
    let mut d = s.data.lock();
    let mut buf = Vec::new();
    head.chunk_files.read_into(d.closed[0].r, &mut buf).unwrap();
    assert_eq!(buf, b"chunk-bytes");
    // The open chunk takes appends where it stopped.
    let want = {
        let mut c = XorChunk::new();
        for t in 0..6 {
            c.append(1000 + t, t as f64);
        }
        c.bytes().to_vec()
    };
    assert_eq!(
        d.apply(s.lock_word(), 1005, 5.0, 1 << 40, 100, &head.chunk_files),
        crate::head::series::Applied::InOrder
    );
    assert_eq!(d.open.as_ref().unwrap().chunk.bytes(), want);
    drop(d);
    // A label set listed twice is an error, not a second series.
    let mut img2 = sample_image();
    img2.series[1].labels = img2.series[0].labels.clone();
    std::fs::write(&path, img2.encode()).unwrap();
    let head = Head::new(opts, None, HeadChunkFiles::in_memory(), i64::MIN);
    let err = load(&head, &path, None).err().unwrap();
    assert!(err.to_string().contains("listed twice"), "{err}");
}

/// A series whose newest sample is before its open chunk's last one (or missing) would hand
/// the chunk a time it already holds at the next append: the load fails instead.
#[test]
fn a_newest_sample_before_the_open_chunks_end_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(snapshot_name(7));
    let opts = HeadOptions {
        block_range: 1 << 40,
        ooo_window: 100,
    };
    // The sample image's open chunk spans [1000, 1004].
    for (last, ok) in [
        (Some(1004), true),
        (Some(1010), true),
        (Some(1003), false),
        (None, false),
    ] {
        let mut img = sample_image();
        img.series[0].last = last.map(|t| (t, 4f64.to_bits()));
        std::fs::write(&path, img.encode()).unwrap();
        let head = Head::new(opts.clone(), None, HeadChunkFiles::in_memory(), i64::MIN);
        match load(&head, &path, None) {
            Ok(_) => assert!(ok, "{last:?} loaded"),
            Err(e) => {
                assert!(!ok, "{last:?}: {e}");
                assert!(e.to_string().contains("before its open chunk's end"), "{e}");
            }
        }
    }
}

fn arb_series() -> impl Strategy<Value = SeriesImage> {
    (
        any::<u64>(),
        prop::collection::vec(("[a-z_]{1,8}", ".{0,8}"), 0..4),
        prop::collection::vec((any::<i64>(), any::<i64>(), any::<u64>()), 0..4),
        prop::option::of((
            any::<i64>(),
            any::<i64>(),
            prop::collection::vec(any::<u8>(), 0..40),
        )),
        prop::collection::vec((any::<i64>(), any::<u64>()), 0..4),
        prop::option::of((any::<i64>(), any::<u64>())),
    )
        .prop_map(|(id, labels, closed, open, ooo, last)| SeriesImage {
            id,
            labels,
            closed: closed
                .into_iter()
                .map(|(min_t, max_t, r)| ClosedChunk { min_t, max_t, r })
                .collect(),
            open,
            // Sorted by time, unique timestamps, as the head keeps them.
            ooo: ooo
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .map(|(t, b)| (t, f64::from_bits(b)))
                .collect(),
            last,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// decode(encode(x)) == x, compared by re-encoding (bit-exact, NaN payloads included).
    #[test]
    fn encode_decode_round_trip(
        segment in any::<u32>(),
        next_ref in any::<u64>(),
        times in (any::<i64>(), any::<i64>()),
        pages in prop::collection::vec((any::<i64>(), prop::collection::vec(any::<u8>(), 0..300)), 0..4),
        current in any::<bool>(),
        series in prop::collection::vec(arb_series(), 0..30),
    ) {
        let n = pages.len();
        let img = Image {
            meta: Meta { segment, next_ref, min_time: times.0, max_time: times.1, ..Meta::default() },
            pages: pages
                .into_iter()
                .enumerate()
                .map(|(i, (max_t, bytes))| PageImage {
                    seq: i as u32 * 3 + 1,
                    max_t,
                    current: current && i + 1 == n,
                    bytes,
                })
                .collect(),
            series,
        };
        let bytes = img.encode();
        let back = Image::decode(&bytes).unwrap();
        prop_assert_eq!(&back.encode(), &bytes);
        prop_assert_eq!(&back.pages, &img.pages);
        prop_assert_eq!(back.series.len(), img.series.len());
        // Version 1 (nothing compressed) reads back the same.
        let v1 = img.encode_version(1);
        prop_assert_eq!(v1[MAGIC.len()], 1);
        let back1 = Image::decode(&v1).unwrap();
        prop_assert_eq!(back1.encode(), bytes);
    }

    /// Arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_are_an_error_or_a_snapshot(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut b = MAGIC.to_vec();
        b.push(VERSION);
        b.extend(bytes);
        let _ = Image::decode(&b);
    }
}

/// Samples of a chunk in encoding `enc`.
fn samples_of(enc: crate::chunk::Encoding, bytes: &[u8]) -> Vec<(i64, u64)> {
    let mut it = crate::chunk::ChunkIterator::new(enc, bytes);
    let mut out = Vec::new();
    while it.next() {
        let (t, v) = it.at();
        out.push((t, v.to_bits()));
    }
    assert!(it.err().is_none(), "{:?}", it.err());
    out
}

/// A chunk's samples: regular or jittered times, integer, decimal, noisy or special values.
fn arb_chunk() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        1usize..130,
        0i64..3,
        0u8..4,
        any::<u64>(),
        prop::collection::vec(any::<u64>(), 130),
    )
        .prop_map(|(n, jitter, kind, seed, noise)| {
            let mut t = seed as i64 % 1_000_000;
            (0..n)
                .map(|i| {
                    t += 15_000 + (noise[i] % 7) as i64 * jitter;
                    let v = match kind {
                        0 => (seed % 1000 + i as u64 * (noise[i] % 5)) as f64,
                        1 => (noise[i] % 10_000) as f64 / 100.0,
                        2 => f64::from_bits(noise[i]),
                        _ => [f64::NAN, f64::INFINITY, -0.0, 1e300][i % 4],
                    };
                    (t, v)
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A snapshot's packed chunks, loaded into a head, read back as the same samples as the XOR
    /// chunks they were made from: raw (queries, in their encoding) and as XOR (deletions). A
    /// fast snapshot (`pack` false, `Db::snapshot_head_with`) keeps every chunk as XOR.
    #[test]
    fn packed_pages_read_back_equal_to_the_xor_pages(
        series in prop::collection::vec(prop::collection::vec(arb_chunk(), 1..4), 1..12),
        pack in any::<bool>(),
    ) {
        let opts = HeadOptions { block_range: 1 << 40, ooo_window: 0 };
        let src = Head::new(opts.clone(), None, HeadChunkFiles::in_memory(), i64::MIN);
        let mut c = Captured {
            meta: Meta { segment: 3, next_ref: 100, min_time: 0, max_time: 0, pages: 0, series: 0 },
            page_size: 1 << 20,
            series: Vec::new(),
            ooo: Vec::new(),
            pack,
        };
        let mut want = Vec::new();
        let mut xor_bytes = 0;
        let mut chunks_written = 0;
        for (i, chunks) in series.iter().enumerate() {
            let name = format!("s{i}");
            let labels = [("__name__", name.as_str())];
            let live = Arc::new(Series::new(
                i as u64 + 1,
                crate::head::labels::SeriesLabels::new(&Labels::from_pairs(&labels)),
            ));
            live.logged().store(true, std::sync::atomic::Ordering::Relaxed);
            let mut per = Vec::new();
            let mut d = live.data.lock();
            for samples in chunks {
                let mut x = XorChunk::new();
                for &(t, v) in samples {
                    x.append(t, v);
                }
                xor_bytes += x.bytes().len();
                chunks_written += 1;
                let (min_t, max_t) = (samples[0].0, samples[samples.len() - 1].0);
                let r = src.chunk_files.write(0, min_t, max_t, x.bytes());
                d.closed.push(ClosedChunk { min_t, max_t, r });
                per.push(samples.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>());
            }
            let mark = SeriesMark::new(Arc::clone(&live), &d).unwrap();
            drop(d);
            c.series.push(mark);
            want.push(per);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(snapshot_name(3));
        let mut meta = c.meta.clone();
        meta.series = c.series.len() as u64;
        write_file(&path, &mut meta, &c, &src).unwrap();
        // META was rewritten in place with the page count the file holds.
        let img = Image::decode(&std::fs::read(&path).unwrap()).unwrap();
        prop_assert_eq!(img.meta.pages, img.pages.len() as u64);
        prop_assert_eq!(meta.pages, img.pages.len() as u64);
        let packed_bytes: usize = img.pages.iter().map(|p| p.bytes.len()).sum();
        // Each chunk is kept in the smaller encoding (plus its 1-2 byte length).
        prop_assert!(packed_bytes <= xor_bytes + 2 * chunks_written, "{packed_bytes} vs {xor_bytes}");
        let head = Head::new(opts, None, HeadChunkFiles::in_memory(), i64::MIN);
        let loaded = load(&head, &path, None).unwrap();
        prop_assert_eq!(loaded.series.len(), series.len());
        for (i, per) in want.iter().enumerate() {
            let s = head.series.get(i as u64 + 1).unwrap();
            let d = s.data.lock();
            prop_assert_eq!(d.closed.len(), per.len());
            for (cc, w) in d.closed.iter().zip(per) {
                let mut raw = Vec::new();
                head.chunk_files.read_raw_into(cc.r, &mut raw).unwrap();
                let enc = crate::head::chunk_files::encoding(cc.r);
                prop_assert!(pack || enc == crate::chunk::Encoding::Xor, "{enc:?} in a fast snapshot");
                prop_assert_eq!(&samples_of(enc, &raw), w);
                let mut xor = Vec::new();
                head.chunk_files.read_into(cc.r, &mut xor).unwrap();
                prop_assert_eq!(&samples_of(crate::chunk::Encoding::Xor, &xor), w);
                prop_assert_eq!((cc.min_t, cc.max_t), (w[0].0, w[w.len() - 1].0));
            }
        }
    }
}

/// With CRCs recomputed (the fuzz target's step), a mutated payload reaches its decoder: the
/// error names the section, not the checksum.
/// Out-of-order samples not sorted by time, or two at one time, are corrupt (a read encodes
/// them into a chunk, which takes only increasing times: found by the `head_chain_restart`
/// fuzz target as a panic in a query after a restart).
#[test]
fn out_of_order_samples_not_strictly_increasing_are_rejected() {
    for ooo in [
        vec![(960, 1.0), (950, 2.0)],
        vec![(950, 1.0), (950, 1.0)],
        vec![(900, 1.0), (960, 2.0), (930, 3.0)],
    ] {
        let mut img = sample_image();
        img.series[0].ooo = ooo.clone();
        let err = Image::decode(&img.encode()).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{ooo:?}: {err}");
    }
    let mut img = sample_image();
    img.series[0].ooo = vec![(900, 1.0), (930, 3.0), (960, 2.0)];
    assert!(Image::decode(&img.encode()).is_ok());
}

#[test]
fn recomputed_crcs_let_mutations_reach_the_section_decoders() {
    let mut b = sample_image().encode_version(1);
    // The META section's payload starts right after the header and its own 5-byte header.
    let at = HEADER_LEN + SECTION_HEADER_LEN;
    b[at] = 0xff;
    let err = Image::decode(&b).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    fix_crcs(&mut b);
    let err = Image::decode(&b).unwrap_err();
    assert!(err.to_string().contains("valid META"), "{err}");
    // Unmutated bytes are left as they are.
    let good = sample_image().encode();
    let mut again = good.clone();
    fix_crcs(&mut again);
    assert_eq!(again, good);
}

/// A logged series `{a="b"}` with id 7 and no samples.
fn series_a_b() -> Arc<Series> {
    let s = Series::new(
        7,
        crate::head::labels::SeriesLabels::new(&Labels::from_pairs(&[("a", "b")])),
    );
    s.logged().store(true, std::sync::atomic::Ordering::Relaxed);
    Arc::new(s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A series' open chunk rebuilt at pack time from its mark (taken at the cut) is the chunk
    /// as it was at the cut, byte for byte, however many samples were appended since and
    /// whether it is still open or was completed since.
    #[test]
    fn an_open_chunk_is_rebuilt_as_it_was_at_the_cut(
        samples in arb_chunk(),
        cut in 1usize..200,
        completed in any::<bool>(),
    ) {
        let cut = cut.min(samples.len());
        let live = series_a_b();
        let files = HeadChunkFiles::in_memory();
        let mut chunk = XorChunk::new();
        for &(t, v) in &samples[..cut] {
            chunk.append(t, v);
        }
        let at_cut = chunk.bytes().to_vec();
        let (min_t, max_t) = (samples[0].0, samples[cut - 1].0);
        let mark = {
            let mut d = live.data.lock();
            d.open = Some(OpenChunk { chunk });
            d.set_last(live.lock_word(), Some((max_t, samples[cut - 1].1.to_bits())));
            SeriesMark::new(Arc::clone(&live), &d).unwrap()
        };
        // Appends after the cut.
        let mut d = live.data.lock();
        let o = d.open.as_mut().unwrap();
        for &(t, v) in &samples[cut..] {
            o.chunk.append(t, v);
        }
        if completed {
            d.close_open(7, &files);
            prop_assert_eq!(d.closed.len(), 1);
        }
        let mut got = Vec::new();
        prop_assert!(mark.open_bytes(&d, &files, &mut got).unwrap());
        prop_assert_eq!(&got, &at_cut);
        prop_assert_eq!((mark.open_min_t, mark.open_max_t), (min_t, max_t));
        prop_assert_eq!(mark.closed(&d).unwrap().len(), 0);
    }
}

/// A mark whose series lost its open chunk (which only a cut or deletion does, and a
/// snapshot excludes both) is an error, not a wrong snapshot.
#[test]
fn a_series_changed_other_than_by_appends_fails_the_snapshot() {
    let live = series_a_b();
    let files = HeadChunkFiles::in_memory();
    let mut chunk = XorChunk::new();
    chunk.append(1000, 1.0);
    chunk.append(2000, 2.0);
    let mark = {
        let mut d = live.data.lock();
        d.open = Some(OpenChunk {
            chunk: chunk.clone(),
        });
        SeriesMark::new(Arc::clone(&live), &d).unwrap()
    };
    let mut d = live.data.lock();
    d.open = None;
    let e = mark.open_bytes(&d, &files, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("changed under a snapshot"), "{e}");
    // Replaced by another chunk (another first sample).
    let mut other = XorChunk::new();
    other.append(1500, 1.0);
    d.open = Some(OpenChunk { chunk: other });
    assert!(mark.open_bytes(&d, &files, &mut Vec::new()).is_err());
}

/// The capture visits the series of a stripe in groups (`append::apply_group`): every series
/// with samples is marked once as it stands, a series locked by another thread is marked once
/// its lock is released, and a series an appender created but has not committed is left out.
#[test]
fn the_grouped_capture_marks_every_committed_series_once_and_waits_for_a_busy_one() {
    use crate::Appender;
    use crate::head::append::{HeadAppender, PREFETCH};
    let head = Arc::new(Head::in_memory(1 << 40, 0));
    let n = 40 * PREFETCH + 5;
    let labels = |i: usize| Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]);
    let mut app = HeadAppender::new(head.clone());
    let mut refs = Vec::new();
    for i in 0..n {
        let r = app.append(None, &labels(i), 0, 0.0).unwrap();
        for t in 1..=(i % 5) as i64 {
            app.append_ref(r, t, t as f64).unwrap();
        }
        refs.push(r);
    }
    app.commit().unwrap();
    let mut uncommitted = HeadAppender::new(head.clone());
    uncommitted.append(None, &labels(n), 0, 0.0).unwrap();
    assert_eq!(head.num_series(), n as u64 + 1);

    let holder = crate::head::hold_busy(head.series.get(refs[PREFETCH + 3].0).unwrap());
    let mut c = super::capture(&head, 3).unwrap();
    holder.join().unwrap();
    c.sort_by_id();
    let ids: Vec<u64> = c.series.iter().map(|m| u64::from(m.id)).collect();
    let want: Vec<u64> = refs.iter().map(|r| r.0).collect();
    assert_eq!(ids, want);
    for (i, m) in c.series.iter().enumerate() {
        assert_eq!(m.series.id(), u64::from(m.id));
        assert_eq!((m.closed, usize::from(m.open_samples)), (0, i % 5 + 1));
        assert_eq!((m.open_min_t, m.open_max_t), (0, (i % 5) as i64));
        assert!(m.has_last);
        assert_eq!(m.last_t, (i % 5) as i64);
    }
    assert_eq!(c.meta.segment, 3);
    drop(uncommitted);
}
