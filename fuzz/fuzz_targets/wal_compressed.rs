//! Fuzz the WAL's compressed-record decoder (segment format 2): arbitrary payloads under either
//! codec never panic and never inflate past the record limit, and records round-trip through the
//! compressing writer, alone and framed in a segment.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::internals::{WalRecordCodec, wal_build_segment, wal_scan_segment};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// An untrusted frame payload stored with a codec (0 plain, 1 zstd, others unknown).
    Payload(u8, Vec<u8>),
    /// Records to round-trip; `repeat` stretches each so that zstd has something to find.
    Records(Vec<Vec<u8>>, u8),
}

fuzz_target!(|input: Input| match input {
    Input::Payload(codec, bytes) => {
        let mut c = WalRecordCodec::default();
        if let Ok(rec) = c.decode_payload(codec, &bytes) {
            assert!(rec.len() <= 64 << 20);
        }
    }
    Input::Records(recs, repeat) => {
        let recs: Vec<Vec<u8>> = recs
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.repeat(usize::from(repeat % 64) + 1))
            .collect();
        let mut c = WalRecordCodec::default();
        for r in &recs {
            let mut f = Vec::new();
            c.put_frame(&mut f, r);
            let word = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            let got = c
                .decode_payload((word >> 28) as u8, &f[8..])
                .expect("own frame decodes");
            assert_eq!(got, &r[..]);
        }
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let seg = wal_build_segment(&refs);
        let scan = wal_scan_segment(&seg);
        assert!(!scan.corrupt);
        assert_eq!(scan.records, recs);
        assert_eq!(scan.valid_len, seg.len());
    }
});
