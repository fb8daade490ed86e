//! Fuzz the head snapshot decoder (`storage/src/head/snapshot.rs`): arbitrary bytes, with or
//! without a valid header (version 2, or version 1 with nothing compressed), give an error or a
//! snapshot, never a panic; a snapshot that decodes re-encodes to bytes that decode and
//! re-encode to themselves. Each section's CRC is recomputed first (as well as the bytes as
//! they are), so mutations reach the section decoders rather than stopping at the checksum.
#![no_main]

use argus_storage::internals::{
    HEAD_SNAPSHOT_HEADER, head_snapshot_fix_crcs, head_snapshot_round_trip,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut v2 = HEAD_SNAPSHOT_HEADER.to_vec();
    v2.extend_from_slice(data);
    let mut v1 = v2.clone();
    v1[4] = 1;
    let mut fixed = [data.to_vec(), v2.clone(), v1];
    for f in &mut fixed {
        head_snapshot_fix_crcs(f);
    }
    for bytes in [data, &v2[..]].into_iter().chain(fixed.iter().map(|f| &f[..])) {
        if let Ok(again) = head_snapshot_round_trip(bytes) {
            let twice = head_snapshot_round_trip(&again).expect("own encoding decodes");
            assert_eq!(twice, again, "own encoding re-encodes to itself");
        }
    }
});
