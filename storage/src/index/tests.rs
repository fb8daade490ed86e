#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::error::Error;
use crate::model::{Label, Labels};
use proptest::prelude::*;
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BTreeSet};

type Series = Vec<(Labels, Vec<ChunkMeta>)>;

fn write_index(series: &Series) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("index");
    let mut w = IndexWriter::create(&p).unwrap();
    for (l, c) in series {
        w.add_series(l, c).unwrap();
    }
    let size = w.finish().unwrap();
    let data = std::fs::read(&p).unwrap();
    assert_eq!(size, data.len() as u64);
    data
}

fn workload(n: usize) -> Series {
    let mut set = BTreeMap::new();
    for i in 0..n {
        let l = Labels::from_pairs(&[
            ("__name__", format!("metric_{}", i % 13).as_str()),
            ("instance", format!("host-{}:9100", i / 13).as_str()),
            ("job", if i % 3 == 0 { "node" } else { "app" }),
            ("zone", if i % 2 == 0 { "eu-1" } else { "us-2" }),
        ]);
        let chunks = (0..(i % 4) as i64)
            .map(|c| ChunkMeta {
                min_time: 1_700_000_000_000 + c * 1_800_000,
                max_time: 1_700_000_000_000 + c * 1_800_000 + 1_785_000,
                chunk_ref: ((i as u64 % 3) << 32) | (i as u64 * 400 + c as u64 * 97),
            })
            .collect::<Vec<_>>();
        set.insert(l, chunks);
    }
    set.into_iter().collect()
}

/// Expected postings: (name, value) → ids.
fn expected_postings(series: &Series) -> BTreeMap<(String, String), RoaringBitmap> {
    let mut m: BTreeMap<(String, String), RoaringBitmap> = BTreeMap::new();
    for (id, (l, _)) in series.iter().enumerate() {
        for Label { name, value } in l {
            m.entry((name.clone(), value.clone()))
                .or_default()
                .insert(id as u32);
        }
    }
    m
}

/// Every read the reader offers, compared with the source data. Returns the first mismatch
/// or error.
fn check_all(r: &IndexReader<&[u8]>, series: &Series) -> Result<(), String> {
    let err = |e: Error| format!("{e}");
    if r.num_series() as usize != series.len() {
        return Err(format!("num_series {} != {}", r.num_series(), series.len()));
    }
    let (mut labels, mut chunks) = (Labels::empty(), Vec::new());
    for (id, (l, c)) in series.iter().enumerate() {
        r.series(id as u32, &mut labels, &mut chunks).map_err(err)?;
        if &labels != l || &chunks != c {
            return Err(format!(
                "series {id}: got {labels} {chunks:?}, want {l} {c:?}"
            ));
        }
    }
    let want = expected_postings(series);
    let names: BTreeSet<&String> = want.keys().map(|k| &k.0).collect();
    let got_names = r.label_names().map_err(err)?;
    if got_names.iter().collect::<BTreeSet<_>>() != names || !got_names.is_sorted() {
        return Err(format!("label names {got_names:?}"));
    }
    for name in &names {
        let vals: Vec<&String> = want
            .keys()
            .filter(|k| &&k.0 == name)
            .map(|k| &k.1)
            .collect();
        let got = r.label_values(name).map_err(err)?;
        if got.iter().collect::<Vec<_>>() != vals {
            return Err(format!("values of {name}: {got:?} want {vals:?}"));
        }
    }
    for ((n, v), ids) in &want {
        let got = r.postings(n, v).map_err(err)?;
        if &got != ids {
            return Err(format!("postings {n}={v}: {got:?} want {ids:?}"));
        }
    }
    Ok(())
}

#[test]
fn round_trip_thousands_of_series() {
    let series = workload(5000);
    let data = write_index(&series);
    let r = IndexReader::new(data.as_slice()).unwrap();
    check_all(&r, &series).unwrap();
    assert_eq!(r.all_postings().len(), 5000);
    assert!(r.postings("job", "nope").unwrap().is_empty());
    assert!(r.postings("nope", "x").unwrap().is_empty());
    assert!(r.label_values("nope").unwrap().is_empty());
    let has_zone = r.postings_for_name("zone").unwrap();
    assert_eq!(has_zone.len(), 5000);
    assert!(matches!(
        r.series(5000, &mut Labels::empty(), &mut Vec::new()),
        Err(Error::InvalidArgument(_))
    ));
    // Bytes per series stays small (labels are symbol refs).
    assert!(data.len() < 5000 * 60, "{} bytes", data.len());
}

