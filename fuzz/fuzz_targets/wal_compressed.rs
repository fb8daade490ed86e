//! Fuzz the WAL's compressed-record decoder (segment format 2): arbitrary payloads under either
//! codec never panic and never inflate past the record limit, and records round-trip through the
//! compressing writer, alone and framed in a segment.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::internals::WalRecordCodec;
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
        c.assert_round_trip(&recs);
    }
});
