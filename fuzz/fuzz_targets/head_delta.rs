//! Fuzz the head snapshot delta decoder (`storage/src/head/snapshot_delta.rs`): arbitrary
//! bytes, with or without a valid header, give an error or a delta, never a panic; a delta
//! that decodes re-encodes to bytes that decode and re-encode to themselves. Each section's CRC
//! is recomputed first (as well as the bytes as they are), so mutations reach the section
//! decoders rather than stopping at the checksum.
#![no_main]

use argus_storage::internals::{HEAD_DELTA_HEADER, head_delta_round_trip, head_snapshot_fix_crcs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framed = HEAD_DELTA_HEADER.to_vec();
    framed.extend_from_slice(data);
    let mut fixed = [data.to_vec(), framed.clone()];
    for f in &mut fixed {
        head_snapshot_fix_crcs(f);
    }
    for bytes in [data, &framed[..]].into_iter().chain(fixed.iter().map(|f| &f[..])) {
        if let Ok(again) = head_delta_round_trip(bytes) {
            let twice = head_delta_round_trip(&again).expect("own encoding decodes");
            assert_eq!(twice, again, "own encoding re-encodes to itself");
        }
    }
});
