//! Fuzz the WAL: record decoding and segment framing of arbitrary bytes must never panic, and
//! records round-trip through encode/decode and through segment framing.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::Labels;
use argus_storage::internals::{WalRecord, wal_build_segment, wal_scan_segment};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Untrusted bytes as one record, and as a segment file (raw and after a valid header).
    Bytes(Vec<u8>),
    /// Series to round-trip.
    Series(Vec<(u64, Vec<(String, String)>)>),
    /// Samples (ref, t, value bits) to round-trip.
    Samples(Vec<(u64, i64, u64)>),
    /// Tombstones (ref, mint, maxt) to round-trip.
    Tombstones(Vec<(u64, i64, i64)>),
}

fn round_trip(rec: &WalRecord) {
    let mut b = Vec::new();
    rec.encode(&mut b);
    assert_eq!(&WalRecord::decode(&b).expect("own encoding decodes"), rec);
    let seg = wal_build_segment(&[&b, &b]);
    let scan = wal_scan_segment(&seg);
    assert!(!scan.corrupt);
    assert_eq!(scan.records, vec![b.clone(), b]);
    assert_eq!(scan.valid_len, seg.len());
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(bytes) => {
        if let Ok(rec) = WalRecord::decode(&bytes) {
            // Decoding is canonical up to re-encoding.
            let mut b = Vec::new();
            rec.encode(&mut b);
            assert_eq!(
                WalRecord::decode(&b).expect("re-encoded record decodes"),
                rec
            );
        }
        let scan = wal_scan_segment(&bytes);
        assert!(scan.valid_len <= bytes.len());
        let mut seg = wal_build_segment(&[]);
        let header = seg.len();
        seg.extend_from_slice(&bytes);
        let scan = wal_scan_segment(&seg);
        assert!(scan.valid_len >= header && scan.valid_len <= seg.len());
        assert_eq!(scan.corrupt, scan.valid_len != seg.len());
        for r in &scan.records {
            let _ = WalRecord::decode(r);
        }
    }
    Input::Series(series) => {
        let series = series
            .into_iter()
            .map(|(r, pairs)| {
                let pairs: Vec<(String, String)> =
                    pairs.into_iter().filter(|(n, _)| !n.is_empty()).collect();
                (r, Labels::from_pairs(&pairs))
            })
            .collect();
        round_trip(&WalRecord::Series(series));
    }
    Input::Samples(s) => round_trip(&WalRecord::Samples(s)),
    Input::Tombstones(t) => round_trip(&WalRecord::Tombstones(t)),
});
