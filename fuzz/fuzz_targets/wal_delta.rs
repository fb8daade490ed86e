//! Fuzz the WAL's segment-delta samples decoders (segment version 4, codecs 4 and 5, and
//! version 3, codecs 2 and 3): a sequence of untrusted payloads decoded against one segment
//! state never panics, and samples records round-trip through the writer (version 4, and the
//! version 3 writer kept for tests), record by record and as a whole segment read from its
//! start.
#![no_main]

use arbitrary::Arbitrary;
use argus_storage::internals::{WalRecord, WalRecordCodec};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Untrusted frame payloads of one segment, each with a codec (4 delta, 5 zstd delta,
    /// 2 and 3 their version 3 forms, ...).
    Payloads(Vec<(u8, Vec<u8>)>),
    /// Samples records (series ref, timestamp, value bits) to round-trip; small refs and
    /// timestamps near each other so that series repeat and deltas are short. `true`: frame
    /// them as version 3 did.
    Records(Vec<Vec<(u8, i16, u64)>>, bool),
}

fuzz_target!(|input: Input| match input {
    Input::Payloads(payloads) => {
        let mut c = WalRecordCodec::default();
        for (codec, bytes) in payloads {
            if let Ok(rec) = c.decode_payload(codec % 7, &bytes) {
                assert!(rec.len() <= 64 << 20);
            }
        }
    }
    Input::Records(recs, v3) => {
        let recs: Vec<Vec<u8>> = recs
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|r| {
                let s = r
                    .into_iter()
                    .map(|(s, t, v)| (u64::from(s), 1_700_000_000_000 + i64::from(t), v))
                    .collect();
                let mut b = Vec::new();
                WalRecord::Samples(s).encode(&mut b);
                b
            })
            .collect();
        let mut c = if v3 {
            WalRecordCodec::v3()
        } else {
            WalRecordCodec::default()
        };
        c.assert_round_trip(&recs);
    }
});