#[test]
fn empty_index() {
    let data = write_index(&vec![]);
    assert_eq!(data.len(), MIN_INDEX_LEN + 3 * CRC_LEN + 2);
    let r = IndexReader::new(data.as_slice()).unwrap();
    assert_eq!(r.num_series(), 0);
    assert!(r.label_names().unwrap().is_empty());
    assert!(r.all_postings().is_empty());
}

#[test]
fn out_of_order_series_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = IndexWriter::create(&dir.path().join("index")).unwrap();
    let a = Labels::from_pairs(&[("a", "1")]);
    let b = Labels::from_pairs(&[("a", "2")]);
    w.add_series(&b, &[]).unwrap();
    assert!(matches!(
        w.add_series(&a, &[]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        w.add_series(&b, &[]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn every_corrupted_byte_is_detected_or_harmless() {
    let series = workload(25);
    let data = write_index(&series);
    let mut buf = data.clone();
    let mut detected = 0;
    for i in 0..data.len() {
        for flip in [0x01u8, 0xff] {
            buf[i] ^= flip;
            match IndexReader::new(buf.as_slice()) {
                Err(e) => {
                    assert!(matches!(e, Error::Corruption { .. }), "byte {i}: {e}");
                    detected += 1;
                }
                Ok(r) => match check_all(&r, &series) {
                    Ok(()) => {}
                    Err(msg) => {
                        assert!(msg.contains("corruption"), "byte {i} ^ {flip:#x}: {msg}");
                        detected += 1;
                    }
                },
            }
            buf[i] = data[i];
        }
    }
    // Only the 3 reserved header bytes are unchecked.
    assert!(
        detected >= (data.len() - 3) * 2,
        "{detected} of {}",
        data.len() * 2
    );
}

#[test]
fn every_truncation_is_detected() {
    let data = write_index(&workload(30));
    for len in 0..data.len() {
        let r = IndexReader::new(&data[..len]);
        assert!(matches!(r, Err(Error::Corruption { .. })), "len {len}");
    }
}

fn series_strategy() -> impl Strategy<Value = Series> {
    let labels = proptest::collection::btree_map("[a-c]{1,2}", "\\PC{1,4}", 1..4)
        .prop_map(|m| Labels::from_sorted(m.into_iter().map(|(n, v)| Label::new(n, v)).collect()));
    let chunk = (any::<i64>(), any::<i64>(), any::<u64>()).prop_map(|(a, b, r)| ChunkMeta {
        min_time: a.min(b),
        max_time: a.max(b),
        chunk_ref: r,
    });
    proptest::collection::btree_map(labels, proptest::collection::vec(chunk, 0..5), 0..40)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn proptest_round_trip(series in series_strategy()) {
        let data = write_index(&series);
        let r = IndexReader::new(data.as_slice()).unwrap();
        prop_assert_eq!(check_all(&r, &series), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = IndexReader::new(bytes.as_slice()) {
            let _ = r.label_names();
            let (mut l, mut c) = (Labels::empty(), Vec::new());
            for id in 0..r.num_series().min(100) {
                let _ = r.series(id, &mut l, &mut c);
            }
        }
    }
}

#[test]
fn v1_fixtures_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/index");
    let series = workload(20);
    if std::env::var_os("ARGUS_REGEN_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        let data = write_index(&series);
        std::fs::write(dir.join("v1.index"), &data).unwrap();
        // Corrupt a byte inside series entry 3 (its CRC catches it).
        let r = IndexReader::new(data.as_slice()).unwrap();
        let at = r.series_offsets.start + 3 * 8;
        let off = u64::from_le_bytes(data[at..at + 8].try_into().unwrap()) as usize;
        let mut bad = data.clone();
        bad[off + 2] ^= 0x01;
        std::fs::write(dir.join("v1-corrupt-series.index"), &bad).unwrap();
    }
    let data = std::fs::read(dir.join("v1.index")).unwrap();
    let r = IndexReader::new(data.as_slice()).unwrap();
    check_all(&r, &series).unwrap();
    let bad = std::fs::read(dir.join("v1-corrupt-series.index")).unwrap();
    let r = IndexReader::new(bad.as_slice()).unwrap();
    let (mut l, mut c) = (Labels::empty(), Vec::new());
    assert!(matches!(
        r.series(3, &mut l, &mut c),
        Err(Error::Corruption { .. })
    ));
    r.series(4, &mut l, &mut c).unwrap();
    assert_eq!(l, series[4].0);
}
