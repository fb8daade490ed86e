#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::head::HeadOptions;
use crate::head::chunk_files::HeadChunkFiles;
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
            max_t: p.max_t,
            current: p.current,
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
        d.apply(1, 1005, 5.0, 1 << 40, 100, &head.chunk_files),
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
            ooo: ooo
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
        prop_assert_eq!(back.encode(), bytes);
        prop_assert_eq!(back.pages, img.pages);
        prop_assert_eq!(back.series.len(), img.series.len());
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
